//! `linemark backup DEST`: an online SQLite backup, safe while the daemon runs.

use std::path::{Path, PathBuf};

use super::{load_config, progress_bar, CliError};
use crate::journal;

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

fn copy(src: &journal::Reader, tmp: &Path) -> Result<(), CliError> {
    let pb = progress_bar(0, "backing up");
    let r = journal::backup::copy_to(src, tmp, |done, total| {
        pb.set_length(total);
        pb.set_position(done);
    });
    pb.finish_and_clear();
    r.map_err(CliError::runtime)
}
