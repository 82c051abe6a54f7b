//! The line (SPEC section 4): which station may use which verb, one
//! journal write per request, and when the printer is woken.
//!
//! Owns: running a typed [`Command`] for a station — exactly one write
//! transaction holding its effect, its events and its `(station, req)`
//! answer, the answer leaving only after that commit — and answering a
//! station's protocol [`Request`] through it. The verbs themselves live in
//! [`verb`], one module each.
//! Must not: do IO of its own or write SQL; it uses `journal::WriteTx`.
//! Imports neither `sync` nor `web` (STATUS reads sync state through
//! [`UpstreamStatus`]).

pub mod answer;
pub mod idempotency;
pub mod rules;
pub mod status;
pub mod verb;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::config::{Config, Station};
use crate::journal::Journal;
use crate::protocol::{ErrorCode, Request, Response, Verb};
pub use idempotency::{Answer, ReqToken};
pub use rules::Refusal;
pub use status::StatusReport;
pub use verb::{Command, Ctx, LabelJob, LineError, Outcome};

/// What STATUS reports about a station's printer.
pub trait PrinterStatus: Send + Sync {
    /// (`ready|paused|offline|error`, jobs queued).
    fn printer_state(&self, printer: &str) -> (String, u64);
    /// A job for `printer` was committed: wake its task.
    fn job_queued(&self, printer: &str);
}

/// No printer drivers running: every printer is offline; jobs stay queued.
pub struct NoPrinters;

impl PrinterStatus for NoPrinters {
    fn printer_state(&self, _printer: &str) -> (String, u64) {
        ("offline".into(), 0)
    }

    fn job_queued(&self, _printer: &str) {}
}

/// Where the upstream sync stands, as STATUS, the web page and metrics
/// report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// Syncing (or waiting for its schedule).
    Ok,
    /// The central store answered 409: nothing is sent until `--resume`.
    Halted,
    /// The upstream could not be set up (see the log).
    Error,
    /// No `[upstream]` configured.
    Off,
}

impl UpstreamState {
    /// The word on the wire: `sync=ok|halted|error|off`.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamState::Ok => "ok",
            UpstreamState::Halted => "halted",
            UpstreamState::Error => "error",
            UpstreamState::Off => "off",
        }
    }
}

/// What STATUS reports about the upstream sync (kept by `sync`, which
/// implements this; `line` does not depend on it).
pub trait UpstreamStatus: Send + Sync {
    fn state(&self) -> UpstreamState;
}

/// Sync as it is before any sync task reports: `off` without `[upstream]`.
struct SyncNotStarted {
    configured: bool,
}

impl UpstreamStatus for SyncNotStarted {
    fn state(&self) -> UpstreamState {
        if self.configured {
            UpstreamState::Ok
        } else {
            UpstreamState::Off
        }
    }
}

/// What a signed-in user of the web page asks for.
#[derive(Debug, Clone)]
pub enum Action {
    Reprint { unit: String, reason: String },
    Scrap { unit: String, reason: String },
}

/// The line: config, journal, and what STATUS needs to know.
#[derive(Clone)]
pub struct Line {
    config: Arc<Config>,
    journal: Journal,
    printers: Arc<dyn PrinterStatus>,
    sync: Arc<dyn UpstreamStatus>,
}

impl Line {
    pub fn new(config: Arc<Config>, journal: Journal, printers: Arc<dyn PrinterStatus>) -> Self {
        let sync = Arc::new(SyncNotStarted {
            configured: config.upstream.is_some(),
        });
        Self {
            config,
            journal,
            printers,
            sync,
        }
    }

    /// STATUS reports this sync state (`sync=ok|halted|error|off`).
    pub fn with_sync_status(mut self, sync: Arc<dyn UpstreamStatus>) -> Self {
        self.sync = sync;
        self
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `E_NOT_ALLOWED` unless the station's `allow` lists the verb.
    pub fn check_allowed(station: &Station, verb: Verb) -> Result<(), Refusal> {
        if station.allow.contains(&verb) {
            return Ok(());
        }
        let allow: Vec<&str> = station.allow.iter().map(|v| v.as_str()).collect();
        Err(Refusal::new(
            ErrorCode::NotAllowed,
            format!(
                "station {} may not use {} (allow in the config: {})",
                station.name,
                verb.as_str(),
                allow.join(",")
            ),
        ))
    }

    /// What STATUS reports to `station`.
    pub fn status(&self, station: &Station) -> StatusReport {
        let (printer, queued) = match &station.printer {
            Some(p) => self.printers.printer_state(p),
            None => ("offline".into(), 0),
        };
        StatusReport {
            ids_left: self.journal.shared().ids_left.load(Ordering::Acquire),
            printer,
            queued,
            sync: self.sync.state(),
            storage_fault: self.journal.shared().storage_fault().is_some(),
        }
    }

    /// Answers one protocol request from `station` (the station edge).
    /// Never panics on input; journal failures become `E_STORAGE` and
    /// change nothing.
    pub async fn handle(&self, station: &Station, req: Request) -> Response {
        if let Err(r) = Self::check_allowed(station, req.verb) {
            return r.into_response();
        }
        if !req.verb.is_mutating() {
            if let Err(bad) = status::check_fields(&req) {
                return bad;
            }
        }
        match req.verb {
            Verb::Hello => {
                if let Some(fw) = req.get("fw") {
                    tracing::info!(station = %station.name, fw, "station said hello");
                }
                Response::ok_with([
                    ("line", self.config.line_id.clone()),
                    ("station", station.name.clone()),
                    (
                        "time",
                        crate::journal::event::format_ts(jiff::Timestamp::now()),
                    ),
                ])
            }
            Verb::Ping => Response::ok(),
            Verb::Status => self.status(station).response(),
            _ => {
                let cmd = match Command::parse(&req, station, &self.config.products) {
                    Ok(c) => c,
                    Err(r) => return r.into_response(),
                };
                // `allow` was checked above: run it without checking again.
                match self.execute(station, cmd, ReqToken::of(&req)).await {
                    Ok(a) => answer::response(&a.outcome),
                    Err(e) => answer::refusal(e, &station.name),
                }
            }
        }
    }

    /// Runs a typed command for `station` (which must allow its verb): one
    /// write transaction, idempotent on `token`. The station's printer is
    /// woken for a label the command queued, after the commit.
    pub async fn run(
        &self,
        station: &Station,
        cmd: Command,
        token: Option<ReqToken>,
    ) -> Result<Answer, LineError> {
        Self::check_allowed(station, cmd.verb())?;
        self.execute(station, cmd, token).await
    }

    /// [`Line::run`] for a command whose verb the station may use.
    async fn execute(
        &self,
        station: &Station,
        cmd: Command,
        token: Option<ReqToken>,
    ) -> Result<Answer, LineError> {
        let st = station.clone();
        let cfg = self.config.clone();
        let answer = self
            .journal
            .write(move |tx| {
                let ctx = Ctx::station(&cfg, &st);
                idempotency::once(tx, &st.name, ctx.printer, token.as_ref(), |tx| {
                    cmd.apply(tx, &ctx)
                })
            })
            .await?;
        if let Some(job) = answer.outcome.label() {
            self.printers.job_queued(&job.printer);
        }
        Ok(answer)
    }

    /// Runs a web action as `actor` (`web:ROLE:NAME`) through the same
    /// verbs as the stations; answers what was done.
    pub async fn act(&self, actor: String, action: Action) -> Result<String, Refusal> {
        let cfg = self.config.clone();
        let result = self
            .journal
            .write(move |tx| match action {
                Action::Scrap { unit, reason } => {
                    let ctx = Ctx::web(&cfg, actor, None);
                    let scrap = verb::scrap::Scrap {
                        unit: unit.clone(),
                        reason,
                    };
                    scrap.apply(tx, &ctx)?;
                    Ok((format!("unit {unit} scrapped"), None))
                }
                Action::Reprint { unit, reason } => {
                    // The printer that printed it last, or the first one.
                    let last = tx.last_printer(&unit).ok().flatten();
                    let first = cfg.printers.first().map(|p| p.name.as_str());
                    let ctx = Ctx::web(&cfg, actor, last.as_deref().or(first));
                    let outcome = verb::reprint::Reprint { unit, reason }.apply(tx, &ctx)?;
                    let job = outcome.label().cloned();
                    let summary = match &job {
                        Some(j) => format!("label job {} queued on printer {}", j.job, j.printer),
                        None => format!("{outcome:?}"),
                    };
                    Ok((summary, job))
                }
            })
            .await;
        match result {
            Ok((summary, job)) => {
                if let Some(j) = job {
                    self.printers.job_queued(&j.printer);
                }
                Ok(summary)
            }
            Err(LineError::Refused(r)) => Err(r),
            Err(LineError::Journal(e)) => {
                tracing::error!(error = %e, "journal write failed for a web action");
                Err(Refusal::new(
                    ErrorCode::Storage,
                    "the journal could not store this action; try again",
                ))
            }
        }
    }
}
