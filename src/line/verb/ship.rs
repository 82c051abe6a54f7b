//! SHIP: a unit that passed final test leaves in a shipment, once.
//!
//! Must not: write SQL; rows go through `WriteTx`.

use serde_json::json;

use crate::journal::units::UnitStatus;
use crate::journal::{EventType, WriteTx};
use crate::line::rules::{
    bad, no_unknown_fields, required, step_name, text_value, unit_arg, Refusal,
};
use crate::protocol::{ErrorCode, Request};

use super::{known_unit, refuse, Ctx, LineError, Outcome};

/// `SHIP unit= shipment= [to=]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ship {
    pub unit: String,
    pub shipment: String,
    pub to: Option<String>,
}

impl Ship {
    pub fn parse(req: &Request) -> Result<Self, Refusal> {
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
        Ok(Ship {
            unit,
            shipment: shipment.to_string(),
            to,
        })
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let unit = self.unit.as_str();
        let u = known_unit(tx, unit)?;
        if u.state != UnitStatus::Passed {
            let why = if u.state == UnitStatus::Scrapped {
                "is scrapped"
            } else {
                "has not passed final test"
            };
            return Err(refuse(
                ErrorCode::Route,
                format!("unit {unit} {why}: it cannot ship"),
            ));
        }
        if let Some(s) = &u.shipment {
            return Err(refuse(
                ErrorCode::AlreadyShipped,
                format!("unit {unit} already shipped in {s}"),
            ));
        }
        let mut data = json!({"shipment": self.shipment});
        if let Some(t) = &self.to {
            data["to"] = json!(t);
        }
        let ev = ctx.event(tx, EventType::Shipped, unit, data)?;
        tx.set_shipped(u.idx, &self.shipment, self.to.as_deref(), &ev)?;
        Ok(Outcome::Done)
    }
}
