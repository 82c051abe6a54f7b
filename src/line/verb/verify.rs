//! VERIFY: what a scanner read from the printed label, compared with the
//! unit's identity. Both outcomes are journaled; a mismatch is committed
//! and then answered `E_MISMATCH`.
//!
//! Must not: write SQL; rows go through `WriteTx`.

use serde_json::json;

use crate::gs1::{self, Gtin, Identity};
use crate::journal::{EventType, WriteTx};
use crate::line::rules::{no_unknown_fields, required, text_value, unit_arg, Refusal};
use crate::protocol::Request;

use super::{corrupt, known_unit, Ctx, LineError, Outcome};

/// `VERIFY unit= scan=`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    pub unit: String,
    pub scan: String,
}

impl Verify {
    pub fn parse(req: &Request) -> Result<Self, Refusal> {
        no_unknown_fields(req, &["unit", "scan"], &[])?;
        Ok(Verify {
            unit: unit_arg(req, "unit")?,
            scan: text_value("scan", required(req, "scan")?, 512)?,
        })
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let (unit, scan) = (self.unit.as_str(), self.scan.as_str());
        let u = known_unit(tx, unit)?;
        let level = gs1::Level::parse(&u.level).unwrap_or(gs1::Level::Item);
        let gtin = Gtin::parse(&u.gtin).map_err(corrupt)?;
        let expected = Identity::for_unit(gtin, level, u.lot.as_deref(), unit);
        match mismatch(scan, &expected) {
            None => {
                ctx.event(tx, EventType::LabelVerified, unit, json!({"scan": scan}))?;
                Ok(Outcome::Done)
            }
            Some(problem) => {
                let uri = gs1::build_uri(&ctx.config.resolver, &expected);
                ctx.event(
                    tx,
                    EventType::LabelMismatch,
                    unit,
                    json!({"scan": scan, "expected": uri, "problem": problem}),
                )?;
                Ok(Outcome::Mismatch { problem })
            }
        }
    }
}

/// What is wrong with a scan of the unit's label, or `None` when it matches.
fn mismatch(scan: &str, expected: &Identity) -> Option<String> {
    match gs1::parse_scanned(scan) {
        Err(e) => Some(format!("the scan is not a GS1 code: {e}")),
        Ok(found) if &found == expected => None,
        Ok(found) => Some(format!(
            "label says {}, unit is {}",
            gs1::hri(&found),
            gs1::hri(expected)
        )),
    }
}
