//! REPLACE: a child unit swapped for another in a unit (service rework),
//! with a reason; the new child must be free and must not contain the unit.
//!
//! Must not: write SQL; rows go through `WriteTx`.

use serde_json::json;

use crate::ids::UnitId;
use crate::journal::{EventType, WriteTx};
use crate::line::rules::{bad, no_unknown_fields, required, text_value, unit_arg, Refusal};
use crate::protocol::{ErrorCode, Request};

use super::{known_unit, not_scrapped, refuse, Ctx, LineError, Outcome};

/// `REPLACE unit= old= new= reason=`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    pub unit: String,
    pub old: String,
    pub new: String,
    pub reason: String,
}

impl Replace {
    pub fn parse(req: &Request) -> Result<Self, Refusal> {
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
        Ok(Replace {
            unit,
            old,
            new,
            reason: text_value("reason", required(req, "reason")?, 256)?,
        })
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let Replace {
            unit,
            old,
            new,
            reason,
        } = self;
        let u = known_unit(tx, &unit)?;
        not_scrapped(&u)?;
        if !tx.is_child_of(&old, u.idx)? {
            return Err(refuse(
                ErrorCode::Conflict,
                format!("{old} is not linked to unit {unit}"),
            ));
        }
        if let Some(p) = tx.parent_of(&new)? {
            return Err(refuse(
                ErrorCode::Conflict,
                format!("{new} is already linked to unit {p}"),
            ));
        }
        if tx.is_self_or_ancestor(&unit, &new)? {
            return Err(refuse(
                ErrorCode::Conflict,
                format!("unit {unit} is itself contained in {new}: linking {new} under it would make a loop"),
            ));
        }
        if let Some(cu) = tx.unit_state(&new)? {
            not_scrapped(&cu)?;
        }
        let ev = ctx.event(
            tx,
            EventType::ChildReplaced,
            &unit,
            json!({"old": old, "new": new, "reason": reason}),
        )?;
        tx.unlink_child(u.idx, &old, ev.seq)?;
        tx.link_child(u.idx, &new, ev.seq)?;
        Ok(Outcome::Done)
    }
}
