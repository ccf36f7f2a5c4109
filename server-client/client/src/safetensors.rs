//! candle tensors and `VarMap`s as safetensors artifacts (feature `candle`).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use kiln_api::RunArtifact;

use crate::codec::Codec;
use crate::store::{Client, Error};
use crate::tracking::ActiveRun;

pub const MEDIA_TYPE: &str = "application/vnd.safetensors";

fn codec(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Codec { what: what.to_owned(), message: error.to_string() }
}

/// A scratch file for candle's path-based save and load, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Scratch(std::env::temp_dir().join(format!("kiln-{}-{n}.safetensors", std::process::id())))
    }

    fn read(&self) -> Result<Vec<u8>, Error> {
        std::fs::read(&self.0).map_err(|source| Error::Io { what: format!("reading {}", self.0.display()), source })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Named tensors as safetensors bytes.
pub fn tensors_to_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>, Error> {
    let scratch = Scratch::new();
    candle_core::safetensors::save(tensors, &scratch.0).map_err(|e| codec("writing safetensors", e))?;
    scratch.read()
}

/// The safetensors bytes as named tensors on the CPU.
pub fn tensors_from_bytes(bytes: &[u8]) -> Result<HashMap<String, Tensor>, Error> {
    candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| codec("reading safetensors", e))
}

/// Every variable of `varmap` as safetensors bytes.
pub fn varmap_to_bytes(varmap: &VarMap) -> Result<Vec<u8>, Error> {
    let scratch = Scratch::new();
    varmap.save(&scratch.0).map_err(|e| codec("writing the VarMap", e))?;
    scratch.read()
}

/// A `VarMap` holding the tensors in `bytes` as its variables, as training left it: a model
/// built on it with `VarBuilder::from_varmap` finds its weights by name.
pub fn varmap_from_bytes(bytes: &[u8]) -> Result<VarMap, Error> {
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().map_err(|_| codec("loading the VarMap", "its lock is poisoned"))?;
        for (name, tensor) in tensors_from_bytes(bytes)? {
            let var = candle_core::Var::from_tensor(&tensor).map_err(|e| codec("loading the VarMap", e))?;
            data.insert(name, var);
        }
    }
    Ok(varmap)
}

/// Tensors and `VarMap`s as safetensors: a `Tensor` is stored under the name `tensor`.
#[derive(Debug, Clone, Copy)]
pub struct Safetensors;

impl Codec<VarMap> for Safetensors {
    const NAME: &'static str = "safetensors";
    const MEDIA_TYPE: &'static str = MEDIA_TYPE;
    const EXTENSION: &'static str = "safetensors";

    fn encode(&self, value: &VarMap) -> Result<Vec<u8>, Error> {
        varmap_to_bytes(value)
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<VarMap, Error> {
        varmap_from_bytes(&bytes)
    }
}

impl Codec<Tensor> for Safetensors {
    const NAME: &'static str = "safetensors";
    const MEDIA_TYPE: &'static str = MEDIA_TYPE;
    const EXTENSION: &'static str = "safetensors";

    fn encode(&self, value: &Tensor) -> Result<Vec<u8>, Error> {
        tensors_to_bytes(&HashMap::from([("tensor".to_owned(), value.clone())]))
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<Tensor, Error> {
        tensors_from_bytes(&bytes)?.remove("tensor").ok_or_else(|| codec("reading a tensor", "the safetensors hold no tensor named `tensor`"))
    }
}

impl ActiveRun {
    /// Stores every variable of `varmap` (a model's weights) under `path`.
    pub fn log_varmap(&mut self, path: &str, varmap: &VarMap) -> Result<RunArtifact, Error> {
        let bytes = varmap_to_bytes(varmap)?;
        self.log_artifact_bytes(path, &bytes, MEDIA_TYPE)
    }

    /// Stores named tensors under `path`.
    pub fn log_tensors(&mut self, path: &str, tensors: &HashMap<String, Tensor>) -> Result<RunArtifact, Error> {
        let bytes = tensors_to_bytes(tensors)?;
        self.log_artifact_bytes(path, &bytes, MEDIA_TYPE)
    }
}

impl Client {
    /// Loads the safetensors artifact `sha256` into `varmap`, whose variables (same names and
    /// shapes) must already exist, as after building the model with a `VarBuilder`.
    pub fn load_varmap(&self, sha256: &str, varmap: &mut VarMap) -> Result<(), Error> {
        let scratch = Scratch::new();
        std::fs::write(&scratch.0, self.download(sha256)?).map_err(|source| Error::Io { what: format!("writing {}", scratch.0.display()), source })?;
        varmap.load(&scratch.0).map_err(|e| codec("loading the VarMap", e))
    }

    /// The safetensors artifact `sha256` as named tensors on `device`.
    pub fn load_tensors(&self, sha256: &str, device: &Device) -> Result<HashMap<String, Tensor>, Error> {
        candle_core::safetensors::load_buffer(&self.download(sha256)?, device).map_err(|e| codec("reading safetensors", e))
    }
}
