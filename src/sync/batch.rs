//! One upload (SPEC section 7): `{"line_id","first_seq","last_seq",
//! "prev_hash","events":[...]}`, at most [`MAX_EVENTS`] events or
//! [`MAX_BYTES`] of JSON, gzip-compressed.
//!
//! Owns: the body's bytes, built from journal rows; a batch is built once
//! and re-sent byte for byte until the store acknowledges it.
//! Must not: read the database or talk to the network (callers feed rows).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::journal::event::{push_json_str, HashInput};

/// At most this many events per batch.
pub const MAX_EVENTS: usize = 5000;
/// At most this many bytes of (uncompressed) JSON per batch.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// A finished batch.
#[derive(Debug, Clone)]
pub struct Batch {
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: usize,
    /// Uncompressed JSON length.
    pub json_len: usize,
    /// The gzip-compressed body, exactly as sent.
    pub body: Vec<u8>,
    /// The hash of `last_seq`.
    pub last_hash: String,
}

/// Collects events into a batch until a limit is reached.
pub struct BatchBuilder {
    line_id: String,
    prev_hash: String,
    events: String,
    scratch: String,
    first_seq: i64,
    last_seq: i64,
    count: usize,
    last_hash: String,
    max_events: usize,
    max_bytes: usize,
}

impl BatchBuilder {
    /// A batch following the event whose hash is `prev_hash`.
    pub fn new(line_id: &str, prev_hash: &str) -> Self {
        Self::with_limits(line_id, prev_hash, MAX_EVENTS, MAX_BYTES)
    }

    pub fn with_limits(
        line_id: &str,
        prev_hash: &str,
        max_events: usize,
        max_bytes: usize,
    ) -> Self {
        BatchBuilder {
            line_id: line_id.to_string(),
            prev_hash: prev_hash.to_string(),
            events: String::with_capacity(64 * 1024),
            scratch: String::with_capacity(1024),
            first_seq: 0,
            last_seq: 0,
            count: 0,
            last_hash: String::new(),
            max_events,
            max_bytes,
        }
    }

    fn header_len(&self) -> usize {
        // {"line_id":"..","first_seq":N,"last_seq":N,"prev_hash":"..","events":[]}
        80 + self.line_id.len() + self.prev_hash.len() + 2 * 20
    }

    /// Adds the next event (seqs must follow one another). Answers `false`,
    /// adding nothing, when the event would break a limit; the first event
    /// always fits, however large.
    pub fn push(&mut self, ev: &HashInput<'_>, hash: &str) -> bool {
        if self.count >= self.max_events {
            return false;
        }
        self.scratch.clear();
        ev.json_with_hash_into(&mut self.scratch, hash);
        if self.count > 0
            && self.header_len() + self.events.len() + 1 + self.scratch.len() > self.max_bytes
        {
            return false;
        }
        if self.count == 0 {
            self.first_seq = ev.seq;
        } else {
            self.events.push(',');
        }
        self.events.push_str(&self.scratch);
        self.last_seq = ev.seq;
        self.last_hash.clear();
        self.last_hash.push_str(hash);
        self.count += 1;
        true
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The JSON text of the body.
    pub fn json(&self) -> String {
        let mut out = String::with_capacity(self.header_len() + self.events.len());
        out.push_str("{\"line_id\":");
        push_json_str(&mut out, &self.line_id);
        out.push_str(&format!(
            ",\"first_seq\":{},\"last_seq\":{},\"prev_hash\":",
            self.first_seq, self.last_seq
        ));
        push_json_str(&mut out, &self.prev_hash);
        out.push_str(",\"events\":[");
        out.push_str(&self.events);
        out.push_str("]}");
        out
    }

    /// The batch with its gzip body, or `None` when no event was added.
    pub fn finish(self) -> Option<Batch> {
        if self.count == 0 {
            return None;
        }
        let json = self.json();
        Some(Batch {
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            events: self.count,
            json_len: json.len(),
            body: gzip(json.as_bytes()),
            last_hash: self.last_hash,
        })
    }
}

/// gzip at a fast level: the upload is bound by CPU on both ends, and JSON
/// of events compresses about 5:1 even so.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn ev(seq: i64, data: &str) -> (String, String) {
        let id = format!("018f3a2e-7c4d-7000-8000-{seq:012}");
        (id, data.to_string())
    }

    fn input<'a>(seq: i64, id: &'a str, data: &'a str) -> HashInput<'a> {
        HashInput {
            seq,
            event_id: id,
            ts: "2026-11-23T02:00:00.000Z",
            line_id: "P1-L03",
            station: Some("final-1"),
            actor: "station:final-1",
            kind: "TEST_RESULT",
            unit: Some("0000000000000"),
            data,
        }
    }

    fn unzip(b: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(b)
            .read_to_string(&mut s)
            .expect("gzip");
        s
    }

    #[test]
    fn body_is_the_spec_object_with_every_event_and_its_hash() {
        let mut b = BatchBuilder::new("P1-L03", &"0".repeat(64));
        let mut scratch = String::new();
        let mut prev = "0".repeat(64);
        for seq in 1..=3 {
            let (id, data) = ev(seq, r#"{"step":"functional"}"#);
            let i = input(seq, &id, &data);
            let h = i.hash(&prev, &mut scratch);
            assert!(b.push(&i, &h));
            prev = h;
        }
        let batch = b.finish().expect("batch");
        assert_eq!((batch.first_seq, batch.last_seq, batch.events), (1, 3, 3));
        assert_eq!(batch.last_hash, prev);
        let v: serde_json::Value = serde_json::from_str(&unzip(&batch.body)).expect("json");
        assert_eq!(v["line_id"], "P1-L03");
        assert_eq!(v["first_seq"], 1);
        assert_eq!(v["last_seq"], 3);
        assert_eq!(v["prev_hash"], "0".repeat(64));
        let events = v["events"].as_array().expect("events");
        assert_eq!(events.len(), 3);
        assert_eq!(events[2]["hash"], prev.as_str());
        assert_eq!(events[0]["data"]["step"], "functional");
        assert_eq!(events[1]["seq"], 2);
    }

    #[test]
    fn an_event_serialised_with_its_hash_rehashes_to_that_hash() {
        let (id, data) = ev(7, r#"{"a":1,"b":"x\"y"}"#);
        let i = input(7, &id, &data);
        let mut scratch = String::new();
        let h = i.hash(&"f".repeat(64), &mut scratch);
        let mut with = String::new();
        i.json_with_hash_into(&mut with, &h);
        let mut v: serde_json::Value = serde_json::from_str(&with).expect("json");
        v.as_object_mut().expect("object").remove("hash");
        let mut canon = String::new();
        crate::journal::event::canonical_json(&v, &mut canon);
        assert_eq!(canon, {
            let mut c = String::new();
            i.canonical_into(&mut c);
            c
        });
    }

    #[test]
    fn stops_at_the_event_limit() {
        let mut b = BatchBuilder::with_limits("P1-L03", &"0".repeat(64), 2, MAX_BYTES);
        let (id, data) = ev(1, "{}");
        assert!(b.push(&input(1, &id, &data), "h1"));
        assert!(b.push(&input(2, &id, &data), "h2"));
        assert!(!b.push(&input(3, &id, &data), "h3"));
        let batch = b.finish().expect("batch");
        assert_eq!((batch.first_seq, batch.last_seq), (1, 2));
    }

    #[test]
    fn stops_before_the_byte_limit_but_always_takes_one_event() {
        let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(2000));
        let (id, _) = ev(1, "{}");
        let mut b = BatchBuilder::with_limits("P1-L03", &"0".repeat(64), 100, 1000);
        assert!(
            b.push(&input(1, &id, &big), "h1"),
            "the first event always fits"
        );
        assert!(!b.push(&input(2, &id, "{}"), "h2"));
        let mut b = BatchBuilder::with_limits("P1-L03", &"0".repeat(64), 100, 4096);
        let mut n = 0;
        while b.push(&input(n + 1, &id, "{}"), "h") {
            n += 1;
        }
        assert!(n > 3);
        assert!(b.json().len() <= 4096, "{}", b.json().len());
    }

    #[test]
    fn an_empty_builder_makes_no_batch() {
        assert!(BatchBuilder::new("P1-L03", "0").finish().is_none());
    }
}
