//! Read-only queries over the journal for the CLI, reports and the web page.
//!
//! Owns: SELECTs that shape rows into views. Must not: write, or be called
//! on the writer's connection (readers open their own).

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::event::HashInput;
use super::{Event, JournalError, SqlContext};
use crate::ids::{IdCodec, UnitId};

/// A held block with its use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockRow {
    pub block_id: String,
    pub start: u64,
    pub count: u64,
    pub used: u64,
    pub issuer: String,
    pub issued_at: String,
    pub imported_seq: i64,
}

impl BlockRow {
    pub fn left(&self) -> u64 {
        self.count - self.used
    }
}

/// Every held block, in the order IDs are taken from them.
pub fn blocks(conn: &Connection) -> Result<Vec<BlockRow>, JournalError> {
    let mut stmt = conn
        .prepare(
            "SELECT block_id, start, count, used, issuer, issued_at, imported_seq FROM blocks ORDER BY ordinal",
        )
        .ctx("listing blocks")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(BlockRow {
                block_id: r.get(0)?,
                start: r.get::<_, i64>(1)? as u64,
                count: r.get::<_, i64>(2)? as u64,
                used: r.get::<_, i64>(3)? as u64,
                issuer: r.get(4)?,
                issued_at: r.get(5)?,
                imported_seq: r.get(6)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("listing blocks")?;
    Ok(rows)
}

/// A unit's current state and its whole history.
#[derive(Debug, Clone, Serialize)]
pub struct UnitView {
    pub unit: String,
    pub product: String,
    pub gtin: String,
    pub level: String,
    pub lot: Option<String>,
    pub state: String,
    pub allocated_at: String,
    pub allocated_by: Option<String>,
    pub final_at: Option<String>,
    pub scrap_reason: Option<String>,
    pub shipment: Option<String>,
    /// (field, value) of bound identity: serial, mac, uid, fw, ...
    pub bindings: Vec<(String, String)>,
    pub component_lots: Vec<(String, String)>,
    /// (child, linked seq, unlinked seq)
    pub children: Vec<(String, i64, Option<i64>)>,
    pub results: Vec<TestResultRow>,
    pub events: Vec<EventView>,
}

/// One RESULT or FINAL.
#[derive(Debug, Clone, Serialize)]
pub struct TestResultRow {
    pub seq: i64,
    pub step: String,
    pub status: String,
    pub station: Option<String>,
    pub ts: String,
    pub measurements: serde_json::Value,
}

/// An event with its data as JSON, for display.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    #[serde(flatten)]
    pub event: Event,
    pub data: serde_json::Value,
}

fn pairs(conn: &Connection, sql: &str, idx: i64) -> Result<Vec<(String, String)>, JournalError> {
    let mut s = conn.prepare_cached(sql).ctx("reading a unit")?;
    let rows = s
        .query_map([idx], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("reading a unit")?;
    Ok(rows)
}

/// Events of one unit, oldest first.
pub fn unit_events(
    conn: &Connection,
    codec: &IdCodec,
    unit: UnitId,
) -> Result<Vec<EventView>, JournalError> {
    let idx = codec.index_of(unit) as i64;
    let mut s = conn
        .prepare_cached(
            "SELECT seq, event_id, ts, line_id, station, actor, type, unit, data, hash
             FROM events WHERE unit_idx = ?1 ORDER BY seq",
        )
        .ctx("reading a unit's events")?;
    let rows = s
        .query_map([idx], |r| {
            let data: String = r.get(8)?;
            Ok(EventView {
                data: serde_json::from_str(&data)
                    .unwrap_or(serde_json::Value::String(data.clone())),
                event: Event {
                    seq: r.get(0)?,
                    event_id: r.get(1)?,
                    ts: r.get(2)?,
                    line_id: r.get(3)?,
                    station: r.get(4)?,
                    actor: r.get(5)?,
                    kind: r.get(6)?,
                    unit: r.get(7)?,
                    data,
                    hash: r.get(9)?,
                },
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("reading a unit's events")?;
    Ok(rows)
}

/// Calls `f` with every event after `after`, oldest first, as borrowed
/// columns plus its stored hash, until `f` answers `false`.
pub fn for_each_event_after(
    conn: &Connection,
    after: i64,
    mut f: impl FnMut(&HashInput<'_>, &str) -> bool,
) -> Result<(), JournalError> {
    let mut s = conn
        .prepare_cached(
            "SELECT seq, event_id, ts, line_id, station, actor, type, unit, data, hash
             FROM events WHERE seq > ?1 ORDER BY seq",
        )
        .ctx("reading events")?;
    let mut rows = s.query([after]).ctx("reading events")?;
    while let Some(r) = rows.next().ctx("reading events")? {
        let text = |i: usize| r.get_ref(i).and_then(|v| Ok(v.as_str()?));
        let opt = |i: usize| r.get_ref(i).and_then(|v| Ok(v.as_str_or_null()?));
        let input = HashInput {
            seq: r.get(0).ctx("reading events")?,
            event_id: text(1).ctx("reading events")?,
            ts: text(2).ctx("reading events")?,
            line_id: text(3).ctx("reading events")?,
            station: opt(4).ctx("reading events")?,
            actor: text(5).ctx("reading events")?,
            kind: text(6).ctx("reading events")?,
            unit: opt(7).ctx("reading events")?,
            data: text(8).ctx("reading events")?,
        };
        if !f(&input, text(9).ctx("reading events")?) {
            break;
        }
    }
    Ok(())
}

/// The stored hash of event `seq`; for seq 0, the 64 zeros the chain starts from.
pub fn hash_at(conn: &Connection, seq: i64) -> Result<Option<String>, JournalError> {
    if seq == 0 {
        return Ok(Some("0".repeat(64)));
    }
    conn.query_row("SELECT hash FROM events WHERE seq = ?1", [seq], |r| {
        r.get(0)
    })
    .optional()
    .ctx("reading an event's hash")
}

/// An event inside a time window, with its unit's product and lot.
pub struct WindowEvent<'a> {
    pub seq: i64,
    pub ts: &'a str,
    pub station: Option<&'a str>,
    pub actor: &'a str,
    pub kind: &'a str,
    pub unit: Option<&'a str>,
    /// Canonical JSON of the data object.
    pub data: &'a str,
    pub product: Option<&'a str>,
    pub lot: Option<&'a str>,
}

/// Calls `f` with every event whose `ts` is in `[from, to)` (RFC 3339 UTC
/// strings as the journal stores them), in journal order. The seq range is
/// found over the `ts` index, then read sequentially by seq with the time
/// checked per row (cheaper than one index lookup per row; exact even if
/// the clock once stepped back).
pub fn for_each_event_between(
    conn: &Connection,
    from: &str,
    to: &str,
    mut f: impl FnMut(&WindowEvent<'_>),
) -> Result<(), JournalError> {
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT MIN(seq), MAX(seq) FROM events WHERE ts >= ?1 AND ts < ?2")
        .and_then(|mut s| s.query_row([from, to], |r| Ok((r.get(0)?, r.get(1)?))))
        .ctx("finding a time window")?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(());
    };
    let mut s = conn
        .prepare_cached(
            "SELECT e.seq, e.ts, e.station, e.actor, e.type, e.unit, e.data, u.product, u.lot
             FROM events e LEFT JOIN units u ON u.idx = e.unit_idx
             WHERE e.seq BETWEEN ?1 AND ?2 ORDER BY e.seq",
        )
        .ctx("reading a time window")?;
    let mut rows = s.query([lo, hi]).ctx("reading a time window")?;
    while let Some(r) = rows.next().ctx("reading a time window")? {
        let text = |i: usize| r.get_ref(i).and_then(|v| Ok(v.as_str()?));
        let opt = |i: usize| r.get_ref(i).and_then(|v| Ok(v.as_str_or_null()?));
        let ts = text(1).ctx("reading a time window")?;
        if ts < from || ts >= to {
            continue;
        }
        let ev = WindowEvent {
            seq: r.get(0).ctx("reading a time window")?,
            ts,
            station: opt(2).ctx("reading a time window")?,
            actor: text(3).ctx("reading a time window")?,
            kind: text(4).ctx("reading a time window")?,
            unit: opt(5).ctx("reading a time window")?,
            data: text(6).ctx("reading a time window")?,
            product: opt(7).ctx("reading a time window")?,
            lot: opt(8).ctx("reading a time window")?,
        };
        f(&ev);
    }
    Ok(())
}

/// IDs left across all held blocks.
pub fn ids_left(conn: &Connection) -> Result<u64, JournalError> {
    Ok(blocks(conn)?.iter().map(BlockRow::left).sum())
}

/// The seq of the last event of type `kind` at or before `seq`.
pub fn last_of_type_at_or_before(
    conn: &Connection,
    kind: &str,
    seq: i64,
) -> Result<Option<i64>, JournalError> {
    conn.query_row(
        "SELECT MAX(seq) FROM events WHERE type = ?1 AND seq <= ?2",
        rusqlite::params![kind, seq],
        |r| r.get(0),
    )
    .ctx("finding an event by type")
}

/// The unit's view, or `None` when this journal never allocated it.
pub fn unit(
    conn: &Connection,
    codec: &IdCodec,
    unit: UnitId,
) -> Result<Option<UnitView>, JournalError> {
    let idx = codec.index_of(unit) as i64;
    let base = conn
        .query_row(
            "SELECT unit, product, gtin, level, lot, state, allocated_at, station, final_at, scrap_reason, shipment
             FROM units WHERE idx = ?1",
            [idx],
            |r| {
                Ok(UnitView {
                    unit: r.get(0)?,
                    product: r.get(1)?,
                    gtin: r.get(2)?,
                    level: r.get(3)?,
                    lot: r.get(4)?,
                    state: r.get(5)?,
                    allocated_at: r.get(6)?,
                    allocated_by: r.get(7)?,
                    final_at: r.get(8)?,
                    scrap_reason: r.get(9)?,
                    shipment: r.get(10)?,
                    bindings: Vec::new(),
                    component_lots: Vec::new(),
                    children: Vec::new(),
                    results: Vec::new(),
                    events: Vec::new(),
                })
            },
        )
        .optional()
        .ctx("reading a unit")?;
    let Some(mut v) = base else { return Ok(None) };
    v.bindings = pairs(
        conn,
        "SELECT field, value FROM bindings WHERE unit_idx = ?1 ORDER BY field",
        idx,
    )?;
    v.component_lots = pairs(
        conn,
        "SELECT part, lot FROM component_lots WHERE unit_idx = ?1 ORDER BY part",
        idx,
    )?;
    let mut s = conn
        .prepare_cached("SELECT child, linked_seq, unlinked_seq FROM children WHERE parent_idx = ?1 ORDER BY linked_seq")
        .ctx("reading children")?;
    v.children = s
        .query_map([idx], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("reading children")?;
    let mut s = conn
        .prepare_cached("SELECT seq, step, status, station, ts, measurements FROM test_results WHERE unit_idx = ?1 ORDER BY seq")
        .ctx("reading test results")?;
    v.results = s
        .query_map([idx], |r| {
            let m: String = r.get(5)?;
            Ok(TestResultRow {
                seq: r.get(0)?,
                step: r.get(1)?,
                status: r.get(2)?,
                station: r.get(3)?,
                ts: r.get(4)?,
                measurements: serde_json::from_str(&m).unwrap_or(serde_json::Value::Null),
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("reading test results")?;
    v.events = unit_events(conn, codec, unit)?;
    Ok(Some(v))
}

/// The last seq, or 0 for an empty journal.
pub fn last_seq(conn: &Connection) -> Result<i64, JournalError> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
        .ctx("reading the last seq")
}

/// One shipped unit as stored, for the buyer's export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedRow {
    pub unit: String,
    pub gtin: String,
    pub level: String,
    pub lot: Option<String>,
    pub final_at: Option<String>,
    pub shipment: String,
    pub shipped_at: String,
    pub buyer: Option<String>,
    pub serial: Option<String>,
    pub mac: Option<String>,
    pub uid: Option<String>,
    pub fw: Option<String>,
    pub fwhash: Option<String>,
    pub cert: Option<String>,
    /// Currently linked children, space-separated.
    pub children: Option<String>,
}

/// Events of one type in the journal.
pub fn count_of_type(conn: &Connection, kind: &str) -> Result<u64, JournalError> {
    conn.query_row("SELECT COUNT(*) FROM events WHERE type = ?1", [kind], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
    .ctx("counting events")
}

/// Units shipped under `shipment`.
pub fn shipped_count(conn: &Connection, shipment: &str) -> Result<u64, JournalError> {
    conn.query_row(
        "SELECT COUNT(*) FROM shipped WHERE shipment = ?1",
        [shipment],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .ctx("counting a shipment")
}

/// Streams the units of `shipment` in shipping order to `each`; how many.
pub fn shipped_units<E: From<JournalError>>(
    conn: &Connection,
    shipment: &str,
    mut each: impl FnMut(ShippedRow) -> Result<(), E>,
) -> Result<u64, E> {
    let mut stmt = conn
        .prepare(
            "SELECT u.unit, u.gtin, u.level, u.lot, u.final_at, s.shipment, s.ts, s.buyer,
                (SELECT value FROM bindings b WHERE b.unit_idx = u.idx AND b.field = 'serial'),
                (SELECT value FROM bindings b WHERE b.unit_idx = u.idx AND b.field = 'mac'),
                (SELECT value FROM bindings b WHERE b.unit_idx = u.idx AND b.field = 'uid'),
                (SELECT value FROM bindings b WHERE b.unit_idx = u.idx AND b.field = 'fw'),
                (SELECT value FROM bindings b WHERE b.unit_idx = u.idx AND b.field = 'fwhash'),
                (SELECT value FROM bindings b WHERE b.unit_idx = u.idx AND b.field = 'cert'),
                (SELECT group_concat(child, ' ') FROM children c WHERE c.parent_idx = u.idx AND c.unlinked_seq IS NULL)
             FROM shipped s JOIN units u ON u.idx = s.unit_idx
             WHERE s.shipment = ?1 ORDER BY s.seq",
        )
        .ctx("reading a shipment")?;
    let mut rows = stmt.query([shipment]).ctx("reading a shipment")?;
    let mut n = 0u64;
    while let Some(r) = rows.next().ctx("reading a shipment")? {
        let row = (|| {
            Ok::<_, rusqlite::Error>(ShippedRow {
                unit: r.get(0)?,
                gtin: r.get(1)?,
                level: r.get(2)?,
                lot: r.get(3)?,
                final_at: r.get(4)?,
                shipment: r.get(5)?,
                shipped_at: r.get(6)?,
                buyer: r.get(7)?,
                serial: r.get(8)?,
                mac: r.get(9)?,
                uid: r.get(10)?,
                fw: r.get(11)?,
                fwhash: r.get(12)?,
                cert: r.get(13)?,
                children: r.get(14)?,
            })
        })()
        .ctx("reading a shipped unit")?;
        each(row)?;
        n += 1;
    }
    Ok(n)
}

/// The first seq at or after the time `ts` (as journaled), or `i64::MAX`.
pub fn first_seq_at_or_after(conn: &Connection, ts: &str) -> Result<i64, JournalError> {
    conn.query_row(
        "SELECT COALESCE(MIN(seq), 9223372036854775807) FROM events WHERE ts >= ?1",
        [ts],
        |r| r.get(0),
    )
    .ctx("finding a seq by time")
}

/// The last seq at or before the time `ts` (as journaled), or 0.
pub fn last_seq_at_or_before(conn: &Connection, ts: &str) -> Result<i64, JournalError> {
    conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM events WHERE ts <= ?1",
        [ts],
        |r| r.get(0),
    )
    .ctx("finding a seq by time")
}

/// What identifies a unit outside the line (for EPCIS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitIdentityRow {
    pub gtin: String,
    pub level: String,
    pub lot: Option<String>,
    pub allocated_at: String,
    pub firmware: Option<String>,
}

/// The unit with index `idx`, if this journal allocated it.
pub fn unit_identity(conn: &Connection, idx: i64) -> Result<Option<UnitIdentityRow>, JournalError> {
    conn.prepare_cached(
        "SELECT gtin, level, lot, allocated_at,
           (SELECT value FROM bindings b WHERE b.unit_idx = u.idx AND b.field = 'fw')
         FROM units u WHERE idx = ?1",
    )
    .and_then(|mut s| {
        s.query_row([idx], |r| {
            Ok(UnitIdentityRow {
                gtin: r.get(0)?,
                level: r.get(1)?,
                lot: r.get(2)?,
                allocated_at: r.get(3)?,
                firmware: r.get(4)?,
            })
        })
        .optional()
    })
    .ctx("reading a unit's identity")
}

/// An event as stored, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub ts: String,
    pub station: Option<String>,
    pub kind: String,
    pub unit: Option<String>,
    pub data: String,
}

/// Streams the events of the given types with seq in `[from, to]`, in order.
pub fn for_each_event_of_types<E: From<JournalError>>(
    conn: &Connection,
    from: i64,
    to: i64,
    types: &[&str],
    mut each: impl FnMut(StoredEvent) -> Result<(), E>,
) -> Result<(), E> {
    let placeholders: Vec<String> = (0..types.len()).map(|i| format!("?{}", i + 3)).collect();
    let sql = format!(
        "SELECT seq, ts, station, type, unit, data FROM events
         WHERE seq BETWEEN ?1 AND ?2 AND type IN ({}) ORDER BY seq",
        placeholders.join(", ")
    );
    let mut stmt = conn.prepare(&sql).ctx("reading events")?;
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&from, &to];
    for t in types {
        params.push(t);
    }
    let mut rows = stmt.query(params.as_slice()).ctx("reading events")?;
    while let Some(r) = rows.next().ctx("reading events")? {
        let ev = (|| {
            Ok::<_, rusqlite::Error>(StoredEvent {
                seq: r.get(0)?,
                ts: r.get(1)?,
                station: r.get(2)?,
                kind: r.get(3)?,
                unit: r.get(4)?,
                data: r.get(5)?,
            })
        })()
        .ctx("reading an event")?;
        each(ev)?;
    }
    Ok(())
}
