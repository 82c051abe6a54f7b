//! Events and the hash chain (SPEC section 5).
//!
//! Owns: event types, canonical JSON (keys sorted at every level, no white
//! space, UTF-8 unescaped) and `hash = sha256(prev_hash + "\n" + canonical)`.
//! Must not: touch SQLite; `writer` stores what this module computes and
//! `verify` recomputes it.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// `prev_hash` of seq 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Event types (SPEC section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    BlockImported,
    Allocated,
    Bound,
    TestResult,
    FinalPass,
    FinalFail,
    LabelQueued,
    LabelPrinted,
    LabelReprinted,
    LabelVerified,
    LabelMismatch,
    Scrapped,
    Shipped,
    ChildReplaced,
    PrinterFault,
    SyncHalted,
    RestoreDetected,
}

impl EventType {
    pub const ALL: [EventType; 17] = [
        EventType::BlockImported,
        EventType::Allocated,
        EventType::Bound,
        EventType::TestResult,
        EventType::FinalPass,
        EventType::FinalFail,
        EventType::LabelQueued,
        EventType::LabelPrinted,
        EventType::LabelReprinted,
        EventType::LabelVerified,
        EventType::LabelMismatch,
        EventType::Scrapped,
        EventType::Shipped,
        EventType::ChildReplaced,
        EventType::PrinterFault,
        EventType::SyncHalted,
        EventType::RestoreDetected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::BlockImported => "BLOCK_IMPORTED",
            EventType::Allocated => "ALLOCATED",
            EventType::Bound => "BOUND",
            EventType::TestResult => "TEST_RESULT",
            EventType::FinalPass => "FINAL_PASS",
            EventType::FinalFail => "FINAL_FAIL",
            EventType::LabelQueued => "LABEL_QUEUED",
            EventType::LabelPrinted => "LABEL_PRINTED",
            EventType::LabelReprinted => "LABEL_REPRINTED",
            EventType::LabelVerified => "LABEL_VERIFIED",
            EventType::LabelMismatch => "LABEL_MISMATCH",
            EventType::Scrapped => "SCRAPPED",
            EventType::Shipped => "SHIPPED",
            EventType::ChildReplaced => "CHILD_REPLACED",
            EventType::PrinterFault => "PRINTER_FAULT",
            EventType::SyncHalted => "SYNC_HALTED",
            EventType::RestoreDetected => "RESTORE_DETECTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What a caller asks to append; the writer fills in seq, id, time and hash.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventType,
    pub station: Option<String>,
    pub actor: String,
    pub unit: Option<String>,
    /// A JSON object: the change, field by field.
    pub data: Value,
}

/// A stored event, exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub seq: i64,
    pub event_id: String,
    pub ts: String,
    pub line_id: String,
    pub station: Option<String>,
    pub actor: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub unit: Option<String>,
    /// Canonical JSON text of the data object.
    #[serde(skip)]
    pub data: String,
    pub hash: String,
}

/// Appends `s` as a JSON string: quotes, backslash and control characters
/// escaped exactly as serde_json does; everything else as UTF-8.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_json_str(out, s),
        None => out.push_str("null"),
    }
}

/// Canonical JSON of a value: keys sorted at every level, no white space.
/// (Sorting here, rather than trusting the map type, keeps the hash stable
/// whatever serde_json features another crate turns on.)
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => push_json_str(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, k);
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
    }
}

/// The fields an event is hashed over.
pub struct HashInput<'a> {
    pub seq: i64,
    pub event_id: &'a str,
    pub ts: &'a str,
    pub line_id: &'a str,
    pub station: Option<&'a str>,
    pub actor: &'a str,
    pub kind: &'a str,
    pub unit: Option<&'a str>,
    /// Canonical JSON text of the data object.
    pub data: &'a str,
}

impl HashInput<'_> {
    /// Canonical JSON of the event without `hash`, written into `out`.
    pub fn canonical_into(&self, out: &mut String) {
        self.json_into(out, None);
    }

    /// The event as SPEC section 5 shows it, `hash` included (canonical
    /// key order, no white space): what sync sends upstream.
    pub fn json_with_hash_into(&self, out: &mut String, hash: &str) {
        self.json_into(out, Some(hash));
    }

    fn json_into(&self, out: &mut String, hash: Option<&str>) {
        out.push_str("{\"actor\":");
        push_json_str(out, self.actor);
        out.push_str(",\"data\":");
        out.push_str(self.data);
        out.push_str(",\"event_id\":");
        push_json_str(out, self.event_id);
        if let Some(h) = hash {
            out.push_str(",\"hash\":");
            push_json_str(out, h);
        }
        out.push_str(",\"line_id\":");
        push_json_str(out, self.line_id);
        let _ = write!(out, ",\"seq\":{}", self.seq);
        out.push_str(",\"station\":");
        push_opt_str(out, self.station);
        out.push_str(",\"ts\":");
        push_json_str(out, self.ts);
        out.push_str(",\"type\":");
        push_json_str(out, self.kind);
        out.push_str(",\"unit\":");
        push_opt_str(out, self.unit);
        out.push('}');
    }

    /// `sha256(prev_hash + "\n" + canonical)` as lower-case hex; `scratch` is reused.
    pub fn hash(&self, prev_hash: &str, scratch: &mut String) -> String {
        let hex = self.hash_hex(prev_hash.as_bytes(), scratch);
        String::from_utf8_lossy(&hex).into_owned()
    }

    /// The same hash as 64 ASCII hex bytes, without allocating.
    pub fn hash_hex(&self, prev_hash: &[u8], scratch: &mut String) -> [u8; 64] {
        scratch.clear();
        self.canonical_into(scratch);
        let mut h = Sha256::new();
        h.update(prev_hash);
        h.update(b"\n");
        h.update(scratch.as_bytes());
        let mut out = [0u8; 64];
        // 64 hex characters for 32 bytes always fit.
        let _ = hex::encode_to_slice(h.finalize(), &mut out);
        out
    }
}

/// RFC 3339 UTC with milliseconds and `Z`, e.g. `2026-11-20T08:00:01.250Z`.
pub fn format_ts(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reproduces_the_hash_chain_test_vector() {
        let mut data = String::new();
        canonical_json(
            &json!({"product": "PACK-48V", "lot": "L2026-11"}),
            &mut data,
        );
        let input = HashInput {
            seq: 1,
            event_id: "018f3a2e-7c4d-7000-8000-0000000000aa",
            ts: "2026-11-20T08:00:01.250Z",
            line_id: "P1-L03",
            station: Some("provision-1"),
            actor: "station:provision-1",
            kind: "ALLOCATED",
            unit: Some("V700QW11S6PJ4"),
            data: &data,
        };
        let mut canon = String::new();
        input.canonical_into(&mut canon);
        assert_eq!(
            canon,
            r#"{"actor":"station:provision-1","data":{"lot":"L2026-11","product":"PACK-48V"},"event_id":"018f3a2e-7c4d-7000-8000-0000000000aa","line_id":"P1-L03","seq":1,"station":"provision-1","ts":"2026-11-20T08:00:01.250Z","type":"ALLOCATED","unit":"V700QW11S6PJ4"}"#
        );
        let mut scratch = String::new();
        assert_eq!(
            input.hash(GENESIS_HASH, &mut scratch),
            "9c72e5173b2ca7da30cc110bc0741a6d9939167192900fd3b5e884936d3a554c"
        );
    }

    #[test]
    fn null_unit_and_station_are_written_as_null() {
        let input = HashInput {
            seq: 2,
            event_id: "e",
            ts: "t",
            line_id: "l",
            station: None,
            actor: "a",
            kind: "BLOCK_IMPORTED",
            unit: None,
            data: "{}",
        };
        let mut canon = String::new();
        input.canonical_into(&mut canon);
        assert!(
            canon.contains(r#""station":null"#) && canon.contains(r#""unit":null"#),
            "{canon}"
        );
    }

    #[test]
    fn canonical_json_sorts_nested_keys_and_escapes_like_serde_json() {
        let v = json!({"b": [1, {"z": true, "a": null}], "a": "q\"\\\n\u{1}é"});
        let mut out = String::new();
        canonical_json(&v, &mut out);
        assert_eq!(out, r#"{"a":"q\"\\\n\u0001é","b":[1,{"a":null,"z":true}]}"#);
        // The same text serde_json gives for a sorted map.
        assert_eq!(out, serde_json::to_string(&v).unwrap());
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let ts: jiff::Timestamp = "2026-11-20T08:00:01.25Z".parse().unwrap();
        assert_eq!(format_ts(ts), "2026-11-20T08:00:01.250Z");
        let ts: jiff::Timestamp = "2026-11-20T08:00:01Z".parse().unwrap();
        assert_eq!(format_ts(ts), "2026-11-20T08:00:01.000Z");
    }

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
    }
}
