//! The state tables rebuilt from the events alone, and compared with what
//! the file holds: `journal verify` does it for every unit, the daemon at
//! start for the units of the most recent events.
//!
//! Owns: the replay rules (which event sets which column of which row),
//! the row-by-row comparison naming the first difference, the checks of
//! the tables that are not per unit (`blocks`, `requests`, unknown
//! tables). Must not: repair anything; a journal that disagrees with its
//! events is evidence.
//!
//! Every table is either derived here and compared, or the chained
//! `events` table itself; `requests` (the idempotency cache of answers,
//! pruned after a while) is not evidence, but each of its rows that names
//! an event must name one of that station's; `meta` holds nothing yet and
//! must stay empty.

use std::cmp::Ordering;

use rusqlite::types::Value;
use rusqlite::{Connection, Statement};
use serde_json::Value as Json;

use super::{JournalError, SqlContext};
use crate::ids::{IdCodec, UnitId};

/// The first place where stored state and the events disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub table: &'static str,
    /// The row's key, e.g. `idx=42` or `unit_idx=42 field=mac`.
    pub key: String,
    pub column: String,
    pub stored: String,
    pub derived: String,
    /// The last event of the unit (or block) concerned; 0 when none.
    pub seq: i64,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "table {} row {} column {}: the file holds {}, the events give {}",
            self.table, self.key, self.column, self.stored, self.derived
        )
    }
}

/// Why a check stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    #[error("{0}")]
    Differs(Difference),
    #[error("event {seq}: {problem}")]
    BadEvent { seq: i64, problem: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// A per-unit state table: its columns (the first is the unit's index, the
/// next `key` ones complete the row's key) in the order rows are compared.
struct Table {
    name: &'static str,
    cols: &'static [&'static str],
    key: usize,
    /// ORDER BY after the unit's index.
    order: &'static str,
}

const UNITS: usize = 0;
const BINDINGS: usize = 1;
const LOTS: usize = 2;
const CHILDREN: usize = 3;
const TESTS: usize = 4;
const LABELS: usize = 5;
const SHIPPED: usize = 6;

const TABLES: [Table; 7] = [
    Table {
        name: "units",
        cols: &[
            "idx",
            "unit",
            "block_id",
            "product",
            "gtin",
            "level",
            "lot",
            "station",
            "allocated_seq",
            "allocated_at",
            "state",
            "final_seq",
            "final_at",
            "scrapped_seq",
            "scrap_reason",
            "shipment",
            "shipped_seq",
        ],
        key: 0,
        order: "",
    },
    Table {
        name: "bindings",
        cols: &["unit_idx", "field", "value", "seq"],
        key: 1,
        order: ", field",
    },
    Table {
        name: "component_lots",
        cols: &["unit_idx", "part", "lot", "seq"],
        key: 1,
        order: ", part",
    },
    Table {
        name: "children",
        cols: &["parent_idx", "linked_seq", "child", "unlinked_seq"],
        key: 2,
        order: ", linked_seq, child",
    },
    Table {
        name: "test_results",
        cols: &[
            "unit_idx",
            "seq",
            "step",
            "status",
            "station",
            "ts",
            "measurements",
        ],
        key: 1,
        order: ", seq",
    },
    Table {
        name: "label_jobs",
        cols: &[
            "unit_idx",
            "job",
            "printer",
            "unit",
            "template",
            "kind",
            "reason",
            "queued_seq",
            "queued_at",
            "printed_seq",
            "printed_at",
        ],
        key: 1,
        order: ", job",
    },
    Table {
        name: "shipped",
        cols: &["unit_idx", "shipment", "buyer", "seq", "ts"],
        key: 0,
        order: "",
    },
];

/// Every table a journal file may hold.
const KNOWN_TABLES: &[&str] = &[
    "events",
    "blocks",
    "units",
    "bindings",
    "component_lots",
    "children",
    "test_results",
    "requests",
    "meta",
    "label_jobs",
    "shipped",
];

impl Table {
    fn select(&self, one_unit: bool) -> String {
        let filter = if one_unit {
            format!(" WHERE {} = ?1", self.cols[0])
        } else {
            String::new()
        };
        format!(
            "SELECT {} FROM {}{filter} ORDER BY {}{}",
            self.cols.join(", "),
            self.name,
            self.cols[0],
            self.order
        )
    }
}

/// One event of a unit, as replay needs it.
struct UnitEvent {
    seq: i64,
    ts: String,
    station: Option<String>,
    kind: String,
    unit: String,
    data: Json,
}

/// The blocks held, for finding a unit's block.
#[derive(Debug, Default)]
struct Blocks {
    /// (start, count, block_id)
    held: Vec<(u64, u64, String)>,
    /// Each BLOCK_IMPORTED event, in import order: (seq, data).
    imports: Vec<(i64, Json)>,
}

impl Blocks {
    fn load(conn: &Connection) -> Result<Blocks, DeriveError> {
        let mut out = Blocks::default();
        let mut stmt = conn
            .prepare("SELECT seq, data FROM events WHERE type = 'BLOCK_IMPORTED' ORDER BY seq")
            .ctx("reading block imports")?;
        let mut rows = stmt.query([]).ctx("reading block imports")?;
        while let Some(r) = rows.next().ctx("reading block imports")? {
            let seq: i64 = r.get(0).ctx("reading block imports")?;
            let data: String = r.get(1).ctx("reading block imports")?;
            let v: Json = serde_json::from_str(&data).map_err(|e| bad(seq, e.to_string()))?;
            let (Some(start), Some(count), Some(id)) = (
                v["start"].as_u64(),
                v["count"].as_u64(),
                v["block_id"].as_str(),
            ) else {
                return Err(bad(seq, "BLOCK_IMPORTED without block_id, start and count"));
            };
            out.held.push((start, count, id.to_string()));
            out.imports.push((seq, v));
        }
        Ok(out)
    }

    fn of(&self, index: u64) -> Option<&str> {
        self.held
            .iter()
            .find(|(s, c, _)| index >= *s && index < s + c)
            .map(|(_, _, id)| id.as_str())
    }
}

fn bad(seq: i64, problem: impl Into<String>) -> DeriveError {
    DeriveError::BadEvent {
        seq,
        problem: problem.into(),
    }
}

fn text(v: &Json) -> Value {
    match v.as_str() {
        Some(s) => Value::Text(s.to_string()),
        None => Value::Null,
    }
}

fn opt(v: &Option<String>) -> Value {
    v.clone().map_or(Value::Null, Value::Text)
}

/// Replays one unit's events (in seq order) into the rows each table
/// should hold for it, each table's rows in compare order.
fn derive_unit(
    idx: i64,
    events: &[UnitEvent],
    blocks: &Blocks,
) -> Result<[Vec<Vec<Value>>; 7], DeriveError> {
    let mut rows: [Vec<Vec<Value>>; 7] = Default::default();
    let int = Value::Integer;
    for ev in events {
        let d = &ev.data;
        let seq = ev.seq;
        let ts = Value::Text(ev.ts.clone());
        match ev.kind.as_str() {
            "ALLOCATED" => {
                if !rows[UNITS].is_empty() {
                    return Err(bad(seq, format!("unit {} is allocated twice", ev.unit)));
                }
                let block = blocks
                    .of(idx as u64)
                    .ok_or_else(|| bad(seq, format!("unit {} is outside every block", ev.unit)))?;
                rows[UNITS].push(vec![
                    int(idx),
                    Value::Text(ev.unit.clone()),
                    Value::Text(block.to_string()),
                    text(&d["product"]),
                    text(&d["gtin"]),
                    text(&d["level"]),
                    text(&d["lot"]),
                    opt(&ev.station),
                    int(seq),
                    ts,
                    Value::Text("allocated".into()),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ]);
            }
            "BOUND" => {
                if let Some(fields) = d["fields"].as_object() {
                    for (f, v) in fields {
                        rows[BINDINGS].push(vec![
                            int(idx),
                            Value::Text(f.clone()),
                            text(v),
                            int(seq),
                        ]);
                    }
                }
                if let Some(lots) = d["lots"].as_object() {
                    for (p, l) in lots {
                        rows[LOTS].push(vec![int(idx), Value::Text(p.clone()), text(l), int(seq)]);
                    }
                }
                for c in d["children"].as_array().into_iter().flatten() {
                    rows[CHILDREN].push(vec![int(idx), int(seq), text(c), Value::Null]);
                }
            }
            "CHILD_REPLACED" => {
                let old = text(&d["old"]);
                let link = rows[CHILDREN]
                    .iter_mut()
                    .find(|r| r[2] == old && r[3] == Value::Null)
                    .ok_or_else(|| bad(seq, "CHILD_REPLACED of a child that was not linked"))?;
                link[3] = int(seq);
                rows[CHILDREN].push(vec![int(idx), int(seq), text(&d["new"]), Value::Null]);
            }
            "TEST_RESULT" | "FINAL_PASS" | "FINAL_FAIL" => {
                let measurements = serde_json::to_string(&d["measurements"])
                    .map_err(|e| bad(seq, e.to_string()))?;
                rows[TESTS].push(vec![
                    int(idx),
                    int(seq),
                    text(&d["step"]),
                    text(&d["status"]),
                    opt(&ev.station),
                    ts.clone(),
                    Value::Text(measurements),
                ]);
                if ev.kind != "TEST_RESULT" {
                    let u = unit_row(&mut rows, seq)?;
                    u[10] = Value::Text(
                        if ev.kind == "FINAL_PASS" {
                            "passed"
                        } else {
                            "failed"
                        }
                        .into(),
                    );
                    u[11] = int(seq);
                    u[12] = ts;
                }
            }
            "SCRAPPED" => {
                let u = unit_row(&mut rows, seq)?;
                u[10] = Value::Text("scrapped".into());
                u[13] = int(seq);
                u[14] = text(&d["reason"]);
            }
            "SHIPPED" => {
                let u = unit_row(&mut rows, seq)?;
                u[15] = text(&d["shipment"]);
                u[16] = int(seq);
                rows[SHIPPED].push(vec![
                    int(idx),
                    text(&d["shipment"]),
                    text(&d["to"]),
                    int(seq),
                    ts,
                ]);
            }
            "LABEL_QUEUED" | "LABEL_REPRINTED" => {
                let job = d["job"]
                    .as_i64()
                    .ok_or_else(|| bad(seq, "label event without job"))?;
                let kind = if ev.kind == "LABEL_QUEUED" {
                    "final"
                } else {
                    "reprint"
                };
                rows[LABELS].push(vec![
                    int(idx),
                    int(job),
                    text(&d["printer"]),
                    Value::Text(ev.unit.clone()),
                    text(&d["template"]),
                    Value::Text(kind.into()),
                    text(&d["reason"]),
                    int(seq),
                    ts,
                    Value::Null,
                    Value::Null,
                ]);
            }
            "LABEL_PRINTED" => {
                let job = d["job"]
                    .as_i64()
                    .ok_or_else(|| bad(seq, "label event without job"))?;
                let row = rows[LABELS]
                    .iter_mut()
                    .find(|r| r[1] == int(job))
                    .ok_or_else(|| {
                        bad(
                            seq,
                            format!("LABEL_PRINTED of job {job}, never queued for this unit"),
                        )
                    })?;
                row[9] = int(seq);
                row[10] = ts;
            }
            _ => {}
        }
    }
    // The key columns lead each table's column list, in ORDER BY order.
    for (t, r) in TABLES.iter().zip(rows.iter_mut()) {
        r.sort_by(|a, b| cmp_rows(&a[..=t.key], &b[..=t.key]));
    }
    Ok(rows)
}

fn unit_row(rows: &mut [Vec<Vec<Value>>; 7], seq: i64) -> Result<&mut Vec<Value>, DeriveError> {
    rows[UNITS]
        .first_mut()
        .ok_or_else(|| bad(seq, "an event for a unit that was never allocated"))
}

/// SQLite's order: NULL, then numbers, then text (BINARY collation).
fn cmp_value(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 1,
            Value::Text(_) => 2,
            Value::Blob(_) => 3,
        }
    }
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn cmp_rows(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp_value(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(t) => format!("{t:?}"),
        Value::Blob(b) => format!("a {}-byte blob", b.len()),
    }
}

fn key_of(t: &Table, row: &[Value]) -> String {
    t.cols[..=t.key]
        .iter()
        .zip(row)
        .map(|(c, v)| format!("{c}={}", show(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compares one table's stored rows for a unit with the derived ones.
fn compare(
    t: &Table,
    stored: &[Vec<Value>],
    derived: &[Vec<Value>],
    seq: i64,
) -> Result<(), Difference> {
    let mut s = stored.iter();
    let mut d = derived.iter();
    loop {
        match (s.next(), d.next()) {
            (None, None) => return Ok(()),
            (Some(row), None) => {
                return Err(Difference {
                    table: t.name,
                    key: key_of(t, row),
                    column: "(row)".into(),
                    stored: "a row".into(),
                    derived: "no such row".into(),
                    seq,
                })
            }
            (None, Some(row)) => {
                return Err(Difference {
                    table: t.name,
                    key: key_of(t, row),
                    column: "(row)".into(),
                    stored: "no such row".into(),
                    derived: "a row".into(),
                    seq,
                })
            }
            (Some(a), Some(b)) => {
                if let Some(i) = (0..t.cols.len()).find(|&i| a.get(i) != b.get(i)) {
                    let keyed = if i <= t.key { a } else { b };
                    return Err(Difference {
                        table: t.name,
                        key: key_of(t, keyed),
                        column: t.cols[i].to_string(),
                        stored: a.get(i).map_or("nothing".into(), show),
                        derived: b.get(i).map_or("nothing".into(), show),
                        seq,
                    });
                }
            }
        }
    }
}

fn read_row(r: &rusqlite::Row<'_>, n: usize) -> Result<Vec<Value>, JournalError> {
    (0..n)
        .map(|i| r.get::<_, Value>(i))
        .collect::<Result<_, _>>()
        .ctx("reading a state row")
}

fn unit_event(r: &rusqlite::Row<'_>, codec: &IdCodec) -> Result<(i64, UnitEvent), DeriveError> {
    let seq: i64 = r.get(0).ctx("reading an event")?;
    let idx: Option<i64> = r.get(6).ctx("reading an event")?;
    let unit: String = r.get(4).ctx("reading an event")?;
    let id = UnitId::parse(&unit).map_err(|e| bad(seq, format!("unit {unit:?}: {e}")))?;
    let index = codec.index_of(id) as i64;
    if idx != Some(index) {
        return Err(bad(seq, format!("events.unit_idx {idx:?} does not belong to unit {unit}: the index column was altered")));
    }
    let data: String = r.get(5).ctx("reading an event")?;
    let data =
        serde_json::from_str(&data).map_err(|e| bad(seq, format!("data is not JSON: {e}")))?;
    Ok((
        index,
        UnitEvent {
            seq,
            ts: r.get(1).ctx("reading an event")?,
            station: r.get(2).ctx("reading an event")?,
            kind: r.get(3).ctx("reading an event")?,
            unit,
            data,
        },
    ))
}

/// A stored row of a unit that has no events at all.
fn orphan(t: &Table, row: &[Value]) -> DeriveError {
    DeriveError::Differs(Difference {
        table: t.name,
        key: key_of(t, row),
        column: "(row)".into(),
        stored: "a row".into(),
        derived: "no such row (the unit has no events)".into(),
        seq: 0,
    })
}

const UNIT_EVENTS: &str = "SELECT seq, ts, station, type, unit, data, unit_idx FROM events";

/// Every unit's rows in every per-unit table, and the tables that are not
/// per unit: one pass over the events by unit, merged with one ordered
/// pass over each table. Memory holds one unit at a time.
pub fn check_all(conn: &Connection, codec: &IdCodec) -> Result<(), DeriveError> {
    check_tables_known(conn)?;
    let unindexed: Option<i64> = conn
        .query_row(
            "SELECT seq FROM events WHERE unit IS NOT NULL AND unit_idx IS NULL LIMIT 1",
            [],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .ctx("checking the unit index column")?;
    if let Some(seq) = unindexed {
        return Err(bad(
            seq,
            "events.unit_idx is empty for an event of a unit: the index column was altered",
        ));
    }
    let blocks = Blocks::load(conn)?;
    let mut stmts: Vec<Statement<'_>> = TABLES
        .iter()
        .map(|t| conn.prepare(&t.select(false)).ctx("reading a state table"))
        .collect::<Result<_, _>>()?;
    let mut cursors = stmts
        .iter_mut()
        .map(|s| s.query([]).ctx("reading a state table"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut peeked: Vec<Option<Vec<Value>>> = Vec::with_capacity(TABLES.len());
    for (t, c) in TABLES.iter().zip(cursors.iter_mut()) {
        peeked.push(match c.next().ctx("reading a state table")? {
            Some(r) => Some(read_row(r, t.cols.len())?),
            None => None,
        });
    }
    let mut events = conn
        .prepare(&format!(
            "{UNIT_EVENTS} WHERE unit_idx IS NOT NULL ORDER BY unit_idx, seq"
        ))
        .ctx("reading events by unit")?;
    let mut rows = events.query([]).ctx("reading events by unit")?;
    let mut current: Option<(i64, Vec<UnitEvent>)> = None;
    loop {
        let next = match rows.next().ctx("reading events by unit")? {
            Some(r) => Some(unit_event(r, codec)?),
            None => None,
        };
        let finish = match (&current, &next) {
            (Some((a, _)), Some((b, _))) => a != b,
            (Some(_), None) => true,
            _ => false,
        };
        if finish {
            if let Some((idx, evs)) = current.take() {
                let derived = derive_unit(idx, &evs, &blocks)?;
                let last = evs.last().map_or(0, |e| e.seq);
                for (i, t) in TABLES.iter().enumerate() {
                    let mut stored = Vec::new();
                    loop {
                        let order = match &peeked[i] {
                            None => break,
                            Some(row) => cmp_value(&row[0], &Value::Integer(idx)),
                        };
                        match order {
                            Ordering::Greater => break,
                            Ordering::Less => {
                                // A row of a unit that has no events at all.
                                let row = peeked[i].take().unwrap_or_default();
                                return Err(orphan(t, &row));
                            }
                            Ordering::Equal => {
                                let next = match cursors[i].next().ctx("reading a state table")? {
                                    Some(r) => Some(read_row(r, t.cols.len())?),
                                    None => None,
                                };
                                if let Some(row) = std::mem::replace(&mut peeked[i], next) {
                                    stored.push(row);
                                }
                            }
                        }
                    }
                    compare(t, &stored, &derived[i], last).map_err(DeriveError::Differs)?;
                }
            }
        }
        match next {
            None => break,
            Some((idx, ev)) => match &mut current {
                Some((_, evs)) => evs.push(ev),
                None => current = Some((idx, vec![ev])),
            },
        }
    }
    for (t, row) in TABLES.iter().zip(peeked) {
        if let Some(row) = row {
            return Err(orphan(t, &row));
        }
    }
    check_blocks(conn, &blocks)?;
    check_requests(conn)?;
    Ok(())
}

/// The units of the last `recent` events, each rebuilt from all its events
/// and compared: what the daemon runs at start, in milliseconds.
pub fn check_recent(conn: &Connection, codec: &IdCodec, recent: i64) -> Result<usize, DeriveError> {
    check_tables_known(conn)?;
    let blocks = Blocks::load(conn)?;
    let units: Vec<i64> = conn
        .prepare(
            "SELECT DISTINCT unit_idx FROM events WHERE seq > (SELECT IFNULL(MAX(seq), 0) FROM events) - ?1 AND unit_idx IS NOT NULL",
        )
        .and_then(|mut s| s.query_map([recent], |r| r.get(0))?.collect::<Result<_, _>>())
        .ctx("finding recently changed units")?;
    let mut by_unit = conn
        .prepare(&format!("{UNIT_EVENTS} WHERE unit_idx = ?1 ORDER BY seq"))
        .ctx("reading a unit's events")?;
    let mut tables: Vec<Statement<'_>> = TABLES
        .iter()
        .map(|t| conn.prepare(&t.select(true)).ctx("reading a state table"))
        .collect::<Result<_, _>>()?;
    for &idx in &units {
        let mut evs = Vec::new();
        let mut rows = by_unit.query([idx]).ctx("reading a unit's events")?;
        while let Some(r) = rows.next().ctx("reading a unit's events")? {
            evs.push(unit_event(r, codec)?.1);
        }
        let derived = derive_unit(idx, &evs, &blocks)?;
        let last = evs.last().map_or(0, |e| e.seq);
        for (i, t) in TABLES.iter().enumerate() {
            let stored: Vec<Vec<Value>> = {
                let mut rows = tables[i].query([idx]).ctx("reading a state table")?;
                let mut v = Vec::new();
                while let Some(r) = rows.next().ctx("reading a state table")? {
                    v.push(read_row(r, t.cols.len())?);
                }
                v
            };
            compare(t, &stored, &derived[i], last).map_err(DeriveError::Differs)?;
        }
    }
    check_rows_have_events(conn)?;
    check_blocks(conn, &blocks)?;
    check_requests(conn)?;
    Ok(units.len())
}

/// Every state row names the event that made it (by seq), and that event
/// is of the row's own unit: a row added for a unit that has no events, or
/// one made to look older, is found without rebuilding every unit. One
/// lookup by primary key per row.
fn check_rows_have_events(conn: &Connection) -> Result<(), DeriveError> {
    const MADE_BY: [(usize, &str); 7] = [
        (UNITS, "allocated_seq"),
        (BINDINGS, "seq"),
        (LOTS, "seq"),
        (CHILDREN, "linked_seq"),
        (TESTS, "seq"),
        (LABELS, "queued_seq"),
        (SHIPPED, "seq"),
    ];
    for (i, seq_col) in MADE_BY {
        let t = &TABLES[i];
        let cols: Vec<String> = t.cols.iter().map(|c| format!("r.{c}")).collect();
        let sql = format!(
            "SELECT {} FROM {} r WHERE NOT EXISTS
               (SELECT 1 FROM events e WHERE e.seq = r.{seq_col} AND e.unit_idx = r.{}) LIMIT 1",
            cols.join(", "),
            t.name,
            t.cols[0]
        );
        let mut stmt = conn
            .prepare(&sql)
            .ctx("checking state rows against events")?;
        let mut rows = stmt.query([]).ctx("checking state rows against events")?;
        if let Some(r) = rows.next().ctx("checking state rows against events")? {
            let row = read_row(r, t.cols.len())?;
            return Err(DeriveError::Differs(Difference {
                table: t.name,
                key: key_of(t, &row),
                column: seq_col.to_string(),
                stored: "a row".into(),
                derived: "no such row (no event of this unit made it)".into(),
                seq: 0,
            }));
        }
    }
    Ok(())
}

fn check_tables_known(conn: &Connection) -> Result<(), DeriveError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>())
        .ctx("listing tables")?;
    if let Some(extra) = names.iter().find(|n| !KNOWN_TABLES.contains(&n.as_str())) {
        return Err(DeriveError::Differs(Difference {
            table: "sqlite_master",
            key: format!("name={extra:?}"),
            column: "(table)".into(),
            stored: "a table".into(),
            derived: "no such table in a linemark journal".into(),
            seq: 0,
        }));
    }
    let meta: i64 = conn
        .query_row("SELECT COUNT(*) FROM meta", [], |r| r.get(0))
        .ctx("reading meta")?;
    if meta > 0 {
        return Err(DeriveError::Differs(Difference {
            table: "meta",
            key: "(any)".into(),
            column: "(row)".into(),
            stored: format!("{meta} rows"),
            derived: "no rows".into(),
            seq: 0,
        }));
    }
    Ok(())
}

/// Blocks in import order against the BLOCK_IMPORTED events; the allocator's
/// position must be past every ID allocated from the block.
fn check_blocks(conn: &Connection, blocks: &Blocks) -> Result<(), DeriveError> {
    let imports = &blocks.imports;
    let mut st = conn
        .prepare("SELECT ordinal, block_id, start, count, namespace, key_id, issuer, issued_at, imported_seq, used, reserved FROM blocks ORDER BY ordinal")
        .ctx("reading blocks")?;
    let stored: Vec<Vec<Value>> = st
        .query_map([], |r| (0..11).map(|i| r.get::<_, Value>(i)).collect())
        .and_then(|m| m.collect::<Result<_, _>>())
        .ctx("reading blocks")?;
    const COLS: [&str; 9] = [
        "ordinal",
        "block_id",
        "start",
        "count",
        "namespace",
        "key_id",
        "issuer",
        "issued_at",
        "imported_seq",
    ];
    let diff = |key: String, column: &str, stored: String, derived: String, seq: i64| {
        DeriveError::Differs(Difference {
            table: "blocks",
            key,
            column: column.into(),
            stored,
            derived,
            seq,
        })
    };
    if stored.len() != imports.len() {
        return Err(diff(
            "(all)".into(),
            "(row count)",
            stored.len().to_string(),
            imports.len().to_string(),
            0,
        ));
    }
    for (i, ((seq, d), row)) in imports.iter().zip(&stored).enumerate() {
        let num = |k: &str| d[k].as_i64().map_or(Value::Null, Value::Integer);
        let want = [
            Value::Integer(i as i64),
            text(&d["block_id"]),
            num("start"),
            num("count"),
            text(&d["namespace"]),
            text(&d["key_id"]),
            text(&d["issuer"]),
            text(&d["issued_at"]),
            Value::Integer(*seq),
        ];
        let key = format!("ordinal={i}");
        if let Some(c) = (0..COLS.len()).find(|&c| row[c] != want[c]) {
            return Err(diff(key, COLS[c], show(&row[c]), show(&want[c]), *seq));
        }
        let (Value::Integer(used), Value::Integer(reserved)) = (&row[9], &row[10]) else {
            return Err(diff(key, "used", show(&row[9]), "a number".into(), *seq));
        };
        // The highest index of a unit of the block with any event (its
        // first event is ALLOCATED; the index column is checked against
        // each unit's ID). One index lookup.
        let (start, count) = (
            d["start"].as_i64().unwrap_or(0),
            d["count"].as_i64().unwrap_or(0),
        );
        let top: Option<i64> = conn
            .query_row(
                "SELECT MAX(unit_idx) FROM events WHERE unit_idx >= ?1 AND unit_idx < ?2",
                [start, start.saturating_add(count)],
                |r| r.get(0),
            )
            .ctx("finding a block's last allocation")?;
        let allocated = top.map_or(0, |t| t - start + 1);
        let skipped = d["skipped"].as_i64().unwrap_or(0);
        let floor = allocated.max(skipped);
        if *used < floor || *used > d["count"].as_i64().unwrap_or(i64::MAX) {
            // A lowered position would hand out allocated IDs again.
            return Err(diff(
                key,
                "used",
                used.to_string(),
                format!("at least {floor} (IDs already allocated from the block)"),
                *seq,
            ));
        }
        if reserved < used {
            return Err(diff(
                key,
                "reserved",
                reserved.to_string(),
                format!("at least used ({used})"),
                *seq,
            ));
        }
    }
    Ok(())
}

/// Each stored answer that names an event names one of that station's.
fn check_requests(conn: &Connection) -> Result<(), DeriveError> {
    let forged: Option<(String, String, i64)> = conn
        .query_row(
            "SELECT r.station, r.req, r.seq FROM requests r LEFT JOIN events e ON e.seq = r.seq
             WHERE r.seq IS NOT NULL AND (e.seq IS NULL OR e.station IS NOT r.station) LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .ctx("checking stored answers")?;
    if let Some((station, req, seq)) = forged {
        return Err(DeriveError::Differs(Difference {
            table: "requests",
            key: format!("station={station:?} req={req:?}"),
            column: "seq".into(),
            stored: seq.to_string(),
            derived: format!("an event of station {station}"),
            seq,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    #[test]
    fn values_order_as_sqlite_orders_them() {
        let mut v = vec![
            t("b"),
            Value::Integer(3),
            Value::Null,
            t("B"),
            Value::Integer(-1),
            t("ab"),
        ];
        v.sort_by(cmp_value);
        assert_eq!(
            v,
            vec![
                Value::Null,
                Value::Integer(-1),
                Value::Integer(3),
                t("B"),
                t("ab"),
                t("b")
            ]
        );
        let sorted = Connection::open_in_memory()
            .unwrap()
            .prepare("SELECT x FROM (SELECT 'b' AS x UNION ALL SELECT 3 UNION ALL SELECT NULL UNION ALL SELECT 'B' UNION ALL SELECT -1 UNION ALL SELECT 'ab') ORDER BY x")
            .unwrap()
            .query_map([], |r| r.get::<_, Value>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(v, sorted);
    }

    #[test]
    fn the_first_difference_names_table_key_column_and_both_values() {
        let units = &TABLES[UNITS];
        let mut stored = vec![Value::Integer(7), t("UNIT"), t("blk")];
        stored.resize(units.cols.len(), Value::Null);
        let mut derived = stored.clone();
        stored[10] = t("passed");
        derived[10] = t("allocated");
        let d = compare(units, &[stored.clone()], &[derived.clone()], 42).unwrap_err();
        assert_eq!(
            (d.table, d.key.as_str(), d.column.as_str()),
            ("units", "idx=7", "state")
        );
        assert_eq!(
            (d.stored.as_str(), d.derived.as_str(), d.seq),
            ("\"passed\"", "\"allocated\"", 42)
        );
        assert_eq!(
            d.to_string(),
            "table units row idx=7 column state: the file holds \"passed\", the events give \"allocated\""
        );
        // A row too many, a row missing.
        let extra = compare(units, &[stored.clone()], &[], 1).unwrap_err();
        assert_eq!(
            (extra.column.as_str(), extra.derived.as_str()),
            ("(row)", "no such row")
        );
        let missing = compare(units, &[], &[derived.clone()], 1).unwrap_err();
        assert_eq!(missing.stored, "no such row");
        assert!(compare(units, &[derived.clone()], &[derived], 1).is_ok());
    }

    fn ev(seq: i64, kind: &str, data: serde_json::Value) -> UnitEvent {
        UnitEvent {
            seq,
            ts: format!("2026-12-03T10:00:{seq:02}.000Z"),
            station: Some("s1".into()),
            kind: kind.into(),
            unit: "UNIT".into(),
            data,
        }
    }

    #[test]
    fn replay_sets_each_tables_rows_from_the_events() {
        let blocks = Blocks {
            held: vec![(0, 100, "blk".into())],
            imports: Vec::new(),
        };
        let events = vec![
            ev(
                1,
                "ALLOCATED",
                serde_json::json!({"product": "P", "gtin": "0950", "level": "item"}),
            ),
            ev(
                2,
                "BOUND",
                serde_json::json!({"fields": {"serial": "S1"}, "children": ["C1"]}),
            ),
            ev(
                3,
                "FINAL_PASS",
                serde_json::json!({"step": "final", "status": "PASS", "measurements": {"v": "1"}}),
            ),
            ev(
                4,
                "LABEL_QUEUED",
                serde_json::json!({"job": 9, "printer": "p", "template": "t"}),
            ),
            ev(5, "LABEL_PRINTED", serde_json::json!({"job": 9})),
            ev(
                6,
                "CHILD_REPLACED",
                serde_json::json!({"old": "C1", "new": "C2", "reason": "r"}),
            ),
            ev(
                7,
                "SHIPPED",
                serde_json::json!({"shipment": "SH", "to": "ACME"}),
            ),
        ];
        let rows = derive_unit(5, &events, &blocks).unwrap();
        let u = &rows[UNITS][0];
        assert_eq!(
            (&u[2], &u[10], &u[11], &u[15], &u[16]),
            (
                &t("blk"),
                &t("passed"),
                &Value::Integer(3),
                &t("SH"),
                &Value::Integer(7)
            )
        );
        assert_eq!(
            rows[BINDINGS],
            vec![vec![
                Value::Integer(5),
                t("serial"),
                t("S1"),
                Value::Integer(2)
            ]]
        );
        assert_eq!(
            rows[CHILDREN],
            vec![
                vec![
                    Value::Integer(5),
                    Value::Integer(2),
                    t("C1"),
                    Value::Integer(6)
                ],
                vec![Value::Integer(5), Value::Integer(6), t("C2"), Value::Null],
            ]
        );
        assert_eq!(rows[TESTS][0][6], t("{\"v\":\"1\"}"));
        assert_eq!(rows[LABELS][0][9], Value::Integer(5));
        assert_eq!(rows[SHIPPED][0][2], t("ACME"));
        // An event before the allocation, or a print of a job never queued, is itself a finding.
        assert!(
            derive_unit(5, &events[1..], &blocks).is_err(),
            "a final pass of no unit"
        );
        let alloc = || {
            ev(
                1,
                "ALLOCATED",
                serde_json::json!({"product": "P", "gtin": "0950", "level": "item"}),
            )
        };
        assert!(derive_unit(
            5,
            &[
                alloc(),
                ev(2, "LABEL_PRINTED", serde_json::json!({"job": 1}))
            ],
            &blocks
        )
        .is_err());
        assert!(
            derive_unit(5, &[alloc(), alloc()], &blocks).is_err(),
            "allocated twice"
        );
        assert!(
            derive_unit(500, &events[..1], &blocks).is_err(),
            "outside every block"
        );
    }
}
