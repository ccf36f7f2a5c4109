//! Artifact bytes, content-addressed by sha256: `ROOT/sha256/ab/abcdef…`.
//!
//! An upload is streamed to a temporary file while it is hashed, synced, then renamed into
//! place, so a reader never sees half an artifact and a crash leaves at most a stray temp file.
//! The same bytes uploaded twice are stored once.

use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use kiln_api::Artifact;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact storage at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("reading the upload: {0}")]
    Body(String),
    #[error("upload larger than {limit} bytes")]
    TooLarge { limit: u64 },
}

/// Where artifact bytes live.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io { path: path.to_owned(), source }
}

impl ArtifactStore {
    pub fn local(root: impl Into<PathBuf>) -> Result<ArtifactStore, ArtifactError> {
        let root = root.into();
        for dir in [root.join("sha256"), root.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        Ok(ArtifactStore { root })
    }

    pub fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join("sha256").join(&sha256[..2]).join(sha256)
    }

    /// Streams `body` in, returning its digest and size once it is durably stored.
    pub async fn put<S, B, E>(&self, mut body: S, limit: u64) -> Result<Artifact, ArtifactError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().simple().to_string());
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let written: Result<(), ArtifactError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| ArtifactError::Body(e.to_string()))?;
                let chunk = chunk.as_ref();
                size += chunk.len() as u64;
                if size > limit {
                    return Err(ArtifactError::TooLarge { limit });
                }
                hasher.update(chunk);
                file.write_all(chunk).await.map_err(io(&tmp))?;
            }
            file.sync_all().await.map_err(io(&tmp))?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(error) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(error);
        }
        let sha256 = hex::encode(hasher.finalize());
        let dest = self.path_of(&sha256);
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            let _ = tokio::fs::remove_file(&tmp).await;
        } else {
            let parent = dest.parent().unwrap_or(&self.root);
            tokio::fs::create_dir_all(parent).await.map_err(io(parent))?;
            tokio::fs::rename(&tmp, &dest).await.map_err(io(&dest))?;
            // The rename is durable once the directory entry is.
            if let Ok(dir) = tokio::fs::File::open(parent).await {
                let _ = dir.sync_all().await;
            }
        }
        Ok(Artifact { sha256, size })
    }

    /// The stored bytes of `sha256`, or `None`.
    pub async fn open(&self, sha256: &str) -> Result<Option<tokio::fs::File>, ArtifactError> {
        let path = self.path_of(sha256);
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Some(file)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ArtifactError::Io { path, source: error }),
        }
    }
}
