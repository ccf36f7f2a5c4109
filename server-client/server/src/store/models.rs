//! The model registry: registered models, their numbered versions, aliases and tags.

use std::collections::HashMap;

use kiln_api::{ApiError, CreateModel, CreateModelVersion, ModelAlias, ModelVersion, RegisteredModel, Tag, limits};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, Writer, now_millis};

const VERSION_COLUMNS: &str = "name, version, run_id, source, description, created_at, updated_at";

fn version_from_row(row: &AnyRow) -> Result<ModelVersion> {
    Ok(ModelVersion {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        run_id: row.try_get("run_id")?,
        source: row.try_get("source")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        aliases: Vec::new(),
        tags: Vec::new(),
        stage: None,
    })
}

fn check_tags(tags: &[Tag]) -> Result<()> {
    limits::batch(&kiln_api::LogBatch { tags: tags.to_vec(), ..Default::default() })?;
    Ok(())
}

async fn write_tags(w: &mut Writer<'_>, name: &str, version: i64, tags: &[Tag]) -> Result<()> {
    for tag in tags {
        sqlx::query(
            "INSERT INTO model_tags (name, version, key, value) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(version)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut *w.tx)
        .await?;
    }
    Ok(())
}

/// Version `version` of `name` exists, in a write transaction.
async fn require_version(w: &mut Writer<'_>, name: &str, version: i64) -> Result<()> {
    let found = sqlx::query("SELECT version FROM model_versions WHERE name = $1 AND version = $2").bind(name).bind(version).fetch_optional(&mut *w.tx).await?;
    match found {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("model version", format!("{name}/{version}")).into()),
    }
}

impl Store {
    pub async fn create_model(&self, request: &CreateModel) -> Result<RegisteredModel> {
        limits::name("name", &request.name)?;
        check_tags(&request.tags)?;
        let mut w = self.write().await?;
        if sqlx::query("SELECT name FROM registered_models WHERE name = $1").bind(&request.name).fetch_optional(&mut *w.tx).await?.is_some() {
            return Err(ApiError::already_exists("registered model", &request.name).into());
        }
        let now = now_millis();
        sqlx::query("INSERT INTO registered_models (name, description, created_at, updated_at) VALUES ($1, $2, $3, $3)")
            .bind(&request.name)
            .bind(&request.description)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        write_tags(&mut w, &request.name, 0, &request.tags).await?;
        w.commit().await?;
        self.model(&request.name).await
    }

    pub async fn models(&self) -> Result<Vec<RegisteredModel>> {
        let names: Vec<String> = sqlx::query("SELECT name FROM registered_models ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("name"))
            .collect::<Result<_, _>>()?;
        let mut models = Vec::with_capacity(names.len());
        for name in names {
            models.push(self.model(&name).await?);
        }
        Ok(models)
    }

    pub async fn model(&self, name: &str) -> Result<RegisteredModel> {
        let row = sqlx::query("SELECT name, description, created_at, updated_at FROM registered_models WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("registered model", name))?;
        let latest: Option<i64> =
            sqlx::query("SELECT MAX(version) AS latest FROM model_versions WHERE name = $1").bind(name).fetch_one(&self.pool).await?.try_get("latest")?;
        let aliases = sqlx::query("SELECT alias, version FROM model_aliases WHERE name = $1 ORDER BY alias")
            .bind(name)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok(ModelAlias { alias: row.try_get("alias")?, version: row.try_get("version")? }))
            .collect::<Result<_>>()?;
        Ok(RegisteredModel {
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            latest_version: latest,
            aliases,
            tags: self.model_tags(name, 0).await?,
        })
    }

    async fn model_tags(&self, name: &str, version: i64) -> Result<Vec<Tag>> {
        sqlx::query("SELECT key, value FROM model_tags WHERE name = $1 AND version = $2 ORDER BY key")
            .bind(name)
            .bind(version)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok(Tag { key: row.try_get("key")?, value: row.try_get("value")? }))
            .collect()
    }

    /// The next version of `name` (1 for the first), made from `request`.
    pub async fn create_model_version(&self, name: &str, request: &CreateModelVersion) -> Result<ModelVersion> {
        if request.source.trim().is_empty() {
            return Err(ApiError::invalid("source", "must name where the model values are").into());
        }
        check_tags(&request.tags)?;
        let mut w = self.write().await?;
        let now = now_millis();
        // Touching the model row first serializes concurrent version creation on PostgreSQL.
        let touched = sqlx::query("UPDATE registered_models SET updated_at = $1 WHERE name = $2").bind(now).bind(name).execute(&mut *w.tx).await?;
        if touched.rows_affected() == 0 {
            return Err(ApiError::not_found("registered model", name).into());
        }
        if let Some(run_id) = &request.run_id
            && !super::exists(&mut *w.tx, "SELECT id FROM runs WHERE id = $1", run_id).await?
        {
            return Err(ApiError::new(kiln_api::ErrorCode::ResourceDoesNotExist, format!("run_id: run '{run_id}' not found")).into());
        }
        let latest: Option<i64> =
            sqlx::query("SELECT MAX(version) AS latest FROM model_versions WHERE name = $1").bind(name).fetch_one(&mut *w.tx).await?.try_get("latest")?;
        let version = latest.unwrap_or(0) + 1;
        sqlx::query("INSERT INTO model_versions (name, version, run_id, source, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
            .bind(name)
            .bind(version)
            .bind(request.run_id.clone())
            .bind(&request.source)
            .bind(&request.description)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        write_tags(&mut w, name, version, &request.tags).await?;
        if let Some(run_id) = &request.run_id {
            super::runs::touch(&mut w.tx, run_id).await?;
        }
        w.commit().await?;
        self.model_version(name, version).await
    }

    pub async fn model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        let row = sqlx::query(super::audited(format!("SELECT {VERSION_COLUMNS} FROM model_versions WHERE name = $1 AND version = $2")))
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("model version", format!("{name}/{version}")))?;
        let mut found = version_from_row(&row)?;
        self.decorate(std::slice::from_mut(&mut found)).await?;
        Ok(found)
    }

    /// Versions of `name` (all models when `None`) or made by `run_id`, newest first.
    pub async fn model_versions(&self, name: Option<&str>, run_id: Option<&str>) -> Result<Vec<ModelVersion>> {
        let rows = sqlx::query(super::audited(format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions WHERE ($1 = '' OR name = $1) AND ($2 = '' OR run_id = $2) ORDER BY name, version DESC"
        )))
        .bind(name.unwrap_or("").to_owned())
        .bind(run_id.unwrap_or("").to_owned())
        .fetch_all(&self.pool)
        .await?;
        let mut versions = rows.iter().map(version_from_row).collect::<Result<Vec<_>>>()?;
        self.decorate(&mut versions).await?;
        Ok(versions)
    }

    /// Fills in aliases and tags.
    async fn decorate(&self, versions: &mut [ModelVersion]) -> Result<()> {
        let mut aliases: HashMap<(String, i64), Vec<String>> = HashMap::new();
        let mut stages: HashMap<(String, i64), String> = HashMap::new();
        let mut names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            for row in sqlx::query("SELECT alias, version FROM model_aliases WHERE name = $1 ORDER BY alias").bind(name).fetch_all(&self.pool).await? {
                aliases.entry((name.to_owned(), row.try_get("version")?)).or_default().push(row.try_get("alias")?);
            }
            for (version, stage) in self.model_stages(name).await? {
                stages.insert((name.to_owned(), version), stage);
            }
        }
        for version in versions.iter_mut() {
            version.aliases = aliases.remove(&(version.name.clone(), version.version)).unwrap_or_default();
            version.stage = stages.remove(&(version.name.clone(), version.version)).filter(|s| s != "None");
            version.tags = self.model_tags(&version.name, version.version).await?;
        }
        Ok(())
    }

    /// Points `alias` at `version` (moving it if it pointed elsewhere).
    pub async fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        limits::alias("alias", alias)?;
        let mut w = self.write().await?;
        require_version(&mut w, name, version).await?;
        sqlx::query("INSERT INTO model_aliases (name, alias, version) VALUES ($1, $2, $3) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version")
            .bind(name)
            .bind(alias)
            .bind(version)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("UPDATE registered_models SET updated_at = $1 WHERE name = $2").bind(now_millis()).bind(name).execute(&mut *w.tx).await?;
        w.commit().await
    }

    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let mut w = self.write().await?;
        let deleted = sqlx::query("DELETE FROM model_aliases WHERE name = $1 AND alias = $2").bind(name).bind(alias).execute(&mut *w.tx).await?;
        if deleted.rows_affected() == 0 {
            return Err(ApiError::not_found("alias", format!("{name}@{alias}")).into());
        }
        w.commit().await
    }

    pub async fn version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let version: i64 = sqlx::query("SELECT version FROM model_aliases WHERE name = $1 AND alias = $2")
            .bind(name)
            .bind(alias)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("alias", format!("{name}@{alias}")))?
            .try_get("version")?;
        self.model_version(name, version).await
    }

    /// A version's description.
    pub async fn update_model_version(&self, name: &str, version: i64, description: &str) -> Result<ModelVersion> {
        let mut w = self.write().await?;
        let done = sqlx::query("UPDATE model_versions SET description = $1, updated_at = $2 WHERE name = $3 AND version = $4")
            .bind(description)
            .bind(now_millis())
            .bind(name)
            .bind(version)
            .execute(&mut *w.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found("model version", format!("{name}/{version}")).into());
        }
        w.commit().await?;
        self.model_version(name, version).await
    }

    /// A registered model's description.
    pub async fn update_model(&self, name: &str, description: &str) -> Result<RegisteredModel> {
        let mut w = self.write().await?;
        let done = sqlx::query("UPDATE registered_models SET description = $1, updated_at = $2 WHERE name = $3")
            .bind(description)
            .bind(now_millis())
            .bind(name)
            .execute(&mut *w.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found("registered model", name).into());
        }
        w.commit().await?;
        self.model(name).await
    }

    /// Sets (`Some`) or removes (`None`) tag `key` of version `version` of `name`, or of the
    /// registered model itself when `version` is 0.
    pub async fn set_model_tag(&self, name: &str, version: i64, key: &str, value: Option<&str>) -> Result<()> {
        if let Some(value) = value {
            check_tags(&[Tag { key: key.to_owned(), value: value.to_owned() }])?;
        }
        let mut w = self.write().await?;
        if version == 0 {
            if !super::exists(&mut *w.tx, "SELECT name FROM registered_models WHERE name = $1", name).await? {
                return Err(ApiError::not_found("registered model", name).into());
            }
        } else {
            require_version(&mut w, name, version).await?;
        }
        match value {
            Some(value) => write_tags(&mut w, name, version, &[Tag { key: key.to_owned(), value: value.to_owned() }]).await?,
            None => {
                let gone = sqlx::query("DELETE FROM model_tags WHERE name = $1 AND version = $2 AND key = $3")
                    .bind(name)
                    .bind(version)
                    .bind(key)
                    .execute(&mut *w.tx)
                    .await?;
                if gone.rows_affected() == 0 {
                    return Err(ApiError::not_found("tag", key).into());
                }
            }
        }
        w.commit().await
    }

    /// Deletes a version with its aliases, tags and stage; refused while a deployment of the
    /// model serves it.
    pub async fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        if let Ok(deployment) = self.deployment(name).await
            && deployment.versions().contains(&version)
        {
            return Err(ApiError::new(
                kiln_api::ErrorCode::ResourceConflict,
                format!("version {version} of '{name}' is deployed (kiln deployments show {name}); deploy another version before deleting it"),
            )
            .into());
        }
        let mut w = self.write().await?;
        for table in ["model_aliases", "model_tags", "model_version_stages"] {
            let sql = format!("DELETE FROM {table} WHERE name = $1 AND version = $2");
            sqlx::query(super::audited(sql)).bind(name).bind(version).execute(&mut *w.tx).await?;
        }
        let gone = sqlx::query("DELETE FROM model_versions WHERE name = $1 AND version = $2").bind(name).bind(version).execute(&mut *w.tx).await?;
        if gone.rows_affected() == 0 {
            return Err(ApiError::not_found("model version", format!("{name}/{version}")).into());
        }
        w.commit().await
    }

    /// Each version's MLflow stage ("None" when none was set), for `name`.
    pub async fn model_stages(&self, name: &str) -> Result<HashMap<i64, String>> {
        let rows = sqlx::query("SELECT version, stage FROM model_version_stages WHERE name = $1").bind(name).fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok((row.try_get("version")?, row.try_get("stage")?))).collect()
    }

    /// Moves a version to an MLflow stage; with `archive_others`, the model's other versions
    /// in that stage move to `Archived`.
    pub async fn set_model_stage(&self, name: &str, version: i64, stage: &str, archive_others: bool) -> Result<()> {
        let stage = STAGES
            .iter()
            .find(|s| s.eq_ignore_ascii_case(stage))
            .ok_or_else(|| ApiError::invalid("stage", format!("'{stage}' is not one of {}", STAGES.join(", "))))?;
        let mut w = self.write().await?;
        require_version(&mut w, name, version).await?;
        if archive_others && !matches!(*stage, "None" | "Archived") {
            sqlx::query("UPDATE model_version_stages SET stage = 'Archived' WHERE name = $1 AND stage = $2 AND version <> $3")
                .bind(name)
                .bind(*stage)
                .bind(version)
                .execute(&mut *w.tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO model_version_stages (name, version, stage) VALUES ($1, $2, $3) ON CONFLICT (name, version) DO UPDATE SET stage = excluded.stage",
        )
        .bind(name)
        .bind(version)
        .bind(*stage)
        .execute(&mut *w.tx)
        .await?;
        sqlx::query("UPDATE model_versions SET updated_at = $1 WHERE name = $2 AND version = $3")
            .bind(now_millis())
            .bind(name)
            .bind(version)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }
}

/// MLflow's model version stages.
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];
