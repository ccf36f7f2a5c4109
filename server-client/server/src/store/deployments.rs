//! Deployments (which model versions of a handle get traffic, and how), their history, and
//! the traffic the gateway counted, per version and minute, and per 10 seconds for the last
//! hour (what a live chart draws).

use kiln_api::{ApiError, Deployment, DeploymentEvent, Millis, Strategy, TrafficBucket};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, now_millis};

const COLUMNS: &str = "handle, strategy, stable, candidate, standby, arms, runner, updated_at";

/// One change to save: what it is, in words, and who made it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub action: &'a str,
    pub detail: &'a str,
    pub actor: Option<&'a str>,
}

/// The refusal of a change decided on revision `expected` when the deployment is at
/// `revision`: it names the changes made since, so the user sees what they would overwrite.
pub fn conflict(handle: &str, expected: i64, revision: i64, current: Option<&Deployment>) -> ApiError {
    let since: Vec<String> = current
        .map(|d| {
            d.history
                .iter()
                .skip(expected.max(0) as usize)
                .map(|e| format!("{} ({}{})", e.detail, e.action, e.actor.as_deref().map(|a| format!(" by {a}")).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let what = if since.is_empty() { String::new() } else { format!(": {}", since.join("; ")) };
    ApiError::new(
        kiln_api::ErrorCode::ResourceConflict,
        format!(
            "`{handle}` changed while this change was being decided (revision {expected}, now {revision}){what}. Nothing was changed; look again and retry"
        ),
    )
}

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
        revision: row.try_get("revision")?,
        history: Vec::new(),
    })
}

/// The two bucket widths the store keeps: minutes for all time, 10 s for the last hour.
pub const MINUTE_MS: Millis = 60_000;
pub const FINE_MS: Millis = 10_000;
/// How long 10-second buckets are kept.
pub const FINE_KEPT_MS: Millis = 3_600_000;

/// The table holding buckets `width` wide.
fn traffic_table(width: Millis) -> Option<&'static str> {
    match width {
        MINUTE_MS => Some("traffic_minutes"),
        FINE_MS => Some("traffic_fine"),
        _ => None,
    }
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
        let sql =
            format!("SELECT {COLUMNS}, (SELECT COUNT(*) FROM deployment_events e WHERE e.handle = d.handle) AS revision FROM deployments d ORDER BY handle");
        let rows = sqlx::query(super::audited(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// A deployment with its history.
    pub async fn deployment(&self, handle: &str) -> Result<Deployment> {
        let sql =
            format!("SELECT {COLUMNS}, (SELECT COUNT(*) FROM deployment_events e WHERE e.handle = d.handle) AS revision FROM deployments d WHERE handle = $1");
        let row = sqlx::query(super::audited(sql)).bind(handle.to_owned()).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Err(ApiError::not_found("deployment", handle).into()) };
        let mut deployment = from_row(&row)?;
        let events = sqlx::query(
            "SELECT e.at, e.action, e.detail, a.actor FROM deployment_events e LEFT JOIN deployment_event_actors a ON a.event_id = e.id \
             WHERE e.handle = $1 ORDER BY e.id",
        )
        .bind(handle.to_owned())
        .fetch_all(&self.pool)
        .await?;
        deployment.history = events
            .iter()
            .map(|r| Ok(DeploymentEvent { at: r.try_get("at")?, action: r.try_get("action")?, detail: r.try_get("detail")?, actor: r.try_get("actor")? }))
            .collect::<Result<_>>()?;
        Ok(deployment)
    }

    /// Writes the deployment as `next` and appends an event, in one transaction, if its
    /// revision is still `expected` (the number of changes it had when the change was
    /// decided; 0: none yet). Otherwise nothing is written and the error says what the other
    /// change was.
    pub async fn save_deployment(&self, next: &Deployment, change: &Change<'_>, expected: i64) -> Result<Deployment> {
        let now = now_millis();
        let mut w = self.write().await?;
        // The delete first: on PostgreSQL it waits for a concurrent change of the same
        // handle to commit, so the count below sees it.
        sqlx::query("DELETE FROM deployments WHERE handle = $1").bind(next.handle.clone()).execute(&mut *w.tx).await?;
        let revision: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM deployment_events WHERE handle = $1").bind(next.handle.clone()).fetch_one(&mut *w.tx).await?.try_get("n")?;
        if revision != expected {
            drop(w);
            let current = self.deployment(&next.handle).await.ok();
            return Err(conflict(&next.handle, expected, revision, current.as_ref()).into());
        }
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
        let id: i64 = sqlx::query("INSERT INTO deployment_events (handle, at, action, detail) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(next.handle.clone())
            .bind(now)
            .bind(change.action.to_owned())
            .bind(change.detail.to_owned())
            .fetch_one(&mut *w.tx)
            .await?
            .try_get("id")?;
        if let Some(actor) = change.actor {
            sqlx::query("INSERT INTO deployment_event_actors (event_id, actor) VALUES ($1, $2)").bind(id).bind(actor.to_owned()).execute(&mut *w.tx).await?;
        }
        w.commit().await?;
        self.deployment(&next.handle).await
    }

    /// Adds counts to the (handle, version, bucket) rows of both widths: the gateway counts
    /// per 10 s (`bucket` is such a bucket's start), each delta goes to its 10-second row and
    /// to its minute's row. One upsert each, whose additions the database makes, so servers
    /// sharing the store never lose each other's counts. 10-second rows older than
    /// `FINE_KEPT_MS` go in the same transaction.
    pub async fn add_traffic(&self, handle: &str, deltas: &[(i64, Millis, TrafficDelta)]) -> Result<()> {
        let latency = latency_columns();
        let placeholders: Vec<String> = (8..8 + LATENCY_SLOTS).map(|n| format!("${n}")).collect();
        let upsert = |table: &str| {
            let added: Vec<String> = ["requests", "errors", "reward_sum", "reward_count"]
                .into_iter()
                .map(String::from)
                .chain(latency.iter().cloned())
                .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
                .collect();
            format!(
                "INSERT INTO {table} (handle, version, bucket, requests, errors, reward_sum, reward_count, {}) VALUES ($1, $2, $3, $4, $5, $6, $7, {}) \
                 ON CONFLICT (handle, version, bucket) DO UPDATE SET {}",
                latency.join(", "),
                placeholders.join(", "),
                added.join(", ")
            )
        };
        let mut w = self.write().await?;
        for (table, width) in [("traffic_fine", FINE_MS), ("traffic_minutes", MINUTE_MS)] {
            let sql = upsert(table);
            for (version, bucket, delta) in deltas {
                let mut query = sqlx::query(super::audited(sql.clone()))
                    .bind(handle.to_owned())
                    .bind(*version)
                    .bind(bucket - bucket.rem_euclid(width))
                    .bind(delta.requests as i64)
                    .bind(delta.errors as i64)
                    .bind(delta.reward_sum)
                    .bind(delta.reward_count as i64);
                for slot in 0..LATENCY_SLOTS {
                    query = query.bind(delta.latency.get(slot).copied().unwrap_or(0) as i64);
                }
                query.execute(&mut *w.tx).await?;
            }
        }
        sqlx::query("DELETE FROM traffic_fine WHERE handle = $1 AND bucket < $2")
            .bind(handle.to_owned())
            .bind(now_millis() - FINE_KEPT_MS)
            .execute(&mut *w.tx)
            .await?;
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

    /// Every bucket `width` wide (`MINUTE_MS`, or `FINE_MS` for the last hour) of `handle`
    /// since `since`, by time then version, with latency percentiles read off the histogram
    /// by `percentile`.
    pub async fn traffic(&self, handle: &str, since: Millis, width: Millis, percentile: impl Fn(&[u64], f64) -> f64) -> Result<Vec<TrafficBucket>> {
        let Some(table) = traffic_table(width) else {
            return Err(ApiError::invalid(
                "bucket_ms",
                format!("{width} is not a bucket width the store keeps: {MINUTE_MS} (minutes) or {FINE_MS} (10 s, the last hour)"),
            )
            .into());
        };
        let sql = format!(
            "SELECT version, bucket, requests, errors, reward_sum, reward_count, {} FROM {table} WHERE handle = $1 AND bucket >= $2 ORDER BY bucket, version",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each delta counts once in its minute and once in its 10 seconds; 10-second rows older
    /// than an hour go, the minutes stay.
    #[tokio::test]
    async fn ten_second_buckets_sum_to_the_minutes_and_keep_an_hour() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("kiln.db").display())).await.expect("store");
        let delta = |requests: u64| TrafficDelta { requests, latency: vec![requests; LATENCY_SLOTS], ..Default::default() };
        let minute = (now_millis() / MINUTE_MS - 1) * MINUTE_MS;
        let old = minute - 2 * FINE_KEPT_MS;
        let deltas = [(1, minute, delta(3)), (1, minute + 10_000, delta(4)), (2, minute + 50_000, delta(5)), (1, old + 20_000, delta(7))];
        store.add_traffic("iris", &deltas).await.expect("added");
        // A second server adds to the same buckets.
        store.add_traffic("iris", &deltas[..1]).await.expect("added");
        let shape = |buckets: Vec<TrafficBucket>| buckets.into_iter().map(|b| (b.version, b.start, b.requests)).collect::<Vec<_>>();
        let minutes = shape(store.traffic("iris", 0, MINUTE_MS, |_, _| 0.0).await.expect("minutes"));
        assert_eq!(minutes, [(1, old, 7), (1, minute, 10), (2, minute, 5)]);
        let fine = shape(store.traffic("iris", 0, FINE_MS, |_, _| 0.0).await.expect("fine"));
        assert_eq!(fine, [(1, minute, 6), (1, minute + 10_000, 4), (2, minute + 50_000, 5)]);
        let refused = store.traffic("iris", 0, 5_000, |_, _| 0.0).await.expect_err("no such width");
        assert!(refused.to_string().contains("5000 is not a bucket width"), "{refused}");
    }
}
