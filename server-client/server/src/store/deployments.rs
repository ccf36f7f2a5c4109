//! Deployments (which model versions of a handle get traffic, and how), their history, and
//! the traffic the gateway counted, per version and minute.

use kiln_api::{ApiError, Deployment, DeploymentEvent, Millis, Strategy, TrafficBucket};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, now_millis};

const COLUMNS: &str = "handle, strategy, stable, candidate, standby, arms, runner, updated_at";

fn from_row(row: &AnyRow) -> Result<Deployment> {
    let strategy: String = row.try_get("strategy")?;
    let arms: String = row.try_get("arms")?;
    Ok(Deployment {
        handle: row.try_get("handle")?,
        strategy: Strategy::parse(&strategy).map_err(|e| sqlx::Error::Decode(e.message.into()))?,
        stable: row.try_get("stable")?,
        candidate: row.try_get("candidate")?,
        standby: row.try_get("standby")?,
        arms: serde_json::from_str(&arms).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        runner: row.try_get("runner")?,
        updated_at: row.try_get("updated_at")?,
        history: Vec::new(),
    })
}

/// Slots of the gateway's latency histogram, one column each (`l0` … `l22`).
pub const LATENCY_SLOTS: usize = 23;

fn latency_columns() -> Vec<String> {
    (0..LATENCY_SLOTS).map(|slot| format!("l{slot}")).collect()
}

/// Counts the gateway adds to a (version, minute) bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficDelta {
    pub requests: u64,
    pub errors: u64,
    /// Requests per latency bucket (see the gateway's histogram).
    pub latency: Vec<u64>,
    pub reward_sum: f64,
    pub reward_count: u64,
}

impl Store {
    pub async fn deployments(&self) -> Result<Vec<Deployment>> {
        let rows = sqlx::query(super::audited(format!("SELECT {COLUMNS} FROM deployments ORDER BY handle"))).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// A deployment with its history.
    pub async fn deployment(&self, handle: &str) -> Result<Deployment> {
        let row = sqlx::query(super::audited(format!("SELECT {COLUMNS} FROM deployments WHERE handle = $1")))
            .bind(handle.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Err(ApiError::not_found("deployment", handle).into()) };
        let mut deployment = from_row(&row)?;
        let events =
            sqlx::query("SELECT at, action, detail FROM deployment_events WHERE handle = $1 ORDER BY id").bind(handle.to_owned()).fetch_all(&self.pool).await?;
        deployment.history = events
            .iter()
            .map(|r| Ok(DeploymentEvent { at: r.try_get("at")?, action: r.try_get("action")?, detail: r.try_get("detail")? }))
            .collect::<Result<_>>()?;
        Ok(deployment)
    }

    /// Writes the deployment as `next` and appends an event, in one transaction.
    pub async fn save_deployment(&self, next: &Deployment, action: &str, detail: &str) -> Result<Deployment> {
        let now = now_millis();
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM deployments WHERE handle = $1").bind(next.handle.clone()).execute(&mut *w.tx).await?;
        sqlx::query(super::audited(format!("INSERT INTO deployments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")))
            .bind(next.handle.clone())
            .bind(next.strategy.to_string())
            .bind(next.stable)
            .bind(next.candidate)
            .bind(next.standby)
            .bind(serde_json::to_string(&next.arms).unwrap_or_else(|_| "[]".into()))
            .bind(next.runner.clone())
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("INSERT INTO deployment_events (handle, at, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(next.handle.clone())
            .bind(now)
            .bind(action.to_owned())
            .bind(detail.to_owned())
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        self.deployment(&next.handle).await
    }

    /// Adds counts to the (handle, version, bucket) rows: one upsert each, whose additions
    /// the database makes, so servers sharing the store never lose each other's counts.
    pub async fn add_traffic(&self, handle: &str, deltas: &[(i64, Millis, TrafficDelta)]) -> Result<()> {
        let latency = latency_columns();
        let placeholders: Vec<String> = (8..8 + LATENCY_SLOTS).map(|n| format!("${n}")).collect();
        let added: Vec<String> = ["requests", "errors", "reward_sum", "reward_count"]
            .into_iter()
            .map(String::from)
            .chain(latency.iter().cloned())
            .map(|c| format!("{c} = traffic_minutes.{c} + excluded.{c}"))
            .collect();
        let sql = format!(
            "INSERT INTO traffic_minutes (handle, version, bucket, requests, errors, reward_sum, reward_count, {}) VALUES ($1, $2, $3, $4, $5, $6, $7, {}) \
             ON CONFLICT (handle, version, bucket) DO UPDATE SET {}",
            latency.join(", "),
            placeholders.join(", "),
            added.join(", ")
        );
        let mut w = self.write().await?;
        for (version, bucket, delta) in deltas {
            let mut query = sqlx::query(super::audited(sql.clone()))
                .bind(handle.to_owned())
                .bind(*version)
                .bind(*bucket)
                .bind(delta.requests as i64)
                .bind(delta.errors as i64)
                .bind(delta.reward_sum)
                .bind(delta.reward_count as i64);
            for slot in 0..LATENCY_SLOTS {
                query = query.bind(delta.latency.get(slot).copied().unwrap_or(0) as i64);
            }
            query.execute(&mut *w.tx).await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Rewards per version over all time: (version, sum, count), summed by the database.
    pub async fn rewards(&self, handle: &str) -> Result<Vec<(i64, f64, u64)>> {
        let rows = sqlx::query("SELECT version, CAST(SUM(reward_sum) AS DOUBLE PRECISION) AS reward_sum, CAST(SUM(reward_count) AS BIGINT) AS reward_count FROM traffic_minutes WHERE handle = $1 GROUP BY version ORDER BY version")
            .bind(handle.to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("version")?, r.try_get::<f64, _>("reward_sum")?, r.try_get::<i64, _>("reward_count")? as u64))).collect()
    }

    /// Every bucket of `handle` since `since`, by time then version, with latency
    /// percentiles read off the histogram by `percentile`.
    pub async fn traffic(&self, handle: &str, since: Millis, percentile: impl Fn(&[u64], f64) -> f64) -> Result<Vec<TrafficBucket>> {
        let sql = format!(
            "SELECT version, bucket, requests, errors, reward_sum, reward_count, {} FROM traffic_minutes WHERE handle = $1 AND bucket >= $2 ORDER BY bucket, version",
            latency_columns().join(", ")
        );
        let rows = sqlx::query(super::audited(sql)).bind(handle.to_owned()).bind(since).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let latency = latency_columns().iter().map(|c| Ok(r.try_get::<i64, _>(c.as_str())? as u64)).collect::<Result<Vec<u64>>>()?;
                let rewards = r.try_get::<i64, _>("reward_count")? as u64;
                let reward_sum: f64 = r.try_get("reward_sum")?;
                Ok(TrafficBucket {
                    version: r.try_get("version")?,
                    start: r.try_get("bucket")?,
                    requests: r.try_get::<i64, _>("requests")? as u64,
                    errors: r.try_get::<i64, _>("errors")? as u64,
                    p50_ms: percentile(&latency, 0.5),
                    p95_ms: percentile(&latency, 0.95),
                    p99_ms: percentile(&latency, 0.99),
                    mean_reward: (rewards > 0).then(|| reward_sum / rewards as f64),
                    rewards,
                })
            })
            .collect()
    }
}
