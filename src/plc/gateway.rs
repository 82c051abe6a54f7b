//! Runs a PLC's call through the line: finds its `port = "plc"` station
//! and hands the request to the station edge (`Line::handle`: `allow`, the
//! typed verb in one write transaction, idempotent on `Req`, answered after
//! the commit), and says what the line's PLC variables show now.
//!
//! Owns: which stations a PLC may name, the reply a method returns, and
//! the variables' values (`IdsLeft`, `PrinterState`, `QueueLength`,
//! `SyncState`, `LastUnit`). Must not: know a wire format (OPC UA or
//! Modbus) or decide anything about a verb.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::{Config, Station, StationPort};
use crate::line::{Line, Refusal};
use crate::protocol::{ErrorCode, Request, Response};

/// How a call was answered, for a wire format that has no frames: the
/// code (`None` for OK), the message and the answer's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Option<ErrorCode>,
    /// Empty for OK; otherwise the detail fields and the reason, as the
    /// station protocol writes them after the code (`missing=a,b ...`).
    pub message: String,
    response: Response,
}

impl Reply {
    /// `OK` or the `E_...` code.
    pub fn code_str(&self) -> &'static str {
        self.code.map_or("OK", ErrorCode::as_str)
    }

    /// A field of an OK answer (`unit`, `uri`, `label`).
    pub fn field(&self, key: &str) -> Option<&str> {
        if self.response.is_ok() {
            self.response.get(key)
        } else {
            None
        }
    }
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        let (code, message) = match &response {
            Response::Ok(_) => (None, String::new()),
            Response::Err { code, extra, msg } => {
                let mut message: Vec<String> =
                    extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
                message.push(msg.clone());
                (Some(*code), message.join(" "))
            }
        };
        Reply {
            code,
            message,
            response,
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

    /// Runs a request for the PLC station named `station` (any other
    /// station is `E_NOT_ALLOWED`), as [`Gateway::handle`] does.
    pub async fn run(&self, station: &str, request: Result<Request, Refusal>) -> Reply {
        match self.station(station) {
            Ok(st) => self.handle(st, request).await.into(),
            Err(r) => r.into_response().into(),
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
