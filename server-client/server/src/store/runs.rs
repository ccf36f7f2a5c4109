//! Experiments, runs and what runs log: params, metric series, tags and artifacts.

use std::collections::HashMap;

use kiln_api::{
    ApiError, AttachArtifact, CreateRun, Experiment, Lifecycle, LogBatch, Metric, MetricHistory, ModelRef, Param, Run, RunArtifact, RunSource, RunStatus,
    RunView, Tag, UpdateRun, limits,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, placeholders};

/// A run's columns, `deleted_at` included (from `deleted_runs`, NULL while active).
pub(super) const RUN_COLUMNS: &str = "r.id, r.experiment_id, r.name, r.status, r.source, r.start_time, r.end_time, (SELECT d.deleted_at FROM deleted_runs d WHERE d.run_id = r.id) AS deleted_at";

/// An experiment's columns, `deleted_at` included.
const EXPERIMENT_COLUMNS: &str = "e.id, e.name, e.created_at, (SELECT d.deleted_at FROM deleted_experiments d WHERE d.experiment_id = e.id) AS deleted_at";

pub(super) fn run_from_row(row: &AnyRow) -> Result<Run> {
    let status: String = row.try_get("status")?;
    let source: String = row.try_get("source")?;
    Ok(Run {
        id: row.try_get("id")?,
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        name: row.try_get("name")?,
        status: RunStatus::parse(&status).ok_or_else(|| sqlx::Error::Decode(format!("run status '{status}'").into()))?,
        source: RunSource::parse(&source).ok_or_else(|| sqlx::Error::Decode(format!("run source '{source}'").into()))?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

fn experiment_from_row(row: &AnyRow) -> Result<Experiment> {
    Ok(Experiment {
        id: row.try_get::<i64, _>("id")?.to_string(),
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
        tags: Vec::new(),
    })
}

/// MLflow's refusal of a write to a deleted run (or into a deleted experiment).
fn not_active(what: &str, id: &str) -> ApiError {
    ApiError::invalid(format!("{what}_id"), format!("the {what} {id} must be in the 'active' state; it is deleted (restore it first)"))
}

impl Store {
    pub async fn create_experiment(&self, name: &str) -> Result<Experiment> {
        self.create_experiment_tagged(name, &[]).await
    }

    /// A new experiment with its tags, in one transaction.
    pub async fn create_experiment_tagged(&self, name: &str, tags: &[Tag]) -> Result<Experiment> {
        limits::name("name", name)?;
        limits::batch(&LogBatch { tags: tags.to_vec(), ..Default::default() })?;
        let mut w = self.write().await?;
        if sqlx::query("SELECT id FROM experiments WHERE name = $1").bind(name).fetch_optional(&mut *w.tx).await?.is_some() {
            return Err(ApiError::already_exists("experiment", name).into());
        }
        let created_at = super::now_millis();
        let id = insert_experiment(&mut w.tx, name, created_at).await?;
        for tag in tags {
            sqlx::query("INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value")
                .bind(id)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *w.tx)
                .await?;
        }
        let experiment = Experiment { id: id.to_string(), name: name.to_owned(), created_at, deleted_at: None, tags: tags.to_vec() };
        w.commit().await?;
        Ok(experiment)
    }

    /// Every experiment `lifecycle` lets through, in creation order, with its tags.
    pub async fn experiments(&self, lifecycle: Lifecycle) -> Result<Vec<Experiment>> {
        let rows = sqlx::query(super::audited(format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments e ORDER BY e.id"))).fetch_all(&self.pool).await?;
        let mut experiments: Vec<Experiment> = rows
            .iter()
            .map(experiment_from_row)
            .filter(|e| match (lifecycle, e) {
                (Lifecycle::All, _) => true,
                (Lifecycle::ActiveOnly, Ok(e)) => e.deleted_at.is_none(),
                (Lifecycle::DeletedOnly, Ok(e)) => e.deleted_at.is_some(),
                (_, Err(_)) => true,
            })
            .collect::<Result<_>>()?;
        let tags = sqlx::query("SELECT experiment_id, key, value FROM experiment_tags ORDER BY key").fetch_all(&self.pool).await?;
        let mut by_id: HashMap<String, Vec<Tag>> = HashMap::new();
        for row in &tags {
            by_id.entry(row.try_get::<i64, _>("experiment_id")?.to_string()).or_default().push(Tag { key: row.try_get("key")?, value: row.try_get("value")? });
        }
        for experiment in &mut experiments {
            experiment.tags = by_id.remove(&experiment.id).unwrap_or_default();
        }
        Ok(experiments)
    }

    /// By name, or by id when `key` is all digits and no experiment has that name; deleted
    /// ones too (their `deleted_at` says so), with tags.
    pub async fn experiment(&self, key: &str) -> Result<Experiment> {
        let by_name = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.name = $1");
        let row = sqlx::query(super::audited(by_name)).bind(key).fetch_optional(&self.pool).await?;
        let row = match (row, key.parse::<i64>()) {
            (Some(row), _) => Some(row),
            (None, Ok(id)) => {
                let by_id = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.id = $1");
                sqlx::query(super::audited(by_id)).bind(id).fetch_optional(&self.pool).await?
            }
            (None, Err(_)) => None,
        };
        let mut experiment = match row {
            Some(row) => experiment_from_row(&row)?,
            None => return Err(ApiError::not_found("experiment", key).into()),
        };
        let id: i64 = experiment.id.parse().unwrap_or_default();
        let tags = sqlx::query("SELECT key, value FROM experiment_tags WHERE experiment_id = $1 ORDER BY key").bind(id).fetch_all(&self.pool).await?;
        experiment.tags = tags.iter().map(|row| Ok(Tag { key: row.try_get("key")?, value: row.try_get("value")? })).collect::<Result<_>>()?;
        Ok(experiment)
    }

    /// The experiment with id `id` (not a name), in a write transaction.
    async fn experiment_in(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: &str) -> Result<(i64, bool)> {
        let Ok(number) = id.parse::<i64>() else { return Err(ApiError::not_found("experiment", id).into()) };
        let row = sqlx::query(
            "SELECT e.id, (SELECT d.deleted_at FROM deleted_experiments d WHERE d.experiment_id = e.id) AS deleted_at FROM experiments e WHERE e.id = $1",
        )
        .bind(number)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ApiError::not_found("experiment", id))?;
        Ok((number, row.try_get::<Option<i64>, _>("deleted_at")?.is_some()))
    }

    /// Renames experiment `id` (its runs keep it: they point at the id).
    pub async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<()> {
        limits::name("new_name", new_name)?;
        let mut w = self.write().await?;
        let (number, _) = Self::experiment_in(&mut w.tx, id).await?;
        let taken = sqlx::query("SELECT id FROM experiments WHERE name = $1 AND id <> $2").bind(new_name).bind(number).fetch_optional(&mut *w.tx).await?;
        if taken.is_some() {
            return Err(ApiError::already_exists("experiment", new_name).into());
        }
        sqlx::query("UPDATE experiments SET name = $1 WHERE id = $2").bind(new_name).bind(number).execute(&mut *w.tx).await?;
        w.commit().await
    }

    /// Moves experiment `id` and its active runs to the trash, as MLflow does; the default
    /// experiment stays.
    pub async fn delete_experiment(&self, id: &str) -> Result<()> {
        let mut w = self.write().await?;
        let (number, deleted) = Self::experiment_in(&mut w.tx, id).await?;
        if number == 0 {
            return Err(ApiError::invalid("experiment_id", "the default experiment (0) cannot be deleted").into());
        }
        if deleted {
            return Ok(());
        }
        let now = super::now_millis();
        sqlx::query("INSERT INTO deleted_experiments (experiment_id, deleted_at) VALUES ($1, $2)").bind(number).bind(now).execute(&mut *w.tx).await?;
        let runs = sqlx::query("SELECT id FROM runs WHERE experiment_id = $1 AND id NOT IN (SELECT run_id FROM deleted_runs)")
            .bind(number)
            .fetch_all(&mut *w.tx)
            .await?;
        for row in &runs {
            let run_id: String = row.try_get("id")?;
            sqlx::query("INSERT INTO deleted_runs (run_id, deleted_at) VALUES ($1, $2)").bind(&run_id).bind(now).execute(&mut *w.tx).await?;
            touch(&mut w.tx, &run_id).await?;
        }
        w.commit().await
    }

    /// Brings experiment `id` back, with the runs its deletion took along (not those deleted
    /// before it).
    pub async fn restore_experiment(&self, id: &str) -> Result<()> {
        let mut w = self.write().await?;
        let (number, deleted) = Self::experiment_in(&mut w.tx, id).await?;
        if !deleted {
            return Ok(());
        }
        let at: i64 = sqlx::query("SELECT deleted_at FROM deleted_experiments WHERE experiment_id = $1")
            .bind(number)
            .fetch_one(&mut *w.tx)
            .await?
            .try_get("deleted_at")?;
        let runs = sqlx::query("SELECT d.run_id FROM deleted_runs d JOIN runs r ON r.id = d.run_id WHERE r.experiment_id = $1 AND d.deleted_at = $2")
            .bind(number)
            .bind(at)
            .fetch_all(&mut *w.tx)
            .await?;
        for row in &runs {
            let run_id: String = row.try_get("run_id")?;
            sqlx::query("DELETE FROM deleted_runs WHERE run_id = $1").bind(&run_id).execute(&mut *w.tx).await?;
            touch(&mut w.tx, &run_id).await?;
        }
        sqlx::query("DELETE FROM deleted_experiments WHERE experiment_id = $1").bind(number).execute(&mut *w.tx).await?;
        w.commit().await
    }

    /// Sets (`Some`) or removes (`None`) tag `key` of experiment `id`.
    pub async fn set_experiment_tag(&self, id: &str, key: &str, value: Option<&str>) -> Result<()> {
        limits::key("key", key)?;
        if value.is_some_and(|v| v.chars().count() > limits::MAX_TAG_VALUE_LEN) {
            return Err(ApiError::invalid("value", format!("longer than {} characters", limits::MAX_TAG_VALUE_LEN)).into());
        }
        let mut w = self.write().await?;
        let (number, deleted) = Self::experiment_in(&mut w.tx, id).await?;
        if deleted {
            return Err(not_active("experiment", id).into());
        }
        match value {
            Some(value) => {
                sqlx::query("INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value")
                    .bind(number)
                    .bind(key)
                    .bind(value)
                    .execute(&mut *w.tx)
                    .await?;
            }
            None => {
                let gone = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2").bind(number).bind(key).execute(&mut *w.tx).await?;
                if gone.rows_affected() == 0 {
                    return Err(ApiError::not_found("experiment tag", key).into());
                }
            }
        }
        w.commit().await
    }

    /// Moves run `id` to the trash (`deleted = true`) or brings it back.
    pub async fn set_run_deleted(&self, id: &str, deleted: bool) -> Result<()> {
        let mut w = self.write().await?;
        let run = run_in(&mut w.tx, id).await?;
        if !deleted && run.deleted_at.is_some() {
            let (_, experiment_deleted) = Self::experiment_in(&mut w.tx, &run.experiment_id).await?;
            if experiment_deleted {
                return Err(not_active("experiment", &run.experiment_id).into());
            }
        }
        match (deleted, run.deleted_at.is_some()) {
            (true, false) => {
                sqlx::query("INSERT INTO deleted_runs (run_id, deleted_at) VALUES ($1, $2)").bind(id).bind(super::now_millis()).execute(&mut *w.tx).await?;
            }
            (false, true) => {
                sqlx::query("DELETE FROM deleted_runs WHERE run_id = $1").bind(id).execute(&mut *w.tx).await?;
            }
            _ => return Ok(()),
        }
        touch(&mut w.tx, id).await?;
        w.commit().await
    }

    /// Creates a run, and its experiment when no experiment has that name yet.
    pub async fn create_run(&self, request: &CreateRun) -> Result<Run> {
        limits::name("experiment", &request.experiment)?;
        if let Some(name) = &request.name {
            limits::name("name", name)?;
        }
        let tags = LogBatch { tags: request.tags.clone(), ..Default::default() };
        limits::batch(&tags)?;
        let mut w = self.write().await?;
        let experiment_id: i64 = match sqlx::query("SELECT id FROM experiments WHERE name = $1").bind(&request.experiment).fetch_optional(&mut *w.tx).await? {
            Some(row) => row.try_get("id")?,
            None => insert_experiment(&mut w.tx, &request.experiment, super::now_millis()).await?,
        };
        if sqlx::query("SELECT experiment_id FROM deleted_experiments WHERE experiment_id = $1").bind(experiment_id).fetch_optional(&mut *w.tx).await?.is_some()
        {
            return Err(ApiError::invalid(
                "experiment",
                format!("experiment '{}' is deleted; restore it, or start the run in another experiment", request.experiment),
            )
            .into());
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let run = Run {
            name: request.name.clone().unwrap_or_else(|| format!("run-{}", &id[..8])),
            id,
            experiment_id: experiment_id.to_string(),
            status: RunStatus::Running,
            source: request.source,
            start_time: request.start_time.unwrap_or_else(super::now_millis),
            end_time: None,
            deleted_at: None,
        };
        sqlx::query("INSERT INTO runs (id, experiment_id, name, status, source, start_time) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&run.id)
            .bind(experiment_id)
            .bind(&run.name)
            .bind(run.status.as_str())
            .bind(run.source.as_str())
            .bind(run.start_time)
            .execute(&mut *w.tx)
            .await?;
        write_tags(&mut w.tx, &run.id, &request.tags).await?;
        touch(&mut w.tx, &run.id).await?;
        w.commit().await?;
        Ok(run)
    }

    pub async fn run(&self, id: &str) -> Result<RunView> {
        let row = sqlx::query(super::audited(format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("run", id))?;
        let run = run_from_row(&row)?;
        Ok(self.views(vec![run]).await?.remove(0))
    }

    pub async fn update_run(&self, id: &str, update: &UpdateRun) -> Result<Run> {
        if let Some(name) = &update.name {
            limits::name("name", name)?;
        }
        let mut w = self.write().await?;
        let mut run = run_in(&mut w.tx, id).await?;
        if run.deleted_at.is_some() {
            return Err(not_active("run", id).into());
        }
        if let Some(status) = update.status {
            run.status = status;
            if status.is_terminal() && run.end_time.is_none() {
                run.end_time = Some(update.end_time.unwrap_or_else(super::now_millis));
            }
        }
        if let Some(end_time) = update.end_time {
            run.end_time = Some(end_time);
        }
        if let Some(name) = &update.name {
            run.name = name.clone();
        }
        sqlx::query("UPDATE runs SET status = $1, end_time = $2, name = $3 WHERE id = $4")
            .bind(run.status.as_str())
            .bind(run.end_time)
            .bind(&run.name)
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        touch(&mut w.tx, id).await?;
        w.commit().await?;
        Ok(run)
    }

    /// Params (write-once), metric points (appended) and tags (last write wins), all or
    /// nothing. A finished run still takes them (evaluation metrics come after training, as
    /// on MLflow); a deleted one takes none.
    pub async fn log_batch(&self, run_id: &str, batch: &LogBatch) -> Result<()> {
        limits::batch(batch)?;
        let mut w = self.write().await?;
        require_active(&mut w.tx, run_id).await?;
        write_params(&mut w.tx, run_id, &batch.params).await?;
        write_metrics(&mut w.tx, self.backend, run_id, &batch.metrics).await?;
        write_tags(&mut w.tx, run_id, &batch.tags).await?;
        touch(&mut w.tx, run_id).await?;
        w.commit().await?;
        Ok(())
    }

    pub async fn metric_history(&self, run_id: &str, key: &str) -> Result<MetricHistory> {
        self.require_run(run_id).await?;
        let rows = sqlx::query("SELECT step, timestamp, value FROM metrics WHERE run_id = $1 AND key = $2 ORDER BY step, timestamp, seq")
            .bind(run_id)
            .bind(key)
            .fetch_all(&self.pool)
            .await?;
        let points = rows
            .iter()
            .map(|row| Ok(Metric { key: key.to_owned(), value: row.try_get("value")?, timestamp: row.try_get("timestamp")?, step: row.try_get("step")? }))
            .collect::<Result<_>>()?;
        Ok(MetricHistory { key: key.to_owned(), points })
    }

    /// Attaches stored bytes (already uploaded, see [`Store::record_artifact`]) to a run.
    pub async fn attach_artifact(&self, run_id: &str, attach: &AttachArtifact) -> Result<RunArtifact> {
        limits::artifact_path("path", &attach.path)?;
        limits::sha256("sha256", &attach.sha256)?;
        let mut w = self.write().await?;
        require_active(&mut w.tx, run_id).await?;
        let size: i64 = sqlx::query("SELECT size FROM artifacts WHERE sha256 = $1")
            .bind(&attach.sha256)
            .fetch_optional(&mut *w.tx)
            .await?
            .ok_or_else(|| ApiError::invalid("sha256", format!("no artifact with sha256 {}; upload the bytes first", attach.sha256)))?
            .try_get("size")?;
        sqlx::query(
            "INSERT INTO run_artifacts (run_id, path, sha256, media_type) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256, media_type = excluded.media_type",
        )
        .bind(run_id)
        .bind(&attach.path)
        .bind(&attach.sha256)
        .bind(&attach.media_type)
        .execute(&mut *w.tx)
        .await?;
        touch(&mut w.tx, run_id).await?;
        w.commit().await?;
        Ok(RunArtifact { path: attach.path.clone(), sha256: attach.sha256.clone(), size: size as u64, media_type: attach.media_type.clone() })
    }

    /// Notes that the artifact store now holds `sha256` (idempotent).
    pub async fn record_artifact(&self, sha256: &str, size: u64) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("INSERT INTO artifacts (sha256, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING")
            .bind(sha256)
            .bind(size as i64)
            .bind(super::now_millis())
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub async fn artifact_size(&self, sha256: &str) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT size FROM artifacts WHERE sha256 = $1").bind(sha256).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<i64, _>("size")? as u64),
            None => None,
        })
    }

    /// Removes tag `key` of run `run_id`.
    pub async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let mut w = self.write().await?;
        require_active(&mut w.tx, run_id).await?;
        let gone = sqlx::query("DELETE FROM tags WHERE run_id = $1 AND key = $2").bind(run_id).bind(key).execute(&mut *w.tx).await?;
        if gone.rows_affected() == 0 {
            return Err(ApiError::not_found("tag", key).into());
        }
        touch(&mut w.tx, run_id).await?;
        w.commit().await
    }

    async fn require_run(&self, run_id: &str) -> Result<()> {
        if super::exists(&self.pool, "SELECT id FROM runs WHERE id = $1", run_id).await? { Ok(()) } else { Err(ApiError::not_found("run", run_id).into()) }
    }

    /// Params, latest metrics, tags and artifacts of `runs`, in one query per kind.
    pub(super) async fn views(&self, runs: Vec<Run>) -> Result<Vec<RunView>> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        let list = placeholders(self.backend, 1, ids.len());
        let mut params: HashMap<String, Vec<Param>> = HashMap::new();
        let mut metrics: HashMap<String, Vec<Metric>> = HashMap::new();
        let mut tags: HashMap<String, Vec<Tag>> = HashMap::new();
        let mut artifacts: HashMap<String, Vec<RunArtifact>> = HashMap::new();
        let mut models: HashMap<String, Vec<ModelRef>> = HashMap::new();
        for row in bind_all(sqlx::query(super::audited(format!("SELECT run_id, key, value FROM params WHERE run_id IN ({list}) ORDER BY key"))), &ids)
            .fetch_all(&self.pool)
            .await?
        {
            params.entry(row.try_get("run_id")?).or_default().push(Param { key: row.try_get("key")?, value: row.try_get("value")? });
        }
        for row in bind_all(
            sqlx::query(super::audited(format!("SELECT run_id, key, step, timestamp, value FROM latest_metrics WHERE run_id IN ({list}) ORDER BY key"))),
            &ids,
        )
        .fetch_all(&self.pool)
        .await?
        {
            metrics.entry(row.try_get("run_id")?).or_default().push(Metric {
                key: row.try_get("key")?,
                value: row.try_get("value")?,
                timestamp: row.try_get("timestamp")?,
                step: row.try_get("step")?,
            });
        }
        for row in bind_all(sqlx::query(super::audited(format!("SELECT run_id, key, value FROM tags WHERE run_id IN ({list}) ORDER BY key"))), &ids)
            .fetch_all(&self.pool)
            .await?
        {
            tags.entry(row.try_get("run_id")?).or_default().push(Tag { key: row.try_get("key")?, value: row.try_get("value")? });
        }
        for row in bind_all(
            sqlx::query(super::audited(format!(
                "SELECT ra.run_id, ra.path, ra.sha256, ra.media_type, a.size FROM run_artifacts ra \
                 JOIN artifacts a ON a.sha256 = ra.sha256 WHERE ra.run_id IN ({list}) ORDER BY ra.path"
            ))),
            &ids,
        )
        .fetch_all(&self.pool)
        .await?
        {
            artifacts.entry(row.try_get("run_id")?).or_default().push(RunArtifact {
                path: row.try_get("path")?,
                sha256: row.try_get("sha256")?,
                size: row.try_get::<i64, _>("size")? as u64,
                media_type: row.try_get("media_type")?,
            });
        }
        for row in bind_all(
            sqlx::query(super::audited(format!("SELECT run_id, name, version FROM model_versions WHERE run_id IN ({list}) ORDER BY name, version"))),
            &ids,
        )
        .fetch_all(&self.pool)
        .await?
        {
            models.entry(row.try_get("run_id")?).or_default().push(ModelRef { name: row.try_get("name")?, version: row.try_get("version")? });
        }
        Ok(runs
            .into_iter()
            .map(|run| RunView {
                models: models.remove(&run.id).unwrap_or_default(),
                params: params.remove(&run.id).unwrap_or_default(),
                metrics: metrics.remove(&run.id).unwrap_or_default(),
                tags: tags.remove(&run.id).unwrap_or_default(),
                artifacts: artifacts.remove(&run.id).unwrap_or_default(),
                run,
            })
            .collect())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn bind_all<'q>(mut query: AnyQuery<'q>, values: &[&str]) -> AnyQuery<'q> {
    for value in values {
        query = query.bind(value.to_string());
    }
    query
}

/// Notes that `run_id` changed now (and was created now, if it has no clock yet): see the
/// `run_clock` table. Part of the write's transaction, so the change and its time land together.
/// Run `id`, read in a write transaction.
async fn run_in(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: &str) -> Result<Run> {
    let row = sqlx::query(super::audited(format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.id = $1")))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ApiError::not_found("run", id))?;
    run_from_row(&row)
}

/// Run `run_id` exists and is not deleted, in a write transaction: every write to a run
/// checks this first.
pub(super) async fn require_active(tx: &mut sqlx::Transaction<'static, sqlx::Any>, run_id: &str) -> Result<()> {
    if run_in(tx, run_id).await?.deleted_at.is_some() {
        return Err(not_active("run", run_id).into());
    }
    Ok(())
}

pub(super) async fn touch(tx: &mut sqlx::Transaction<'static, sqlx::Any>, run_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO run_clock (run_id, created_at, changed_at) VALUES ($1, $2, $2) ON CONFLICT (run_id) DO UPDATE SET changed_at = excluded.changed_at",
    )
    .bind(run_id)
    .bind(super::now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts an experiment; returns its id.
async fn insert_experiment(tx: &mut sqlx::Transaction<'static, sqlx::Any>, name: &str, created_at: i64) -> Result<i64> {
    let row = sqlx::query("INSERT INTO experiments (name, created_at) VALUES ($1, $2) RETURNING id").bind(name).bind(created_at).fetch_one(&mut **tx).await?;
    Ok(row.try_get::<i64, _>("id")?)
}

async fn write_params(tx: &mut sqlx::Transaction<'static, sqlx::Any>, run_id: &str, params: &[Param]) -> Result<()> {
    for (i, param) in params.iter().enumerate() {
        let inserted = sqlx::query("INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO NOTHING")
            .bind(run_id)
            .bind(&param.key)
            .bind(&param.value)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            let existing: String = sqlx::query("SELECT value FROM params WHERE run_id = $1 AND key = $2")
                .bind(run_id)
                .bind(&param.key)
                .fetch_one(&mut **tx)
                .await?
                .try_get("value")?;
            if existing != param.value {
                return Err(ApiError::invalid(
                    format!("params[{i}].value"),
                    format!("param '{}' was logged as '{existing}'; params are write-once, '{}' is refused", param.key, param.value),
                )
                .into());
            }
        }
    }
    Ok(())
}

/// Appends the points in chunks of multi-row inserts, then moves each series' latest point.
async fn write_metrics(tx: &mut sqlx::Transaction<'static, sqlx::Any>, backend: super::Backend, run_id: &str, metrics: &[Metric]) -> Result<()> {
    const CHUNK: usize = 200;
    for chunk in metrics.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("({})", placeholders(backend, 1 + i * 5, 5))).collect();
        let sql = format!("INSERT INTO metrics (run_id, key, step, timestamp, value) VALUES {}", values.join(", "));
        let mut query = sqlx::query(super::audited(sql));
        for metric in chunk {
            query = query.bind(run_id.to_owned()).bind(&metric.key).bind(metric.step).bind(metric.timestamp).bind(metric.value);
        }
        query.execute(&mut **tx).await?;
    }
    super::history::fold_batch(tx, backend, run_id, metrics).await?;
    // One upsert per series: the batch's own latest point per key.
    let mut latest: HashMap<&str, &Metric> = HashMap::new();
    for metric in metrics {
        let slot = latest.entry(&metric.key).or_insert(metric);
        if (metric.step, metric.timestamp) >= (slot.step, slot.timestamp) {
            *slot = metric;
        }
    }
    for metric in latest.values() {
        sqlx::query(
            "INSERT INTO latest_metrics (run_id, key, step, timestamp, value) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, value = excluded.value \
             WHERE excluded.step > latest_metrics.step \
                OR (excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)",
        )
        .bind(run_id)
        .bind(&metric.key)
        .bind(metric.step)
        .bind(metric.timestamp)
        .bind(metric.value)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn write_tags(tx: &mut sqlx::Transaction<'static, sqlx::Any>, run_id: &str, tags: &[Tag]) -> Result<()> {
    for tag in tags {
        sqlx::query("INSERT INTO tags (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value")
            .bind(run_id)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
