//! Sync progress, kept outside the journal (SPEC section 5: syncing never
//! creates events to sync) in `DATA_DIR/sync-state.json`.
//!
//! Owns: the file's format, its atomic replacement (write, fsync, rename,
//! fsync the folder) and the `sync.lock` that keeps two syncers (the daemon
//! and a `linemark sync` from a timer) from running at once.
//! Must not: talk to the network or write the journal.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SyncError;

/// The state file's name inside the data dir.
pub const STATE_FILE: &str = "sync-state.json";
const LOCK_FILE: &str = "sync.lock";

/// Where the store is, as far as this line knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// The store acknowledged every event up to and including this seq.
    pub acked_through: i64,
    /// The hash of event `acked_through` when it was acknowledged; a journal
    /// whose event there has another hash was restored behind the store.
    #[serde(default)]
    pub acked_hash: Option<String>,
    /// When the last acknowledgement arrived (RFC 3339 UTC).
    #[serde(default)]
    pub acked_at: Option<String>,
    /// Set by a `409` (or a journal behind the store); cleared only by
    /// `linemark sync --resume`.
    #[serde(default)]
    pub halt: Option<Halt>,
}

/// Why syncing stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub reason: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub at: String,
    /// The `SYNC_HALTED` event's seq once it is journaled. A `linemark sync`
    /// that runs beside the daemon cannot write the journal; the daemon
    /// journals the halt when it sees this empty.
    #[serde(default)]
    pub journaled_seq: Option<i64>,
}

pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STATE_FILE)
}

/// Reads the state; a missing file means nothing was acknowledged yet.
pub fn load(data_dir: &Path) -> Result<SyncState, SyncError> {
    let path = state_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SyncError::State {
            path: path.clone(),
            problem: format!(
                "is not a valid sync state ({e}); move it aside to re-send from seq 1 \
                 (the store de-duplicates by seq)"
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SyncState::default()),
        Err(e) => Err(SyncError::State {
            path,
            problem: format!("cannot be read: {e}"),
        }),
    }
}

/// Replaces the state atomically: a crash leaves the old or the new file.
pub fn save(data_dir: &Path, state: &SyncState) -> Result<(), SyncError> {
    let path = state_path(data_dir);
    let tmp = data_dir.join(format!("{STATE_FILE}.tmp"));
    let io = |e: std::io::Error| SyncError::State {
        path: path.clone(),
        problem: format!("cannot be written: {e}"),
    };
    let mut text = serde_json::to_vec_pretty(state).map_err(|e| io(std::io::Error::other(e)))?;
    text.push(b'\n');
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&text).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io)?;
    File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// Held while one syncer runs; dropping it lets the next one in.
#[derive(Debug)]
pub struct SyncLock(#[allow(dead_code)] File);

/// Takes `sync.lock`, or `None` when another syncer holds it.
pub fn try_lock(data_dir: &Path) -> Result<Option<SyncLock>, SyncError> {
    std::fs::create_dir_all(data_dir).map_err(|e| SyncError::State {
        path: data_dir.to_path_buf(),
        problem: format!("cannot be created: {e}"),
    })?;
    let path = data_dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SyncError::State {
            path: path.clone(),
            problem: format!("cannot be opened: {e}"),
        })?;
    match f.try_lock() {
        Ok(()) => Ok(Some(SyncLock(f))),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(SyncError::State {
            path,
            problem: format!("cannot be locked: {e}"),
        }),
    }
}

/// Takes `sync.lock`, waiting up to `wait` for another syncer to let go
/// (the daemon holds it for milliseconds between syncs); `None` if it is
/// still held then.
pub fn lock_within(
    data_dir: &Path,
    wait: std::time::Duration,
) -> Result<Option<SyncLock>, SyncError> {
    let until = std::time::Instant::now() + wait;
    loop {
        if let Some(l) = try_lock(data_dir)? {
            return Ok(Some(l));
        }
        if std::time::Instant::now() >= until {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_state_means_nothing_acknowledged() {
        let d = tempfile::tempdir().expect("dir");
        assert_eq!(load(d.path()).expect("load"), SyncState::default());
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let d = tempfile::tempdir().expect("dir");
        let s = SyncState {
            acked_through: 42,
            acked_hash: Some("ab".repeat(32)),
            acked_at: Some("2026-11-23T02:00:00.000Z".into()),
            halt: Some(Halt {
                reason: "chain mismatch at seq 43".into(),
                first_seq: 43,
                last_seq: 50,
                at: "2026-11-23T02:00:01.000Z".into(),
                journaled_seq: None,
            }),
        };
        save(d.path(), &s).expect("save");
        assert_eq!(load(d.path()).expect("load"), s);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_the_file_and_the_way_out() {
        let d = tempfile::tempdir().expect("dir");
        std::fs::write(d.path().join(STATE_FILE), "{not json").expect("write");
        let e = load(d.path()).expect_err("corrupt").to_string();
        assert!(
            e.contains(STATE_FILE) && e.contains("re-send from seq 1"),
            "{e}"
        );
    }

    #[test]
    fn only_one_syncer_holds_the_lock() {
        let d = tempfile::tempdir().expect("dir");
        let first = try_lock(d.path()).expect("lock").expect("free");
        assert!(try_lock(d.path()).expect("lock").is_none());
        let t = std::time::Instant::now();
        assert!(lock_within(d.path(), std::time::Duration::from_millis(100))
            .expect("lock")
            .is_none());
        assert!(t.elapsed() >= std::time::Duration::from_millis(100));
        drop(first);
        assert!(try_lock(d.path()).expect("lock").is_some());
    }
}
