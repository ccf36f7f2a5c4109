//! Values that cross component boundaries, through a real server: DataFrames as Parquet
//! (and as dataset versions), candle VarMaps and tensors as safetensors.
#![cfg(all(feature = "parquet", feature = "candle"))]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use kiln_server::{Server, ServerConfig};
use polars::prelude::*;

struct Store {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
    client: kiln::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = runtime.block_on(Server::start(ServerConfig::embedded(dir.path(), "127.0.0.1:0".parse().unwrap()))).unwrap();
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let client = kiln::Client::new(&server.url(), Some(token.trim().to_owned()));
    Store { runtime, server: Some(server), client, _dir: dir }
}

#[test]
fn a_dataframe_round_trips_as_parquet_and_as_a_dataset_version() {
    let store = store();
    let frame = df!("species" => ["setosa", "virginica", "setosa"], "petal" => [1.4, 5.5, 1.3]).unwrap();
    let mut run = kiln::ActiveRun::start(store.client.clone(), "values", Some("data")).unwrap();
    let artifact = run.log_dataframe("data/flowers.parquet", &frame).unwrap();
    assert_eq!(artifact.media_type, kiln::parquet::MEDIA_TYPE);
    assert!(store.client.load_dataframe(&artifact.sha256).unwrap().equals(&frame));
    let version = run.log_dataset_frame("flowers", &frame).unwrap();
    assert_eq!(version.rows, Some(3));
    let schema: Vec<(String, String)> = version.schema.iter().map(|c| (c.name.clone(), c.dtype.clone())).collect();
    assert_eq!(schema, [("species".to_owned(), "str".to_owned()), ("petal".to_owned(), "f64".to_owned())]);
    assert_eq!(run.log_dataset_frame("flowers", &frame).unwrap().id, version.id, "the same frame is the same version");
    assert!(store.client.load_dataset_frame(&version).unwrap().equals(&frame));
    let changed = df!("species" => ["setosa"], "petal" => [9.9]).unwrap();
    assert_ne!(run.log_dataset_frame("flowers", &changed).unwrap().fingerprint, version.fingerprint);
    run.end().unwrap();
}

#[test]
fn a_varmap_round_trips_as_safetensors() {
    let store = store();
    let device = Device::Cpu;
    let trained = VarMap::new();
    let vb = VarBuilder::from_varmap(&trained, DType::F32, &device);
    let layer = candle_nn::linear(3, 2, vb.pp("fc")).unwrap();
    let mut run = kiln::ActiveRun::start(store.client.clone(), "values", Some("train")).unwrap();
    let artifact = run.log_varmap("model/weights.safetensors", &trained).unwrap();
    // A fresh model of the same shape takes the trained weights.
    let mut fresh = VarMap::new();
    let fresh_layer = candle_nn::linear(3, 2, VarBuilder::from_varmap(&fresh, DType::F32, &device).pp("fc")).unwrap();
    store.client.load_varmap(&artifact.sha256, &mut fresh).unwrap();
    let input = Tensor::new(&[[1.0f32, 2.0, 3.0]], &device).unwrap();
    use candle_core::Module;
    assert_eq!(layer.forward(&input).unwrap().to_vec2::<f32>().unwrap(), fresh_layer.forward(&input).unwrap().to_vec2::<f32>().unwrap());
    let tensors = HashMap::from([("w".to_owned(), Tensor::new(&[1.5f32, -2.0], &device).unwrap())]);
    let stored = run.log_tensors("model/extra.safetensors", &tensors).unwrap();
    let loaded = store.client.load_tensors(&stored.sha256, &device).unwrap();
    assert_eq!(loaded["w"].to_vec1::<f32>().unwrap(), [1.5, -2.0]);
    run.end().unwrap();
}
