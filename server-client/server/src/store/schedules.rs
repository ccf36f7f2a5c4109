//! Schedules: training workflows the server starts on a cron pattern. A firing is claimed
//! in the database (`next_at` moved on only by the server that saw the old value), so two
//! servers on one PostgreSQL never start the same firing twice.

use std::collections::BTreeMap;
use std::str::FromStr;

use kiln_api::{ApiError, CreateSchedule, Millis, Schedule, limits};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, now_millis};

const COLUMNS: &str = "id, handle, cron, params, runner, created_at, next_at, last_fired_at, last_exit, last_run_id";

/// The first time after `after` (ms since the epoch, UTC) that `cron` matches.
pub fn next_after(cron: &str, after: Millis) -> Result<Millis, ApiError> {
    let pattern = croner::Cron::from_str(cron).map_err(|e| ApiError::invalid("cron", format!("'{cron}' is not a cron pattern: {e}")))?;
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(after).unwrap_or_default();
    let next = pattern.find_next_occurrence(&start, false).map_err(|e| ApiError::invalid("cron", format!("'{cron}' never fires: {e}")))?;
    Ok(next.timestamp_millis())
}

fn from_row(row: &AnyRow) -> Result<Schedule> {
    let params: String = row.try_get("params")?;
    Ok(Schedule {
        id: row.try_get("id")?,
        handle: row.try_get("handle")?,
        cron: row.try_get("cron")?,
        params: serde_json::from_str::<BTreeMap<String, String>>(&params).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        runner: row.try_get("runner")?,
        created_at: row.try_get("created_at")?,
        next_at: row.try_get("next_at")?,
        last_fired_at: row.try_get("last_fired_at")?,
        last_exit: row.try_get("last_exit")?,
        last_run_id: row.try_get("last_run_id")?,
    })
}

impl Store {
    pub async fn create_schedule(&self, request: &CreateSchedule) -> Result<Schedule> {
        limits::name("handle", &request.handle)?;
        for (key, value) in &request.params {
            limits::key(&format!("params.{key}"), key)?;
            if value.chars().count() > limits::MAX_PARAM_VALUE_LEN {
                return Err(ApiError::invalid(format!("params.{key}"), format!("longer than {} characters", limits::MAX_PARAM_VALUE_LEN)).into());
            }
        }
        if let Some(runner) = &request.runner
            && !matches!(runner.as_str(), "podman" | "process")
        {
            return Err(ApiError::invalid("runner", format!("'{runner}' is not a runner (podman or process)")).into());
        }
        let now = now_millis();
        let schedule = Schedule {
            id: uuid::Uuid::new_v4().simple().to_string(),
            handle: request.handle.clone(),
            cron: request.cron.trim().to_owned(),
            params: request.params.clone(),
            runner: request.runner.clone(),
            created_at: now,
            next_at: next_after(request.cron.trim(), now)?,
            last_fired_at: None,
            last_exit: None,
            last_run_id: None,
        };
        let mut w = self.write().await?;
        sqlx::query("INSERT INTO schedules (id, handle, cron, params, runner, created_at, next_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&schedule.id)
            .bind(&schedule.handle)
            .bind(&schedule.cron)
            .bind(serde_json::to_string(&schedule.params).unwrap_or_default())
            .bind(schedule.runner.clone())
            .bind(schedule.created_at)
            .bind(schedule.next_at)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(schedule)
    }

    /// Schedules of `handle` (all when empty), oldest first.
    pub async fn schedules(&self, handle: &str) -> Result<Vec<Schedule>> {
        let rows = sqlx::query(super::audited(format!("SELECT {COLUMNS} FROM schedules WHERE $1 = '' OR handle = $1 ORDER BY created_at, id")))
            .bind(handle.to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn schedule(&self, id: &str) -> Result<Schedule> {
        let row = sqlx::query(super::audited(format!("SELECT {COLUMNS} FROM schedules WHERE id = $1"))).bind(id.to_owned()).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => from_row(&row),
            None => Err(ApiError::not_found("schedule", id).into()),
        }
    }

    pub async fn delete_schedule(&self, id: &str) -> Result<()> {
        let mut w = self.write().await?;
        let deleted = sqlx::query("DELETE FROM schedules WHERE id = $1").bind(id.to_owned()).execute(&mut *w.tx).await?;
        if deleted.rows_affected() == 0 {
            return Err(ApiError::not_found("schedule", id).into());
        }
        w.commit().await?;
        Ok(())
    }

    /// Claims every firing due at `now`: moves each schedule's `next_at` on and returns the
    /// schedules this caller must start. A firing missed while the server was down fires
    /// once, not once per missed time.
    pub async fn claim_due_schedules(&self, now: Millis) -> Result<Vec<Schedule>> {
        let due = sqlx::query(super::audited(format!("SELECT {COLUMNS} FROM schedules WHERE next_at <= $1"))).bind(now).fetch_all(&self.pool).await?;
        let mut claimed = Vec::new();
        for row in &due {
            let mut schedule = from_row(row)?;
            let next = next_after(&schedule.cron, now)?;
            let mut w = self.write().await?;
            // The exit code and run describe the firing `last_fired_at` names: none while it runs.
            let updated =
                sqlx::query("UPDATE schedules SET next_at = $1, last_fired_at = $2, last_exit = NULL, last_run_id = NULL WHERE id = $3 AND next_at = $4")
                    .bind(next)
                    .bind(now)
                    .bind(&schedule.id)
                    .bind(schedule.next_at)
                    .execute(&mut *w.tx)
                    .await?;
            w.commit().await?;
            if updated.rows_affected() == 1 {
                schedule.next_at = next;
                schedule.last_fired_at = Some(now);
                (schedule.last_exit, schedule.last_run_id) = (None, None);
                claimed.push(schedule);
            }
        }
        Ok(claimed)
    }

    /// How a firing ended.
    pub async fn record_firing(&self, id: &str, exit: i64, run_id: Option<&str>) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE schedules SET last_exit = $1, last_run_id = $2 WHERE id = $3")
            .bind(exit)
            .bind(run_id.map(str::to_owned))
            .bind(id.to_owned())
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_firings() {
        // 2026-11-28T19:17:00Z
        let t = 1_795_893_420_000;
        assert_eq!(next_after("0 3 * * *", t).unwrap(), 1_795_921_200_000); // 03:00 next day
        assert_eq!(next_after("*/5 * * * * *", t).unwrap(), t + 5_000);
        let error = next_after("61 * * * *", t).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("cron"));
    }
}
