//! The pure half of the line rules: turning a parsed request into a
//! validated command, and the checks that need no journal.
//!
//! Must not: read or write the journal.

use std::collections::BTreeMap;

use crate::config::{Product, Station};
use crate::gs1::{ai, Level};
use crate::ids::UnitId;
use crate::protocol::{ErrorCode, Request, Verb};

/// A refusal: the code and the message the station gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub msg: String,
    /// Machine-readable detail sent before `msg`, e.g. `missing=a,b`.
    pub extra: Vec<(String, String)>,
}

impl Refusal {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            extra: Vec::new(),
        }
    }

    /// Adds a detail field.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.extra.push((key.to_string(), value.into()));
        self
    }

    pub fn into_response(self) -> crate::protocol::Response {
        crate::protocol::Response::Err {
            code: self.code,
            extra: self.extra,
            msg: self.msg,
        }
    }
}

fn bad(msg: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::BadValue, msg)
}

/// Identity fields BIND may set, in the order they are journaled.
pub const BIND_FIELDS: &[&str] = &["serial", "mac", "uid", "fw", "fwhash", "cert"];

/// A validated mutating request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Alloc {
        product: String,
        gtin: String,
        level: Level,
        lot: Option<String>,
    },
    Bind {
        unit: String,
        fields: Vec<(String, String)>,
        lots: Vec<(String, String)>,
        children: Vec<String>,
    },
    Result {
        unit: String,
        step: String,
        pass: bool,
        measurements: BTreeMap<String, String>,
    },
    Final {
        unit: String,
        step: String,
        pass: bool,
        measurements: BTreeMap<String, String>,
    },
    Scrap {
        unit: String,
        reason: String,
    },
    Reprint {
        unit: String,
        reason: String,
    },
    Verify {
        unit: String,
        scan: String,
    },
    Ship {
        unit: String,
        shipment: String,
        to: Option<String>,
    },
    Replace {
        unit: String,
        old: String,
        new: String,
        reason: String,
    },
}

/// Normalises a MAC to `AA:BB:CC:DD:EE:FF`: 12 hex digits, optionally
/// separated by `:` or `-` between bytes or `.` between groups of four.
pub fn normalize_mac(text: &str) -> Result<String, Refusal> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let seps = text.len() - hex.len();
    if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || !matches!(seps, 0 | 2 | 5)
    {
        return Err(bad(format!(
            "mac {text:?} is not a MAC address (12 hex digits, e.g. AA:BB:CC:DD:EE:FF)"
        )));
    }
    let up = hex.to_ascii_uppercase();
    Ok((0..6)
        .map(|i| &up[2 * i..2 * i + 2])
        .collect::<Vec<_>>()
        .join(":"))
}

/// A well-formed unit ID, written canonically.
pub fn unit_arg(req: &Request, key: &str) -> Result<String, Refusal> {
    let text = req
        .get(key)
        .ok_or_else(|| bad(format!("{key}= is required")))?;
    UnitId::parse(text)
        .map(|id| id.to_string())
        .map_err(|e| Refusal::new(ErrorCode::UnknownUnit, e.to_string()))
}

fn required<'a>(req: &'a Request, key: &str) -> Result<&'a str, Refusal> {
    req.get(key)
        .ok_or_else(|| bad(format!("{key}= is required")))
}

fn status(req: &Request) -> Result<bool, Refusal> {
    match required(req, "status")?.to_ascii_uppercase().as_str() {
        "PASS" => Ok(true),
        "FAIL" => Ok(false),
        other => Err(bad(format!("status={other} must be PASS or FAIL"))),
    }
}

fn step_name(s: &str) -> Result<String, Refusal> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(bad(format!(
            "step {s:?} must be 1 to 64 characters of A-Z a-z 0-9 - _ ."
        )));
    }
    Ok(s.to_string())
}

/// `m.<name>=value` pairs; names follow the key rules, values are kept as sent.
fn measurements(req: &Request) -> Result<BTreeMap<String, String>, Refusal> {
    let mut m = BTreeMap::new();
    for (name, value) in req.prefixed("m.") {
        if name.is_empty() {
            return Err(bad("m.= needs a measurement name, e.g. m.voltage=48.1"));
        }
        m.insert(name.to_string(), value.to_string());
    }
    Ok(m)
}

fn no_unknown_fields(req: &Request, known: &[&str], prefixes: &[&str]) -> Result<(), Refusal> {
    for (k, _) in req.fields() {
        if k == "req" || known.contains(&k) || prefixes.iter().any(|p| k.starts_with(p)) {
            continue;
        }
        return Err(bad(format!("{} does not take {k}=", req.verb.as_str())));
    }
    Ok(())
}

fn text_value(key: &str, v: &str, max: usize) -> Result<String, Refusal> {
    if v.len() > max {
        return Err(bad(format!("{key}= is longer than {max} characters")));
    }
    Ok(v.to_string())
}

/// The step a RESULT or FINAL records. The station's configured steps are
/// authoritative: a frame may pick one of them with `step=`, never another
/// (a final-test station must not be able to pass `provision`).
fn station_step(req: &Request, station: &Station) -> Result<String, Refusal> {
    match (req.get("step"), station.steps.as_slice()) {
        (Some(s), []) => step_name(s),
        (Some(s), configured) => {
            if configured.iter().any(|c| c == s) {
                Ok(s.to_string())
            } else {
                Err(Refusal::new(
                    ErrorCode::NotAllowed,
                    format!(
                        "station {} may record step {} only, not step={s}",
                        station.name,
                        configured.join(", ")
                    ),
                ))
            }
        }
        (None, [only]) => Ok(only.clone()),
        (None, []) if req.verb == Verb::Final => Ok("final".to_string()),
        (None, []) => Err(bad(format!(
            "step= is required (station {} has no configured step)",
            station.name
        ))),
        (None, several) => Err(bad(format!(
            "step= is required: station {} serves steps {}",
            station.name,
            several.join(", ")
        ))),
    }
}

/// Validates a mutating request against config and the station.
pub fn command(req: &Request, station: &Station, products: &[Product]) -> Result<Command, Refusal> {
    match req.verb {
        Verb::Alloc => {
            no_unknown_fields(req, &["product", "lot"], &[])?;
            let key = required(req, "product")?;
            let p = products.iter().find(|p| p.key == key).ok_or_else(|| {
                Refusal::new(
                    ErrorCode::UnknownProduct,
                    format!("no product {key:?} in the config"),
                )
            })?;
            let lot = req.get("lot").map(str::to_string);
            if let Some(l) = &lot {
                ai::check_value("10", l).map_err(|e| bad(e.to_string()))?;
            }
            if p.level == Level::Batch && lot.is_none() {
                return Err(bad(format!(
                    "product {key} has batch-level passports: lot= is required"
                )));
            }
            Ok(Command::Alloc {
                product: p.key.clone(),
                gtin: p.gtin.to_string(),
                level: p.level,
                lot,
            })
        }
        Verb::Bind => {
            no_unknown_fields(
                req,
                &[
                    "unit", "serial", "mac", "uid", "fw", "fwhash", "cert", "child",
                ],
                &["lot."],
            )?;
            let unit = unit_arg(req, "unit")?;
            let mut fields = Vec::new();
            for f in BIND_FIELDS {
                if let Some(v) = req.get(f) {
                    let v = match *f {
                        "mac" => normalize_mac(v)?,
                        "uid" | "fwhash" | "cert" if v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                            v.to_ascii_uppercase()
                        }
                        _ => text_value(f, v, 128)?,
                    };
                    fields.push((f.to_string(), v));
                }
            }
            let mut lots = Vec::new();
            for (part, lot) in req.prefixed("lot.") {
                step_name(part).map_err(|_| {
                    bad(format!(
                        "lot.{part}= needs a part name of A-Z a-z 0-9 - _ ."
                    ))
                })?;
                lots.push((part.to_string(), text_value("lot", lot, 64)?));
            }
            let mut children = Vec::new();
            for c in req.all("child") {
                let id = UnitId::parse(c)
                    .map_err(|e| bad(format!("child={c}: {e}")))?
                    .to_string();
                if id == unit {
                    return Err(bad("a unit cannot be its own child"));
                }
                if !children.contains(&id) {
                    children.push(id);
                }
            }
            if fields.is_empty() && lots.is_empty() && children.is_empty() {
                return Err(bad("BIND needs at least one of serial= mac= uid= fw= fwhash= cert= lot.<part>= child="));
            }
            Ok(Command::Bind {
                unit,
                fields,
                lots,
                children,
            })
        }
        Verb::Result | Verb::Final => {
            let known: &[&str] = if req.verb == Verb::Result {
                &["unit", "step", "status"]
            } else {
                &["unit", "status", "step"]
            };
            no_unknown_fields(req, known, &["m."])?;
            let unit = unit_arg(req, "unit")?;
            let step = station_step(req, station)?;
            let pass = status(req)?;
            let measurements = measurements(req)?;
            Ok(if req.verb == Verb::Result {
                Command::Result {
                    unit,
                    step,
                    pass,
                    measurements,
                }
            } else {
                Command::Final {
                    unit,
                    step,
                    pass,
                    measurements,
                }
            })
        }
        Verb::Scrap => {
            no_unknown_fields(req, &["unit", "reason"], &[])?;
            let unit = unit_arg(req, "unit")?;
            let reason = text_value("reason", required(req, "reason")?, 256)?;
            Ok(Command::Scrap { unit, reason })
        }
        Verb::Reprint => {
            no_unknown_fields(req, &["unit", "reason"], &[])?;
            let unit = unit_arg(req, "unit")?;
            let reason = text_value("reason", required(req, "reason")?, 256)?;
            Ok(Command::Reprint { unit, reason })
        }
        Verb::Verify => {
            no_unknown_fields(req, &["unit", "scan"], &[])?;
            let unit = unit_arg(req, "unit")?;
            let scan = text_value("scan", required(req, "scan")?, 512)?;
            Ok(Command::Verify { unit, scan })
        }
        Verb::Ship => {
            no_unknown_fields(req, &["unit", "shipment", "to"], &[])?;
            let unit = unit_arg(req, "unit")?;
            let shipment = required(req, "shipment")?;
            step_name(shipment).map_err(|_| {
                bad(format!(
                    "shipment={shipment} must be 1 to 64 characters of A-Z a-z 0-9 - _ ."
                ))
            })?;
            let to = req
                .get("to")
                .map(|t| text_value("to", t, 128))
                .transpose()?;
            Ok(Command::Ship {
                unit,
                shipment: shipment.to_string(),
                to,
            })
        }
        Verb::Replace => {
            no_unknown_fields(req, &["unit", "old", "new", "reason"], &[])?;
            let unit = unit_arg(req, "unit")?;
            let id = |k: &str| -> Result<String, Refusal> {
                let v = required(req, k)?;
                UnitId::parse(v)
                    .map(|i| i.to_string())
                    .map_err(|e| bad(format!("{k}={v}: {e}")))
            };
            let (old, new) = (id("old")?, id("new")?);
            if old == new || new == unit {
                return Err(bad("new= must differ from old= and from the unit"));
            }
            let reason = text_value("reason", required(req, "reason")?, 256)?;
            Ok(Command::Replace {
                unit,
                old,
                new,
                reason,
            })
        }
        other => Err(Refusal::new(
            ErrorCode::NotAllowed,
            format!("{} is not available in this build", other.as_str()),
        )),
    }
}

/// Required steps whose latest result is not PASS, in config order.
pub fn missing_steps(required: &[String], latest: &[(String, String)]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !latest.iter().any(|(s, st)| s == *r && st == "PASS"))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse;

    #[test]
    fn macs_are_normalised_from_common_spellings() {
        for m in [
            "aa:bb:cc:dd:ee:ff",
            "AA-BB-CC-DD-EE-FF",
            "aabbccddeeff",
            "aabb.ccdd.eeff",
        ] {
            assert_eq!(normalize_mac(m).unwrap(), "AA:BB:CC:DD:EE:FF", "{m}");
        }
        for m in [
            "aa:bb:cc:dd:ee",
            "gg:bb:cc:dd:ee:ff",
            "aabbccddeeff00",
            "a:a:b:b:c:c:d:d:e:e:f:f",
            "",
        ] {
            assert_eq!(
                normalize_mac(m).unwrap_err().code,
                ErrorCode::BadValue,
                "{m}"
            );
        }
    }

    #[test]
    fn the_routing_gate_names_every_missing_step() {
        let req = vec!["provision".to_string(), "functional".to_string()];
        let latest = vec![
            ("provision".to_string(), "PASS".to_string()),
            ("functional".to_string(), "FAIL".to_string()),
        ];
        assert_eq!(missing_steps(&req, &latest), vec!["functional"]);
        assert_eq!(missing_steps(&req, &[]), vec!["provision", "functional"]);
        let all = vec![
            ("functional".into(), "PASS".into()),
            ("provision".into(), "PASS".into()),
        ];
        assert!(missing_steps(&req, &all).is_empty());
    }

    fn station(step: Option<&str>) -> Station {
        Station {
            name: "s".into(),
            port: crate::config::StationPort::Tcp("127.0.0.1:1".into()),
            baud: 9600,
            data_bits: 8,
            parity: crate::config::Parity::None,
            stop_bits: 1,
            flow_control: crate::config::FlowControl::None,
            checksum: crate::config::ChecksumPolicy::Optional,
            allow: vec![],
            steps: step.map(str::to_string).into_iter().collect(),
            printer: None,
            idle_timeout_s: 0,
        }
    }

    fn products() -> Vec<Product> {
        vec![
            Product {
                key: "PACK-48V".into(),
                gtin: crate::gs1::Gtin::parse("09506000134352").unwrap(),
                level: Level::Item,
                template: "t".into(),
                required_steps: vec![],
            },
            Product {
                key: "CELL".into(),
                gtin: crate::gs1::Gtin::parse("09506000134352").unwrap(),
                level: Level::Batch,
                template: "t".into(),
                required_steps: vec![],
            },
        ]
    }

    fn cmd(frame: &str, step: Option<&str>) -> Result<Command, Refusal> {
        command(
            &parse(frame.as_bytes(), false).unwrap(),
            &station(step),
            &products(),
        )
    }

    #[test]
    fn alloc_checks_product_lot_and_level() {
        assert_eq!(
            cmd("ALLOC product=NOPE", None).unwrap_err().code,
            ErrorCode::UnknownProduct
        );
        assert_eq!(
            cmd("ALLOC product=PACK-48V lot=A%20B", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        assert_eq!(
            cmd("ALLOC product=PACK-48V lot=ABCDEFGHIJKLMNOPQRSTU", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        assert_eq!(
            cmd("ALLOC product=CELL", None).unwrap_err().code,
            ErrorCode::BadValue
        );
        assert!(cmd("ALLOC product=CELL lot=L1", None).is_ok());
        assert_eq!(
            cmd("ALLOC product=PACK-48V colour=red", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
    }

    #[test]
    fn bind_normalises_and_refuses_self_links_and_bad_ids() {
        let c = cmd(
            "BIND unit=v700qw11s6pj4 mac=aabbccddeeff uid=abc123 child=FTY8JWEQF4GZ0 lot.cell=C-7",
            None,
        )
        .unwrap();
        let Command::Bind {
            unit,
            fields,
            lots,
            children,
        } = c
        else {
            panic!()
        };
        assert_eq!(unit, "V700QW11S6PJ4");
        assert!(fields.contains(&("mac".into(), "AA:BB:CC:DD:EE:FF".into())));
        assert!(fields.contains(&("uid".into(), "ABC123".into())));
        assert_eq!(lots, vec![("cell".into(), "C-7".into())]);
        assert_eq!(children, vec!["FTY8JWEQF4GZ0".to_string()]);
        assert_eq!(
            cmd("BIND unit=V700QW11S6PJ4 child=V700QW11S6PJ4", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        assert_eq!(
            cmd("BIND unit=V700QW11S6PJ5 mac=aabbccddeeff", None)
                .unwrap_err()
                .code,
            ErrorCode::UnknownUnit
        );
        assert_eq!(
            cmd("BIND unit=V700QW11S6PJ4", None).unwrap_err().code,
            ErrorCode::BadValue
        );
    }

    #[test]
    fn result_takes_the_station_step_by_default_and_keeps_measurements() {
        let c = cmd(
            "RESULT unit=V700QW11S6PJ4 status=pass m.voltage=48.1 m.ir_mohm=12",
            Some("functional"),
        )
        .unwrap();
        let Command::Result {
            step,
            pass,
            measurements,
            ..
        } = c
        else {
            panic!()
        };
        assert_eq!(step, "functional");
        assert!(pass);
        assert_eq!(measurements["voltage"], "48.1");
        assert_eq!(
            cmd("RESULT unit=V700QW11S6PJ4 status=PASS", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        assert_eq!(
            cmd("RESULT unit=V700QW11S6PJ4 step=x status=MAYBE", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        let Command::Final { step, .. } =
            cmd("FINAL unit=V700QW11S6PJ4 status=FAIL", None).unwrap()
        else {
            panic!()
        };
        assert_eq!(step, "final");
    }

    #[test]
    fn a_configured_step_is_authoritative_over_the_frames_step() {
        // The final station must not record `provision` and so open the
        // route to a label.
        let refused = cmd(
            "RESULT unit=V700QW11S6PJ4 step=provision status=PASS",
            Some("final"),
        )
        .unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotAllowed);
        assert!(refused.msg.contains("final"), "{}", refused.msg);
        assert_eq!(
            cmd(
                "FINAL unit=V700QW11S6PJ4 step=provision status=PASS",
                Some("final")
            )
            .unwrap_err()
            .code,
            ErrorCode::NotAllowed
        );
        // Naming its own step is fine.
        assert!(cmd(
            "RESULT unit=V700QW11S6PJ4 step=final status=PASS",
            Some("final")
        )
        .is_ok());
        // A station serving several steps names one of them, and must name one.
        let mut multi = station(None);
        multi.steps = vec!["provision".into(), "functional".into()];
        let run = |frame: &str| {
            command(
                &parse(frame.as_bytes(), false).unwrap(),
                &multi,
                &products(),
            )
        };
        let Command::Result { step, .. } =
            run("RESULT unit=V700QW11S6PJ4 step=functional status=PASS").unwrap()
        else {
            panic!()
        };
        assert_eq!(step, "functional");
        assert_eq!(
            run("RESULT unit=V700QW11S6PJ4 step=final status=PASS")
                .unwrap_err()
                .code,
            ErrorCode::NotAllowed
        );
        assert_eq!(
            run("RESULT unit=V700QW11S6PJ4 status=PASS")
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
    }
}
