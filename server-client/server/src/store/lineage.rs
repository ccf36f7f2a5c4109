//! Datasets, code packages, what runs read, and the lineage query that ties a model version
//! back to them.

use kiln_api::{ApiError, CodePackage, Column, Dataset, DatasetVersion, Lineage, RegisterCodePackage, RegisterDatasetVersion, Role, RunInputs, limits};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, exists, now_millis};

const DATASET_COLUMNS: &str = "d.id, d.name, d.fingerprint, d.size, d.rows, d.schema, d.artifact_sha256, d.run_id, d.created_at";
const PACKAGE_COLUMNS: &str = "c.id, c.handle, c.role, c.image, c.digest, c.notebook_sha256, c.cell_sha256, c.cargo_lock_sha256, c.git_commit, c.created_at";

fn dataset_version_from_row(row: &AnyRow) -> Result<DatasetVersion> {
    let schema: String = row.try_get("schema")?;
    Ok(DatasetVersion {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        fingerprint: row.try_get("fingerprint")?,
        size: row.try_get::<i64, _>("size")? as u64,
        rows: row.try_get::<Option<i64>, _>("rows")?.map(|r| r as u64),
        schema: serde_json::from_str::<Vec<Column>>(&schema).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        artifact_sha256: row.try_get("artifact_sha256")?,
        run_id: row.try_get("run_id")?,
        created_at: row.try_get("created_at")?,
    })
}

fn code_package_from_row(row: &AnyRow) -> Result<CodePackage> {
    let role: String = row.try_get("role")?;
    let cells: String = row.try_get("cell_sha256")?;
    Ok(CodePackage {
        id: row.try_get("id")?,
        handle: row.try_get("handle")?,
        role: Role::parse(&role).ok_or_else(|| sqlx::Error::Decode(format!("role '{role}'").into()))?,
        image: row.try_get("image")?,
        digest: row.try_get("digest")?,
        notebook_sha256: row.try_get("notebook_sha256")?,
        cell_sha256: serde_json::from_str(&cells).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        cargo_lock_sha256: row.try_get("cargo_lock_sha256")?,
        git_commit: row.try_get("git_commit")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Registers a version of dataset `name` (created if new). The same fingerprint again
    /// returns the version already registered.
    pub async fn register_dataset_version(&self, name: &str, request: &RegisterDatasetVersion) -> Result<DatasetVersion> {
        limits::name("name", name)?;
        limits::sha256("fingerprint", &request.fingerprint)?;
        if let Some(sha) = &request.artifact_sha256 {
            limits::sha256("artifact_sha256", sha)?;
        }
        let mut w = self.write().await?;
        let existing = sqlx::query(super::audited(format!("SELECT {DATASET_COLUMNS} FROM dataset_versions d WHERE d.name = $1 AND d.fingerprint = $2")))
            .bind(name)
            .bind(&request.fingerprint)
            .fetch_optional(&mut *w.tx)
            .await?;
        if let Some(row) = existing {
            return dataset_version_from_row(&row);
        }
        if let Some(run_id) = &request.run_id
            && !exists(&mut *w.tx, "SELECT id FROM runs WHERE id = $1", run_id).await?
        {
            return Err(ApiError::invalid("run_id", format!("run '{run_id}' not found")).into());
        }
        if let Some(sha) = &request.artifact_sha256
            && !exists(&mut *w.tx, "SELECT sha256 FROM artifacts WHERE sha256 = $1", sha).await?
        {
            return Err(ApiError::invalid("artifact_sha256", format!("no artifact with sha256 {sha}; upload the bytes first")).into());
        }
        let now = now_millis();
        sqlx::query("INSERT INTO datasets (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING").bind(name).bind(now).execute(&mut *w.tx).await?;
        let version = DatasetVersion {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: name.to_owned(),
            fingerprint: request.fingerprint.clone(),
            size: request.size,
            rows: request.rows,
            schema: request.schema.clone(),
            artifact_sha256: request.artifact_sha256.clone(),
            run_id: request.run_id.clone(),
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO dataset_versions (id, name, fingerprint, size, rows, schema, artifact_sha256, run_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&version.id)
        .bind(name)
        .bind(&version.fingerprint)
        .bind(version.size as i64)
        .bind(version.rows.map(|r| r as i64))
        .bind(serde_json::to_string(&version.schema).unwrap_or_else(|_| "[]".into()))
        .bind(version.artifact_sha256.clone())
        .bind(version.run_id.clone())
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(version)
    }

    pub async fn datasets(&self) -> Result<Vec<Dataset>> {
        sqlx::query("SELECT d.name, d.created_at, COUNT(v.id) AS versions FROM datasets d LEFT JOIN dataset_versions v ON v.name = d.name GROUP BY d.name, d.created_at ORDER BY d.name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok(Dataset { name: row.try_get("name")?, created_at: row.try_get("created_at")?, versions: row.try_get::<i64, _>("versions")? as u64 }))
            .collect()
    }

    /// Versions of `name`, newest first.
    pub async fn dataset_versions(&self, name: &str) -> Result<Vec<DatasetVersion>> {
        if sqlx::query("SELECT name FROM datasets WHERE name = $1").bind(name).fetch_optional(&self.pool).await?.is_none() {
            return Err(ApiError::not_found("dataset", name).into());
        }
        sqlx::query(super::audited(format!("SELECT {DATASET_COLUMNS} FROM dataset_versions d WHERE d.name = $1 ORDER BY d.created_at DESC, d.id")))
            .bind(name)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(dataset_version_from_row)
            .collect()
    }

    pub async fn register_code_package(&self, request: &RegisterCodePackage) -> Result<CodePackage> {
        validate(request, &|field| field.to_owned())?;
        let mut packages = self.insert(std::slice::from_ref(request)).await?;
        Ok(packages.remove(0))
    }

    /// All of `requests` in one transaction, or none of them: a notebook's components are
    /// registered together, so a failure (bad input in one, the store going away) never leaves
    /// some of a notebook's components registered and the others not. Bad input names its
    /// place (`packages[1].digest`).
    pub async fn register_code_packages(&self, requests: &[RegisterCodePackage]) -> Result<Vec<CodePackage>> {
        if requests.is_empty() {
            return Err(ApiError::invalid("packages", "must not be empty").into());
        }
        for (i, request) in requests.iter().enumerate() {
            validate(request, &|field| format!("packages[{i}].{field}"))?;
        }
        self.insert(requests).await
    }

    /// Valid requests, in one transaction; the same (handle, role, digest) again is the first.
    async fn insert(&self, requests: &[RegisterCodePackage]) -> Result<Vec<CodePackage>> {
        let mut w = self.write().await?;
        let mut registered = Vec::with_capacity(requests.len());
        for request in requests {
            let existing =
                sqlx::query(super::audited(format!("SELECT {PACKAGE_COLUMNS} FROM code_packages c WHERE c.handle = $1 AND c.role = $2 AND c.digest = $3")))
                    .bind(&request.handle)
                    .bind(request.role.as_str())
                    .bind(&request.digest)
                    .fetch_optional(&mut *w.tx)
                    .await?;
            if let Some(row) = existing {
                registered.push(code_package_from_row(&row)?);
                continue;
            }
            let package = CodePackage {
                id: uuid::Uuid::new_v4().simple().to_string(),
                handle: request.handle.clone(),
                role: request.role,
                image: request.image.clone(),
                digest: request.digest.clone(),
                notebook_sha256: request.notebook_sha256.clone(),
                cell_sha256: request.cell_sha256.clone(),
                cargo_lock_sha256: request.cargo_lock_sha256.clone(),
                git_commit: request.git_commit.clone(),
                created_at: now_millis(),
            };
            sqlx::query(
                "INSERT INTO code_packages (id, handle, role, image, digest, notebook_sha256, cell_sha256, cargo_lock_sha256, git_commit, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&package.id)
            .bind(&package.handle)
            .bind(package.role.as_str())
            .bind(&package.image)
            .bind(&package.digest)
            .bind(&package.notebook_sha256)
            .bind(serde_json::to_string(&package.cell_sha256).unwrap_or_else(|_| "[]".into()))
            .bind(&package.cargo_lock_sha256)
            .bind(package.git_commit.clone())
            .bind(package.created_at)
            .execute(&mut *w.tx)
            .await?;
            registered.push(package);
        }
        w.commit().await?;
        Ok(registered)
    }

    /// Code packages of `handle` (every handle when empty), newest first.
    pub async fn code_packages(&self, handle: &str) -> Result<Vec<CodePackage>> {
        sqlx::query(super::audited(format!("SELECT {PACKAGE_COLUMNS} FROM code_packages c WHERE ($1 = '' OR c.handle = $1) ORDER BY c.created_at DESC, c.id")))
            .bind(handle.to_owned())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(code_package_from_row)
            .collect()
    }

    /// Records that run `run_id` read these dataset versions and ran these code packages.
    pub async fn add_run_inputs(&self, run_id: &str, inputs: &RunInputs) -> Result<()> {
        let mut w = self.write().await?;
        if !exists(&mut *w.tx, "SELECT id FROM runs WHERE id = $1", run_id).await? {
            return Err(ApiError::not_found("run", run_id).into());
        }
        // (input list, field, what it names, existence check, link insert)
        let kinds = [
            (
                &inputs.dataset_versions,
                "dataset_versions",
                "dataset version",
                "SELECT id FROM dataset_versions WHERE id = $1",
                "INSERT INTO run_dataset_inputs (run_id, dataset_version_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ),
            (
                &inputs.code_packages,
                "code_packages",
                "code package",
                "SELECT id FROM code_packages WHERE id = $1",
                "INSERT INTO run_code_packages (run_id, code_package_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ),
        ];
        for (ids, field, what, check, link) in kinds {
            for (i, id) in ids.iter().enumerate() {
                if !exists(&mut *w.tx, check, id).await? {
                    return Err(ApiError::invalid(format!("{field}[{i}]"), format!("no {what} '{id}'")).into());
                }
                sqlx::query(link).bind(run_id).bind(id).execute(&mut *w.tx).await?;
            }
        }
        w.commit().await
    }

    /// Model version → the run that made it → what that run read, produced and ran.
    /// The dataset versions run `run_id` read.
    pub async fn datasets_read(&self, run_id: &str) -> Result<Vec<DatasetVersion>> {
        sqlx::query(super::audited(format!(
            "SELECT {DATASET_COLUMNS} FROM dataset_versions d JOIN run_dataset_inputs i ON i.dataset_version_id = d.id WHERE i.run_id = $1 ORDER BY d.name, d.created_at"
        )))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(dataset_version_from_row)
        .collect()
    }

    pub async fn lineage(&self, name: &str, version: i64) -> Result<Lineage> {
        let model_version = self.model_version(name, version).await?;
        // A model is deployed under its name (the handle).
        let deployments: Vec<_> = self.deployments().await?.into_iter().filter(|d| d.handle == name && d.versions().contains(&version)).collect();
        let Some(run_id) = model_version.run_id.clone() else {
            return Ok(Lineage { model_version, run: None, datasets_read: vec![], datasets_produced: vec![], code_packages: vec![], deployments });
        };
        let run = self.run(&run_id).await?;
        let datasets_read = self.datasets_read(&run_id).await?;
        let datasets_produced =
            sqlx::query(super::audited(format!("SELECT {DATASET_COLUMNS} FROM dataset_versions d WHERE d.run_id = $1 ORDER BY d.name, d.created_at")))
                .bind(&run_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(dataset_version_from_row)
                .collect::<Result<_>>()?;
        let code_packages = sqlx::query(super::audited(format!(
            "SELECT {PACKAGE_COLUMNS} FROM code_packages c JOIN run_code_packages r ON r.code_package_id = c.id WHERE r.run_id = $1 ORDER BY c.role, c.handle"
        )))
        .bind(&run_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(code_package_from_row)
        .collect::<Result<_>>()?;
        Ok(Lineage { model_version, run: Some(run), datasets_read, datasets_produced, code_packages, deployments })
    }
}

/// A code package's fields, each named by `place` when it is bad.
fn validate(request: &RegisterCodePackage, place: &dyn Fn(&str) -> String) -> Result<(), ApiError> {
    limits::name(&place("handle"), &request.handle)?;
    limits::sha256(&place("notebook_sha256"), &request.notebook_sha256)?;
    limits::sha256(&place("cargo_lock_sha256"), &request.cargo_lock_sha256)?;
    for (i, cell) in request.cell_sha256.iter().enumerate() {
        limits::sha256(&place(&format!("cell_sha256[{i}]")), cell)?;
    }
    match request.digest.strip_prefix("sha256:") {
        Some(hex) => limits::sha256(&place("digest"), hex)?,
        None => return Err(ApiError::invalid(place("digest"), format!("'{}' is not an OCI digest (sha256:…)", request.digest))),
    }
    if request.image.trim().is_empty() {
        return Err(ApiError::invalid(place("image"), "must not be empty"));
    }
    Ok(())
}
