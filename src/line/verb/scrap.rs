//! SCRAP: a unit taken out of production, with a reason (from a station or
//! the web page). Nothing else may happen to it afterwards.
//!
//! Must not: write SQL; rows go through `WriteTx`.

use serde_json::json;

use crate::journal::{EventType, WriteTx};
use crate::line::rules::{no_unknown_fields, required, text_value, unit_arg, Refusal};
use crate::protocol::Request;

use super::{known_unit, not_scrapped, Ctx, LineError, Outcome};

/// `SCRAP unit= reason=`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrap {
    pub unit: String,
    pub reason: String,
}

impl Scrap {
    pub fn parse(req: &Request) -> Result<Self, Refusal> {
        no_unknown_fields(req, &["unit", "reason"], &[])?;
        Ok(Scrap {
            unit: unit_arg(req, "unit")?,
            reason: text_value("reason", required(req, "reason")?, 256)?,
        })
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let u = known_unit(tx, &self.unit)?;
        not_scrapped(&u)?;
        let ev = ctx.event(
            tx,
            EventType::Scrapped,
            &self.unit,
            json!({"reason": self.reason, "previous_state": u.state.as_str()}),
        )?;
        tx.set_scrapped(u.idx, ev.seq, &self.reason)?;
        Ok(Outcome::Done)
    }
}
