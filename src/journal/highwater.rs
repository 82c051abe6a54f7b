//! The allocator's high-water file beside the database (SPEC section 1).
//!
//! Owns: reading and durably replacing a small JSON file that records, per
//! block, the offset below which IDs may have been issued, and the journal
//! seq that was committed when it was written. A database restored from an
//! older backup is behind this file; the allocator starts past the larger of
//! the two, so no ID is issued twice.
//! Must not: decide anything; `writer` compares it with the database.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File format version.
const VERSION: u32 = 1;

/// The file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighWater {
    pub version: u32,
    /// Last journal seq known committed when the file was written.
    pub seq: i64,
    /// The hash of event `seq` (absent in files written before it was
    /// kept): `journal verify` checks the journal still holds that event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// block_id -> offset: offsets below it may have been handed out.
    pub blocks: BTreeMap<String, u64>,
}

/// The file could not be read or written; the allocator refuses to guess.
#[derive(Debug, thiserror::Error)]
pub enum HighWaterError {
    #[error("cannot read the high-water file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the high-water file {path} is damaged ({reason}); linemark will not start without it, because it protects against re-issuing IDs. Restore it from a backup, or if this data dir is new, delete it")]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot write the high-water file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl HighWater {
    /// Reads the file; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<HighWater>, HighWaterError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(HighWaterError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let hw: HighWater =
            serde_json::from_slice(&bytes).map_err(|e| HighWaterError::Damaged {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if hw.version != VERSION {
            return Err(HighWaterError::Damaged {
                path: path.to_path_buf(),
                reason: format!("unknown version {}", hw.version),
            });
        }
        Ok(Some(hw))
    }

    /// Replaces the file atomically and durably: write a temporary file,
    /// fsync it, rename it over the old one, fsync the folder.
    pub fn write(&self, path: &Path) -> Result<(), HighWaterError> {
        let werr = |source| HighWaterError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut body = serde_json::to_vec(&HighWater {
            version: VERSION,
            ..self.clone()
        })
        .map_err(|e| werr(std::io::Error::other(e)))?;
        body.push(b'\n');
        let tmp = path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(werr)?;
        f.write_all(&body).map_err(werr)?;
        f.sync_all().map_err(werr)?;
        drop(f);
        fs::rename(&tmp, path).map_err(werr)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(werr)?;
        }
        Ok(())
    }

    /// Raises the mark of a block; never lowers it.
    pub fn raise(&mut self, block_id: &str, mark: u64) {
        let e = self.blocks.entry(block_id.to_string()).or_insert(0);
        *e = (*e).max(mark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips_and_missing_is_none() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("highwater.json");
        assert_eq!(HighWater::read(&p).unwrap(), None);
        let mut hw = HighWater {
            version: VERSION,
            seq: 42,
            ..Default::default()
        };
        hw.raise("b1", 1000);
        hw.raise("b1", 10);
        hw.write(&p).unwrap();
        let back = HighWater::read(&p).unwrap().unwrap();
        assert_eq!(back.blocks["b1"], 1000);
        assert_eq!(back.seq, 42);
        assert!(!p.with_extension("tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_fresh_start() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("highwater.json");
        fs::write(&p, b"{\"version\":1,\"seq\":").unwrap();
        let e = HighWater::read(&p).unwrap_err();
        assert!(matches!(e, HighWaterError::Damaged { .. }));
        assert!(e.to_string().contains("re-issuing IDs"));
    }
}
