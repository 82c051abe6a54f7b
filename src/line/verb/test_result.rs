//! RESULT: one test step's PASS or FAIL with its measurements.
//!
//! Must not: write SQL; rows go through `WriteTx`.

use std::collections::BTreeMap;

use serde_json::json;

use crate::config::Station;
use crate::journal::units::UnitState;
use crate::journal::{Event, EventType, WriteTx};
use crate::line::rules::{
    measurements, no_unknown_fields, station_step, status, unit_arg, Refusal,
};
use crate::protocol::Request;

use super::{known_unit, not_scrapped, Ctx, LineError, Outcome};

/// `RESULT unit= [step=] status=PASS|FAIL [m.<name>=]...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub unit: String,
    pub step: String,
    pub pass: bool,
    pub measurements: BTreeMap<String, String>,
}

impl TestResult {
    /// The step is the station's (a frame may only pick one of its steps).
    pub fn parse(req: &Request, station: &Station) -> Result<Self, Refusal> {
        no_unknown_fields(req, &["unit", "step", "status"], &["m."])?;
        // FINAL without a step at a station without one records `final`.
        Ok(TestResult {
            unit: unit_arg(req, "unit")?,
            step: station_step(req, station)?,
            pass: status(req)?,
            measurements: measurements(req)?,
        })
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let u = known_unit(tx, &self.unit)?;
        not_scrapped(&u)?;
        record(
            tx,
            ctx,
            &u,
            EventType::TestResult,
            &self.step,
            self.pass,
            &self.measurements,
        )?;
        Ok(Outcome::Done)
    }
}

/// Journals a test event and its `test_results` row (RESULT and FINAL).
pub(crate) fn record(
    tx: &mut WriteTx<'_>,
    ctx: &Ctx<'_>,
    u: &UnitState,
    kind: EventType,
    step: &str,
    pass: bool,
    measurements: &BTreeMap<String, String>,
) -> Result<Event, LineError> {
    let status = if pass { "PASS" } else { "FAIL" };
    let m = json!(measurements);
    let ev = ctx.event(
        tx,
        kind,
        &u.unit,
        json!({"step": step, "status": status, "measurements": m}),
    )?;
    tx.add_test_result(&ev, u.idx, step, status, &m.to_string())?;
    Ok(ev)
}
