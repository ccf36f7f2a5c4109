//! Dataset fingerprints: what makes two dataset versions the same version.
//!
//! A directory or file set is described by a manifest of `path\tsize\tsha256` lines, sorted
//! by path; its fingerprint is the sha256 of that text. Renaming the directory keeps the
//! fingerprint; touching a file without changing it keeps it; changing a byte changes it.

use std::io::Read;
use std::path::{Path, PathBuf};

use kiln_api::{Column, RegisterDatasetVersion};
use sha2::{Digest, Sha256};

use crate::store::Error;

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the manifest's root, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The files of a dataset, with their digests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { what: format!("reading {}", path.display()), source }
}

/// sha256 (hex) of a reader's bytes, and how many there were.
pub fn sha256_of(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

impl Manifest {
    /// Every regular file under `root` (recursively; symlinks are not followed).
    pub fn of_dir(root: impl AsRef<Path>) -> Result<Manifest, Error> {
        let root = root.as_ref();
        let mut files = Vec::new();
        let mut pending = vec![PathBuf::from(root)];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let entry = entry.map_err(io(&dir))?;
                let kind = entry.file_type().map_err(io(&entry.path()))?;
                if kind.is_dir() {
                    pending.push(entry.path());
                } else if kind.is_file() {
                    files.push(entry.path());
                }
            }
        }
        let mut entries = Vec::with_capacity(files.len());
        for file in files {
            let relative = file.strip_prefix(root).unwrap_or(&file);
            let path = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            let (sha256, size) = sha256_of(std::fs::File::open(&file).map_err(io(&file))?).map_err(io(&file))?;
            entries.push(Entry { path, size, sha256 });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Manifest { entries })
    }

    /// The manifest text the fingerprint hashes.
    pub fn text(&self) -> String {
        self.entries.iter().map(|e| format!("{}\t{}\t{}\n", e.path, e.size, e.sha256)).collect()
    }

    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.text().as_bytes()))
    }

    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// A registration request for this manifest (add rows and schema when known).
    pub fn registration(&self) -> RegisterDatasetVersion {
        RegisterDatasetVersion { fingerprint: self.fingerprint(), size: self.size(), ..Default::default() }
    }
}

/// A registration for in-memory bytes (e.g. a serialized table): the fingerprint is their
/// sha256.
pub fn registration_for_bytes(bytes: &[u8], rows: Option<u64>, schema: Vec<Column>) -> RegisterDatasetVersion {
    RegisterDatasetVersion { fingerprint: hex::encode(Sha256::digest(bytes)), size: bytes.len() as u64, rows, schema, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_content_not_location_or_mtime() {
        let a = std::env::temp_dir().join(format!("kiln-manifest-a-{}", std::process::id()));
        let b = std::env::temp_dir().join(format!("kiln-manifest-b-{}", std::process::id()));
        for dir in [&a, &b] {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir.join("train")).unwrap();
            std::fs::write(dir.join("train/x.csv"), "1,2\n3,4\n").unwrap();
            std::fs::write(dir.join("labels.csv"), "a\nb\n").unwrap();
        }
        let first = Manifest::of_dir(&a).unwrap();
        assert_eq!(
            first.text(),
            format!("labels.csv\t4\t{}\ntrain/x.csv\t8\t{}\n", sha256_of(&b"a\nb\n"[..]).unwrap().0, sha256_of(&b"1,2\n3,4\n"[..]).unwrap().0)
        );
        assert_eq!(first.fingerprint(), Manifest::of_dir(&b).unwrap().fingerprint(), "same bytes, other directory");
        std::fs::write(b.join("train/x.csv"), "1,2\n3,5\n").unwrap();
        assert_ne!(first.fingerprint(), Manifest::of_dir(&b).unwrap().fingerprint(), "one byte changed");
        assert_eq!(first.size(), 12);
        for dir in [&a, &b] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
