//! The SQLite schema and its migrations, keyed on `PRAGMA user_version`.
//!
//! Owns: table layout, triggers that make `events` append-only, and
//! upgrading an older journal file in place. Must not: hold business rules.
//! A migration is appended, never edited: old journals in `tests/data/` must
//! keep opening.

use rusqlite::Connection;

/// Migrations in order; index + 1 is the `user_version` after applying it.
const MIGRATIONS: &[&str] = &[
    // 1: the foundation schema.
    r#"
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    ts       TEXT NOT NULL,
    line_id  TEXT NOT NULL,
    station  TEXT,
    actor    TEXT NOT NULL,
    type     TEXT NOT NULL,
    unit     TEXT,
    data     TEXT NOT NULL,
    hash     TEXT NOT NULL,
    -- Derived, not hashed: the unit's index (unpermuted ID). Indices of
    -- units in work are close together, so this index grows at its end
    -- instead of touching a random page per event, as an index on the
    -- opaque ID would.
    unit_idx INTEGER
);
CREATE INDEX events_unit ON events(unit_idx, seq) WHERE unit_idx IS NOT NULL;
CREATE INDEX events_ts ON events(ts);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'journal events are append-only: UPDATE refused'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'journal events are append-only: DELETE refused'); END;

-- Held blocks, in import order, with the allocator's position and mark.
CREATE TABLE blocks (
    block_id     TEXT PRIMARY KEY,
    ordinal      INTEGER NOT NULL UNIQUE,
    start        INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    namespace    TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    issued_at    TEXT NOT NULL,
    imported_seq INTEGER NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0,
    reserved     INTEGER NOT NULL DEFAULT 0,
    grant_json   TEXT NOT NULL
);

-- Current state of every unit, derived from its events in the same
-- transaction. Keyed by index (the ID unpermuted with the namespace key):
-- allocation appends at the end of the table instead of at a random page.
CREATE TABLE units (
    idx            INTEGER PRIMARY KEY,
    unit           TEXT NOT NULL,
    block_id       TEXT NOT NULL REFERENCES blocks(block_id),
    product        TEXT NOT NULL,
    gtin           TEXT NOT NULL,
    level          TEXT NOT NULL,
    lot            TEXT,
    station        TEXT,
    allocated_seq  INTEGER NOT NULL,
    allocated_at   TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'allocated',
    final_seq      INTEGER,
    final_at       TEXT,
    scrapped_seq   INTEGER,
    scrap_reason   TEXT,
    shipment       TEXT,
    shipped_seq    INTEGER
);

-- Identity bound to a unit (serial, mac, uid, fw, fwhash, cert), one value per field.
CREATE TABLE bindings (
    unit_idx INTEGER NOT NULL,
    field    TEXT NOT NULL,
    value    TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (unit_idx, field)
) WITHOUT ROWID;
CREATE UNIQUE INDEX bindings_unique_mac ON bindings(value) WHERE field = 'mac';
CREATE UNIQUE INDEX bindings_unique_uid ON bindings(value) WHERE field = 'uid';

-- Component lots (lot.<part>=) and child links (modules in a pack).
CREATE TABLE component_lots (
    unit_idx INTEGER NOT NULL,
    part     TEXT NOT NULL,
    lot      TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (unit_idx, part)
) WITHOUT ROWID;
CREATE TABLE children (
    parent_idx   INTEGER NOT NULL,
    child        TEXT NOT NULL,
    linked_seq   INTEGER NOT NULL,
    unlinked_seq INTEGER
);
CREATE INDEX children_parent ON children(parent_idx);
CREATE UNIQUE INDEX children_linked ON children(child) WHERE unlinked_seq IS NULL;

-- Every RESULT and FINAL, with its measurements.
CREATE TABLE test_results (
    seq          INTEGER PRIMARY KEY,
    unit_idx     INTEGER NOT NULL,
    step         TEXT NOT NULL,
    status       TEXT NOT NULL,
    station      TEXT,
    ts           TEXT NOT NULL,
    measurements TEXT NOT NULL
);
CREATE INDEX test_results_unit ON test_results(unit_idx, step);

-- Idempotency: (station, req) -> the answer given, stored with its effect.
CREATE TABLE requests (
    station     TEXT NOT NULL,
    req         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    TEXT NOT NULL,
    seq      INTEGER,
    ts       TEXT NOT NULL,
    PRIMARY KEY (station, req)
) WITHOUT ROWID;
CREATE INDEX requests_ts ON requests(ts);

-- Small bookkeeping values that are not events (never synced).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 2: the durable label queue, one FIFO per printer.
    r#"
CREATE TABLE label_jobs (
    job         INTEGER PRIMARY KEY,
    printer     TEXT NOT NULL,
    unit_idx    INTEGER NOT NULL,
    unit        TEXT NOT NULL,
    template    TEXT NOT NULL,
    kind        TEXT NOT NULL,       -- final | reprint
    reason      TEXT,
    queued_seq  INTEGER NOT NULL,
    queued_at   TEXT NOT NULL,
    printed_seq INTEGER,
    printed_at  TEXT
);
CREATE INDEX label_jobs_pending ON label_jobs(printer, job) WHERE printed_seq IS NULL;
CREATE INDEX label_jobs_unit ON label_jobs(unit_idx);
"#,
    // 3: shipments, one row per shipped unit, in shipping order per shipment.
    r#"
CREATE TABLE shipped (
    unit_idx INTEGER PRIMARY KEY,
    shipment TEXT NOT NULL,
    buyer    TEXT,
    seq      INTEGER NOT NULL,
    ts       TEXT NOT NULL
);
CREATE INDEX shipped_shipment ON shipped(shipment, seq);
"#,
    // 4: an insert into events must extend the chain by one. This also
    // refuses `REPLACE INTO events` over an existing seq, which deletes
    // without firing the DELETE trigger unless recursive_triggers is on.
    r#"
CREATE TRIGGER events_extend_chain BEFORE INSERT ON events
WHEN NEW.seq IS NULL OR NEW.seq <> (SELECT IFNULL(MAX(seq), 0) + 1 FROM events)
BEGIN SELECT RAISE(ABORT, 'journal events are append-only: an insert must extend the chain (seq = last + 1)'); END;
"#,
];

/// The triggers that make `events` append-only, by name, with the SQL
/// SQLite keeps for each; `journal verify` refuses a journal where one is
/// missing or altered.
pub const GUARD_TRIGGERS: &[(&str, &str)] = &[
    (
        "events_no_update",
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events\nBEGIN SELECT RAISE(ABORT, 'journal events are append-only: UPDATE refused'); END",
    ),
    (
        "events_no_delete",
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events\nBEGIN SELECT RAISE(ABORT, 'journal events are append-only: DELETE refused'); END",
    ),
    (
        "events_extend_chain",
        "CREATE TRIGGER events_extend_chain BEFORE INSERT ON events\nWHEN NEW.seq IS NULL OR NEW.seq <> (SELECT IFNULL(MAX(seq), 0) + 1 FROM events)\nBEGIN SELECT RAISE(ABORT, 'journal events are append-only: an insert must extend the chain (seq = last + 1)'); END",
    ),
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the journal has schema version {found}, newer than this build understands ({CURRENT_VERSION}); run a newer linemark")]
    TooNew { found: i64 },
    #[error("migrating the journal to schema version {version} failed: {source}")]
    Migration {
        version: i64,
        source: rusqlite::Error,
    },
}

/// Applies every migration the file has not seen yet, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<i64, SchemaError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|source| SchemaError::Migration { version: 0, source })?;
    if found > CURRENT_VERSION {
        return Err(SchemaError::TooNew { found });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        let wrap = |source| SchemaError::Migration { version, source };
        let tx = conn.transaction().map_err(wrap)?;
        tx.execute_batch(sql).map_err(wrap)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_triggers_are_the_ones_the_migrations_create() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for (name, sql) in GUARD_TRIGGERS {
            let stored: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(&stored, sql);
        }
    }

    #[test]
    fn an_insert_that_does_not_extend_the_chain_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let insert = |sql: &str| conn.execute(sql, []);
        let row = "'e', 't', 'L', NULL, 'a', 'X', NULL, '{}', 'h'";
        insert(&format!("INSERT INTO events (seq, event_id, ts, line_id, station, actor, type, unit, data, hash) VALUES (1, {row})")).unwrap();
        insert(&format!("INSERT INTO events (seq, event_id, ts, line_id, station, actor, type, unit, data, hash) VALUES (2, {row})")).unwrap();
        for bad in [
            format!("REPLACE INTO events (seq, event_id, ts, line_id, station, actor, type, unit, data, hash) VALUES (2, {row})"),
            format!("INSERT OR REPLACE INTO events (seq, event_id, ts, line_id, station, actor, type, unit, data, hash) VALUES (1, {row})"),
            format!("INSERT INTO events (seq, event_id, ts, line_id, station, actor, type, unit, data, hash) VALUES (5, {row})"),
            format!("INSERT INTO events (event_id, ts, line_id, station, actor, type, unit, data, hash) VALUES ({row})"),
        ] {
            let e = insert(&bad).unwrap_err();
            assert!(e.to_string().contains("append-only"), "{bad}: {e}");
        }
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
