//! EPCIS 2.0 export (`linemark export epcis`): the journal as GS1 EPCIS
//! events in JSON-LD, streamed in seq order.
//!
//! Owns: the mapping from journal events to EPCIS events, deterministic
//! event IDs, event times in the line's time zone. Must not: write to the
//! journal or hold the whole export in memory.
//!
//! | journal | EPCIS |
//! |---|---|
//! | FINAL_PASS | ObjectEvent ADD, commissioning, active, ILMD (line, station, firmware, manufacturing date) |
//! | BOUND with children | AggregationEvent ADD |
//! | SCRAPPED | ObjectEvent DELETE, destroying, destroyed |
//! | SHIPPED | ObjectEvent OBSERVE, shipping, in_transit |
//! | CHILD_REPLACED | AggregationEvent DELETE (old) + ADD (new), replacing |

use std::io::Write;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::gs1::{self, Gtin, Identity, Level};
use crate::ids::{IdCodec, UnitId};
use crate::journal::query::{self, StoredEvent, UnitIdentityRow};
use crate::journal::{JournalError, Reader};

/// The journal event types the export maps (see the table above).
const MAPPED: [&str; 5] = [
    "FINAL_PASS",
    "BOUND",
    "SCRAPPED",
    "SHIPPED",
    "CHILD_REPLACED",
];

/// The JSON-LD prefix for linemark's own fields.
pub const NAMESPACE: &str = "urn:linemark:epcis:";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum EpcisError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write the export: {0}")]
    Write(String),
}

/// Which events to export: seq range, inclusive.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from_seq: i64,
    pub to_seq: i64,
}

impl Range {
    /// From `--from`/`--to` values: a seq number or an RFC 3339 time.
    pub fn resolve(conn: &Reader, from: Option<&str>, to: Option<&str>) -> Result<Range, String> {
        let bound = |v: Option<&str>, first: bool| -> Result<i64, String> {
            let Some(v) = v else {
                return Ok(if first { 1 } else { i64::MAX });
            };
            if let Ok(n) = v.parse::<i64>() {
                return Ok(n);
            }
            let ts: jiff::Timestamp = v.parse().map_err(|_| {
                format!("{v:?} is neither a seq number nor an RFC 3339 time (2026-11-20T06:00:00Z)")
            })?;
            let t = crate::journal::event::format_ts(ts);
            if first {
                query::first_seq_at_or_after(conn, &t)
            } else {
                query::last_seq_at_or_before(conn, &t)
            }
            .map_err(|e| e.to_string())
        };
        Ok(Range {
            from_seq: bound(from, true)?,
            to_seq: bound(to, false)?,
        })
    }
}

/// What EPCIS needs about a unit.
struct UnitInfo {
    uri: String,
    firmware: Option<String>,
    allocated_at: String,
}

struct Lookup<'c> {
    conn: &'c Reader,
    codec: IdCodec,
    resolver: String,
}

impl Lookup<'_> {
    fn unit(&self, unit: &str) -> Result<Option<UnitInfo>, EpcisError> {
        let Ok(id) = UnitId::parse(unit) else {
            return Ok(None);
        };
        let idx = self.codec.index_of(id) as i64;
        let Some(UnitIdentityRow {
            gtin,
            level,
            lot,
            allocated_at,
            firmware,
        }) = query::unit_identity(self.conn, idx)?
        else {
            return Ok(None);
        };
        let g = Gtin::parse(&gtin)
            .map_err(|e| EpcisError::Journal(JournalError::Corrupt(e.to_string())))?;
        let ident = Identity::for_unit(
            g,
            Level::parse(&level).unwrap_or(Level::Item),
            lot.as_deref(),
            unit,
        );
        Ok(Some(UnitInfo {
            uri: gs1::build_uri(&self.resolver, &ident),
            firmware,
            allocated_at,
        }))
    }

    /// A child's identifier: its Digital Link when this line made it,
    /// otherwise a URN carrying its unit ID.
    fn child_uri(&self, child: &str) -> Result<String, EpcisError> {
        Ok(match self.unit(child)? {
            Some(u) => u.uri,
            None => format!("urn:linemark:unit:{child}"),
        })
    }
}

/// A deterministic event ID: a UUID (version 8) from the line, the journal
/// seq and the position of the EPCIS event made from it.
fn event_id(line: &str, seq: i64, k: usize) -> String {
    let d = Sha256::digest(format!("linemark-epcis\n{line}\n{seq}\n{k}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    format!("urn:uuid:{}", uuid::Uuid::new_v8(b))
}

/// `eventTime` (UTC, as journaled) and the line's offset at that instant.
fn times(ts: &str, tz: &jiff::tz::TimeZone) -> (String, String) {
    let offset = ts
        .parse::<jiff::Timestamp>()
        .map(|t| tz.to_offset(t))
        .map(|o| {
            let secs = o.seconds();
            let (sign, a) = if secs < 0 { ('-', -secs) } else { ('+', secs) };
            format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
        })
        .unwrap_or_else(|_| "+00:00".into());
    (ts.to_string(), offset)
}

/// Streams an EPCISDocument with every mapped event in `range`; returns the
/// number of EPCIS events. `progress(seq)` is called as the export advances.
pub fn export<W: Write>(
    conn: &Reader,
    cfg: &Config,
    range: Range,
    out: W,
    mut progress: impl FnMut(i64),
) -> Result<u64, EpcisError> {
    let lookup = Lookup {
        conn,
        codec: IdCodec::new(&cfg.ids.namespace_key),
        resolver: cfg.resolver.clone(),
    };
    let mut w = std::io::BufWriter::new(out);
    let werr = |e: std::io::Error| EpcisError::Write(e.to_string());
    let head = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld", {"linemark": NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": crate::journal::event::format_ts(jiff::Timestamp::now()),
        "sender": format!("urn:linemark:line:{}", cfg.line_id),
    })
    .to_string();
    write!(
        w,
        "{},\"epcisBody\":{{\"eventList\":[",
        &head[..head.len() - 1]
    )
    .map_err(werr)?;
    let mut written = 0u64;
    let mut emit = |w: &mut std::io::BufWriter<W>, ev: Value| -> Result<(), EpcisError> {
        if written > 0 {
            w.write_all(b",").map_err(werr)?;
        }
        serde_json::to_writer(&mut *w, &ev).map_err(|e| EpcisError::Write(e.to_string()))?;
        written += 1;
        Ok(())
    };
    query::for_each_event_of_types(
        conn,
        range.from_seq,
        range.to_seq,
        &MAPPED,
        |e: StoredEvent| -> Result<(), EpcisError> {
            let StoredEvent {
                seq,
                ts,
                station,
                kind,
                unit,
                data,
            } = e;
            let Some(unit) = unit else {
                return Ok(());
            };
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            let Some(info) = lookup.unit(&unit)? else {
                return Ok(());
            };
            let (event_time, offset) = times(&ts, &cfg.timezone);
            let base = |k: usize, ty: &str, action: &str| {
                json!({
                    "type": ty,
                    "eventID": event_id(&cfg.line_id, seq, k),
                    "eventTime": event_time,
                    "eventTimeZoneOffset": offset,
                    "action": action,
                })
            };
            match kind.as_str() {
                "FINAL_PASS" => {
                    let mut e = base(0, "ObjectEvent", "ADD");
                    e["epcList"] = json!([info.uri]);
                    e["bizStep"] = json!("commissioning");
                    e["disposition"] = json!("active");
                    let date = cfg.local_date(&info.allocated_at);
                    let mut ilmd =
                        json!({"linemark:line": cfg.line_id, "linemark:manufacturingDate": date});
                    if let Some(s) = &station {
                        ilmd["linemark:station"] = json!(s);
                    }
                    if let Some(fw) = &info.firmware {
                        ilmd["linemark:firmware"] = json!(fw);
                    }
                    e["ilmd"] = ilmd;
                    emit(&mut w, e)?;
                }
                "BOUND" => {
                    let Some(children) = data["children"].as_array().filter(|c| !c.is_empty())
                    else {
                        return Ok(());
                    };
                    let mut kids = Vec::new();
                    for c in children.iter().filter_map(Value::as_str) {
                        kids.push(lookup.child_uri(c)?);
                    }
                    let mut e = base(0, "AggregationEvent", "ADD");
                    e["parentID"] = json!(info.uri);
                    e["childEPCs"] = json!(kids);
                    e["bizStep"] = json!("assembling");
                    e["disposition"] = json!("in_progress");
                    emit(&mut w, e)?;
                }
                "SCRAPPED" => {
                    let mut e = base(0, "ObjectEvent", "DELETE");
                    e["epcList"] = json!([info.uri]);
                    e["bizStep"] = json!("destroying");
                    e["disposition"] = json!("destroyed");
                    emit(&mut w, e)?;
                }
                "SHIPPED" => {
                    let mut e = base(0, "ObjectEvent", "OBSERVE");
                    e["epcList"] = json!([info.uri]);
                    e["bizStep"] = json!("shipping");
                    e["disposition"] = json!("in_transit");
                    if let Some(s) = data["shipment"].as_str() {
                        e["linemark:shipment"] = json!(s);
                    }
                    emit(&mut w, e)?;
                }
                "CHILD_REPLACED" => {
                    let (Some(old), Some(new)) = (data["old"].as_str(), data["new"].as_str())
                    else {
                        return Ok(());
                    };
                    for (k, action, child) in [(0, "DELETE", old), (1, "ADD", new)] {
                        let mut e = base(k, "AggregationEvent", action);
                        e["parentID"] = json!(info.uri);
                        e["childEPCs"] = json!([lookup.child_uri(child)?]);
                        e["bizStep"] = json!("replacing");
                        emit(&mut w, e)?;
                    }
                }
                _ => {}
            }
            if seq % 4096 == 0 {
                progress(seq);
            }
            Ok(())
        },
    )?;
    writeln!(w, "]}}}}").map_err(werr)?;
    w.flush().map_err(werr)?;
    Ok(written)
}
