//! MLflow 3's logged models, which `mlflow.<flavor>.log_model` creates before it uploads a
//! model's files and finalizes after. Kept as MLflow keeps them; a deleted one is gone from
//! every read.

use kiln_api::{ApiError, LoggedModel, Param, Tag, limits};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};

/// The statuses MLflow's client sets.
pub const STATUSES: [&str; 3] = ["LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"];

const COLUMNS: &str = "id, experiment_id, name, model_type, source_run_id, status, status_message, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<LoggedModel> {
    Ok(LoggedModel {
        id: row.try_get("id")?,
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        name: row.try_get("name")?,
        model_type: row.try_get("model_type")?,
        source_run_id: row.try_get("source_run_id")?,
        status: row.try_get("status")?,
        status_message: row.try_get("status_message")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        tags: Vec::new(),
        params: Vec::new(),
    })
}

/// Whether a run used a logged model or produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// What `POST /logged-models` asks for.
#[derive(Debug, Default)]
pub struct NewLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: String,
    pub source_run_id: Option<String>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

fn check_entries(params: &[Param], tags: &[Tag]) -> Result<()> {
    let batch = kiln_api::LogBatch { params: params.to_vec(), tags: tags.to_vec(), metrics: Vec::new() };
    limits::batch(&batch)?;
    Ok(())
}

impl Store {
    pub async fn create_logged_model(&self, request: &NewLoggedModel) -> Result<LoggedModel> {
        check_entries(&request.params, &request.tags)?;
        let experiment: i64 = request.experiment_id.parse().map_err(|_| ApiError::not_found("experiment", &request.experiment_id))?;
        let id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let name = request.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| format!("model-{}", &id[2..10]));
        limits::name("name", &name)?;
        let mut w = self.write().await?;
        if sqlx::query("SELECT id FROM experiments WHERE id = $1").bind(experiment).fetch_optional(&mut *w.tx).await?.is_none() {
            return Err(ApiError::not_found("experiment", &request.experiment_id).into());
        }
        if let Some(run) = &request.source_run_id
            && !super::exists(&mut *w.tx, "SELECT id FROM runs WHERE id = $1", run).await?
        {
            return Err(ApiError::not_found("run", run).into());
        }
        let now = super::now_millis();
        sqlx::query(
            "INSERT INTO logged_models (id, experiment_id, name, model_type, source_run_id, status, status_message, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, '', $7, $7)",
        )
        .bind(&id)
        .bind(experiment)
        .bind(&name)
        .bind(&request.model_type)
        .bind(request.source_run_id.clone())
        .bind(STATUSES[0])
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        write_entries(&mut w.tx, "logged_model_params", &id, request.params.iter().map(|p| (p.key.as_str(), p.value.as_str()))).await?;
        write_entries(&mut w.tx, "logged_model_tags", &id, request.tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))).await?;
        w.commit().await?;
        self.logged_model(&id).await
    }

    /// The model with its params and tags; a deleted one is not found.
    pub async fn logged_model(&self, id: &str) -> Result<LoggedModel> {
        let row = sqlx::query(super::audited(format!("SELECT {COLUMNS} FROM logged_models WHERE id = $1 AND deleted_at IS NULL")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("logged model", id))?;
        let mut model = from_row(&row)?;
        self.fill(std::slice::from_mut(&mut model)).await?;
        Ok(model)
    }

    async fn fill(&self, models: &mut [LoggedModel]) -> Result<()> {
        for model in models {
            let params =
                sqlx::query("SELECT key, value FROM logged_model_params WHERE model_id = $1 ORDER BY key").bind(&model.id).fetch_all(&self.pool).await?;
            model.params = params.iter().map(|r| Ok(Param { key: r.try_get("key")?, value: r.try_get("value")? })).collect::<Result<_>>()?;
            let tags = sqlx::query("SELECT key, value FROM logged_model_tags WHERE model_id = $1 ORDER BY key").bind(&model.id).fetch_all(&self.pool).await?;
            model.tags = tags.iter().map(|r| Ok(Tag { key: r.try_get("key")?, value: r.try_get("value")? })).collect::<Result<_>>()?;
        }
        Ok(())
    }

    /// Every live model of `experiments` (all experiments when empty), newest first.
    pub async fn logged_models(&self, experiments: &[String]) -> Result<Vec<LoggedModel>> {
        let rows = sqlx::query(super::audited(format!("SELECT {COLUMNS} FROM logged_models WHERE deleted_at IS NULL ORDER BY created_at DESC, id")))
            .fetch_all(&self.pool)
            .await?;
        let mut models: Vec<LoggedModel> = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        if !experiments.is_empty() {
            models.retain(|m| experiments.contains(&m.experiment_id));
        }
        self.fill(&mut models).await?;
        Ok(models)
    }

    /// Sets the status (`LOGGED_MODEL_READY` once its files are uploaded).
    pub async fn finalize_logged_model(&self, id: &str, status: &str) -> Result<LoggedModel> {
        if !STATUSES.contains(&status) {
            return Err(ApiError::invalid("status", format!("'{status}' is not one of {}", STATUSES.join(", "))).into());
        }
        let mut w = self.write().await?;
        let done = sqlx::query("UPDATE logged_models SET status = $1, updated_at = $2 WHERE id = $3 AND deleted_at IS NULL")
            .bind(status)
            .bind(super::now_millis())
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found("logged model", id).into());
        }
        w.commit().await?;
        self.logged_model(id).await
    }

    /// Tags set (last write wins) or, with `delete`, removed; params added (write-once).
    pub async fn update_logged_model(&self, id: &str, tags: &[Tag], params: &[Param], delete_tag: Option<&str>) -> Result<()> {
        check_entries(params, tags)?;
        let mut w = self.write().await?;
        if !super::exists(&mut *w.tx, "SELECT id FROM logged_models WHERE id = $1 AND deleted_at IS NULL", id).await? {
            return Err(ApiError::not_found("logged model", id).into());
        }
        for param in params {
            let existing = sqlx::query("SELECT value FROM logged_model_params WHERE model_id = $1 AND key = $2")
                .bind(id)
                .bind(&param.key)
                .fetch_optional(&mut *w.tx)
                .await?;
            if let Some(row) = existing {
                let value: String = row.try_get("value")?;
                if value != param.value {
                    return Err(ApiError::invalid(format!("params.{}", param.key), format!("already logged as '{value}'; params are write-once")).into());
                }
            }
        }
        write_entries(&mut w.tx, "logged_model_params", id, params.iter().map(|p| (p.key.as_str(), p.value.as_str()))).await?;
        write_entries(&mut w.tx, "logged_model_tags", id, tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))).await?;
        if let Some(key) = delete_tag {
            let gone = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2").bind(id).bind(key).execute(&mut *w.tx).await?;
            if gone.rows_affected() == 0 {
                return Err(ApiError::not_found("logged model tag", key).into());
            }
        }
        sqlx::query("UPDATE logged_models SET updated_at = $1 WHERE id = $2").bind(super::now_millis()).bind(id).execute(&mut *w.tx).await?;
        w.commit().await
    }

    /// Records logged models run `run_id` produced (`output`, with the step it was logged
    /// at) or used (`input`): `(model id, step)` pairs, all or none.
    pub async fn link_logged_models(&self, run_id: &str, direction: Direction, models: &[(String, i64)]) -> Result<()> {
        let mut w = self.write().await?;
        super::runs::require_active(&mut w.tx, run_id).await?;
        for (i, (model, step)) in models.iter().enumerate() {
            if !super::exists(&mut *w.tx, "SELECT id FROM logged_models WHERE id = $1 AND deleted_at IS NULL", model).await? {
                return Err(ApiError::new(kiln_api::ErrorCode::ResourceDoesNotExist, format!("models[{i}].model_id: logged model '{model}' not found")).into());
            }
            sqlx::query(
                "INSERT INTO run_logged_models (run_id, model_id, direction, step) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_id, model_id, direction) DO UPDATE SET step = excluded.step",
            )
            .bind(run_id)
            .bind(model)
            .bind(direction.as_str())
            .bind(*step)
            .execute(&mut *w.tx)
            .await?;
        }
        super::runs::touch(&mut w.tx, run_id).await?;
        w.commit().await
    }

    /// The logged models run `run_id` used or produced: `(model id, step)` in logging order.
    pub async fn run_logged_models(&self, run_id: &str, direction: Direction) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT model_id, step FROM run_logged_models WHERE run_id = $1 AND direction = $2 ORDER BY step, model_id")
            .bind(run_id)
            .bind(direction.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.try_get("model_id")?, row.try_get("step")?))).collect()
    }

    pub async fn delete_logged_model(&self, id: &str) -> Result<()> {
        let mut w = self.write().await?;
        let done = sqlx::query("UPDATE logged_models SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(super::now_millis())
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found("logged model", id).into());
        }
        w.commit().await
    }
}

/// Upserts `(key, value)` rows of a logged model's params or tags (`table` is one of the two
/// fixed names).
async fn write_entries<'a>(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &'static str,
    id: &str,
    entries: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<()> {
    let sql = format!("INSERT INTO {table} (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value");
    for (key, value) in entries {
        sqlx::query(super::audited(sql.clone())).bind(id).bind(key).bind(value).execute(&mut **tx).await?;
    }
    Ok(())
}
