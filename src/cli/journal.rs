//! `linemark journal verify`.

use std::path::Path;

use clap::Subcommand;

use super::{load_config, progress_bar, CliError};
use crate::ids::IdCodec;
use crate::journal::highwater::HighWater;
use crate::journal::verify::{Anchor, VerifyError};
use crate::journal::{self, JournalOptions};

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Recompute the hash chain and check the invariants; names the first bad seq.
    Verify,
}

/// What is kept outside the journal file about it: the high-water file's
/// seq and hash, and the seq and hash the central store acknowledged.
fn anchors(cfg: &crate::config::Config) -> Result<Vec<Anchor>, VerifyError> {
    let mut out = Vec::new();
    let hw_path = JournalOptions::from_config(cfg).highwater_path();
    match HighWater::read(&hw_path) {
        Ok(Some(hw)) => out.push(Anchor {
            source: format!("the high-water file {}", hw_path.display()),
            seq: hw.seq,
            hash: hw.hash,
        }),
        Ok(None) => {}
        Err(e) => return Err(VerifyError::Journal(e.into())),
    }
    // A damaged sync state is reported by `linemark sync`; verify goes on.
    if let Ok(s) = crate::sync::state::load(&cfg.data_dir) {
        out.push(Anchor {
            source: "the central store's acknowledgement (sync-state.json)".into(),
            seq: s.acked_through,
            hash: s.acked_hash,
        });
    }
    Ok(out)
}

pub fn run(config: &Path, cmd: JournalCommand) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let JournalCommand::Verify = cmd;
    let conn = journal::open_read_only(&cfg.journal_path())?;
    let codec = IdCodec::new(&cfg.ids.namespace_key);
    let started = std::time::Instant::now();
    let pb = progress_bar(0, "verifying");
    let report = journal::verify::verify(&conn, &codec, |done, total| {
        pb.set_length(total);
        pb.set_position(done);
    });
    pb.finish_and_clear();
    let report = report.and_then(|r| {
        journal::verify::check_anchors(&conn, &anchors(&cfg)?)?;
        Ok(r)
    });
    match report {
        Ok(r) => {
            println!(
                "journal OK: {} events, {} units, {} blocks, chain head {} ({:.2} s)",
                r.events,
                r.units,
                r.blocks,
                r.head_hash,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(VerifyError::Failed { seq, problem }) => Err(CliError::runtime(format!(
            "journal verify FAILED at seq {seq}: {problem}"
        ))),
        Err(VerifyError::Journal(e)) => Err(CliError::runtime(e)),
    }
}
