//! Restore from an older backup: the allocator starts past the high-water
//! file, so no ID is issued twice, and RESTORE_DETECTED is journaled.

use std::collections::HashSet;
use std::time::Duration;

use crate::helper::{alloc, count_events, stderr, Allocator, Line};

fn put_back(line: &Line, backup: &std::path::Path) {
    std::fs::copy(backup, line.db_path()).unwrap();
    for ext in ["journal.db-wal", "journal.db-shm"] {
        let _ = std::fs::remove_file(line.data_dir().join(ext));
    }
}

#[test]
fn restoring_an_older_backup_reissues_nothing_and_is_journaled() {
    let line = Line::new();
    let mut all = HashSet::new();
    {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 100_000);
        for _ in 0..10 {
            assert!(all.insert(alloc(&j).unwrap()));
        }
    }
    let backup = line.path().join("old.db");
    let out = line.cli(&["backup", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    {
        let j = line.open();
        for _ in 0..10 {
            assert!(all.insert(alloc(&j).unwrap()));
        }
    }
    put_back(&line, &backup);
    let j = line.open();
    assert!(j.recovery().restore_detected, "{:?}", j.recovery());
    for _ in 0..10 {
        let id = alloc(&j).unwrap();
        assert!(
            all.insert(id.clone()),
            "{id} issued twice after the restore"
        );
    }
    drop(j);
    assert_eq!(count_events(&line.db_path(), "RESTORE_DETECTED"), 1);
    let out = line.cli(&["journal", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn restoring_over_a_crashed_run_reissues_nothing() {
    let line = Line::new();
    {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 100_000);
    }
    let backup = line.path().join("old.db");
    assert_eq!(
        line.cli(&["backup", backup.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    // A daemon allocates, then dies without a clean stop.
    let a = Allocator::spawn(&line);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while a.printed() < 30 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let issued: HashSet<String> = a.kill().into_iter().collect();
    assert!(
        issued.len() >= 30,
        "the child allocated only {}",
        issued.len()
    );
    put_back(&line, &backup);
    let j = line.open();
    for _ in 0..200 {
        let id = alloc(&j).unwrap();
        assert!(
            !issued.contains(&id),
            "{id} issued again after restoring over a crash"
        );
    }
}

#[test]
fn a_damaged_high_water_file_stops_the_journal_from_opening() {
    let line = Line::new();
    drop(line.open());
    std::fs::write(line.data_dir().join("journal.db.highwater"), b"{garbage").unwrap();
    let cfg = line.config();
    let err =
        linemark::journal::Journal::open(linemark::journal::JournalOptions::from_config(&cfg))
            .err()
            .expect("refused");
    assert!(err.to_string().contains("damaged"), "{err}");
}
