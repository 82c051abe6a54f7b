//! REPRINT: a new label job for a unit that passed final test, with a
//! reason (from a station with a printer, or the web page).
//!
//! Must not: write SQL or wake a printer (the caller does, from the outcome).

use crate::journal::units::UnitStatus;
use crate::journal::WriteTx;
use crate::line::rules::{no_unknown_fields, required, text_value, unit_arg, Refusal};
use crate::protocol::{ErrorCode, Request};

use super::{known_unit, not_scrapped, refuse, Ctx, LabelJob, LineError, Outcome};

/// `REPRINT unit= reason=`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reprint {
    pub unit: String,
    pub reason: String,
}

impl Reprint {
    pub fn parse(req: &Request) -> Result<Self, Refusal> {
        no_unknown_fields(req, &["unit", "reason"], &[])?;
        Ok(Reprint {
            unit: unit_arg(req, "unit")?,
            reason: text_value("reason", required(req, "reason")?, 256)?,
        })
    }

    /// Queues the label on the context's printer.
    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let printer = ctx.printer.ok_or_else(|| {
            refuse(
                ErrorCode::NotAllowed,
                match ctx.station {
                    Some(s) => format!("station {s} has no printer configured"),
                    None => "no printer is configured for a reprint".to_string(),
                },
            )
        })?;
        let unit = self.unit.as_str();
        let u = known_unit(tx, unit)?;
        not_scrapped(&u)?;
        if u.state != UnitStatus::Passed {
            return Err(refuse(
                ErrorCode::Route,
                format!("unit {unit} has not passed final test: no label before FINAL PASS"),
            ));
        }
        let template = ctx.template_of(&u)?;
        let (job, _) = tx.queue_label(
            printer,
            unit,
            &template,
            ctx.station,
            &ctx.actor,
            Some(&self.reason),
        )?;
        Ok(Outcome::LabelQueued(LabelJob {
            job,
            printer: printer.to_string(),
        }))
    }
}
