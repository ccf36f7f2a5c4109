//! Datasets logged through MLflow's `log_input`, as Kiln dataset versions read by the run:
//! they show in lineage and `kiln` like any other. MLflow describes a dataset by a short
//! digest, a source and a schema of its own; Kiln names a version by a sha256 fingerprint,
//! so the fingerprint is the sha256 of MLflow's (name, digest, source type, source), and
//! MLflow's fields are kept beside the version for its client to read back.

use kiln_api::{Column, DatasetVersion, Tag, limits};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Result, Store};

/// One `DatasetInput` of MLflow's `LogInputs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MlflowDatasetInput {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    /// MLflow's schema JSON (`{"mlflow_colspec": [{"name", "type"}, …]}`), as sent.
    pub schema: String,
    /// MLflow's profile JSON (`{"num_rows": …}`), as sent.
    pub profile: String,
    /// The input's tags (`mlflow.data.context`: training, evaluation…).
    pub tags: Vec<Tag>,
}

impl MlflowDatasetInput {
    fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for part in [&self.name, &self.digest, &self.source_type, &self.source] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hex::encode(hash.finalize())
    }

    /// Columns from MLflow's colspec schema; none when it is some other kind.
    fn columns(&self) -> Vec<Column> {
        let parsed: serde_json::Value = serde_json::from_str(&self.schema).unwrap_or_default();
        parsed["mlflow_colspec"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some(Column { name: c["name"].as_str()?.to_owned(), dtype: c["type"].as_str().unwrap_or("").to_owned() }))
            .collect()
    }

    fn rows(&self) -> Option<u64> {
        serde_json::from_str::<serde_json::Value>(&self.profile).ok()?["num_rows"].as_u64()
    }
}

/// A run's input as MLflow reads it back: the dataset version, MLflow's description of it
/// (`None` for a version Kiln registered itself), and the input's tags.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDatasetInput {
    pub version: DatasetVersion,
    pub mlflow: Option<MlflowDatasetInput>,
    pub tags: Vec<Tag>,
}

impl Store {
    /// Registers each dataset (the same description again is the same version) and records
    /// it as read by `run_id`, with its tags: all in one transaction.
    pub async fn log_mlflow_inputs(&self, run_id: &str, inputs: &[MlflowDatasetInput]) -> Result<()> {
        for (i, input) in inputs.iter().enumerate() {
            limits::name(&format!("datasets[{i}].dataset.name"), &input.name)?;
            limits::batch(&kiln_api::LogBatch { tags: input.tags.clone(), ..Default::default() })?;
        }
        let mut w = self.write().await?;
        super::runs::require_active(&mut w.tx, run_id).await?;
        let now = super::now_millis();
        for input in inputs {
            let fingerprint = input.fingerprint();
            let existing = sqlx::query("SELECT id FROM dataset_versions WHERE name = $1 AND fingerprint = $2")
                .bind(&input.name)
                .bind(&fingerprint)
                .fetch_optional(&mut *w.tx)
                .await?;
            let id: String = match existing {
                Some(row) => row.try_get("id")?,
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    sqlx::query("INSERT INTO datasets (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                        .bind(&input.name)
                        .bind(now)
                        .execute(&mut *w.tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO dataset_versions (id, name, fingerprint, size, rows, schema, artifact_sha256, run_id, created_at) \
                         VALUES ($1, $2, $3, 0, $4, $5, NULL, NULL, $6)",
                    )
                    .bind(&id)
                    .bind(&input.name)
                    .bind(&fingerprint)
                    .bind(input.rows().map(|r| r as i64))
                    .bind(serde_json::to_string(&input.columns()).unwrap_or_else(|_| "[]".into()))
                    .bind(now)
                    .execute(&mut *w.tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO mlflow_dataset_sources (dataset_version_id, digest, source_type, source, mlflow_schema, profile) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&id)
                    .bind(&input.digest)
                    .bind(&input.source_type)
                    .bind(&input.source)
                    .bind(&input.schema)
                    .bind(&input.profile)
                    .execute(&mut *w.tx)
                    .await?;
                    id
                }
            };
            sqlx::query("INSERT INTO run_dataset_inputs (run_id, dataset_version_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(run_id)
                .bind(&id)
                .execute(&mut *w.tx)
                .await?;
            for tag in &input.tags {
                sqlx::query(
                    "INSERT INTO run_dataset_input_tags (run_id, dataset_version_id, key, value) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (run_id, dataset_version_id, key) DO UPDATE SET value = excluded.value",
                )
                .bind(run_id)
                .bind(&id)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *w.tx)
                .await?;
            }
        }
        super::runs::touch(&mut w.tx, run_id).await?;
        w.commit().await
    }

    /// The dataset versions run `run_id` read, with MLflow's descriptions and input tags.
    pub async fn run_dataset_inputs(&self, run_id: &str) -> Result<Vec<RunDatasetInput>> {
        let versions = self.datasets_read(run_id).await?;
        let mut inputs = Vec::with_capacity(versions.len());
        for version in versions {
            let source = sqlx::query("SELECT digest, source_type, source, mlflow_schema, profile FROM mlflow_dataset_sources WHERE dataset_version_id = $1")
                .bind(&version.id)
                .fetch_optional(&self.pool)
                .await?;
            let mlflow = match source {
                Some(row) => Some(MlflowDatasetInput {
                    name: version.name.clone(),
                    digest: row.try_get("digest")?,
                    source_type: row.try_get("source_type")?,
                    source: row.try_get("source")?,
                    schema: row.try_get("mlflow_schema")?,
                    profile: row.try_get("profile")?,
                    tags: Vec::new(),
                }),
                None => None,
            };
            let tags = sqlx::query("SELECT key, value FROM run_dataset_input_tags WHERE run_id = $1 AND dataset_version_id = $2 ORDER BY key")
                .bind(run_id)
                .bind(&version.id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| Ok(Tag { key: row.try_get("key")?, value: row.try_get("value")? }))
                .collect::<Result<_>>()?;
            inputs.push(RunDatasetInput { version, mlflow, tags });
        }
        Ok(inputs)
    }
}
