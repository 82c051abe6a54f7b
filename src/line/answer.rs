//! The protocol's answer to a verb (SPEC section 4): the one place a typed
//! [`Outcome`] or [`LineError`] becomes a wire [`Response`], and a stored
//! answer becomes an outcome again.
//!
//! Owns: the answer fields of each outcome (`unit= uri=`, `label=`,
//! `E_MISMATCH`). The station edge uses it for every answer, the
//! idempotency store keeps answers in this form (so a replay over any edge
//! is the first answer, byte for byte), and the Modbus mailbox writes it
//! into registers.
//! Must not: decide anything about a verb.

use crate::journal::JournalError;
use crate::protocol::{ErrorCode, Response};

use super::verb::{LabelJob, LineError, Outcome};

/// The answer a station gets for a committed outcome.
pub fn response(outcome: &Outcome) -> Response {
    match outcome {
        Outcome::Done => Response::ok(),
        Outcome::Allocated { unit, uri } => {
            Response::ok_with([("unit", unit.clone()), ("uri", uri.clone())])
        }
        Outcome::LabelQueued(LabelJob { job, .. }) => {
            Response::ok_with([("label", job.to_string())])
        }
        Outcome::Mismatch { problem } => Response::err(ErrorCode::Mismatch, problem.clone()),
    }
}

/// The answer for a verb that changed nothing.
pub fn refusal(err: LineError, station: &str) -> Response {
    match err {
        LineError::Refused(r) => r.into_response(),
        LineError::Journal(e) => {
            tracing::error!(station, error = %e, code = "E_STORAGE", "journal write failed");
            Response::err(
                ErrorCode::Storage,
                "the journal could not store this request; retry with the same req",
            )
        }
    }
}

/// The outcome a stored answer records. `printer` is the station's: a
/// stored `label=` job was queued there.
pub fn outcome(stored: &str, printer: Option<&str>) -> Result<Outcome, JournalError> {
    let corrupt = |why: &str| JournalError::Corrupt(format!("stored answer {stored:?}: {why}"));
    let r = Response::parse(stored.as_bytes()).map_err(|e| corrupt(&e.to_string()))?;
    match &r {
        Response::Err {
            code: ErrorCode::Mismatch,
            msg,
            ..
        } => Ok(Outcome::Mismatch {
            problem: msg.clone(),
        }),
        Response::Err { .. } => Err(corrupt("only committed answers are stored")),
        Response::Ok(_) => match (r.get("unit"), r.get("uri"), r.get("label")) {
            (Some(unit), Some(uri), None) => Ok(Outcome::Allocated {
                unit: unit.to_string(),
                uri: uri.to_string(),
            }),
            (None, None, Some(job)) => Ok(Outcome::LabelQueued(LabelJob {
                job: job
                    .parse()
                    .map_err(|_| corrupt("label= is not a job number"))?,
                printer: printer.unwrap_or_default().to_string(),
            })),
            (None, None, None) => Ok(Outcome::Done),
            _ => Err(corrupt("unknown answer fields")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(o: Outcome) {
        let wire = String::from_utf8(response(&o).to_bytes()).unwrap();
        assert_eq!(
            outcome(wire.trim_end(), Some("zebra")).unwrap(),
            o,
            "{wire}"
        );
    }

    #[test]
    fn every_outcome_survives_the_idempotency_store() {
        round_trip(Outcome::Done);
        round_trip(Outcome::Allocated {
            unit: "V700QW11S6PJ4".into(),
            uri: "https://id.example.com/01/09506000134352/21/V700QW11S6PJ4".into(),
        });
        round_trip(Outcome::LabelQueued(LabelJob {
            job: 42,
            printer: "zebra".into(),
        }));
        round_trip(Outcome::Mismatch {
            problem: "label says (01)09506000134352 (21)X, unit is (21)Y".into(),
        });
    }

    #[test]
    fn a_stored_answer_that_no_outcome_writes_is_corrupt() {
        for bad in [
            "ERR code=E_ROUTE msg=x",
            "OK label=x",
            "OK foo=1",
            "garbage",
        ] {
            assert!(
                matches!(outcome(bad, None), Err(JournalError::Corrupt(_))),
                "{bad}"
            );
        }
    }
}
