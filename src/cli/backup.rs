//! `linemark backup DEST`: an online SQLite backup, safe while the daemon runs.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};

use super::{load_config, progress_bar, CliError};
use crate::journal;

/// Pages copied per step; small enough that the daemon's writer never waits long.
const PAGES_PER_STEP: std::os::raw::c_int = 256;

pub fn run(config: &Path, dest: &Path) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let src = journal::open_read_only(&cfg.journal_path())?;
    let dest: PathBuf = if dest.is_dir() {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        dest.join(format!("linemark-{}-{stamp}.db", cfg.line_id))
    } else {
        dest.to_path_buf()
    };
    if dest.exists() {
        return Err(CliError::input(format!(
            "{} exists already; give a new file name or a folder",
            dest.display()
        )));
    }
    let tmp = dest.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    let result = copy(&src, &tmp);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &dest).map_err(|e| {
        CliError::runtime(format!(
            "cannot move the backup into place at {}: {e}",
            dest.display()
        ))
    })?;
    let check = journal::open_read_only(&dest)?;
    let last = journal::query::last_seq(&check)?;
    println!(
        "backup written to {} (journal seq 1..{last})",
        dest.display()
    );
    Ok(())
}

fn copy(src: &rusqlite::Connection, tmp: &Path) -> Result<(), CliError> {
    let fail =
        |e: rusqlite::Error| CliError::runtime(format!("backup to {} failed: {e}", tmp.display()));
    let mut dst = rusqlite::Connection::open(tmp).map_err(fail)?;
    {
        let backup = Backup::new(src, &mut dst).map_err(fail)?;
        let pb = progress_bar(0, "backing up");
        loop {
            let step = backup.step(PAGES_PER_STEP).map_err(fail)?;
            let p = backup.progress();
            pb.set_length(p.pagecount.max(0) as u64);
            pb.set_position((p.pagecount - p.remaining).max(0) as u64);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        pb.finish_and_clear();
    }
    let ok: String = dst
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(fail)?;
    if ok != "ok" {
        return Err(CliError::runtime(format!(
            "the backup at {} failed its integrity check: {ok}",
            tmp.display()
        )));
    }
    dst.execute_batch("PRAGMA journal_mode=DELETE;")
        .map_err(fail)?;
    drop(dst);
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| CliError::runtime(format!("cannot sync {}: {e}", tmp.display())))
}
