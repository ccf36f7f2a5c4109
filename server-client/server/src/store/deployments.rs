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
        let row = sqlx::query(super::audited(format!("SELECT {COLUMNS} FROM deployments WHERE handle = $1"))).bind(handle.to_owned()).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Err(ApiError::not_found("deployment", handle).into()) };
        let mut deployment = from_row(&row)?;
        let events = sqlx::query("SELECT at, action, detail FROM deployment_events WHERE handle = $1 ORDER BY id").bind(handle.to_owned()).fetch_all(&self.pool).await?;
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

    /// Adds counts to the (handle, version, bucket) rows.
    pub async fn add_traffic(&self, handle: &str, deltas: &[(i64, Millis, TrafficDelta)]) -> Result<()> {
        let mut w = self.write().await?;
        for (version, bucket, delta) in deltas {
            let row = sqlx::query("SELECT requests, errors, latency, reward_sum, reward_count FROM traffic WHERE handle = $1 AND version = $2 AND bucket = $3")
                .bind(handle.to_owned())
                .bind(*version)
                .bind(*bucket)
                .fetch_optional(&mut *w.tx)
                .await?;
            let mut total = delta.clone();
            if let Some(row) = row {
                total.requests += row.try_get::<i64, _>("requests")? as u64;
                total.errors += row.try_get::<i64, _>("errors")? as u64;
                total.reward_sum += row.try_get::<f64, _>("reward_sum")?;
                total.reward_count += row.try_get::<i64, _>("reward_count")? as u64;
                let stored: Vec<u64> = serde_json::from_str(&row.try_get::<String, _>("latency")?).unwrap_or_default();
                if total.latency.len() < stored.len() {
                    total.latency.resize(stored.len(), 0);
                }
                for (slot, count) in total.latency.iter_mut().zip(stored) {
                    *slot += count;
                }
                sqlx::query("DELETE FROM traffic WHERE handle = $1 AND version = $2 AND bucket = $3").bind(handle.to_owned()).bind(*version).bind(*bucket).execute(&mut *w.tx).await?;
            }
            sqlx::query("INSERT INTO traffic (handle, version, bucket, requests, errors, latency, reward_sum, reward_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(handle.to_owned())
                .bind(*version)
                .bind(*bucket)
                .bind(total.requests as i64)
                .bind(total.errors as i64)
                .bind(serde_json::to_string(&total.latency).unwrap_or_else(|_| "[]".into()))
                .bind(total.reward_sum)
                .bind(total.reward_count as i64)
                .execute(&mut *w.tx)
                .await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Every bucket of `handle` since `since`, by time then version, with latency
    /// percentiles read off the histogram by `percentile`.
    pub async fn traffic(&self, handle: &str, since: Millis, percentile: impl Fn(&[u64], f64) -> f64) -> Result<Vec<TrafficBucket>> {
        let rows = sqlx::query("SELECT version, bucket, requests, errors, latency, reward_sum, reward_count FROM traffic WHERE handle = $1 AND bucket >= $2 ORDER BY bucket, version")
            .bind(handle.to_owned())
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let latency: Vec<u64> = serde_json::from_str(&r.try_get::<String, _>("latency")?).unwrap_or_default();
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
