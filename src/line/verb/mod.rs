//! The line's verbs, one module each (SPEC section 4): a typed request,
//! how it is read from a protocol [`Request`] (pure), and what it does in
//! the journal's write transaction.
//!
//! Owns: each mutating verb's checks, its events and its state-table rows,
//! and the typed [`Outcome`] it answers. Callers — the station protocol, the
//! web page, the PLC gateway — build a [`Command`] and run it through
//! [`crate::line::Line::run`]; none of them touch the rules.
//! Must not: do IO, write SQL (it uses `journal::WriteTx`) or format a
//! protocol answer (that is `line::answer`).

pub mod alloc;
pub mod bind;
pub mod final_test;
pub mod replace;
pub mod reprint;
pub mod scrap;
pub mod ship;
pub mod test_result;
pub mod verify;

use serde_json::Value;

use crate::config::{Config, Product, Station};
use crate::journal::units::{UnitState, UnitStatus};
use crate::journal::{Event, EventType, JournalError, NewEvent, WriteTx};
use crate::protocol::{ErrorCode, Request, Verb};

use super::rules::Refusal;

/// Why a verb produced no change.
#[derive(Debug)]
pub enum LineError {
    /// The rules refused it: the code and message the caller gets.
    Refused(Refusal),
    /// The journal could not store it (answered `E_STORAGE`).
    Journal(JournalError),
}

impl From<JournalError> for LineError {
    fn from(e: JournalError) -> Self {
        LineError::Journal(e)
    }
}

impl From<Refusal> for LineError {
    fn from(r: Refusal) -> Self {
        LineError::Refused(r)
    }
}

pub(crate) fn refuse(code: ErrorCode, msg: impl Into<String>) -> LineError {
    LineError::Refused(Refusal::new(code, msg))
}

/// A label job committed with the verb that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelJob {
    pub job: i64,
    pub printer: String,
}

/// What a committed verb did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded; nothing more to report.
    Done,
    /// ALLOC: the new unit and its Digital Link URI.
    Allocated { unit: String, uri: String },
    /// FINAL PASS at a station with a printer, or REPRINT: a label job.
    LabelQueued(LabelJob),
    /// VERIFY read something else than the unit's identity. The mismatch is
    /// journaled (committed) and answered `E_MISMATCH`.
    Mismatch { problem: String },
}

impl Outcome {
    /// The label job this outcome queued, if any: its printer is woken.
    pub fn label(&self) -> Option<&LabelJob> {
        match self {
            Outcome::LabelQueued(job) => Some(job),
            _ => None,
        }
    }
}

/// Who runs a verb, and where.
pub struct Ctx<'a> {
    pub config: &'a Config,
    /// The station (`None` for a web action).
    pub station: Option<&'a str>,
    /// `station:NAME` or `web:ROLE:NAME`.
    pub actor: String,
    /// Where labels go (the station's printer, or the one a reprint chose).
    pub printer: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    /// A station's context: its name, actor and printer.
    pub fn station(config: &'a Config, station: &'a Station) -> Self {
        Self {
            config,
            station: Some(&station.name),
            actor: format!("station:{}", station.name),
            printer: station.printer.as_deref(),
        }
    }

    /// A web action's context: no station, the signed-in user as actor.
    pub fn web(config: &'a Config, actor: String, printer: Option<&'a str>) -> Self {
        Self {
            config,
            station: None,
            actor,
            printer,
        }
    }

    /// Appends one event about `unit` by this context's station and actor.
    pub(crate) fn event(
        &self,
        tx: &mut WriteTx<'_>,
        kind: EventType,
        unit: &str,
        data: Value,
    ) -> Result<Event, LineError> {
        Ok(tx.append(NewEvent {
            kind,
            station: self.station.map(str::to_string),
            actor: self.actor.clone(),
            unit: Some(unit.to_string()),
            data,
        })?)
    }

    /// The label template of the unit's product.
    pub(crate) fn template_of(&self, u: &UnitState) -> Result<String, LineError> {
        self.config
            .product(&u.product)
            .map(|p| p.template.clone())
            .ok_or_else(|| {
                refuse(
                    ErrorCode::UnknownProduct,
                    format!("product {} is no longer in the config", u.product),
                )
            })
    }
}

/// A unit this line allocated, or `E_UNKNOWN_UNIT`.
pub(crate) fn known_unit(tx: &WriteTx<'_>, unit: &str) -> Result<UnitState, LineError> {
    tx.unit_state(unit)?.ok_or_else(|| {
        refuse(
            ErrorCode::UnknownUnit,
            format!("unit {unit} was not allocated on this line"),
        )
    })
}

/// `E_SCRAPPED` for a scrapped unit.
pub(crate) fn not_scrapped(u: &UnitState) -> Result<(), LineError> {
    if u.state == UnitStatus::Scrapped {
        return Err(refuse(
            ErrorCode::Scrapped,
            format!("unit {} is scrapped", u.unit),
        ));
    }
    Ok(())
}

/// A validated mutating request: one variant per verb module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Alloc(alloc::Alloc),
    Bind(bind::Bind),
    Result(test_result::TestResult),
    Final(final_test::FinalTest),
    Scrap(scrap::Scrap),
    Reprint(reprint::Reprint),
    Verify(verify::Verify),
    Ship(ship::Ship),
    Replace(replace::Replace),
}

impl Command {
    /// Reads a mutating request from a protocol frame, checked against the
    /// config's products and the station's steps. Changes nothing.
    pub fn parse(req: &Request, station: &Station, products: &[Product]) -> Result<Self, Refusal> {
        Ok(match req.verb {
            Verb::Alloc => Command::Alloc(alloc::Alloc::parse(req, products)?),
            Verb::Bind => Command::Bind(bind::Bind::parse(req)?),
            Verb::Result => Command::Result(test_result::TestResult::parse(req, station)?),
            Verb::Final => Command::Final(final_test::FinalTest::parse(req, station)?),
            Verb::Scrap => Command::Scrap(scrap::Scrap::parse(req)?),
            Verb::Reprint => Command::Reprint(reprint::Reprint::parse(req)?),
            Verb::Verify => Command::Verify(verify::Verify::parse(req)?),
            Verb::Ship => Command::Ship(ship::Ship::parse(req)?),
            Verb::Replace => Command::Replace(replace::Replace::parse(req)?),
            Verb::Hello | Verb::Ping | Verb::Status => {
                return Err(Refusal::new(
                    ErrorCode::BadFrame,
                    format!("{} changes nothing and is not a command", req.verb.as_str()),
                ))
            }
        })
    }

    /// The verb this command runs.
    pub fn verb(&self) -> Verb {
        match self {
            Command::Alloc(_) => Verb::Alloc,
            Command::Bind(_) => Verb::Bind,
            Command::Result(_) => Verb::Result,
            Command::Final(_) => Verb::Final,
            Command::Scrap(_) => Verb::Scrap,
            Command::Reprint(_) => Verb::Reprint,
            Command::Verify(_) => Verb::Verify,
            Command::Ship(_) => Verb::Ship,
            Command::Replace(_) => Verb::Replace,
        }
    }

    /// Runs the command inside the write transaction. A refusal leaves
    /// the transaction to be rolled back.
    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        match self {
            Command::Alloc(c) => c.apply(tx, ctx),
            Command::Bind(c) => c.apply(tx, ctx),
            Command::Result(c) => c.apply(tx, ctx),
            Command::Final(c) => c.apply(tx, ctx),
            Command::Scrap(c) => c.apply(tx, ctx),
            Command::Reprint(c) => c.apply(tx, ctx),
            Command::Verify(c) => c.apply(tx, ctx),
            Command::Ship(c) => c.apply(tx, ctx),
            Command::Replace(c) => c.apply(tx, ctx),
        }
    }
}

/// `E_CORRUPT`-style journal error for a stored value that no longer parses.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> LineError {
    LineError::Journal(JournalError::Corrupt(what.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gs1::Level;
    use crate::protocol::parse;

    fn station(step: Option<&str>) -> Station {
        Station {
            name: "s".into(),
            port: crate::config::StationPort::Tcp("127.0.0.1:1".into()),
            baud: 9600,
            data_bits: 8,
            parity: crate::config::Parity::None,
            stop_bits: 1,
            flow_control: crate::config::FlowControl::None,
            checksum: crate::config::ChecksumPolicy::Optional,
            allow: vec![],
            steps: step.map(str::to_string).into_iter().collect(),
            printer: None,
            idle_timeout_s: 0,
            modbus_slot: None,
        }
    }

    fn products() -> Vec<Product> {
        vec![
            Product {
                key: "PACK-48V".into(),
                gtin: crate::gs1::Gtin::parse("09506000134352").unwrap(),
                level: Level::Item,
                template: "t".into(),
                required_steps: vec![],
            },
            Product {
                key: "CELL".into(),
                gtin: crate::gs1::Gtin::parse("09506000134352").unwrap(),
                level: Level::Batch,
                template: "t".into(),
                required_steps: vec![],
            },
        ]
    }

    fn cmd(frame: &str, step: Option<&str>) -> Result<Command, Refusal> {
        Command::parse(
            &parse(frame.as_bytes(), false).unwrap(),
            &station(step),
            &products(),
        )
    }

    #[test]
    fn alloc_checks_product_lot_and_level() {
        assert_eq!(
            cmd("ALLOC product=NOPE", None).unwrap_err().code,
            ErrorCode::UnknownProduct
        );
        assert_eq!(
            cmd("ALLOC product=PACK-48V lot=A%20B", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        assert_eq!(
            cmd("ALLOC product=PACK-48V lot=ABCDEFGHIJKLMNOPQRSTU", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        assert_eq!(
            cmd("ALLOC product=CELL", None).unwrap_err().code,
            ErrorCode::BadValue
        );
        assert!(cmd("ALLOC product=CELL lot=L1", None).is_ok());
        assert_eq!(
            cmd("ALLOC product=PACK-48V colour=red", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
    }

    #[test]
    fn bind_normalises_and_refuses_self_links_and_bad_ids() {
        let c = cmd(
            "BIND unit=v700qw11s6pj4 mac=aabbccddeeff uid=abc123 child=FTY8JWEQF4GZ0 lot.cell=C-7",
            None,
        )
        .unwrap();
        let Command::Bind(bind::Bind {
            unit,
            fields,
            lots,
            children,
        }) = c
        else {
            panic!()
        };
        assert_eq!(unit, "V700QW11S6PJ4");
        assert!(fields.contains(&("mac".into(), "AA:BB:CC:DD:EE:FF".into())));
        assert!(fields.contains(&("uid".into(), "ABC123".into())));
        assert_eq!(lots, vec![("cell".into(), "C-7".into())]);
        assert_eq!(children, vec!["FTY8JWEQF4GZ0".to_string()]);
        assert_eq!(
            cmd("BIND unit=V700QW11S6PJ4 child=V700QW11S6PJ4", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        assert_eq!(
            cmd("BIND unit=V700QW11S6PJ5 mac=aabbccddeeff", None)
                .unwrap_err()
                .code,
            ErrorCode::UnknownUnit
        );
        assert_eq!(
            cmd("BIND unit=V700QW11S6PJ4", None).unwrap_err().code,
            ErrorCode::BadValue
        );
    }

    #[test]
    fn result_takes_the_station_step_by_default_and_keeps_measurements() {
        let c = cmd(
            "RESULT unit=V700QW11S6PJ4 status=pass m.voltage=48.1 m.ir_mohm=12",
            Some("functional"),
        )
        .unwrap();
        let Command::Result(test_result::TestResult {
            step,
            pass,
            measurements,
            ..
        }) = c
        else {
            panic!()
        };
        assert_eq!(step, "functional");
        assert!(pass);
        assert_eq!(measurements["voltage"], "48.1");
        assert_eq!(
            cmd("RESULT unit=V700QW11S6PJ4 status=PASS", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        assert_eq!(
            cmd("RESULT unit=V700QW11S6PJ4 step=x status=MAYBE", None)
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
        let Command::Final(final_test::FinalTest(test_result::TestResult { step, .. })) =
            cmd("FINAL unit=V700QW11S6PJ4 status=FAIL", None).unwrap()
        else {
            panic!()
        };
        assert_eq!(step, "final");
    }

    #[test]
    fn a_configured_step_is_authoritative_over_the_frames_step() {
        // The final station must not record `provision` and so open the
        // route to a label.
        let refused = cmd(
            "RESULT unit=V700QW11S6PJ4 step=provision status=PASS",
            Some("final"),
        )
        .unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotAllowed);
        assert!(refused.msg.contains("final"), "{}", refused.msg);
        assert_eq!(
            cmd(
                "FINAL unit=V700QW11S6PJ4 step=provision status=PASS",
                Some("final")
            )
            .unwrap_err()
            .code,
            ErrorCode::NotAllowed
        );
        // Naming its own step is fine.
        assert!(cmd(
            "RESULT unit=V700QW11S6PJ4 step=final status=PASS",
            Some("final")
        )
        .is_ok());
        // A station serving several steps names one of them, and must name one.
        let mut multi = station(None);
        multi.steps = vec!["provision".into(), "functional".into()];
        let run = |frame: &str| {
            Command::parse(
                &parse(frame.as_bytes(), false).unwrap(),
                &multi,
                &products(),
            )
        };
        let Command::Result(test_result::TestResult { step, .. }) =
            run("RESULT unit=V700QW11S6PJ4 step=functional status=PASS").unwrap()
        else {
            panic!()
        };
        assert_eq!(step, "functional");
        assert_eq!(
            run("RESULT unit=V700QW11S6PJ4 step=final status=PASS")
                .unwrap_err()
                .code,
            ErrorCode::NotAllowed
        );
        assert_eq!(
            run("RESULT unit=V700QW11S6PJ4 status=PASS")
                .unwrap_err()
                .code,
            ErrorCode::BadValue
        );
    }
}
