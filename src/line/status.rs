//! The verbs that change nothing (HELLO, PING, STATUS) and what STATUS
//! reports: IDs left, the station's printer, the upstream sync, storage.
//!
//! Must not: write to the journal; it reads shared counters only.

use crate::protocol::{ErrorCode, Request, Response, Verb};

/// What STATUS reports to a station (and the PLC gateway's variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub ids_left: u64,
    /// `ready|paused|offline|error`.
    pub printer: String,
    pub queued: u64,
    pub sync: super::UpstreamState,
    /// A disk or journal fault is being reported (`storage=error`).
    pub storage_fault: bool,
}

impl StatusReport {
    pub fn response(&self) -> Response {
        Response::ok_with([
            ("ids_left", self.ids_left.to_string()),
            ("printer", self.printer.clone()),
            ("queued", self.queued.to_string()),
            ("sync", self.sync.as_str().to_string()),
            (
                "storage",
                if self.storage_fault { "error" } else { "ok" }.to_string(),
            ),
        ])
    }
}

/// `E_BAD_FRAME` for a field a read-only verb does not take: HELLO takes
/// `fw=`, the others nothing (`req=` is always allowed).
pub fn check_fields(req: &Request) -> Result<(), Response> {
    let (known, takes): (&[&str], &str) = if req.verb == Verb::Hello {
        (&["fw", "req"], "fw= only")
    } else {
        (&["req"], "no fields")
    };
    match req.fields().find(|(k, _)| !known.contains(k)) {
        Some((k, _)) => Err(Response::err(
            ErrorCode::BadFrame,
            format!(
                "{} does not take {k}= (it takes {takes})",
                req.verb.as_str()
            ),
        )),
        None => Ok(()),
    }
}
