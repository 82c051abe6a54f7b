//! Ingest (SPEC sections 7 and 11, server side): whether a line's batch
//! continues the chain the store holds, and which of its events are new.
//!
//! Owns: the batch's shape (limits, seqs without gaps, one line), every
//! event's hash recomputed from `prev_hash`, continuity with the stored
//! head, and the comparison of re-sent events with the stored ones. A
//! refusal names the problem; nothing of a refused batch is stored.
//! Must not: do IO; the store fetches the hashes it needs and stores what
//! this module says is new.

use serde::Deserialize;
use serde_json::Value;

use crate::journal::event::{canonical_json, HashInput, GENESIS_HASH};

/// The most events one batch may carry (the line sends at most 5,000).
pub const MAX_EVENTS: usize = 20_000;

/// One event as the line sends it (SPEC section 5, with its hash).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingEvent {
    pub seq: i64,
    pub event_id: String,
    pub ts: String,
    pub line_id: String,
    pub station: Option<String>,
    pub actor: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub unit: Option<String>,
    pub data: Value,
    pub hash: String,
}

/// `POST /v1/lines/{line_id}/journal`'s body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub line_id: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub prev_hash: String,
    pub events: Vec<IncomingEvent>,
}

/// An event checked and ready to store: `data` as the canonical text the
/// hash covers.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedEvent {
    pub seq: i64,
    pub event_id: String,
    pub ts: String,
    pub station: Option<String>,
    pub actor: String,
    pub kind: String,
    pub unit: Option<String>,
    pub data: String,
    /// The same data, parsed (for the passport projection).
    pub value: Value,
    pub hash: String,
}

/// Why a batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// 400: the batch is malformed; the line's software is at fault.
    #[error("{0}")]
    BadBatch(String),
    /// 409: the batch does not continue the chain the store holds.
    #[error("{0}")]
    Chain(String),
}

/// What the store holds of a line's chain around a batch.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The last stored seq (0: nothing yet) and its hash.
    pub head_seq: i64,
    pub head_hash: String,
    /// `(seq, hash)` of the stored events from `first_seq - 1` up to
    /// `min(last_seq, head_seq)`, in order (what a re-sent batch is
    /// compared with).
    pub hashes: Vec<(i64, String)>,
}

/// Parses a body (already decompressed) into a batch.
pub fn parse(body: &[u8]) -> Result<Batch, Refused> {
    serde_json::from_slice(body).map_err(|e| {
        Refused::BadBatch(format!(
            "the batch is not a journal batch (SPEC section 7): {e}"
        ))
    })
}

/// The shape checks that need no stored state: the path's line, counts,
/// seqs without gaps, hashes of the right form.
pub fn check_shape(batch: &Batch, path_line: &str) -> Result<(), Refused> {
    let bad = |m: String| Err(Refused::BadBatch(m));
    if batch.line_id != path_line {
        return bad(format!(
            "the batch says line_id {:?} but was sent to line {path_line:?}",
            batch.line_id
        ));
    }
    if batch.events.is_empty() {
        return bad("the batch has no events".into());
    }
    if batch.events.len() > MAX_EVENTS {
        return bad(format!(
            "the batch has {} events; at most {MAX_EVENTS} are taken at once",
            batch.events.len()
        ));
    }
    if !is_hash(&batch.prev_hash) {
        return bad("prev_hash is not 64 lower-case hex characters".into());
    }
    if batch.first_seq < 1 {
        return bad(format!("first_seq {} must be at least 1", batch.first_seq));
    }
    for (i, e) in batch.events.iter().enumerate() {
        let want = batch.first_seq + i as i64;
        if e.seq != want {
            return bad(format!(
                "events must have consecutive seqs from first_seq {}: event {i} has seq {}, expected {want}",
                batch.first_seq, e.seq
            ));
        }
        if e.line_id != batch.line_id {
            return bad(format!(
                "event {} is of line {:?}, the batch is of line {:?}",
                e.seq, e.line_id, batch.line_id
            ));
        }
        if !e.data.is_object() {
            return bad(format!("event {}: data must be a JSON object", e.seq));
        }
    }
    let last = batch.first_seq + batch.events.len() as i64 - 1;
    if batch.last_seq != last {
        return bad(format!(
            "last_seq {} does not match the events (the last has seq {last})",
            batch.last_seq
        ));
    }
    Ok(())
}

fn is_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The events of `batch` the store does not hold yet, after checking the
/// whole batch against the stored chain. `check_shape` must have passed.
pub fn new_events(batch: &Batch, stored: &Stored) -> Result<Vec<CheckedEvent>, Refused> {
    let chain = |m: String| Err(Refused::Chain(m));
    if batch.first_seq > stored.head_seq + 1 {
        return chain(format!(
            "the batch starts at seq {}, but the store holds this line only through seq {}: events {}..{} are missing",
            batch.first_seq,
            stored.head_seq,
            stored.head_seq + 1,
            batch.first_seq - 1
        ));
    }
    let before = batch.first_seq - 1;
    let stored_prev = if before == 0 {
        Some(GENESIS_HASH)
    } else {
        stored
            .hashes
            .iter()
            .find(|(s, _)| *s == before)
            .map(|(_, h)| h.as_str())
    };
    match stored_prev {
        Some(h) if h == batch.prev_hash => {}
        Some(h) => {
            return chain(format!(
                "prev_hash {} is not the stored hash of seq {before} ({h}): the line's journal differs from what it sent before",
                batch.prev_hash
            ))
        }
        None => return chain(format!("the store has no event {before} to continue from")),
    }
    let mut prev = batch.prev_hash.clone();
    let mut scratch = String::new();
    let mut fresh = Vec::new();
    for e in &batch.events {
        let mut data = String::new();
        canonical_json(&e.data, &mut data);
        let input = HashInput {
            seq: e.seq,
            event_id: &e.event_id,
            ts: &e.ts,
            line_id: &e.line_id,
            station: e.station.as_deref(),
            actor: &e.actor,
            kind: &e.kind,
            unit: e.unit.as_deref(),
            data: &data,
        };
        let hash = input.hash(&prev, &mut scratch);
        if hash != e.hash {
            return chain(format!(
                "event {}'s hash does not match its content and the chain before it (computed {hash}, sent {}): the event was altered",
                e.seq, e.hash
            ));
        }
        if e.seq <= stored.head_seq {
            match stored.hashes.iter().find(|(s, _)| *s == e.seq) {
                Some((_, h)) if *h == hash => {}
                Some((_, h)) => {
                    return chain(format!(
                        "event {} differs from the one stored (stored hash {h}, sent {hash})",
                        e.seq
                    ))
                }
                None => return chain(format!("the store cannot compare event {}", e.seq)),
            }
        } else {
            fresh.push(CheckedEvent {
                seq: e.seq,
                event_id: e.event_id.clone(),
                ts: e.ts.clone(),
                station: e.station.clone(),
                actor: e.actor.clone(),
                kind: e.kind.clone(),
                unit: e.unit.clone(),
                data,
                value: e.data.clone(),
                hash: hash.clone(),
            });
        }
        prev = hash;
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A chain of `n` events of line P1-L03 from seq `first`, hashed from `prev`.
    fn chain(first: i64, n: i64, prev: &str) -> Batch {
        let mut events = Vec::new();
        let mut p = prev.to_string();
        let mut scratch = String::new();
        for seq in first..first + n {
            let data = json!({"product": "PACK-48V", "n": seq});
            let mut text = String::new();
            canonical_json(&data, &mut text);
            let unit = format!("U{seq}");
            let hash = HashInput {
                seq,
                event_id: &format!("e{seq}"),
                ts: "2026-12-03T08:00:00.000Z",
                line_id: "P1-L03",
                station: Some("s"),
                actor: "station:s",
                kind: "ALLOCATED",
                unit: Some(&unit),
                data: &text,
            }
            .hash(&p, &mut scratch);
            events.push(IncomingEvent {
                seq,
                event_id: format!("e{seq}"),
                ts: "2026-12-03T08:00:00.000Z".into(),
                line_id: "P1-L03".into(),
                station: Some("s".into()),
                actor: "station:s".into(),
                kind: "ALLOCATED".into(),
                unit: Some(unit),
                data,
                hash: hash.clone(),
            });
            p = hash;
        }
        Batch {
            line_id: "P1-L03".into(),
            first_seq: first,
            last_seq: first + n - 1,
            prev_hash: prev.into(),
            events,
        }
    }

    fn stored_through(b: &Batch, head: i64) -> Stored {
        let mut hashes = vec![(b.first_seq - 1, b.prev_hash.clone())];
        hashes.extend(
            b.events
                .iter()
                .filter(|e| e.seq <= head)
                .map(|e| (e.seq, e.hash.clone())),
        );
        let head_hash = hashes.last().map(|(_, h)| h.clone()).unwrap_or_default();
        Stored {
            head_seq: head,
            head_hash,
            hashes,
        }
    }

    #[test]
    fn a_first_batch_is_all_new_and_a_resent_one_adds_nothing() {
        let b = chain(1, 5, GENESIS_HASH);
        check_shape(&b, "P1-L03").unwrap();
        assert_eq!(new_events(&b, &Stored::default()).unwrap().len(), 5);
        assert!(new_events(&b, &stored_through(&b, 5)).unwrap().is_empty());
        let tail = new_events(&b, &stored_through(&b, 3)).unwrap();
        assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn a_batch_after_a_gap_or_from_another_history_is_a_chain_conflict() {
        let b = chain(1, 6, GENESIS_HASH);
        let later = chain(4, 3, &b.events[2].hash);
        let head2 = stored_through(&b, 2);
        let e = new_events(&later, &head2).unwrap_err();
        assert!(
            matches!(&e, Refused::Chain(m) if m.contains("events 3..3 are missing")),
            "{e}"
        );
        let other = chain(3, 2, &"a".repeat(64));
        let e = new_events(&other, &head2).unwrap_err();
        assert!(
            matches!(&e, Refused::Chain(m) if m.contains("prev_hash")),
            "{e}"
        );
    }

    #[test]
    fn an_altered_event_or_a_resent_event_that_differs_is_refused() {
        let mut b = chain(1, 3, GENESIS_HASH);
        b.events[1].data = json!({"product": "FORGED"});
        let e = new_events(&b, &Stored::default()).unwrap_err();
        assert!(
            matches!(&e, Refused::Chain(m) if m.contains("event 2's hash")),
            "{e}"
        );
        let b = chain(1, 3, GENESIS_HASH);
        let mut stored = stored_through(&b, 3);
        stored.hashes[2].1 = "f".repeat(64);
        let e = new_events(&b, &stored).unwrap_err();
        assert!(
            matches!(&e, Refused::Chain(m) if m.contains("differs from the one stored")),
            "{e}"
        );
    }

    #[test]
    fn malformed_batches_are_named_before_anything_is_compared() {
        let b = chain(1, 3, GENESIS_HASH);
        type Break = Box<dyn Fn(&mut Batch)>;
        let cases: Vec<(Break, &str)> = vec![
            (Box::new(|b| b.line_id = "P9".into()), "sent to line"),
            (Box::new(|b| b.events[1].seq = 7), "consecutive seqs"),
            (
                Box::new(|b| b.events[2].line_id = "P9".into()),
                "is of line",
            ),
            (Box::new(|b| b.last_seq = 9), "last_seq 9"),
            (Box::new(|b| b.first_seq = 0), "first_seq 0"),
            (Box::new(|b| b.prev_hash = "xyz".into()), "prev_hash"),
            (Box::new(|b| b.events.clear()), "no events"),
            (Box::new(|b| b.events[0].data = json!([1])), "JSON object"),
        ];
        for (break_it, says) in cases {
            let mut bad = b.clone();
            break_it(&mut bad);
            match check_shape(&bad, "P1-L03") {
                Err(Refused::BadBatch(m)) => assert!(m.contains(says), "{m} / {says}"),
                other => panic!("{says}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(b"{\"line_id\":1}"),
            Err(Refused::BadBatch(_))
        ));
        assert!(matches!(parse(b"not json"), Err(Refused::BadBatch(_))));
    }
}
