//! The pure half of the line rules: turning a parsed request into a
//! validated command, and the checks that need no journal.
//!
//! Must not: read or write the journal.

use std::collections::BTreeMap;

use crate::config::Station;
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

pub(crate) fn bad(msg: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::BadValue, msg)
}

/// Identity fields BIND may set, in the order they are journaled.
pub const BIND_FIELDS: &[&str] = &["serial", "mac", "uid", "fw", "fwhash", "cert"];

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

pub(crate) fn required<'a>(req: &'a Request, key: &str) -> Result<&'a str, Refusal> {
    req.get(key)
        .ok_or_else(|| bad(format!("{key}= is required")))
}

pub(crate) fn status(req: &Request) -> Result<bool, Refusal> {
    match required(req, "status")?.to_ascii_uppercase().as_str() {
        "PASS" => Ok(true),
        "FAIL" => Ok(false),
        other => Err(bad(format!("status={other} must be PASS or FAIL"))),
    }
}

pub(crate) fn step_name(s: &str) -> Result<String, Refusal> {
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
pub(crate) fn measurements(req: &Request) -> Result<BTreeMap<String, String>, Refusal> {
    let mut m = BTreeMap::new();
    for (name, value) in req.prefixed("m.") {
        if name.is_empty() {
            return Err(bad("m.= needs a measurement name, e.g. m.voltage=48.1"));
        }
        m.insert(name.to_string(), value.to_string());
    }
    Ok(m)
}

pub(crate) fn no_unknown_fields(
    req: &Request,
    known: &[&str],
    prefixes: &[&str],
) -> Result<(), Refusal> {
    for (k, _) in req.fields() {
        if k == "req" || known.contains(&k) || prefixes.iter().any(|p| k.starts_with(p)) {
            continue;
        }
        return Err(bad(format!("{} does not take {k}=", req.verb.as_str())));
    }
    Ok(())
}

pub(crate) fn text_value(key: &str, v: &str, max: usize) -> Result<String, Refusal> {
    if v.len() > max {
        return Err(bad(format!("{key}= is longer than {max} characters")));
    }
    Ok(v.to_string())
}

/// The step a RESULT or FINAL records. The station's configured steps are
/// authoritative: a frame may pick one of them with `step=`, never another
/// (a final-test station must not be able to pass `provision`).
pub(crate) fn station_step(req: &Request, station: &Station) -> Result<String, Refusal> {
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
}
