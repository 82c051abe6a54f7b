//! The passport projection (SPEC section 11): what the store knows about a
//! unit, built from its line's events in seq order.
//!
//! Owns: the passport document (product, GTIN, level, lot, bindings,
//! component lots, children with their replacements, test results, final
//! pass, scrap, shipment, status) and how each event type changes it.
//! Must not: do IO; the store loads and saves documents around it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a unit stands, as the passport shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Allocated, not (yet) through a passed final test.
    InProduction,
    /// Passed final test.
    Passed,
    /// Left the plant in a shipment.
    Shipped,
    Scrapped,
    /// A recycler (or the manufacturer) recorded its end (lifecycle update).
    Recycled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProduction => "in_production",
            Status::Passed => "passed",
            Status::Shipped => "shipped",
            Status::Scrapped => "scrapped",
            Status::Recycled => "recycled",
        }
    }
}

/// A child unit linked into this one; `removed_seq` once it was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub unit: String,
    pub linked_seq: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_seq: Option<i64>,
    /// Why it was replaced (REPLACE's reason), on the removed child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One test step's result as the station reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    pub step: String,
    pub status: String,
    pub measurements: Value,
    pub station: Option<String>,
    pub ts: String,
    pub seq: i64,
    /// `true` for the final test.
    #[serde(default)]
    pub r#final: bool,
}

/// The passport document of one unit (absent and empty parts are left
/// out of the stored JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passport {
    pub unit_id: String,
    pub line_id: String,
    pub product: String,
    pub gtin: String,
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    pub status: Status,
    pub allocated_at: String,
    /// The time of the FINAL_PASS event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufactured_at: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bindings: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub component_lots: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Child>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrapped_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrap_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_at: Option<String>,
    /// The seq of the last event that changed this document.
    pub last_seq: i64,
}

/// The fields of an event the projection reads.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    pub line_id: &'a str,
    pub seq: i64,
    pub ts: &'a str,
    pub station: Option<&'a str>,
    pub kind: &'a str,
    pub unit: Option<&'a str>,
    pub data: &'a Value,
}

/// Why an event could not be projected (the event itself is still stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    #[error(
        "event {seq} ({kind}) is about unit {unit}, which has no ALLOCATED event in the store"
    )]
    UnknownUnit {
        seq: i64,
        kind: String,
        unit: String,
    },
    #[error("event {seq} ({kind}): data.{field} is missing or not a string")]
    Field {
        seq: i64,
        kind: String,
        field: &'static str,
    },
}

fn text<'a>(ev: &EventView<'a>, field: &'static str) -> Result<&'a str, ProjectionError> {
    ev.data
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| ProjectionError::Field {
            seq: ev.seq,
            kind: ev.kind.to_string(),
            field,
        })
}

fn opt_text(ev: &EventView<'_>, field: &str) -> Option<String> {
    ev.data
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Does this event type change a passport?
pub fn concerns_passports(kind: &str) -> bool {
    matches!(
        kind,
        "ALLOCATED"
            | "BOUND"
            | "TEST_RESULT"
            | "FINAL_PASS"
            | "FINAL_FAIL"
            | "SCRAPPED"
            | "SHIPPED"
            | "CHILD_REPLACED"
    )
}

/// Applies one event to the unit's passport (`None` before ALLOCATED).
/// Events that do not change passports leave it as it is.
pub fn apply(
    current: Option<Passport>,
    ev: &EventView<'_>,
) -> Result<Option<Passport>, ProjectionError> {
    let Some(unit) = ev.unit.filter(|_| concerns_passports(ev.kind)) else {
        return Ok(current);
    };
    if ev.kind == "ALLOCATED" {
        return Ok(Some(Passport {
            unit_id: unit.to_string(),
            line_id: ev.line_id.to_string(),
            product: text(ev, "product")?.to_string(),
            gtin: text(ev, "gtin")?.to_string(),
            level: text(ev, "level")?.to_string(),
            lot: opt_text(ev, "lot"),
            status: Status::InProduction,
            allocated_at: ev.ts.to_string(),
            manufactured_at: None,
            bindings: BTreeMap::new(),
            component_lots: BTreeMap::new(),
            children: Vec::new(),
            tests: Vec::new(),
            scrapped_at: None,
            scrap_reason: None,
            shipment: None,
            buyer: None,
            shipped_at: None,
            last_seq: ev.seq,
        }));
    }
    let mut p = current.ok_or_else(|| ProjectionError::UnknownUnit {
        seq: ev.seq,
        kind: ev.kind.to_string(),
        unit: unit.to_string(),
    })?;
    let recycled = p.status == Status::Recycled;
    match ev.kind {
        "BOUND" => bound(&mut p, ev),
        "TEST_RESULT" | "FINAL_PASS" | "FINAL_FAIL" => {
            p.tests.push(TestRecord {
                step: text(ev, "step")?.to_string(),
                status: text(ev, "status")?.to_string(),
                measurements: ev.data.get("measurements").cloned().unwrap_or(Value::Null),
                station: ev.station.map(str::to_string),
                ts: ev.ts.to_string(),
                seq: ev.seq,
                r#final: ev.kind != "TEST_RESULT",
            });
            if ev.kind == "FINAL_PASS" {
                p.status = Status::Passed;
                p.manufactured_at = Some(ev.ts.to_string());
            }
        }
        "SCRAPPED" => {
            p.status = Status::Scrapped;
            p.scrapped_at = Some(ev.ts.to_string());
            p.scrap_reason = opt_text(ev, "reason");
        }
        "SHIPPED" => {
            p.status = Status::Shipped;
            p.shipment = Some(text(ev, "shipment")?.to_string());
            p.buyer = opt_text(ev, "to");
            p.shipped_at = Some(ev.ts.to_string());
        }
        "CHILD_REPLACED" => {
            let (old, new) = (text(ev, "old")?, text(ev, "new")?);
            let reason = opt_text(ev, "reason");
            if let Some(c) = p
                .children
                .iter_mut()
                .find(|c| c.unit == old && c.removed_seq.is_none())
            {
                c.removed_seq = Some(ev.seq);
                c.replaced_by = Some(new.to_string());
                c.reason = reason;
            }
            p.children.push(Child {
                unit: new.to_string(),
                linked_seq: ev.seq,
                removed_seq: None,
                replaced_by: None,
                reason: None,
            });
        }
        _ => {}
    }
    if recycled {
        // A recycled unit stays recycled, whatever line events arrive late.
        p.status = Status::Recycled;
    }
    p.last_seq = ev.seq;
    Ok(Some(p))
}

fn bound(p: &mut Passport, ev: &EventView<'_>) {
    let strings = |key: &str| -> Vec<(String, String)> {
        ev.data
            .get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    p.bindings.extend(strings("fields"));
    p.component_lots.extend(strings("lots"));
    for c in ev
        .data
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        p.children.push(Child {
            unit: c.to_string(),
            linked_seq: ev.seq,
            removed_seq: None,
            replaced_by: None,
            reason: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev<'a>(seq: i64, kind: &'a str, data: &'a Value) -> EventView<'a> {
        EventView {
            line_id: "P1-L03",
            seq,
            ts: "2026-12-03T08:00:00.000Z",
            station: Some("final-1"),
            kind,
            unit: Some("V700QW11S6PJ4"),
            data,
        }
    }

    fn run(events: &[(&str, Value)]) -> Result<Option<Passport>, ProjectionError> {
        let mut p = None;
        for (i, (k, d)) in events.iter().enumerate() {
            p = apply(p, &ev(i as i64 + 1, k, d))?;
        }
        Ok(p)
    }

    #[test]
    fn a_units_life_fills_every_part_of_its_passport() {
        let p = run(&[
            ("ALLOCATED", json!({"product": "PACK-48V", "gtin": "09506000134352", "level": "item", "lot": "L1"})),
            ("BOUND", json!({"fields": {"mac": "AA:BB:CC:00:00:01", "serial": "S1"}, "lots": {"cell": "C7"}, "children": ["FTY8JWEQF4GZ0", "M2"]})),
            ("TEST_RESULT", json!({"step": "functional", "status": "PASS", "measurements": {"voltage": "48.1"}})),
            ("FINAL_PASS", json!({"step": "final", "status": "PASS", "measurements": {}})),
            ("CHILD_REPLACED", json!({"old": "M2", "new": "M3", "reason": "cell imbalance"})),
            ("LABEL_QUEUED", json!({"job": 1})),
            ("SHIPPED", json!({"shipment": "SH-1", "to": "Acme GmbH"})),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(p.status, Status::Shipped);
        assert_eq!(p.lot.as_deref(), Some("L1"));
        assert_eq!(p.bindings["mac"], "AA:BB:CC:00:00:01");
        assert_eq!(p.component_lots["cell"], "C7");
        assert_eq!(p.tests.len(), 2);
        assert!(p.tests[1].r#final);
        assert_eq!(
            p.manufactured_at.as_deref(),
            Some("2026-12-03T08:00:00.000Z")
        );
        let m2 = p.children.iter().find(|c| c.unit == "M2").unwrap();
        assert_eq!(m2.removed_seq, Some(5));
        assert_eq!(m2.replaced_by.as_deref(), Some("M3"));
        assert!(p
            .children
            .iter()
            .any(|c| c.unit == "M3" && c.removed_seq.is_none()));
        assert_eq!(
            (p.shipment.as_deref(), p.buyer.as_deref()),
            (Some("SH-1"), Some("Acme GmbH"))
        );
        assert_eq!(p.last_seq, 7, "LABEL_QUEUED changes nothing, SHIPPED does");
    }

    #[test]
    fn a_final_fail_keeps_the_unit_in_production_and_a_scrap_is_final() {
        let alloc = json!({"product": "P", "gtin": "09506000134352", "level": "item"});
        let fail = json!({"step": "final", "status": "FAIL", "measurements": {}});
        let p = run(&[("ALLOCATED", alloc.clone()), ("FINAL_FAIL", fail)])
            .unwrap()
            .unwrap();
        assert_eq!(p.status, Status::InProduction);
        assert_eq!(p.manufactured_at, None);
        let scrap = json!({"reason": "dropped", "previous_state": "allocated"});
        let p = run(&[("ALLOCATED", alloc), ("SCRAPPED", scrap)])
            .unwrap()
            .unwrap();
        assert_eq!(p.status, Status::Scrapped);
        assert_eq!(p.scrap_reason.as_deref(), Some("dropped"));
    }

    #[test]
    fn an_event_for_a_unit_never_allocated_or_with_a_broken_field_is_named() {
        let e = run(&[("BOUND", json!({"fields": {}}))]).unwrap_err();
        assert!(
            matches!(e, ProjectionError::UnknownUnit { seq: 1, .. }),
            "{e}"
        );
        let e = run(&[("ALLOCATED", json!({"product": 7}))]).unwrap_err();
        assert_eq!(
            e,
            ProjectionError::Field {
                seq: 1,
                kind: "ALLOCATED".into(),
                field: "product"
            }
        );
    }
}
