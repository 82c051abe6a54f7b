//! `linemark journal verify`: recompute the hash chain and check the
//! journal's invariants, naming the first bad seq.
//!
//! Owns: the checks (seq without gaps from 1, every hash recomputed from the
//! stored fields, every allocated ID well-formed, unique and inside a block
//! imported earlier in the chain, state tables agreeing with the events).
//! Must not: repair anything; a journal that fails is evidence.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension};

use super::event::{HashInput, GENESIS_HASH};
use super::{JournalError, SqlContext};
use crate::ids::{IdCodec, UnitId};

/// What a clean journal looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub units: u64,
    pub blocks: u64,
    pub head_hash: String,
}

/// Why verification stopped.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("journal verify FAILED at seq {seq}: {problem}")]
    Failed { seq: i64, problem: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn fail(seq: i64, problem: impl Into<String>) -> VerifyError {
    VerifyError::Failed {
        seq,
        problem: problem.into(),
    }
}

/// What the ID checker needs from the chain, in seq order.
enum IdFact {
    Block { seq: i64, start: u64, count: u64 },
    Allocated { seq: i64, unit: String },
}

/// Checks block imports and allocations on its own thread, so the chain
/// walk (inherently sequential) does not also pay for un-permuting IDs.
fn check_ids(
    codec: &IdCodec,
    facts: std::sync::mpsc::Receiver<Vec<IdFact>>,
) -> Result<(u64, u64), VerifyError> {
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    let mut allocated: HashSet<u64> = HashSet::new();
    for chunk in facts {
        for fact in chunk {
            match fact {
                IdFact::Block { seq, start, count } => {
                    if blocks
                        .iter()
                        .any(|(s, c)| start < s + c && *s < start + count)
                    {
                        return Err(fail(seq, "imported block overlaps an earlier block"));
                    }
                    blocks.push((start, count));
                }
                IdFact::Allocated { seq, unit } => {
                    let id = UnitId::parse(&unit).map_err(|e| fail(seq, e.to_string()))?;
                    let index = codec.index_of(id);
                    if !blocks.iter().any(|(s, c)| index >= *s && index < s + c) {
                        return Err(fail(
                            seq,
                            format!("unit {unit} is outside every block held at that point (wrong namespace key?)"),
                        ));
                    }
                    if !allocated.insert(index) {
                        return Err(fail(seq, format!("unit {unit} was allocated twice")));
                    }
                }
            }
        }
    }
    Ok((blocks.len() as u64, allocated.len() as u64))
}

fn failed_seq(e: &VerifyError) -> i64 {
    match e {
        VerifyError::Failed { seq, .. } => *seq,
        VerifyError::Journal(_) => 0,
    }
}

/// Facts per message to the ID checker.
const CHUNK: usize = 4096;

/// Walks every event in seq order. `progress(done, total)` is called every
/// 65,536 events. Of two failures, the one at the lower seq is reported.
pub fn verify(
    conn: &Connection,
    codec: &IdCodec,
    progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<IdFact>>(16);
    // The state tables are rebuilt on a connection of their own, beside the
    // chain walk; a broken chain is reported before what it explains.
    let path = conn
        .path()
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from);
    std::thread::scope(|scope| {
        let checker = scope.spawn(move || check_ids(codec, rx));
        let state =
            path.map(|p| scope.spawn(move || check_state(&super::open_read_only(&p)?, codec)));
        let walked = walk_chain(conn, tx, progress);
        let ids = checker
            .join()
            .unwrap_or_else(|_| Err(fail(0, "the ID checker stopped unexpectedly")));
        // Both sides stop at their first failure; report the earlier one.
        let ((events, head_hash), (blocks, units)) = match (walked, ids) {
            (Ok(w), Ok(i)) => (w, i),
            (Err(e @ VerifyError::Journal(_)), _) | (_, Err(e @ VerifyError::Journal(_))) => {
                return Err(e)
            }
            (Err(a), Err(b)) => {
                return Err(if failed_seq(&a) <= failed_seq(&b) {
                    a
                } else {
                    b
                })
            }
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
        };
        let last = events as i64;
        check_guards(conn, last)?;
        match state {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(fail(last, "the state rebuild stopped unexpectedly"))),
            None => check_state(conn, codec),
        }
        .map_err(|e| match e {
            VerifyError::Failed { seq: 0, problem } => fail(last, problem),
            e => e,
        })?;
        Ok(VerifyReport {
            events,
            units,
            blocks,
            head_hash,
        })
    })
}

/// The append-only triggers must be there, exactly as the schema made them:
/// without them, events can be rewritten in place.
fn check_guards(conn: &Connection, last: i64) -> Result<(), VerifyError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ctx("reading the schema version")?;
    // events_extend_chain came with schema version 4.
    let required = if version >= 4 { 3 } else { 2 };
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1 AND tbl_name = 'events'")
        .ctx("reading the journal's triggers")?;
    for (name, sql) in &super::schema::GUARD_TRIGGERS[..required] {
        let stored: Option<String> = stmt
            .query_row([name], |r| r.get(0))
            .optional()
            .ctx("reading the journal's triggers")?;
        match stored {
            None => {
                return Err(fail(
                    last,
                    format!(
                    "the append-only trigger {name} is missing: events could have been rewritten"
                ),
                ))
            }
            Some(s) if s != *sql => {
                return Err(fail(
                    last,
                    format!(
                    "the append-only trigger {name} was altered: events could have been rewritten"
                ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A record of the journal kept outside the file: the seq (and hash) of an
/// event the journal must still hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// What recorded it, for the message, e.g. "the high-water file".
    pub source: String,
    pub seq: i64,
    pub hash: Option<String>,
}

/// Checks the journal against records kept outside it: a journal cut or
/// rewritten behind one of them fails, naming the seq.
pub fn check_anchors(conn: &Connection, anchors: &[Anchor]) -> Result<(), VerifyError> {
    let last = super::query::last_seq(conn)?;
    for a in anchors.iter().filter(|a| a.seq > 0) {
        if a.seq > last {
            return Err(fail(
                a.seq,
                format!(
                    "the journal ends at seq {last}, but {} records seq {}: events were cut off (or this is a backup restored behind it)",
                    a.source, a.seq
                ),
            ));
        }
        let Some(want) = &a.hash else { continue };
        let have = super::query::hash_at(conn, a.seq)?.unwrap_or_default();
        if &have != want {
            return Err(fail(
                a.seq,
                format!(
                    "event {} has hash {have}, but {} records {want}: the journal was rewritten from there on",
                    a.seq, a.source
                ),
            ));
        }
    }
    Ok(())
}

/// The state tables against the events (`derive`), as a verify failure.
fn check_state(conn: &Connection, codec: &IdCodec) -> Result<(), VerifyError> {
    super::derive::check_all(conn, codec).map_err(|e| match e {
        super::derive::DeriveError::Differs(d) => fail(d.seq, d.to_string()),
        super::derive::DeriveError::BadEvent { seq, problem } => fail(seq, problem),
        super::derive::DeriveError::Journal(e) => VerifyError::Journal(e),
    })
}

/// Recomputes the chain; sends block and allocation facts to the checker.
fn walk_chain(
    conn: &Connection,
    facts: std::sync::mpsc::SyncSender<Vec<IdFact>>,
    mut progress: impl FnMut(u64, u64),
) -> Result<(u64, String), VerifyError> {
    let total: i64 = super::query::last_seq(conn)?;
    let mut stmt = conn
        .prepare("SELECT seq, event_id, ts, line_id, station, actor, type, unit, data, hash FROM events ORDER BY seq")
        .ctx("reading events")?;
    let mut rows = stmt.query([]).ctx("reading events")?;
    let mut prev: [u8; 64] = [b'0'; 64];
    debug_assert_eq!(&prev[..], GENESIS_HASH.as_bytes());
    let mut expected_seq = 1i64;
    let mut scratch = String::with_capacity(512);
    let mut event_ids: HashSet<[u8; 16]> = HashSet::new();
    let mut chunk: Vec<IdFact> = Vec::with_capacity(CHUNK);
    while let Some(r) = rows.next().ctx("reading events")? {
        let seq: i64 = r.get(0).ctx("reading seq")?;
        if seq != expected_seq {
            return Err(fail(
                expected_seq,
                format!("seq {expected_seq} is missing (next stored seq is {seq})"),
            ));
        }
        let text = |i: usize| -> Result<&str, VerifyError> {
            r.get_ref(i)
                .ctx("reading an event field")?
                .as_str()
                .map_err(|_| fail(seq, format!("column {i} is not text")))
        };
        let opt_text = |i: usize| -> Result<Option<&str>, VerifyError> {
            r.get_ref(i)
                .ctx("reading an event field")?
                .as_str_or_null()
                .map_err(|_| fail(seq, format!("column {i} is not text")))
        };
        let event_id = text(1)?;
        let kind = text(6)?;
        let unit = opt_text(7)?;
        let data = text(8)?;
        let stored_hash = text(9)?;
        let computed = HashInput {
            seq,
            event_id,
            ts: text(2)?,
            line_id: text(3)?,
            station: opt_text(4)?,
            actor: text(5)?,
            kind,
            unit,
            data,
        }
        .hash_hex(&prev, &mut scratch);
        if computed[..] != *stored_hash.as_bytes() {
            return Err(fail(
                seq,
                "hash mismatch: the event or one before it was altered",
            ));
        }
        let uuid =
            uuid::Uuid::parse_str(event_id).map_err(|_| fail(seq, "event_id is not a UUID"))?;
        if !event_ids.insert(*uuid.as_bytes()) {
            return Err(fail(seq, format!("event_id {event_id} appears twice")));
        }
        match kind {
            "BLOCK_IMPORTED" => {
                let v: serde_json::Value = serde_json::from_str(data)
                    .map_err(|_| fail(seq, "BLOCK_IMPORTED data is not JSON"))?;
                let (Some(start), Some(count)) = (v["start"].as_u64(), v["count"].as_u64()) else {
                    return Err(fail(seq, "BLOCK_IMPORTED without start and count"));
                };
                chunk.push(IdFact::Block { seq, start, count });
            }
            "ALLOCATED" => {
                let unit = unit.ok_or_else(|| fail(seq, "ALLOCATED without a unit"))?;
                chunk.push(IdFact::Allocated {
                    seq,
                    unit: unit.to_string(),
                });
            }
            _ => {}
        }
        if chunk.len() >= CHUNK
            && facts
                .send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                .is_err()
        {
            // The checker stopped at a failure; its report wins if earlier.
            break;
        }
        prev = computed;
        if seq % 65_536 == 0 {
            progress(seq as u64, total as u64);
        }
        expected_seq += 1;
    }
    let _ = facts.send(chunk);
    progress((expected_seq - 1) as u64, total as u64);
    Ok((
        (expected_seq - 1) as u64,
        String::from_utf8_lossy(&prev).into_owned(),
    ))
}
