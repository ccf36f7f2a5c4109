//! polars DataFrames as Parquet artifacts and dataset versions (feature `parquet`).
//!
//! The fingerprint of a DataFrame dataset is the sha256 of its Parquet bytes, which are the
//! artifact's bytes too, so registering the same frame twice finds the same version.

use std::io::Cursor;

use kiln_api::{Column, DatasetVersion, RunArtifact};
use polars::prelude::{DataFrame, ParquetReader, ParquetWriter, SerReader};

use crate::codec::Codec;
use crate::dataset::registration_for_bytes;
use crate::store::{Client, Error};
use crate::tracking::ActiveRun;

pub const MEDIA_TYPE: &str = "application/vnd.apache.parquet";

fn codec(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Codec { what: what.to_owned(), message: error.to_string() }
}

/// The frame as Parquet bytes.
pub fn to_parquet(frame: &DataFrame) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    let mut frame = frame.clone();
    ParquetWriter::new(&mut bytes).finish(&mut frame).map_err(|e| codec("writing Parquet", e))?;
    Ok(bytes)
}

pub fn from_parquet(bytes: Vec<u8>) -> Result<DataFrame, Error> {
    ParquetReader::new(Cursor::new(bytes)).finish().map_err(|e| codec("reading Parquet", e))
}

/// DataFrames as Parquet.
#[derive(Debug, Clone, Copy)]
pub struct Parquet;

impl Codec<DataFrame> for Parquet {
    const NAME: &'static str = "parquet";
    const MEDIA_TYPE: &'static str = MEDIA_TYPE;
    const EXTENSION: &'static str = "parquet";

    fn encode(&self, value: &DataFrame) -> Result<Vec<u8>, Error> {
        to_parquet(value)
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<DataFrame, Error> {
        from_parquet(bytes)
    }
}

/// Column names and polars dtypes.
pub fn schema_of(frame: &DataFrame) -> Vec<Column> {
    frame.schema().iter().map(|(name, dtype)| Column { name: name.to_string(), dtype: dtype.to_string() }).collect()
}

impl ActiveRun {
    /// Stores `frame` as a Parquet artifact of this run under `path`.
    pub fn log_dataframe(&mut self, path: &str, frame: &DataFrame) -> Result<RunArtifact, Error> {
        let bytes = to_parquet(frame)?;
        self.log_artifact_bytes(path, &bytes, MEDIA_TYPE)
    }

    /// Uploads `frame` as Parquet and registers it as a version of dataset `name` made by this
    /// run: fingerprint, size, rows and schema.
    pub fn log_dataset_frame(&mut self, name: &str, frame: &DataFrame) -> Result<DatasetVersion, Error> {
        let bytes = to_parquet(frame)?;
        let artifact = self.client().upload_bytes(&bytes)?;
        let mut registration = registration_for_bytes(&bytes, Some(frame.height() as u64), schema_of(frame));
        registration.artifact_sha256 = Some(artifact.sha256);
        self.log_dataset(name, registration)
    }
}

impl Client {
    /// The Parquet artifact `sha256` as a DataFrame.
    pub fn load_dataframe(&self, sha256: &str) -> Result<DataFrame, Error> {
        from_parquet(self.download(sha256)?)
    }

    /// The data of a dataset version registered from a DataFrame.
    pub fn load_dataset_frame(&self, version: &DatasetVersion) -> Result<DataFrame, Error> {
        let sha256 = version
            .artifact_sha256
            .as_deref()
            .ok_or_else(|| Error::Invalid(kiln_api::ApiError::invalid("artifact_sha256", format!("dataset version {} has no stored data", version.id))))?;
        self.load_dataframe(sha256)
    }
}
