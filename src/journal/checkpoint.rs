//! The background checkpointer: copies the WAL into the database off the
//! commit path, keeps the WAL file bounded under continuous load, and holds
//! a small reserve of disk space it gives up when the disk is full, so the
//! journal can checkpoint, shrink its WAL and serve again once space is
//! freed, without a restart.
//!
//! Owns: checkpoint timing and mode, `linemark.reserve` beside the journal.
//! Must not: write journal content (only SQLite's own checkpoints).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{JournalError, Shared};

/// How often the WAL's size and the disk's state are looked at.
const TICK: Duration = Duration::from_millis(250);
/// How often a PASSIVE checkpoint runs (it never blocks anyone).
const PASSIVE_EVERY: Duration = Duration::from_secs(2);
/// Past this the writer checkpoints the WAL with TRUNCATE between batches
/// (see `writer::bound_wal`): a PASSIVE checkpoint cannot restart the WAL
/// while commits keep arriving. Also `journal_size_limit` of the writer's
/// connection.
pub(crate) const WAL_LIMIT: u64 = 8 << 20;
/// Disk space held back for recovering from a full disk.
const RESERVE: u64 = 16 << 20;

/// The reserve file's path beside the journal.
fn reserve_path(db: &Path) -> PathBuf {
    db.with_file_name("linemark.reserve")
}

/// Whether an error text says the disk is full (SQLite's SQLITE_FULL or
/// the OS's ENOSPC, as the writer records them).
fn disk_full(why: &str) -> bool {
    why.contains("disk is full") || why.contains("No space left")
}

/// Free bytes on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we pass; `c` is a valid
    // NUL-terminated path for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Makes the reserve when there is room for it and four times more.
fn make_reserve(path: &Path) {
    if path.exists() {
        return;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if free_bytes(dir).is_none_or(|f| f < RESERVE * 5) {
        return;
    }
    let made = std::fs::File::create(path).and_then(|f| {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(&f);
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(RESERVE >> 20) {
            w.write_all(&zeros)?;
        }
        w.flush()?;
        drop(w);
        f.sync_all()
    });
    match made {
        Ok(()) => tracing::debug!(path = %path.display(), "disk reserve in place"),
        Err(e) => {
            let _ = std::fs::remove_file(path);
            tracing::warn!(error = %e, "cannot make the disk reserve; will try again");
        }
    }
}

fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// Starts the checkpointer on its own connection.
pub(crate) fn spawn(
    db: &Path,
    shared: Arc<Shared>,
) -> Result<(Sender<()>, JoinHandle<()>), JournalError> {
    let open_err = |message: String| JournalError::Open {
        path: db.to_path_buf(),
        message,
    };
    let conn = Connection::open(db).map_err(|e| open_err(e.to_string()))?;
    super::pragmas(&conn)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let db = db.to_path_buf();
    let reserve = reserve_path(&db);
    let t = std::thread::Builder::new()
        .name("journal-checkpoint".into())
        .spawn(move || {
            // Off the open path: writing the reserve takes an fsync of 16 MiB.
            make_reserve(&reserve);
            let mut last_passive = Instant::now();
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                let fault = shared.storage_fault();
                if fault.as_deref().is_some_and(disk_full) && reserve.exists() {
                    // Give the reserve up so the checkpoint below can copy
                    // the WAL into the database and truncate it.
                    match std::fs::remove_file(&reserve) {
                        Ok(()) => tracing::warn!("disk full: released the {} MiB reserve to checkpoint and recover", RESERVE >> 20),
                        Err(e) => tracing::warn!(error = %e, "disk full, and the reserve cannot be released"),
                    }
                }
                // On a storage fault, TRUNCATE gives the WAL's space back (the
                // failing writer hardly holds the lock then).
                let mode = if fault.is_some() {
                    "TRUNCATE"
                } else if last_passive.elapsed() >= PASSIVE_EVERY {
                    "PASSIVE"
                } else {
                    continue;
                };
                last_passive = Instant::now();
                match checkpoint(&conn, mode) {
                    Ok((busy, _, _)) if busy != 0 => {
                        tracing::debug!(mode, "checkpoint could not finish (readers or the writer busy); retrying")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(mode, error = %e, "WAL checkpoint failed; will retry"),
                }
                if fault.is_none() {
                    make_reserve(&reserve);
                }
            }
        })
        .map_err(|e| open_err(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((stop, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_is_told_from_other_storage_errors() {
        assert!(disk_full(
            "journal storage error while committing: database or disk is full"
        ));
        assert!(disk_full(
            "cannot write the high-water file x: No space left on device (os error 28)"
        ));
        assert!(!disk_full("attempt to write a readonly database"));
    }
}
