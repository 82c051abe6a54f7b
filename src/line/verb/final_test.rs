//! FINAL: the final test. A PASS passes the routing gate (every required
//! step's latest result is PASS) and queues the label in the same
//! transaction, so a label exists exactly when the pass is durable.
//!
//! Must not: write SQL or wake a printer (the caller does, from the
//! outcome, after the commit).

use crate::config::Station;
use crate::journal::units::UnitStatus;
use crate::journal::{EventType, WriteTx};
use crate::line::rules::{missing_steps, Refusal};
use crate::protocol::{ErrorCode, Request};

use super::test_result::{record, TestResult};
use super::{known_unit, not_scrapped, refuse, Ctx, LabelJob, LineError, Outcome};

/// `FINAL unit= status=PASS|FAIL [step=] [m.<name>=]...`: the same fields
/// as RESULT; the step is the station's, or `final` for a station without
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalTest(pub TestResult);

impl FinalTest {
    pub fn parse(req: &Request, station: &Station) -> Result<Self, Refusal> {
        TestResult::parse(req, station).map(FinalTest)
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let FinalTest(t) = self;
        let unit = t.unit.as_str();
        let u = known_unit(tx, unit)?;
        not_scrapped(&u)?;
        if u.state == UnitStatus::Passed {
            return Err(refuse(
                ErrorCode::AlreadyFinal,
                format!("unit {unit} already passed final test; use REPRINT for a new label"),
            ));
        }
        if t.pass {
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
        let kind = if t.pass {
            EventType::FinalPass
        } else {
            EventType::FinalFail
        };
        let ev = record(tx, ctx, &u, kind, &t.step, t.pass, &t.measurements)?;
        tx.set_final(u.idx, t.pass, ev.seq, &ev.ts)?;
        match (ctx.printer, t.pass) {
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
