//! FINAL: the final test. A PASS passes the routing gate (every required
//! step's latest result is PASS) and queues the label in the same
//! transaction, so a label exists exactly when the pass is durable.
//!
//! Must not: write SQL or wake a printer (the caller does, from the
//! outcome, after the commit).

use std::collections::BTreeMap;

use crate::config::Station;
use crate::journal::units::UnitStatus;
use crate::journal::{EventType, WriteTx};
use crate::line::rules::{
    measurements, missing_steps, no_unknown_fields, station_step, status, unit_arg, Refusal,
};
use crate::protocol::{ErrorCode, Request};

use super::test_result::record;
use super::{known_unit, not_scrapped, refuse, Ctx, LabelJob, LineError, Outcome};

/// `FINAL unit= status=PASS|FAIL [step=] [m.<name>=]...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalTest {
    pub unit: String,
    pub step: String,
    pub pass: bool,
    pub measurements: BTreeMap<String, String>,
}

impl FinalTest {
    /// The step is the station's, or `final` for a station without one.
    pub fn parse(req: &Request, station: &Station) -> Result<Self, Refusal> {
        no_unknown_fields(req, &["unit", "status", "step"], &["m."])?;
        Ok(FinalTest {
            unit: unit_arg(req, "unit")?,
            step: station_step(req, station)?,
            pass: status(req)?,
            measurements: measurements(req)?,
        })
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let unit = self.unit.as_str();
        let u = known_unit(tx, unit)?;
        not_scrapped(&u)?;
        if u.state == UnitStatus::Passed {
            return Err(refuse(
                ErrorCode::AlreadyFinal,
                format!("unit {unit} already passed final test; use REPRINT for a new label"),
            ));
        }
        if self.pass {
            let product = ctx.config.product(&u.product).ok_or_else(|| {
                refuse(
                    ErrorCode::UnknownProduct,
                    format!(
                        "unit {unit} is a {} and that product is no longer in the config",
                        u.product
                    ),
                )
            })?;
            let missing = missing_steps(&product.required_steps, &tx.latest_results(u.idx)?);
            if !missing.is_empty() {
                return Err(LineError::Refused(
                    Refusal::new(ErrorCode::Route, "required steps have not passed")
                        .with("missing", missing.join(",")),
                ));
            }
        }
        let kind = if self.pass {
            EventType::FinalPass
        } else {
            EventType::FinalFail
        };
        let ev = record(tx, ctx, &u, kind, &self.step, self.pass, &self.measurements)?;
        tx.set_final(u.idx, self.pass, ev.seq, &ev.ts)?;
        match (ctx.printer, self.pass) {
            (Some(printer), true) => {
                let template = ctx.template_of(&u)?;
                let (job, _) =
                    tx.queue_label(printer, unit, &template, ctx.station, &ctx.actor, None)?;
                Ok(Outcome::LabelQueued(LabelJob {
                    job,
                    printer: printer.to_string(),
                }))
            }
            _ => Ok(Outcome::Done),
        }
    }
}
