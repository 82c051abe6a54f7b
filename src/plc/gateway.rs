//! Runs a PLC's call through the line: finds its `port = "plc"` station,
//! checks `allow`, runs the typed verb (one write transaction, idempotent
//! on `Req`, answered after the commit) and says what the line's PLC
//! variables show now.
//!
//! Owns: which stations a PLC may name, the reply a method returns, and
//! the variables' values (`IdsLeft`, `PrinterState`, `QueueLength`,
//! `SyncState`, `LastUnit`). Must not: know a wire format (OPC UA or
//! Modbus) or decide anything about a verb.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::{Config, Station, StationPort};
use crate::line::{answer, Command, Line, Outcome, Refusal, ReqToken};
use crate::protocol::{ErrorCode, Request, Response};

/// How a call was answered: `code` is `None` for OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Option<ErrorCode>,
    /// Empty for OK; otherwise the detail fields and the reason, as the
    /// station protocol writes them after the code (`missing=a,b ...`).
    pub message: String,
    pub outcome: Option<Outcome>,
}

impl Reply {
    /// `OK` or the `E_...` code.
    pub fn code_str(&self) -> &'static str {
        self.code.map_or("OK", ErrorCode::as_str)
    }

    fn refused(r: Refusal) -> Reply {
        Reply::from_response(r.into_response())
    }

    fn from_response(r: Response) -> Reply {
        match r {
            Response::Ok(_) => Reply {
                code: None,
                message: String::new(),
                outcome: None,
            },
            Response::Err { code, extra, msg } => {
                let mut message: Vec<String> =
                    extra.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                message.push(msg);
                Reply {
                    code: Some(code),
                    message: message.join(" "),
                    outcome: None,
                }
            }
        }
    }

    fn done(outcome: Outcome) -> Reply {
        match outcome {
            Outcome::Mismatch { problem } => Reply {
                code: Some(ErrorCode::Mismatch),
                message: problem.clone(),
                outcome: Some(Outcome::Mismatch { problem }),
            },
            o => Reply {
                code: None,
                message: String::new(),
                outcome: Some(o),
            },
        }
    }
}

/// What the `Line` object's variables show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineVars {
    pub ids_left: u64,
    /// `ready|paused|offline|error` of the gateway's printer.
    pub printer: String,
    pub queue: u32,
    /// `ok|halted|error|off`.
    pub sync: String,
    /// The unit the last Alloc through the gateway returned.
    pub last_unit: String,
}

/// The line as PLCs reach it.
#[derive(Clone)]
pub struct Gateway {
    line: Line,
    config: Arc<Config>,
    last_unit: Arc<Mutex<String>>,
    /// Poked after every call, so the variables follow at once.
    changed: watch::Sender<()>,
}

impl Gateway {
    pub fn new(line: Line, config: Arc<Config>) -> Self {
        Self {
            line,
            config,
            last_unit: Default::default(),
            changed: watch::channel(()).0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A receiver that sees a change after every call.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    /// The station a PLC names, if it is a `port = "plc"` station.
    fn station(&self, name: &str) -> Result<&Station, Refusal> {
        match self.config.stations.iter().find(|s| s.name == name) {
            Some(s) if s.port == StationPort::Plc => Ok(s),
            Some(s) => Err(Refusal::new(
                ErrorCode::NotAllowed,
                format!(
                    "station {:?} is not reached through the PLC gateway (its port is not \"plc\"); name a station with port = \"plc\"",
                    s.name
                ),
            )),
            None => {
                let plc: Vec<&str> = self
                    .config
                    .stations
                    .iter()
                    .filter(|s| s.port == StationPort::Plc)
                    .map(|s| s.name.as_str())
                    .collect();
                Err(Refusal::new(
                    ErrorCode::NotAllowed,
                    format!(
                        "no station is named {name:?}; the PLC stations are {}",
                        plc.join(", ")
                    ),
                ))
            }
        }
    }

    /// Any request (STATUS and PING too) for a PLC station the caller has
    /// resolved already (a Modbus mailbox's), answered exactly as a frame
    /// from that station would be.
    pub async fn handle(&self, station: &Station, request: Result<Request, Refusal>) -> Response {
        let response = match request {
            Ok(req) => self.line.handle(station, req).await,
            Err(r) => r.into_response(),
        };
        if let (true, Some(unit)) = (response.is_ok(), response.get("unit")) {
            if let Ok(mut last) = self.last_unit.lock() {
                *last = unit.to_string();
            }
        }
        self.changed.send_replace(());
        response
    }

    /// Runs a mutating request for the PLC station `station`.
    pub async fn run(&self, station: &str, request: Result<Request, Refusal>) -> Reply {
        let reply = self.run_inner(station, request).await;
        if let Some(Outcome::Allocated { unit, .. }) = &reply.outcome {
            if let Ok(mut last) = self.last_unit.lock() {
                last.clone_from(unit);
            }
        }
        self.changed.send_replace(());
        reply
    }

    async fn run_inner(&self, station: &str, request: Result<Request, Refusal>) -> Reply {
        let st = match self.station(station) {
            Ok(s) => s,
            Err(r) => return Reply::refused(r),
        };
        let req = match request {
            Ok(r) => r,
            Err(r) => return Reply::refused(r),
        };
        if let Err(r) = Line::check_allowed(st, req.verb) {
            return Reply::refused(r);
        }
        let cmd = match Command::parse(&req, st, &self.config.products) {
            Ok(c) => c,
            Err(r) => return Reply::refused(r),
        };
        match self.line.run(st, cmd, ReqToken::of(&req)).await {
            Ok(a) => Reply::done(a.outcome),
            Err(e) => Reply::from_response(answer::refusal(e, &st.name)),
        }
    }

    /// What the variables show now. The printer is that of the first PLC
    /// station with one, else the line's first printer.
    pub fn vars(&self) -> LineVars {
        let plc = self
            .config
            .stations
            .iter()
            .filter(|s| s.port == StationPort::Plc);
        let printer = plc
            .clone()
            .find_map(|s| s.printer.clone())
            .or_else(|| self.config.printers.first().map(|p| p.name.clone()));
        let probe = plc.clone().next().cloned().map(|mut s| {
            s.printer = printer;
            s
        });
        let report = probe.map(|s| self.line.status(&s));
        LineVars {
            ids_left: report.as_ref().map_or(0, |r| r.ids_left),
            printer: report
                .as_ref()
                .map_or_else(|| "offline".into(), |r| r.printer.clone()),
            queue: report
                .as_ref()
                .map_or(0, |r| u32::try_from(r.queued).unwrap_or(u32::MAX)),
            sync: report
                .as_ref()
                .map_or_else(|| "off".into(), |r| r.sync.as_str().to_string()),
            last_unit: self.last_unit.lock().map(|l| l.clone()).unwrap_or_default(),
        }
    }
}
