//! BIND: identity fields, component lots and child units bound to a unit.
//! A bound value never changes; a MAC or chip UID belongs to one unit; no
//! link makes a unit its own ancestor.
//!
//! Must not: write SQL; rows go through `WriteTx`.

use serde_json::{Map, Value};

use crate::ids::UnitId;
use crate::journal::units::UnitState;
use crate::journal::{EventType, WriteTx};
use crate::line::rules::{
    bad, no_unknown_fields, normalize_mac, step_name, text_value, unit_arg, Refusal, BIND_FIELDS,
};
use crate::protocol::{ErrorCode, Request};

use super::{known_unit, not_scrapped, refuse, Ctx, LineError, Outcome};

/// `BIND unit= [serial= mac= uid= fw= fwhash= cert=] [lot.<part>=] [child=]...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub unit: String,
    /// `(field, value)` in [`BIND_FIELDS`] order, values normalised.
    pub fields: Vec<(String, String)>,
    /// `(part, lot)`.
    pub lots: Vec<(String, String)>,
    /// Canonical unit IDs, without repeats.
    pub children: Vec<String>,
}

impl Bind {
    pub fn parse(req: &Request) -> Result<Self, Refusal> {
        no_unknown_fields(
            req,
            &[
                "unit", "serial", "mac", "uid", "fw", "fwhash", "cert", "child",
            ],
            &["lot."],
        )?;
        let unit = unit_arg(req, "unit")?;
        let fields = BIND_FIELDS
            .iter()
            .filter_map(|f| req.get(f).map(|v| (*f, v)))
            .map(|(f, v)| Ok((f.to_string(), field_value(f, v)?)))
            .collect::<Result<Vec<_>, Refusal>>()?;
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
            return Err(bad(
                "BIND needs at least one of serial= mac= uid= fw= fwhash= cert= lot.<part>= child=",
            ));
        }
        Ok(Bind {
            unit,
            fields,
            lots,
            children,
        })
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let u = known_unit(tx, &self.unit)?;
        not_scrapped(&u)?;
        let fields = self.new_fields(tx, &u)?;
        let lots = self.new_lots(tx, &u)?;
        let children = self.new_children(tx)?;
        if fields.is_empty() && lots.is_empty() && children.is_empty() {
            return Ok(Outcome::Done); // everything already bound exactly so
        }
        let mut data = Map::new();
        if !fields.is_empty() {
            data.insert("fields".into(), Value::from(to_map(&fields)));
        }
        if !lots.is_empty() {
            data.insert("lots".into(), Value::from(to_map(&lots)));
        }
        if !children.is_empty() {
            data.insert("children".into(), Value::from(children.clone()));
        }
        let ev = ctx.event(tx, EventType::Bound, &self.unit, Value::Object(data))?;
        for (f, v) in &fields {
            tx.set_binding(u.idx, f, v, ev.seq)?;
        }
        for (p, l) in &lots {
            tx.set_component_lot(u.idx, p, l, ev.seq)?;
        }
        for c in &children {
            tx.link_child(u.idx, c, ev.seq)?;
        }
        Ok(Outcome::Done)
    }

    /// Fields not bound yet. A different value than the bound one, or a
    /// MAC or UID bound to another unit, is refused.
    fn new_fields<'s>(
        &'s self,
        tx: &WriteTx<'_>,
        u: &UnitState,
    ) -> Result<Vec<(&'s str, &'s str)>, LineError> {
        let unit = &self.unit;
        let mut new = Vec::new();
        for (f, v) in &self.fields {
            match tx.binding(u.idx, f)? {
                Some(old) if &old == v => continue,
                Some(old) => {
                    return Err(refuse(
                        ErrorCode::Conflict,
                        format!("{f} of unit {unit} is already {old}; a bound value never changes"),
                    ))
                }
                None => {}
            }
            if let Some(code) = unique_code(f) {
                if let Some(other) = tx.bound_to(f, v)? {
                    return Err(refuse(
                        code,
                        format!("{f} {v} is already bound to unit {other}"),
                    ));
                }
            }
            new.push((f.as_str(), v.as_str()));
        }
        Ok(new)
    }

    /// Component lots not recorded yet; a different lot is refused.
    fn new_lots<'s>(
        &'s self,
        tx: &WriteTx<'_>,
        u: &UnitState,
    ) -> Result<Vec<(&'s str, &'s str)>, LineError> {
        let mut new = Vec::new();
        for (part, lot) in &self.lots {
            match tx.component_lot(u.idx, part)? {
                Some(old) if &old == lot => continue,
                Some(old) => {
                    return Err(refuse(
                        ErrorCode::Conflict,
                        format!("lot.{part} of unit {} is already {old}", self.unit),
                    ))
                }
                None => new.push((part.as_str(), lot.as_str())),
            }
        }
        Ok(new)
    }

    /// Children not linked yet. A child of another unit, an ancestor of
    /// this one (a loop) or a scrapped unit is refused.
    fn new_children(&self, tx: &WriteTx<'_>) -> Result<Vec<String>, LineError> {
        let unit = &self.unit;
        let mut new = Vec::new();
        for c in &self.children {
            match tx.parent_of(c)? {
                Some(p) if &p == unit => continue,
                Some(p) => {
                    return Err(refuse(
                        ErrorCode::Conflict,
                        format!("child {c} is linked to unit {p}"),
                    ))
                }
                None => {}
            }
            if tx.is_self_or_ancestor(unit, c)? {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!("unit {unit} is itself contained in {c}: linking {c} under it would make a loop"),
                ));
            }
            if let Some(cu) = tx.unit_state(c)? {
                not_scrapped(&cu)?;
            }
            new.push(c.clone());
        }
        Ok(new)
    }
}

/// `{"key": "value", ...}` in the order given.
fn to_map(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect()
}

/// A field's value as stored: MACs normalised, hex upper-cased, text bounded.
fn field_value(field: &str, v: &str) -> Result<String, Refusal> {
    match field {
        "mac" => normalize_mac(v),
        "uid" | "fwhash" | "cert" if v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(v.to_ascii_uppercase())
        }
        _ => text_value(field, v, 128),
    }
}

/// The code for a value bound to another unit, for fields that must be unique.
fn unique_code(field: &str) -> Option<ErrorCode> {
    match field {
        "mac" => Some(ErrorCode::DupMac),
        "uid" => Some(ErrorCode::DupUid),
        _ => None,
    }
}
