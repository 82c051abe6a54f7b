//! Online backup of the journal to a new file (`linemark backup`), safe
//! while the daemon runs: SQLite's backup API in small steps, then an
//! integrity check, a rollback-journal mode so the copy is one
//! self-contained file, and an fsync.
//!
//! Owns: the copy and its checks. Must not: choose names or places (the CLI
//! does), or touch the live journal beyond reading it.

use std::path::Path;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;

/// Pages copied per step; small enough that the daemon's writer never waits long.
const PAGES_PER_STEP: std::os::raw::c_int = 256;

/// Copies the journal `src` to the new file `dest`; `progress(done, total)`
/// in pages. The error says what failed, naming `dest`.
pub fn copy_to(
    src: &Connection,
    dest: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<(), String> {
    let fail = |e: rusqlite::Error| format!("backup to {} failed: {e}", dest.display());
    let mut dst = Connection::open(dest).map_err(fail)?;
    {
        let backup = Backup::new(src, &mut dst).map_err(fail)?;
        loop {
            let step = backup.step(PAGES_PER_STEP).map_err(fail)?;
            let p = backup.progress();
            progress(
                (p.pagecount - p.remaining).max(0) as u64,
                p.pagecount.max(0) as u64,
            );
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
    let ok: String = dst
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(fail)?;
    if ok != "ok" {
        return Err(format!(
            "the backup at {} failed its integrity check: {ok}",
            dest.display()
        ));
    }
    dst.execute_batch("PRAGMA journal_mode=DELETE;")
        .map_err(fail)?;
    drop(dst);
    std::fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dest.display()))
}
