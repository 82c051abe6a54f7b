//! `linemark restore BACKUP`: put a backup in place of the journal.

use std::path::Path;

use serde_json::json;

use super::{load_config, CliError};
use crate::ids::IdCodec;
use crate::journal::{self, EventType, Journal, JournalError, JournalOptions, NewEvent};

pub fn run(config: &Path, backup: &Path) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let db = cfg.journal_path();
    let dir = db.parent().unwrap_or(Path::new(".")).to_path_buf();
    // The backup must be a whole, untampered journal of this line's keys.
    let conn = journal::open_read_only(backup)
        .map_err(|e| CliError::input(format!("{}: {e}", backup.display())))?;
    let report = journal::verify::verify(&conn, &IdCodec::new(&cfg.ids.namespace_key), |_, _| {})
        .map_err(|e| {
        CliError::input(format!("{} is not a sound journal: {e}", backup.display()))
    })?;
    drop(conn);
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", dir.display())))?;
    // Refuse while the daemon (or any writer) holds the data dir.
    let lock = journal::lock_data_dir(&dir).map_err(|e| match e {
        JournalError::Locked { .. } => {
            CliError::runtime(format!("{e}: restore needs linemark stopped"))
        }
        other => CliError::runtime(other),
    })?;
    // Keep the current journal: it is evidence, never deleted.
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    if db.exists() {
        for ext in ["", "-wal", "-shm"] {
            let from = std::path::PathBuf::from(format!("{}{ext}", db.display()));
            if from.exists() {
                let to = format!("{}.before-restore-{stamp}{ext}", db.display());
                std::fs::rename(&from, &to).map_err(|e| {
                    CliError::runtime(format!("cannot keep {}: {e}", from.display()))
                })?;
            }
        }
    }
    let tmp = dir.join("journal.db.restoring");
    std::fs::copy(backup, &tmp)
        .map_err(|e| CliError::runtime(format!("cannot copy {}: {e}", backup.display())))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| CliError::runtime(format!("cannot sync {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &db)
        .map_err(|e| CliError::runtime(format!("cannot put the backup in place: {e}")))?;
    drop(lock);
    // Opening recovers the allocator past the high-water file (kept as it
    // was) and notices that the database is behind it.
    let j = Journal::open(JournalOptions::from_config(&cfg))?;
    if !j.recovery().restore_detected {
        let from = backup.display().to_string();
        j.write_blocking(move |tx| {
            tx.append(NewEvent {
                kind: EventType::RestoreDetected,
                station: None,
                actor: "cli".into(),
                unit: None,
                data: json!({"reason": "linemark restore", "backup": from}),
            })
        })?;
    }
    println!(
        "restored {} (journal seq 1..{}); the journal it replaced is kept as {}.before-restore-{stamp}; IDs resume past the high-water mark",
        backup.display(),
        report.events,
        db.display()
    );
    Ok(())
}
