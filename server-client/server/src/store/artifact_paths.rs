//! Artifacts by path, for MLflow's artifacts proxy: a run's files (`run_artifacts`, which
//! Kiln's own views read too) and files outside any run (`path_artifacts`). The bytes are
//! content-addressed either way; a path names a digest.

use kiln_api::{ApiError, RunArtifact};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};

fn artifact_from_row(row: &AnyRow) -> Result<RunArtifact> {
    Ok(RunArtifact {
        path: row.try_get("path")?,
        sha256: row.try_get("sha256")?,
        size: row.try_get::<i64, _>("size")? as u64,
        media_type: row.try_get("media_type")?,
    })
}

/// `path` and everything under `path/` (everything when `path` is empty), as SQL on column
/// `a.path`, with `$n` bound to the path and `$n+1` to `path/`. `substr` rather than `LIKE`,
/// so `%` and `_` in a file name are only characters.
fn under(n: usize) -> String {
    let m = n + 1;
    format!("(${n} = '' OR a.path = ${n} OR substr(a.path, 1, length(${m})) = ${m})")
}

impl Store {
    /// Run `run_id`'s artifact at `path` and everything under `path/` (all of them when
    /// `path` is empty), ordered by path.
    pub async fn run_artifacts_under(&self, run_id: &str, path: &str) -> Result<Vec<RunArtifact>> {
        let sql = format!(
            "SELECT a.path, a.sha256, a.media_type, s.size FROM run_artifacts a JOIN artifacts s ON s.sha256 = a.sha256 \
             WHERE a.run_id = $1 AND {} ORDER BY a.path",
            under(2)
        );
        let rows = sqlx::query(super::audited(sql)).bind(run_id).bind(path).bind(format!("{path}/")).fetch_all(&self.pool).await?;
        rows.iter().map(artifact_from_row).collect()
    }

    /// Removes run `run_id`'s artifact at `path`, or everything under `path/`; how many went.
    pub async fn delete_run_artifacts(&self, run_id: &str, path: &str) -> Result<u64> {
        let mut w = self.write().await?;
        let sql = format!("DELETE FROM run_artifacts WHERE run_id = $1 AND path IN (SELECT a.path FROM run_artifacts a WHERE a.run_id = $1 AND {})", under(2));
        let gone = sqlx::query(super::audited(sql)).bind(run_id).bind(path).bind(format!("{path}/")).execute(&mut *w.tx).await?.rows_affected();
        if gone > 0 {
            super::runs::touch(&mut w.tx, run_id).await?;
        }
        w.commit().await?;
        Ok(gone)
    }

    /// Names stored bytes `path` (outside any run), replacing what it named before.
    pub async fn put_path_artifact(&self, path: &str, sha256: &str, media_type: &str) -> Result<()> {
        kiln_api::limits::artifact_path("path", path)?;
        let mut w = self.write().await?;
        if sqlx::query("SELECT sha256 FROM artifacts WHERE sha256 = $1").bind(sha256).fetch_optional(&mut *w.tx).await?.is_none() {
            return Err(ApiError::invalid("sha256", format!("no artifact with sha256 {sha256}; upload the bytes first")).into());
        }
        sqlx::query(
            "INSERT INTO path_artifacts (path, sha256, media_type) VALUES ($1, $2, $3) \
             ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, media_type = excluded.media_type",
        )
        .bind(path)
        .bind(sha256)
        .bind(media_type)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// The file at `path` and everything under `path/`, outside any run, ordered by path.
    pub async fn path_artifacts_under(&self, path: &str) -> Result<Vec<RunArtifact>> {
        let sql = format!(
            "SELECT a.path, a.sha256, a.media_type, s.size FROM path_artifacts a JOIN artifacts s ON s.sha256 = a.sha256 \
             WHERE {} ORDER BY a.path",
            under(1)
        );
        let rows = sqlx::query(super::audited(sql)).bind(path).bind(format!("{path}/")).fetch_all(&self.pool).await?;
        rows.iter().map(artifact_from_row).collect()
    }

    /// Removes the file at `path`, or everything under `path/`, outside any run.
    pub async fn delete_path_artifacts(&self, path: &str) -> Result<u64> {
        let mut w = self.write().await?;
        let sql = format!("DELETE FROM path_artifacts WHERE path IN (SELECT a.path FROM path_artifacts a WHERE {})", under(1));
        let gone = sqlx::query(super::audited(sql)).bind(path).bind(format!("{path}/")).execute(&mut *w.tx).await?.rows_affected();
        w.commit().await?;
        Ok(gone)
    }
}
