//! Values that cross component boundaries, through a real `kiln server` (the binary in
//! `KILN_BIN`, on port 0): DataFrames as Parquet (and as dataset versions), candle VarMaps
//! and tensors as safetensors. Each codec is its own feature, tested in its own build:
//! `cargo xtask test` builds each as the notebooks' components build it, so the polars and
//! candle compiled here are the ones `kiln componentize` reuses.
#![cfg(any(feature = "parquet", feature = "candle"))]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Store {
    server: Child,
    client: kiln::Client,
    dir: PathBuf,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh embedded store from the `kiln` binary (the SDK does not link the server).
fn store(name: &str) -> Store {
    let binary = std::env::var_os("KILN_BIN").expect("KILN_BIN names the `kiln` binary these tests start (`cargo xtask test` sets it)");
    let dir = std::env::temp_dir().join(format!("kiln-values-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = Command::new(&binary)
        .args(["server", "--listen", "127.0.0.1:0", "--workers", "1", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.to_string_lossy()));
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("kiln server listening on ").unwrap_or_else(|| panic!("kiln server said {line:?}")).to_owned();
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    Store { server, client: kiln::Client::new(&url, Some(token.trim().to_owned())), dir }
}

#[cfg(feature = "parquet")]
#[test]
fn a_dataframe_round_trips_as_parquet_and_as_a_dataset_version() {
    use polars::prelude::*;
    let store = store("frame");
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

#[cfg(feature = "candle")]
#[test]
fn a_varmap_round_trips_as_safetensors() {
    use std::collections::HashMap;

    use candle_core::{DType, Device, Module, Tensor};
    use candle_nn::{VarBuilder, VarMap};
    let store = store("varmap");
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
    assert_eq!(layer.forward(&input).unwrap().to_vec2::<f32>().unwrap(), fresh_layer.forward(&input).unwrap().to_vec2::<f32>().unwrap());
    let tensors = HashMap::from([("w".to_owned(), Tensor::new(&[1.5f32, -2.0], &device).unwrap())]);
    let stored = run.log_tensors("model/extra.safetensors", &tensors).unwrap();
    let loaded = store.client.load_tensors(&stored.sha256, &device).unwrap();
    assert_eq!(loaded["w"].to_vec1::<f32>().unwrap(), [1.5, -2.0]);
    run.end().unwrap();
}
