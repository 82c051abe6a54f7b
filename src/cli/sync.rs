//! `linemark sync [--resume]`: one full sync now (what the systemd timer
//! runs), with a progress bar; `--resume` first clears a halt.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::{load_config, progress_bar, CliError};
use crate::journal::{Journal, JournalOptions};
use crate::sync::{self, Persistence, SyncError, Syncer};

pub fn run(config: &Path, resume: bool) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let syncer = Syncer::from_config(&cfg).map_err(classify)?;
    let attempts = cfg.upstream.as_ref().map_or(1, |u| u.attempts);
    if resume {
        match sync::resume(&cfg.data_dir, &cfg.journal_path()).map_err(classify)? {
            Some(h) => eprintln!("resumed: cleared the halt of {} ({})", h.at, h.reason),
            None => eprintln!("sync was not halted; syncing"),
        }
    }
    let (backlog, last) = syncer.backlog().map_err(classify)?;
    let pb = progress_bar(backlog as u64, "syncing events");
    let from = last - backlog;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    let started = std::time::Instant::now();
    let cancel = CancellationToken::new();
    let result = rt.block_on(syncer.run(
        Persistence::Attempts(attempts),
        sync::LOCK_WAIT,
        &|acked, _target| pb.set_position((acked - from).max(0) as u64),
        &cancel,
    ));
    pb.finish_and_clear();
    match result {
        Ok(r) if r.events == 0 => {
            println!(
                "nothing to sync: the store has every event through seq {}",
                r.acked_through
            );
            Ok(())
        }
        Ok(r) => {
            println!(
                "synced seq {}..={} to {} ({} events in {} batches, {} retries, {:.1} s)",
                r.from + 1,
                r.acked_through,
                syncer.url(),
                r.events,
                r.batches,
                r.retries,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e @ SyncError::Halted { .. }) => {
            // Journal the halt now when the daemon is not running; when it
            // is, it journals the halt from the state file within seconds.
            if let Ok(j) = Journal::open(JournalOptions::from_config(&cfg)) {
                if let Ok(Some(seq)) = sync::journal_pending_halt(&cfg.data_dir, &j) {
                    eprintln!("SYNC_HALTED journaled as seq {seq}");
                }
            }
            Err(CliError::runtime(e))
        }
        Err(e) => Err(classify(e)),
    }
}

/// Config problems are bad input (exit 2); the rest are runtime failures.
fn classify(e: SyncError) -> CliError {
    match e {
        SyncError::NotConfigured | SyncError::Token(_) | SyncError::Tls(_) => CliError::input(e),
        e => CliError::runtime(e),
    }
}
