//! OCI images without a daemon: reproducible layers (sorted paths, fixed modes, owner 0,
//! mtime `SOURCE_DATE_EPOCH` or 0, gzip without a timestamp), a config without a creation
//! time, and an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) with each
//! image named by `org.opencontainers.image.ref.name`. The same inputs give the same bytes,
//! so the same digests.
//!
//! Each component image has two layers: the runtime (the shared libraries the binary needs,
//! as `ldd` resolves them, a passwd entry for the non-root user, `/tmp`), the same for all
//! three images of a notebook and so stored once; and the binary.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hashes::sha256_hex;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The user components run as (distroless's `nonroot`).
pub const USER: u32 = 65532;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("finding the shared libraries of {binary}: {message}")]
    Libraries { binary: String, message: String },
    #[error("{path} is not an OCI image layout: {message}")]
    Layout { path: String, message: String },
}

/// A file or directory to put in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path in the image.
    pub path: String,
    pub mode: u32,
    /// `None` for a directory.
    pub data: Option<Vec<u8>>,
}

impl Entry {
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry { path: path.to_owned(), mode, data: None }
    }

    pub fn file(path: &str, mode: u32, data: Vec<u8>) -> Entry {
        Entry { path: path.to_owned(), mode, data: Some(data) }
    }
}

/// A gzipped tar layer and its two digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub gzip: Vec<u8>,
    /// sha256 of the uncompressed tar (the config's `diff_ids`).
    pub diff_id: String,
    /// sha256 of the gzip (the manifest's descriptor).
    pub digest: String,
    pub tar_size: u64,
    /// What the layer holds, for the config's history.
    pub comment: String,
}

/// Timestamps in layers and config: `SOURCE_DATE_EPOCH` when set, else the epoch.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Gzipped layers kept by the digest of their tar, so a layer whose content did not change
/// is not compressed again: gzip at level 6 is most of what packaging costs (3.4 of the 3.5 s
/// of a 60 MB binary with polars in it), and the same tar always gives the same gzip here, so
/// a kept one is the one compression would make. A kept gzip is used only when it unpacks to
/// that very tar; anything else (missing, cut short, another tar) is made again.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
}

impl LayerCache {
    pub fn new(dir: impl Into<PathBuf>) -> LayerCache {
        LayerCache { dir: dir.into() }
    }

    fn path(&self, diff_id: &str) -> PathBuf {
        self.dir.join(diff_id.trim_start_matches("sha256:"))
    }

    /// How many layers are kept: a few notebooks' worth (three binaries and a runtime layer
    /// each); the least recently used go first.
    const KEEP: usize = 24;

    fn get(&self, diff_id: &str) -> Option<Vec<u8>> {
        let path = self.path(diff_id);
        let gzip = std::fs::read(&path).ok()?;
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzip.as_slice()), &mut tar).ok()?;
        if format!("sha256:{}", sha256_hex(&tar)) != diff_id {
            return None;
        }
        // Used now: the last to be pruned.
        let _ = std::fs::File::options().append(true).open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(gzip)
    }

    /// Keeps `gzip`, then prunes to [`LayerCache::KEEP`]; a cache that cannot be written
    /// only means compressing again next time.
    fn put(&self, diff_id: &str, gzip: &[u8]) {
        let path = self.path(diff_id);
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        let kept = std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::write(&partial, gzip)).and_then(|()| std::fs::rename(&partial, &path));
        if kept.is_err() {
            let _ = std::fs::remove_file(&partial);
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> =
            entries.flatten().filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path()))).collect();
        files.sort();
        let excess = files.len().saturating_sub(Self::KEEP);
        for (_, old) in files.into_iter().take(excess) {
            let _ = std::fs::remove_file(old);
        }
    }
}

/// A reproducible layer: entries sorted, parents added, owner 0:0, `mtime` on everything.
pub fn layer(entries: Vec<Entry>, mtime: u64, comment: &str) -> Result<Layer, ImageError> {
    layer_with(entries, mtime, comment, None)
}

/// [`layer`], taking the gzip from `cache` when it holds this tar's.
pub fn layer_with(mut entries: Vec<Entry>, mtime: u64, comment: &str, cache: Option<&LayerCache>) -> Result<Layer, ImageError> {
    // Every parent directory, once, before its children.
    let mut dirs: BTreeMap<String, u32> = BTreeMap::new();
    for entry in &entries {
        let mut parent = Path::new(&entry.path).parent();
        while let Some(p) = parent.filter(|p| p != &Path::new("/")) {
            dirs.entry(p.to_string_lossy().into_owned()).or_insert(0o755);
            parent = p.parent();
        }
    }
    for entry in &entries {
        if entry.data.is_none() {
            dirs.insert(entry.path.clone(), entry.mode);
        }
    }
    entries.retain(|e| e.data.is_some());
    entries.extend(dirs.into_iter().map(|(path, mode)| Entry::dir(&path, mode)));
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|a, b| a.path == b.path);

    let write_error = |source: std::io::Error| ImageError::Write { path: "a layer".into(), source };
    let mut builder = tar::Builder::new(Vec::new());
    for entry in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(entry.mode);
        let relative = entry.path.trim_start_matches('/');
        match &entry.data {
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, relative, data.as_slice()).map_err(write_error)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{relative}/"), std::io::empty()).map_err(write_error)?;
            }
        }
    }
    let tar = builder.into_inner().map_err(write_error)?;
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let gzip = match cache.and_then(|c| c.get(&diff_id)) {
        Some(gzip) => gzip,
        None => {
            let mut gz = flate2::GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), flate2::Compression::new(6));
            gz.write_all(&tar).map_err(write_error)?;
            let gzip = gz.finish().map_err(write_error)?;
            if let Some(cache) = cache {
                cache.put(&diff_id, &gzip);
            }
            gzip
        }
    };
    Ok(Layer { diff_id, digest: format!("sha256:{}", sha256_hex(&gzip)), tar_size: tar.len() as u64, gzip, comment: comment.to_owned() })
}

/// The shared libraries `binary` loads, with the dynamic loader, as `ldd` resolves them:
/// (path in the image, bytes). Empty for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
    let fail = |message: String| ImageError::Libraries { binary: binary.display().to_string(), message };
    let output = std::process::Command::new("ldd").arg(binary).output().map_err(|e| fail(format!("running ldd: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if text.contains("not a dynamic executable") || stderr.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        return Err(fail(format!("ldd failed: {}", stderr.trim())));
    }
    let mut libraries = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim().split(' ').next().unwrap_or(""),
            None => line.split(' ').next().unwrap_or(""),
        };
        if line.contains("not found") {
            return Err(fail(format!("a library is missing: {line}")));
        }
        if !path.starts_with('/') {
            continue; // linux-vdso.so.1: provided by the kernel
        }
        let bytes = std::fs::read(path).map_err(|source| ImageError::Read { path: path.to_owned(), source })?;
        libraries.push((path.to_owned(), bytes));
    }
    libraries.sort();
    Ok(libraries)
}

/// The runtime layer: libraries, a passwd entry for the non-root user, `/tmp`.
pub fn runtime_layer(libraries: &[(String, Vec<u8>)], mtime: u64, cache: Option<&LayerCache>) -> Result<Layer, ImageError> {
    let mut entries: Vec<Entry> = libraries.iter().map(|(path, bytes)| Entry::file(path, 0o755, bytes.clone())).collect();
    entries.push(Entry::file(
        "/etc/passwd",
        0o644,
        format!("root:x:0:0:root:/root:/sbin/nologin\nkiln:x:{USER}:{USER}:kiln:/tmp:/sbin/nologin\n").into_bytes(),
    ));
    entries.push(Entry::file("/etc/group", 0o644, format!("root:x:0:\nkiln:x:{USER}:\n").into_bytes()));
    entries.push(Entry::file("/etc/nsswitch.conf", 0o644, b"hosts: files dns\n".to_vec()));
    entries.push(Entry::dir("/tmp", 0o1777));
    entries.push(Entry::dir("/app", 0o755));
    layer_with(entries, mtime, "kiln componentize: runtime (shared libraries, passwd, /tmp)", cache)
}

/// The image config (what podman reads to run it). Labels and ports are sorted maps, so
/// the JSON is the same every time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub created: String,
    pub architecture: String,
    pub os: String,
    pub config: RunConfig,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    pub user: String,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub created: String,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// An image, ready to write or push: its blobs by digest and its manifest.
#[derive(Debug, Clone)]
pub struct Image {
    /// The name in the layout (`iris-infer`).
    pub name: String,
    pub config: Vec<u8>,
    pub layers: Vec<Layer>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

impl Image {
    /// Compressed size: what a pull downloads.
    pub fn size(&self) -> u64 {
        self.config.len() as u64 + self.layers.iter().map(|l| l.gzip.len() as u64).sum::<u64>()
    }

    /// Uncompressed size of the layers: what it takes on disk.
    pub fn unpacked_size(&self) -> u64 {
        self.layers.iter().map(|l| l.tar_size).sum()
    }

    pub fn config_digest(&self) -> String {
        format!("sha256:{}", sha256_hex(&self.config))
    }

    /// Every blob: config, then layers (digest, bytes, media type).
    pub fn blobs(&self) -> Vec<(String, &[u8], &'static str)> {
        std::iter::once((self.config_digest(), self.config.as_slice(), CONFIG_MEDIA_TYPE))
            .chain(self.layers.iter().map(|l| (l.digest.clone(), l.gzip.as_slice(), LAYER_MEDIA_TYPE)))
            .collect()
    }
}

/// What goes into an image besides its layers.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub exposed_ports: Vec<u16>,
    pub labels: BTreeMap<String, String>,
}

fn rfc3339(epoch: u64) -> String {
    // Days from the civil calendar (Howard Hinnant's algorithm), so no date crate is needed.
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Assembles config and manifest for `layers`.
pub fn image(spec: &Spec, layers: Vec<Layer>, mtime: u64) -> Image {
    let created = rfc3339(mtime);
    let config = Config {
        created: created.clone(),
        architecture: "amd64".into(),
        os: "linux".into(),
        config: RunConfig {
            user: format!("{USER}:{USER}"),
            env: spec.env.clone(),
            entrypoint: spec.entrypoint.clone(),
            working_dir: "/app".into(),
            exposed_ports: spec.exposed_ports.iter().map(|p| (format!("{p}/tcp"), serde_json::Map::new())).collect(),
            labels: spec.labels.clone(),
        },
        rootfs: RootFs { kind: "layers".into(), diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect() },
        history: layers.iter().map(|l| History { created: created.clone(), created_by: l.comment.clone() }).collect(),
    };
    let config = serde_json::to_vec(&config).expect("config serializes");
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: format!("sha256:{}", sha256_hex(&config)),
            size: config.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers: layers
            .iter()
            .map(|l| Descriptor { media_type: LAYER_MEDIA_TYPE.into(), digest: l.digest.clone(), size: l.gzip.len() as u64, annotations: BTreeMap::new() })
            .collect(),
    };
    let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    Image { name: spec.name.clone(), config, layers, manifest, manifest_digest }
}

/// An OCI image layout on disk.
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
        let error = |source| ImageError::Write { path: path.display().to_string(), source };
        if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64) && path.starts_with(self.root.join("blobs")) {
            return Ok(()); // content-addressed: same name, same bytes
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes).map_err(error)?;
        std::fs::rename(&partial, path).map_err(error)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    /// Adds `images` (replacing images of the same names) and rewrites `index.json`.
    pub fn add(&self, images: &[Image]) -> Result<(), ImageError> {
        self.write(&self.root.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        for image in images {
            for (digest, bytes, _) in image.blobs() {
                self.write(&self.blob_path(&digest), bytes)?;
            }
            self.write(&self.blob_path(&image.manifest_digest), &image.manifest)?;
        }
        let mut index = self.index().unwrap_or(Index { schema_version: 2, media_type: INDEX_MEDIA_TYPE.into(), manifests: Vec::new() });
        let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
        index.manifests.retain(|d| d.annotations.get(REF_NAME).is_none_or(|n| !names.contains(&n.as_str())));
        for image in images {
            index.manifests.push(Descriptor {
                media_type: MANIFEST_MEDIA_TYPE.into(),
                digest: image.manifest_digest.clone(),
                size: image.manifest.len() as u64,
                annotations: BTreeMap::from([(REF_NAME.to_owned(), image.name.clone())]),
            });
        }
        index.manifests.sort_by(|a, b| a.annotations.get(REF_NAME).cmp(&b.annotations.get(REF_NAME)));
        let bytes = serde_json::to_vec_pretty(&index).expect("index serializes");
        self.write(&self.root.join("index.json"), &bytes)
    }

    pub fn index(&self) -> Result<Index, ImageError> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(|source| ImageError::Read { path: path.display().to_string(), source })?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Layout { path: self.root.display().to_string(), message: format!("index.json: {e}") })
    }

    /// A blob's bytes.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(|source| ImageError::Read { path: path.display().to_string(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            name: "iris-infer".into(),
            entrypoint: vec!["/app/iris-infer".into()],
            env: vec!["PATH=/app".into()],
            exposed_ports: vec![8080],
            labels: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
        }
    }

    #[test]
    fn same_inputs_same_digests() {
        let files = || vec![Entry::file("/app/iris-infer", 0o755, b"\x7fELF binary".to_vec()), Entry::file("/etc/passwd", 0o644, b"root".to_vec())];
        let one = image(&spec(), vec![layer(files(), 0, "app").unwrap()], 0);
        let mut reversed = files();
        reversed.reverse();
        let two = image(&spec(), vec![layer(reversed, 0, "app").unwrap()], 0);
        assert_eq!(one.manifest_digest, two.manifest_digest);
        let later = image(&spec(), vec![layer(files(), 1_700_000_000, "app").unwrap()], 1_700_000_000);
        assert_ne!(one.manifest_digest, later.manifest_digest);
        let config: serde_json::Value = serde_json::from_slice(&later.config).unwrap();
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["config"]["Labels"], serde_json::json!({"a": "1", "b": "2"}));
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    }

    /// A kept gzip that unpacks to the layer's tar is used as it is (here one made at another
    /// level, so its digest shows which was used); one that does not is made again.
    #[test]
    fn a_layer_cache_gives_back_the_gzip_of_the_same_tar() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(dir.path().join("layers"));
        let entries = || vec![Entry::file("/app/x", 0o755, vec![7u8; 100_000])];
        let made = layer_with(entries(), 0, "x", Some(&cache)).unwrap();
        assert_eq!(made, layer(entries(), 0, "x").unwrap(), "the first time it is compressed as without a cache");
        assert_eq!(layer_with(entries(), 0, "x", Some(&cache)).unwrap(), made);

        let tar = {
            let mut tar = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(made.gzip.as_slice()), &mut tar).unwrap();
            tar
        };
        let mut fast = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::fast());
        fast.write_all(&tar).unwrap();
        let fast = fast.finish().unwrap();
        std::fs::write(cache.path(&made.diff_id), &fast).unwrap();
        let from_cache = layer_with(entries(), 0, "x", Some(&cache)).unwrap();
        assert_eq!((from_cache.gzip.as_slice(), from_cache.diff_id.as_str()), (fast.as_slice(), made.diff_id.as_str()));
        assert_eq!(from_cache.digest, format!("sha256:{}", sha256_hex(&fast)));

        std::fs::write(cache.path(&made.diff_id), &made.gzip[..made.gzip.len() / 2]).unwrap();
        assert_eq!(layer_with(entries(), 0, "x", Some(&cache)).unwrap(), made, "a gzip cut short is made again");
        let other = vec![Entry::file("/app/x", 0o755, vec![8u8; 10])];
        std::fs::copy(cache.path(&made.diff_id), cache.path(&layer(other.clone(), 0, "x").unwrap().diff_id)).unwrap();
        assert_eq!(layer_with(other.clone(), 0, "x", Some(&cache)).unwrap(), layer(other, 0, "x").unwrap(), "another tar's gzip is not used");
    }

    #[test]
    fn layers_hold_sorted_entries_with_parents_and_fixed_metadata() {
        let layer = layer(vec![Entry::file("/app/bin/x", 0o755, b"x".to_vec()), Entry::dir("/tmp", 0o1777)], 0, "t").unwrap();
        let tar = flate2::read::GzDecoder::new(layer.gzip.as_slice());
        let mut archive = tar::Archive::new(tar);
        let entries: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                format!("{} {:o} {}:{} {}", e.path().unwrap().display(), h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap())
            })
            .collect();
        assert_eq!(entries, ["app/ 755 0:0 0", "app/bin/ 755 0:0 0", "app/bin/x 755 0:0 0", "tmp/ 1777 0:0 0"]);
        assert_eq!(&layer.gzip[4..8], &[0, 0, 0, 0], "no gzip timestamp");
    }

    #[test]
    fn a_layout_names_images_and_replaces_them() {
        let dir = std::env::temp_dir().join(format!("kiln-layout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layout = Layout { root: dir.clone() };
        let a = image(&spec(), vec![layer(vec![Entry::file("/a", 0o644, b"a".to_vec())], 0, "a").unwrap()], 0);
        layout.add(std::slice::from_ref(&a)).unwrap();
        let b = image(&spec(), vec![layer(vec![Entry::file("/a", 0o644, b"b".to_vec())], 0, "a").unwrap()], 0);
        layout.add(std::slice::from_ref(&b)).unwrap();
        let index = layout.index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].digest, b.manifest_digest);
        assert_eq!(layout.blob(&b.manifest_digest).unwrap(), b.manifest);
        assert_eq!(std::fs::read_to_string(dir.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
