//! `linemark journal verify`.

use std::path::Path;

use clap::Subcommand;

use super::{load_config, progress_bar, CliError};
use crate::ids::IdCodec;
use crate::journal::{self, verify::VerifyError};

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Recompute the hash chain and check the invariants; names the first bad seq.
    Verify,
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
