//! The journal on a real SQLite file: append-only events, hash chain,
//! group commit, allocator limits and restarts.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use crate::helper::{alloc, connect, count_events, grant, Line};
use linemark::ids::{IdCodec, NamespaceKey, UnitId};
use linemark::journal::{self, verify::VerifyError, AllocError};

fn codec() -> IdCodec {
    IdCodec::new(&NamespaceKey::from_hex(crate::helper::NAMESPACE_KEY_HEX).unwrap())
}

fn import(j: &linemark::journal::Journal, line: &Line, id: &str, start: u64, count: u64) {
    let policy = line.config().grant_policy().unwrap();
    j.import_grant_blocking(grant(id, start, count), &policy, "test")
        .unwrap();
}

#[test]
fn events_cannot_be_updated_or_deleted_through_sql() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 0, 100);
    alloc(&j).unwrap();
    drop(j);
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    let upd = c.execute("UPDATE events SET actor = 'mallory' WHERE seq = 1", []);
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = c.execute("DELETE FROM events WHERE seq = 2", []);
    assert!(del.unwrap_err().to_string().contains("append-only"));
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn allocation_takes_ids_in_block_order_and_stops_with_e_no_ids() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 1000, 3);
    import(&j, &line, "b2", 10, 2);
    let c = codec();
    let got: Vec<u64> = (0..5)
        .map(|_| c.index_of(UnitId::parse(&alloc(&j).unwrap()).unwrap()))
        .collect();
    assert_eq!(got, vec![1000, 1001, 1002, 10, 11]);
    let e = alloc(&j).unwrap_err();
    assert!(matches!(e, AllocError::NoIds), "{e}");
    assert!(e.to_string().starts_with("E_NO_IDS"));
    assert_eq!(j.shared().ids_left.load(Ordering::Acquire), 0);
    // A refused allocation leaves nothing behind.
    assert_eq!(count_events(&line.db_path(), "ALLOCATED"), 5);
}

#[test]
fn the_first_allocation_matches_the_spec_vector() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 1048576, 10);
    assert_eq!(alloc(&j).unwrap(), "V700QW11S6PJ4");
}

#[test]
fn concurrent_callers_are_group_committed_and_all_ids_are_unique() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 0, 100_000);
    let before = j.shared().commits.load(Ordering::Relaxed);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let j = j.clone();
            std::thread::spawn(move || (0..100).map(|_| alloc(&j).unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let mut all = HashSet::new();
    for t in threads {
        for id in t.join().unwrap() {
            assert!(all.insert(id), "an ID was issued twice");
        }
    }
    assert_eq!(all.len(), 1600);
    let commits = j.shared().commits.load(Ordering::Relaxed) - before;
    // Each caller waits for its own commit, so callers that arrive during a
    // commit share the next one: far fewer commits than allocations.
    assert!(
        commits < 1200,
        "{commits} commits for 1600 allocations: no group commit"
    );
    let conn = j.reader().unwrap();
    let r = journal::verify::verify(&conn, &codec(), |_, _| {}).unwrap();
    assert_eq!(r.units, 1600);
    assert_eq!(r.events, 1601);
}

#[test]
fn a_refused_job_does_not_undo_its_batch_neighbours() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 0, 1);
    // Two callers race for one ID: exactly one wins, the other gets E_NO_IDS,
    // and the winner's event is durable.
    let a = {
        let j = j.clone();
        std::thread::spawn(move || alloc(&j))
    };
    let b = alloc(&j);
    let a = a.join().unwrap();
    assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|x| **x).count(), 1);
    assert_eq!(count_events(&line.db_path(), "ALLOCATED"), 1);
}

#[test]
fn a_restart_after_a_clean_stop_skips_nothing_and_a_crash_skips_at_most_the_reservation() {
    let line = Line::new();
    let c = codec();
    let j = line.open();
    import(&j, &line, "b1", 0, 1000);
    let first = alloc(&j).unwrap();
    assert_eq!(c.index_of(UnitId::parse(&first).unwrap()), 0);
    drop(j); // clean stop: reservation released
    let j = line.open();
    assert_eq!(j.recovery().skipped, 0);
    let second = alloc(&j).unwrap();
    assert_eq!(c.index_of(UnitId::parse(&second).unwrap()), 1);
    // Simulate a crash: the database still says reserved = 51 (reserve_ahead
    // 50) because the release never ran. Copy the files while the writer
    // holds the reservation, then put them back.
    let snap = line.path().join("snap");
    std::fs::create_dir_all(&snap).unwrap();
    let conn = j.reader().unwrap();
    conn.execute(
        "VACUUM INTO ?1",
        [snap.join("journal.db").to_str().unwrap()],
    )
    .unwrap();
    drop(conn);
    let hw = std::fs::read(line.data_dir().join("journal.db.highwater")).unwrap();
    drop(j);
    std::fs::copy(snap.join("journal.db"), line.db_path()).unwrap();
    let _ = std::fs::remove_file(line.data_dir().join("journal.db-wal"));
    let _ = std::fs::remove_file(line.data_dir().join("journal.db-shm"));
    std::fs::write(line.data_dir().join("journal.db.highwater"), hw).unwrap();
    let j = line.open();
    assert!(!j.recovery().restore_detected, "{:?}", j.recovery());
    assert_eq!(j.recovery().skipped, 49);
    let third = alloc(&j).unwrap();
    assert_eq!(c.index_of(UnitId::parse(&third).unwrap()), 51);
}

#[test]
fn low_water_is_reported_through_ids_left() {
    let line = Line::new(); // low_water = 10
    let j = line.open();
    import(&j, &line, "b1", 0, 12);
    for _ in 0..5 {
        alloc(&j).unwrap();
    }
    assert_eq!(j.shared().ids_left.load(Ordering::Acquire), 7);
}

#[test]
fn verify_names_the_first_altered_event() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 0, 100);
    for _ in 0..9 {
        alloc(&j).unwrap();
    }
    drop(j);
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    c.execute_batch("DROP TRIGGER events_no_update").unwrap();
    c.execute(
        "UPDATE events SET data = replace(data, 'L1', 'L2') WHERE seq = 5",
        [],
    )
    .unwrap();
    drop(c);
    let conn = journal::open_read_only(&line.db_path()).unwrap();
    match journal::verify::verify(&conn, &codec(), |_, _| {}) {
        Err(VerifyError::Failed { seq, problem }) => {
            assert_eq!(seq, 5);
            assert!(problem.contains("hash mismatch"), "{problem}");
        }
        other => panic!("tampering not found: {other:?}"),
    }
    let out = line.cli(&["journal", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::helper::stderr(&out).contains("FAILED at seq 5"));
}

#[test]
fn verify_finds_a_gap_and_an_id_from_another_namespace() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 0, 100);
    for _ in 0..3 {
        alloc(&j).unwrap();
    }
    drop(j);
    // Verified with a different namespace key, the IDs fall outside every block.
    let other = IdCodec::new(&NamespaceKey::from_bytes([9u8; 32]));
    let conn = journal::open_read_only(&line.db_path()).unwrap();
    match journal::verify::verify(&conn, &other, |_, _| {}) {
        Err(VerifyError::Failed { seq: 2, problem }) => {
            assert!(problem.contains("outside every block"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    drop(conn);
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    c.execute_batch("DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq = 3;")
        .unwrap();
    drop(c);
    let conn = journal::open_read_only(&line.db_path()).unwrap();
    match journal::verify::verify(&conn, &codec(), |_, _| {}) {
        Err(VerifyError::Failed { seq: 3, problem }) => {
            assert!(problem.contains("missing"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_second_process_cannot_open_the_same_data_dir_for_writing() {
    let line = Line::new();
    let _j = line.open();
    let out = line.cli(&["blocks", "import", "nonexistent.json"]);
    assert_eq!(out.status.code(), Some(2)); // the file problem is found first
    let f = line.grant_file(
        "g.json",
        &serde_json::to_string(&grant("b9", 0, 10)).unwrap(),
    );
    let out = line.cli(&["blocks", "import", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::helper::stderr(&out).contains("in use by another linemark process"),
        "{}",
        crate::helper::stderr(&out)
    );
}

/// Rewrites events from `from` on, as an attacker with the file would:
/// triggers dropped, a value changed, every hash recomputed, triggers
/// put back exactly as they were.
fn rewrite_tail(db: &std::path::Path, from: i64, keep_until: i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; DROP TRIGGER events_extend_chain;")
        .unwrap();
    let mut prev: String = c
        .query_row("SELECT hash FROM events WHERE seq = ?1", [from - 1], |r| {
            r.get(0)
        })
        .unwrap();
    type Row = (
        i64,
        String,
        String,
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        String,
        Option<i64>,
    );
    let rows: Vec<Row> = c
        .prepare("SELECT seq, event_id, ts, line_id, station, actor, type, unit, data, unit_idx FROM events WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq")
        .unwrap()
        .query_map([from, keep_until], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    c.execute("DELETE FROM events WHERE seq >= ?1", [from])
        .unwrap();
    let mut scratch = String::new();
    for (i, (seq, id, ts, line, station, actor, kind, unit, data, unit_idx)) in
        rows.into_iter().enumerate()
    {
        let actor = if i == 0 { "forger".to_string() } else { actor };
        let hash = journal::event::HashInput {
            seq,
            event_id: &id,
            ts: &ts,
            line_id: &line,
            station: station.as_deref(),
            actor: &actor,
            kind: &kind,
            unit: unit.as_deref(),
            data: &data,
        }
        .hash_hex(prev.as_bytes(), &mut scratch);
        let hash = String::from_utf8(hash.to_vec()).unwrap();
        c.execute(
            "INSERT INTO events (seq, event_id, ts, line_id, station, actor, type, unit, data, hash, unit_idx) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            rusqlite::params![seq, id, ts, line, station, actor, kind, unit, data, hash, unit_idx],
        )
        .unwrap();
        prev = hash;
    }
    for (_, sql) in journal::schema::GUARD_TRIGGERS {
        c.execute_batch(sql).unwrap();
    }
}

#[test]
fn replace_into_events_is_refused_by_the_database_itself() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 0, 100);
    alloc(&j).unwrap();
    drop(j);
    let before = crate::helper::journal_hashes(&line.db_path());
    // An sqlite3 session: no recursive_triggers, so REPLACE's delete would
    // not fire the DELETE trigger; the INSERT trigger refuses it.
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    for sql in [
        "REPLACE INTO events SELECT seq, event_id, ts, line_id, station, 'forger', type, unit, data, hash, unit_idx FROM events WHERE seq = 1",
        "INSERT INTO events SELECT seq + 10, event_id, ts, line_id, station, actor, type, unit, data, hash, unit_idx FROM events WHERE seq = 1",
    ] {
        let e = c.execute(sql, []).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    drop(c);
    assert_eq!(crate::helper::journal_hashes(&line.db_path()), before);
    // Dropping a guard is itself evidence.
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    c.execute_batch("DROP TRIGGER events_extend_chain").unwrap();
    drop(c);
    let out = line.cli(&["journal", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::helper::stderr(&out).contains("events_extend_chain is missing"),
        "{}",
        crate::helper::stderr(&out)
    );
}

#[test]
fn a_tail_cut_or_rewritten_behind_the_anchors_fails_verify_naming_the_seq() {
    let line = Line::new();
    let j = line.open();
    import(&j, &line, "b1", 0, 100);
    for _ in 0..9 {
        alloc(&j).unwrap();
    }
    drop(j); // the clean stop writes the high-water file at the head (seq 10)
             // The store acknowledged through seq 8.
    let acked_hash: String = rusqlite::Connection::open(line.db_path())
        .unwrap()
        .query_row("SELECT hash FROM events WHERE seq = 8", [], |r| r.get(0))
        .unwrap();
    let state = linemark::sync::SyncState {
        acked_through: 8,
        acked_hash: Some(acked_hash),
        ..Default::default()
    };
    linemark::sync::state::save(&line.data_dir(), &state).unwrap();
    let ok = line.cli(&["journal", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", crate::helper::stderr(&ok));

    // Rewritten from seq 6 with recomputed hashes: the chain is whole, the
    // anchors are not.
    rewrite_tail(&line.db_path(), 6, 10);
    let conn = journal::open_read_only(&line.db_path()).unwrap();
    assert!(
        journal::verify::verify(&conn, &codec(), |_, _| {}).is_ok(),
        "the chain alone is fooled"
    );
    drop(conn);
    let out = line.cli(&["journal", "verify"]);
    let err = crate::helper::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("FAILED at seq 10") && err.contains("high-water"),
        "{err}"
    );

    // Cut back to seq 7: behind both the high-water file and the store.
    rewrite_tail(&line.db_path(), 6, 7);
    let out = line.cli(&["journal", "verify"]);
    let err = crate::helper::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("FAILED at seq"), "{err}");
    let conn = journal::open_read_only(&line.db_path()).unwrap();
    let anchor = journal::verify::Anchor {
        source: "the high-water file".into(),
        seq: 10,
        hash: None,
    };
    match journal::verify::check_anchors(&conn, &[anchor]) {
        Err(VerifyError::Failed { seq: 10, problem }) => {
            assert!(
                problem.contains("ends at seq 7") && problem.contains("cut off"),
                "{problem}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// A line where unit A was only allocated and unit B passed, was bound a
/// serial and shipped to a buyer.
async fn two_units(line: &Line) -> (String, String) {
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let mut c = connect(&d, "t", "t").await;
    let a = crate::helper::alloc_unit(&mut c).await;
    let b = crate::helper::ready_unit(&mut c).await;
    for (verb, args) in [
        ("BIND", vec![("unit", b.as_str()), ("serial", "S-1")]),
        ("FINAL", vec![("unit", b.as_str()), ("status", "PASS")]),
        (
            "SHIP",
            vec![("unit", b.as_str()), ("shipment", "SH-1"), ("to", "ACME")],
        ),
    ] {
        let r = c.request(verb, &args).await.unwrap();
        assert!(r.is_ok(), "{verb}: {r:?}");
    }
    d.shutdown().await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_state_tables_fail_verify_by_row_and_column_and_the_daemon_refuses_them() {
    let extra = crate::helper::station_toml(
        "t",
        "tcp://127.0.0.1:0",
        &["ALLOC", "BIND", "RESULT", "FINAL", "SHIP"],
        None,
        "optional",
    );
    let line = Line::with_config(&extra);
    import(&line.open(), &line, "b1", 0, 100);
    let (a, _b) = two_units(&line).await;
    let ok = line.cli(&["journal", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", crate::helper::stderr(&ok));
    // Each forgery with what verify must name, then undone.
    let forgeries = [
        (
            format!("UPDATE units SET state = 'passed' WHERE unit = '{a}'"),
            format!("UPDATE units SET state = 'allocated' WHERE unit = '{a}'"),
            vec!["table units", "column state", "\"passed\"", "\"allocated\""],
        ),
        (
            "UPDATE bindings SET value = 'FORGED' WHERE field = 'serial'".to_string(),
            "UPDATE bindings SET value = 'S-1' WHERE field = 'serial'".to_string(),
            vec![
                "table bindings",
                "field=\"serial\"",
                "column value",
                "\"FORGED\"",
                "\"S-1\"",
            ],
        ),
        (
            "UPDATE shipped SET buyer = 'Evil Corp'".to_string(),
            "UPDATE shipped SET buyer = 'ACME'".to_string(),
            vec!["table shipped", "column buyer", "\"Evil Corp\"", "\"ACME\""],
        ),
        (
            "UPDATE blocks SET used = 0, reserved = 0".to_string(),
            "UPDATE blocks SET used = 100, reserved = 100".to_string(),
            vec!["table blocks", "column used"],
        ),
        // (At open, the high-water file puts the allocator back past every
        // ID it may have issued, so the daemon serves this one repaired.)
        (
            "INSERT INTO bindings (unit_idx, field, value, seq) VALUES (999999, 'serial', 'GHOST', 1)".to_string(),
            "DELETE FROM bindings WHERE unit_idx = 999999".to_string(),
            vec!["table bindings", "unit_idx=999999", "the unit has no events"],
        ),
        (
            "CREATE TABLE notes (x TEXT)".to_string(),
            "DROP TABLE notes".to_string(),
            vec!["\"notes\"", "no such table"],
        ),
    ];
    for (forge, undo, named) in forgeries {
        let repaired_at_open = forge.starts_with("UPDATE blocks");
        let c = rusqlite::Connection::open(line.db_path()).unwrap();
        c.execute_batch(&forge).unwrap();
        drop(c);
        let out = line.cli(&["journal", "verify"]);
        let err = crate::helper::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{forge}: {err}");
        for n in &named {
            assert!(err.contains(n), "{forge}: {n:?} not in {err}");
        }
        // The daemon will not serve it.
        if repaired_at_open {
            let d = linemark::daemon::Daemon::start(line.config())
                .await
                .unwrap();
            d.shutdown().await;
            let out = line.cli(&["journal", "verify"]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                crate::helper::stderr(&out)
            );
            continue;
        }
        match linemark::daemon::Daemon::start(line.config()).await {
            Err(e @ linemark::daemon::DaemonError::Inconsistent(_)) => {
                assert!(e.to_string().contains("linemark journal verify"), "{e}")
            }
            Err(e) => panic!("{forge}: refused for another reason: {e}"),
            Ok(d) => {
                d.shutdown().await;
                panic!(
                    "{forge}: the daemon served a journal whose state disagrees with its events"
                );
            }
        }
        let c = rusqlite::Connection::open(line.db_path()).unwrap();
        c.execute_batch(&undo).unwrap();
    }
    let ok = line.cli(&["journal", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", crate::helper::stderr(&ok));
}
