//! Idempotency (SPEC section 4): a request with `req=` runs once per
//! station; a retry with the same fields gets the first answer, a reuse
//! with other fields `E_BAD_VALUE`.
//!
//! Owns: the request fingerprint and the check-run-store sequence inside
//! the one write transaction, so an answer is stored exactly when its
//! effect commits.
//! Must not: write SQL (it uses `WriteTx::stored_answer`/`store_answer`).

use crate::journal::WriteTx;
use crate::protocol::{ErrorCode, Request};

use super::answer;
use super::verb::{refuse, LineError, Outcome};

/// A request's idempotency token and the fingerprint of its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReqToken {
    pub req: String,
    pub fingerprint: String,
}

impl ReqToken {
    /// The token of a protocol request, if it carries `req=`. Unit IDs are
    /// written canonically first, so a retry that spells the same unit in
    /// lower case is the same request.
    pub fn of(req: &Request) -> Option<Self> {
        let canonical = |k: &str, v: &str| {
            matches!(k, "unit" | "child" | "old" | "new")
                .then(|| crate::ids::UnitId::parse(v).ok().map(|u| u.to_string()))
                .flatten()
        };
        req.req().map(|r| ReqToken {
            req: r.to_string(),
            fingerprint: req.fingerprint_normalised(canonical),
        })
    }
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    /// The first answer to an earlier request with the same `req=`:
    /// nothing ran this time.
    pub replayed: bool,
}

/// Runs `run` once for `token` at `station`, inside the transaction.
pub fn once(
    tx: &mut WriteTx<'_>,
    station: &str,
    printer: Option<&str>,
    token: Option<&ReqToken>,
    run: impl FnOnce(&mut WriteTx<'_>) -> Result<Outcome, LineError>,
) -> Result<Answer, LineError> {
    let Some(t) = token else {
        return Ok(Answer {
            outcome: run(tx)?,
            replayed: false,
        });
    };
    if let Some((stored_fp, stored)) = tx.stored_answer(station, &t.req)? {
        if stored_fp != t.fingerprint {
            return Err(refuse(
                ErrorCode::BadValue,
                format!(
                    "req={} was already used by this station for a different request; use a new req",
                    t.req
                ),
            ));
        }
        return Ok(Answer {
            outcome: answer::outcome(&stored, printer)?,
            replayed: true,
        });
    }
    let seq_before = tx.seq();
    let outcome = run(tx)?;
    let seq = (tx.seq() > seq_before).then(|| tx.seq());
    let wire = String::from_utf8_lossy(&answer::response(&outcome).to_bytes()).into_owned();
    tx.store_answer(station, &t.req, &t.fingerprint, wire.trim_end(), seq)?;
    Ok(Answer {
        outcome,
        replayed: false,
    })
}
