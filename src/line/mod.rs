//! The line rules (SPEC section 4): what each verb does, which station may
//! use it, idempotency, and the routing gate.
//!
//! Owns: turning a station's [`Request`] into exactly one journal write (or
//! a refusal that changes nothing) and its [`Response`]. A request's effect,
//! its events and its `(station, req)` answer commit in one transaction, and
//! the answer leaves only after that commit.
//! Must not: do IO of its own or write SQL; it uses `journal::WriteTx`.

pub mod rules;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::{Config, Station};
use crate::gs1::{self, Gtin, Identity};
use crate::journal::units::UnitStatus;
use crate::journal::{
    AllocError, AllocRequest, EventType, Journal, JournalError, NewEvent, WriteTx,
};
use crate::protocol::{ErrorCode, Request, Response, Verb};
pub use rules::{Command, Refusal};

/// Why a write job produced no change.
#[derive(Debug)]
pub enum LineError {
    Refused(Refusal),
    Journal(JournalError),
}

impl From<JournalError> for LineError {
    fn from(e: JournalError) -> Self {
        LineError::Journal(e)
    }
}

fn refuse(code: ErrorCode, msg: impl Into<String>) -> LineError {
    LineError::Refused(Refusal::new(code, msg))
}

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

    /// Answers one request from `station`. Never panics on input; journal
    /// failures become `E_STORAGE` and change nothing.
    pub async fn handle(&self, station: &Station, req: Request) -> Response {
        let verb = req.verb.as_str();
        if !station.allow.contains(&req.verb) {
            return Response::err(
                ErrorCode::NotAllowed,
                format!(
                    "station {} may not use {verb} (allow in the config: {})",
                    station.name,
                    station
                        .allow
                        .iter()
                        .map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            );
        }
        if !req.verb.is_mutating() {
            let (known, takes): (&[&str], &str) = if req.verb == Verb::Hello {
                (&["fw", "req"], "fw= only")
            } else {
                (&["req"], "no fields")
            };
            if let Some((k, _)) = req.fields().find(|(k, _)| !known.contains(k)) {
                return Response::err(
                    ErrorCode::BadFrame,
                    format!("{verb} does not take {k}= (it takes {takes})"),
                );
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
            Verb::Status => {
                let left = self.journal.shared().ids_left.load(Ordering::Acquire);
                let (state, queued) = match &station.printer {
                    Some(p) => self.printers.printer_state(p),
                    None => ("offline".into(), 0),
                };
                Response::ok_with([
                    ("ids_left", left.to_string()),
                    ("printer", state),
                    ("queued", queued.to_string()),
                    ("sync", self.sync.state().as_str().to_string()),
                    (
                        "storage",
                        if self.journal.shared().storage_fault().is_some() {
                            "error"
                        } else {
                            "ok"
                        }
                        .to_string(),
                    ),
                ])
            }
            _ => self.mutate(station, req).await,
        }
    }

    /// Runs a web action as `actor` (`web:ROLE:NAME`) through the same
    /// checks and events as the station verbs; answers what was done.
    pub async fn act(&self, actor: String, action: Action) -> Result<String, Refusal> {
        let cfg = self.config.clone();
        let fallback = cfg.printers.first().map(|p| p.name.clone());
        let result = self
            .journal
            .write(move |tx| match action {
                Action::Scrap { unit, reason } => {
                    scrap(tx, None, &actor, &unit, &reason)?;
                    Ok((format!("unit {unit} scrapped"), None))
                }
                Action::Reprint { unit, reason } => {
                    let printer = match tx.last_printer(&unit).ok().flatten().or(fallback) {
                        Some(p) => p,
                        None => {
                            return Err(refuse(
                                ErrorCode::NotAllowed,
                                "no printer is configured for a reprint",
                            ))
                        }
                    };
                    let job = reprint(tx, &cfg, None, &actor, &printer, &unit, &reason)?;
                    Ok((
                        format!("label job {job} queued on printer {printer}"),
                        Some(printer),
                    ))
                }
            })
            .await;
        match result {
            Ok((summary, printer)) => {
                if let Some(p) = printer {
                    self.printers.job_queued(&p);
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

    async fn mutate(&self, station: &Station, req: Request) -> Response {
        let cmd = match rules::command(&req, station, &self.config.products) {
            Ok(c) => c,
            Err(r) => return r.into_response(),
        };
        // The fingerprint only matters for a request that carries a token.
        // Unit IDs are written canonically first, so a retry that spells
        // the same unit in lower case is the same request.
        let token = req.req().map(|r| {
            let canonical = |k: &str, v: &str| {
                matches!(k, "unit" | "child" | "old" | "new")
                    .then(|| crate::ids::UnitId::parse(v).ok().map(|u| u.to_string()))
                    .flatten()
            };
            (r.to_string(), req.fingerprint_normalised(canonical))
        });
        let st = station.clone();
        let cfg = self.config.clone();
        let result = self
            .journal
            .write(move |tx| execute(tx, &cfg, &st, token, cmd))
            .await;
        match result {
            Ok(r) => {
                if let (Some(p), Some(_)) = (&station.printer, r.get("label")) {
                    self.printers.job_queued(p);
                }
                r
            }
            Err(LineError::Refused(r)) => r.into_response(),
            Err(LineError::Journal(e)) => {
                tracing::error!(station = %station.name, error = %e, code = "E_STORAGE", "journal write failed");
                Response::err(
                    ErrorCode::Storage,
                    "the journal could not store this request; retry with the same req",
                )
            }
        }
    }
}

/// Runs a command inside the write transaction, with idempotency.
fn execute(
    tx: &mut WriteTx<'_>,
    cfg: &Config,
    st: &Station,
    token: Option<(String, String)>,
    cmd: Command,
) -> Result<Response, LineError> {
    let station = st.name.as_str();
    if let Some((req, fingerprint)) = &token {
        if let Some((stored_fp, answer)) = tx.stored_answer(station, req)? {
            if &stored_fp != fingerprint {
                return Err(refuse(
                    ErrorCode::BadValue,
                    format!("req={req} was already used by this station for a different request; use a new req"),
                ));
            }
            return Response::parse(answer.as_bytes()).map_err(|e| {
                LineError::Journal(JournalError::Corrupt(format!(
                    "stored answer for req={req}: {e}"
                )))
            });
        }
    }
    let seq_before = tx.seq();
    let response = apply(tx, cfg, st, cmd)?;
    if let Some((req, fingerprint)) = &token {
        let seq = (tx.seq() > seq_before).then(|| tx.seq());
        let answer = String::from_utf8_lossy(&response.to_bytes()).into_owned();
        tx.store_answer(station, req, fingerprint, answer.trim_end(), seq)?;
    }
    Ok(response)
}

fn actor(station: &str) -> String {
    format!("station:{station}")
}

fn event(
    tx: &mut WriteTx<'_>,
    kind: EventType,
    station: &str,
    unit: &str,
    data: Value,
) -> Result<crate::journal::Event, LineError> {
    Ok(tx.append(NewEvent {
        kind,
        station: Some(station.to_string()),
        actor: actor(station),
        unit: Some(unit.to_string()),
        data,
    })?)
}

fn known_unit(tx: &WriteTx<'_>, unit: &str) -> Result<crate::journal::units::UnitState, LineError> {
    tx.unit_state(unit)?.ok_or_else(|| {
        refuse(
            ErrorCode::UnknownUnit,
            format!("unit {unit} was not allocated on this line"),
        )
    })
}

fn not_scrapped(u: &crate::journal::units::UnitState) -> Result<(), LineError> {
    if u.state == UnitStatus::Scrapped {
        return Err(refuse(
            ErrorCode::Scrapped,
            format!("unit {} is scrapped", u.unit),
        ));
    }
    Ok(())
}

fn apply(
    tx: &mut WriteTx<'_>,
    cfg: &Config,
    st: &Station,
    cmd: Command,
) -> Result<Response, LineError> {
    let station = st.name.as_str();
    match cmd {
        Command::Alloc {
            product,
            gtin,
            level,
            lot,
        } => {
            let a = tx
                .allocate(&AllocRequest {
                    product: &product,
                    gtin: &gtin,
                    level: level.as_str(),
                    lot: lot.as_deref(),
                    station: Some(station),
                    actor: &actor(station),
                })
                .map_err(|e| match e {
                    AllocError::NoIds => refuse(
                        ErrorCode::NoIds,
                        "no IDs left: the line needs a new block grant",
                    ),
                    AllocError::Journal(j) => LineError::Journal(j),
                })?;
            let gtin = Gtin::parse(&gtin)
                .map_err(|e| LineError::Journal(JournalError::Corrupt(e.to_string())))?;
            let uri = gs1::build_uri(
                &cfg.resolver,
                &Identity::for_unit(gtin, level, lot.as_deref(), &a.unit),
            );
            Ok(Response::ok_with([("unit", a.unit), ("uri", uri)]))
        }
        Command::Bind {
            unit,
            fields,
            lots,
            children,
        } => bind(tx, station, &unit, fields, lots, children),
        Command::Result {
            unit,
            step,
            pass,
            measurements,
        } => {
            let u = known_unit(tx, &unit)?;
            not_scrapped(&u)?;
            record_test(
                tx,
                station,
                &u,
                EventType::TestResult,
                &step,
                pass,
                &measurements,
            )?;
            Ok(Response::ok())
        }
        Command::Final {
            unit,
            step,
            pass,
            measurements,
        } => {
            let u = known_unit(tx, &unit)?;
            not_scrapped(&u)?;
            if u.state == UnitStatus::Passed {
                return Err(refuse(
                    ErrorCode::AlreadyFinal,
                    format!("unit {unit} already passed final test; use REPRINT for a new label"),
                ));
            }
            if pass {
                let product = cfg.product(&u.product).ok_or_else(|| {
                    refuse(
                        ErrorCode::UnknownProduct,
                        format!(
                            "unit {unit} is a {} and that product is no longer in the config",
                            u.product
                        ),
                    )
                })?;
                let missing =
                    rules::missing_steps(&product.required_steps, &tx.latest_results(u.idx)?);
                if !missing.is_empty() {
                    return Err(LineError::Refused(
                        Refusal::new(ErrorCode::Route, "required steps have not passed")
                            .with("missing", missing.join(",")),
                    ));
                }
            }
            let kind = if pass {
                EventType::FinalPass
            } else {
                EventType::FinalFail
            };
            let ev = record_test(tx, station, &u, kind, &step, pass, &measurements)?;
            tx.set_final(u.idx, pass, ev.seq, &ev.ts)?;
            // The label is queued in the same transaction as the FINAL_PASS:
            // it exists exactly when the pass is durable.
            match (&st.printer, pass) {
                (Some(printer), true) => {
                    let template = template_of(cfg, &u)?;
                    let (job, _) = tx.queue_label(
                        printer,
                        &unit,
                        &template,
                        Some(station),
                        &actor(station),
                        None,
                    )?;
                    Ok(Response::ok_with([("label", job.to_string())]))
                }
                _ => Ok(Response::ok()),
            }
        }
        Command::Reprint { unit, reason } => {
            let printer = st.printer.as_ref().ok_or_else(|| {
                refuse(
                    ErrorCode::NotAllowed,
                    format!("station {station} has no printer configured"),
                )
            })?;
            let job = reprint(
                tx,
                cfg,
                Some(station),
                &actor(station),
                printer,
                &unit,
                &reason,
            )?;
            Ok(Response::ok_with([("label", job.to_string())]))
        }
        Command::Verify { unit, scan } => verify(tx, cfg, station, &unit, &scan),
        Command::Ship { unit, shipment, to } => {
            let u = known_unit(tx, &unit)?;
            if u.state != UnitStatus::Passed {
                let why = if u.state == UnitStatus::Scrapped {
                    "is scrapped"
                } else {
                    "has not passed final test"
                };
                return Err(refuse(
                    ErrorCode::Route,
                    format!("unit {unit} {why}: it cannot ship"),
                ));
            }
            if let Some(s) = &u.shipment {
                return Err(refuse(
                    ErrorCode::AlreadyShipped,
                    format!("unit {unit} already shipped in {s}"),
                ));
            }
            let mut data = json!({"shipment": shipment});
            if let Some(t) = &to {
                data["to"] = json!(t);
            }
            let ev = event(tx, EventType::Shipped, station, &unit, data)?;
            tx.set_shipped(u.idx, &shipment, to.as_deref(), &ev)?;
            Ok(Response::ok())
        }
        Command::Replace {
            unit,
            old,
            new,
            reason,
        } => {
            let u = known_unit(tx, &unit)?;
            not_scrapped(&u)?;
            if !tx.is_child_of(&old, u.idx)? {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!("{old} is not linked to unit {unit}"),
                ));
            }
            if let Some(p) = tx.parent_of(&new)? {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!("{new} is already linked to unit {p}"),
                ));
            }
            if tx.is_self_or_ancestor(&unit, &new)? {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!("unit {unit} is itself contained in {new}: linking {new} under it would make a loop"),
                ));
            }
            if let Some(cu) = tx.unit_state(&new)? {
                not_scrapped(&cu)?;
            }
            let ev = event(
                tx,
                EventType::ChildReplaced,
                station,
                &unit,
                json!({"old": old, "new": new, "reason": reason}),
            )?;
            tx.unlink_child(u.idx, &old, ev.seq)?;
            tx.link_child(u.idx, &new, ev.seq)?;
            Ok(Response::ok())
        }
        Command::Scrap { unit, reason } => {
            scrap(tx, Some(station), &actor(station), &unit, &reason)?;
            Ok(Response::ok())
        }
    }
}

/// Queues a new label for a unit that passed final test; answers the job.
fn reprint(
    tx: &mut WriteTx<'_>,
    cfg: &Config,
    station: Option<&str>,
    actor: &str,
    printer: &str,
    unit: &str,
    reason: &str,
) -> Result<i64, LineError> {
    let u = known_unit(tx, unit)?;
    not_scrapped(&u)?;
    if u.state != UnitStatus::Passed {
        return Err(refuse(
            ErrorCode::Route,
            format!("unit {unit} has not passed final test: no label before FINAL PASS"),
        ));
    }
    let template = template_of(cfg, &u)?;
    let (job, _) = tx.queue_label(printer, unit, &template, station, actor, Some(reason))?;
    Ok(job)
}

/// Scraps a unit with a reason.
fn scrap(
    tx: &mut WriteTx<'_>,
    station: Option<&str>,
    actor: &str,
    unit: &str,
    reason: &str,
) -> Result<(), LineError> {
    let u = known_unit(tx, unit)?;
    not_scrapped(&u)?;
    let ev = tx.append(NewEvent {
        kind: EventType::Scrapped,
        station: station.map(str::to_string),
        actor: actor.to_string(),
        unit: Some(unit.to_string()),
        data: json!({"reason": reason, "previous_state": u.state.as_str()}),
    })?;
    tx.set_scrapped(u.idx, ev.seq, reason)?;
    Ok(())
}

fn template_of(cfg: &Config, u: &crate::journal::units::UnitState) -> Result<String, LineError> {
    cfg.product(&u.product)
        .map(|p| p.template.clone())
        .ok_or_else(|| {
            refuse(
                ErrorCode::UnknownProduct,
                format!("product {} is no longer in the config", u.product),
            )
        })
}

/// Compares what a scanner read with the unit's identity. Both outcomes
/// are journaled; a mismatch is answered `E_MISMATCH` after its commit.
fn verify(
    tx: &mut WriteTx<'_>,
    cfg: &Config,
    station: &str,
    unit: &str,
    scan: &str,
) -> Result<Response, LineError> {
    let u = known_unit(tx, unit)?;
    let level = gs1::Level::parse(&u.level).unwrap_or(gs1::Level::Item);
    let gtin = Gtin::parse(&u.gtin)
        .map_err(|e| LineError::Journal(JournalError::Corrupt(e.to_string())))?;
    let expected = Identity::for_unit(gtin, level, u.lot.as_deref(), unit);
    let problem = match gs1::parse_scanned(scan) {
        Err(e) => Some(format!("the scan is not a GS1 code: {e}")),
        Ok(found) if found == expected => None,
        Ok(found) => Some(format!(
            "label says {}, unit is {}",
            gs1::hri(&found),
            gs1::hri(&expected)
        )),
    };
    let uri = gs1::build_uri(&cfg.resolver, &expected);
    match problem {
        None => {
            event(
                tx,
                EventType::LabelVerified,
                station,
                unit,
                json!({"scan": scan}),
            )?;
            Ok(Response::ok())
        }
        Some(p) => {
            event(
                tx,
                EventType::LabelMismatch,
                station,
                unit,
                json!({"scan": scan, "expected": uri, "problem": p}),
            )?;
            Ok(Response::err(ErrorCode::Mismatch, p))
        }
    }
}

fn record_test(
    tx: &mut WriteTx<'_>,
    station: &str,
    u: &crate::journal::units::UnitState,
    kind: EventType,
    step: &str,
    pass: bool,
    measurements: &BTreeMap<String, String>,
) -> Result<crate::journal::Event, LineError> {
    let status = if pass { "PASS" } else { "FAIL" };
    let m = json!(measurements);
    let ev = event(
        tx,
        kind,
        station,
        &u.unit,
        json!({"step": step, "status": status, "measurements": m}),
    )?;
    tx.add_test_result(&ev, u.idx, step, status, &m.to_string())?;
    Ok(ev)
}

fn bind(
    tx: &mut WriteTx<'_>,
    station: &str,
    unit: &str,
    fields: Vec<(String, String)>,
    lots: Vec<(String, String)>,
    children: Vec<String>,
) -> Result<Response, LineError> {
    let u = known_unit(tx, unit)?;
    not_scrapped(&u)?;
    let mut new_fields = serde_json::Map::new();
    for (f, v) in &fields {
        match tx.binding(u.idx, f)? {
            Some(old) if &old == v => continue,
            Some(old) => {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!("{f} of unit {unit} is already {old}; a bound value never changes"),
                ))
            }
            None => {}
        }
        if f == "mac" || f == "uid" {
            if let Some(other) = tx.bound_to(f, v)? {
                let code = if f == "mac" {
                    ErrorCode::DupMac
                } else {
                    ErrorCode::DupUid
                };
                return Err(refuse(
                    code,
                    format!("{f} {v} is already bound to unit {other}"),
                ));
            }
        }
        new_fields.insert(f.clone(), Value::from(v.as_str()));
    }
    let mut new_lots = serde_json::Map::new();
    for (part, lot) in &lots {
        match tx.component_lot(u.idx, part)? {
            Some(old) if &old == lot => continue,
            Some(old) => {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!("lot.{part} of unit {unit} is already {old}"),
                ))
            }
            None => {
                new_lots.insert(part.clone(), Value::from(lot.as_str()));
            }
        }
    }
    let mut new_children = Vec::new();
    for c in &children {
        match tx.parent_of(c)? {
            Some(p) if p == unit => continue,
            Some(p) => {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!("child {c} is linked to unit {p}"),
                ))
            }
            None => {}
        }
        if tx.is_self_or_ancestor(unit, c)? {
            return Err(refuse(
                ErrorCode::Conflict,
                format!("unit {unit} is itself contained in {c}: linking {c} under it would make a loop"),
            ));
        }
        if let Some(cu) = tx.unit_state(c)? {
            not_scrapped(&cu)?;
        }
        new_children.push(Value::from(c.as_str()));
    }
    if new_fields.is_empty() && new_lots.is_empty() && new_children.is_empty() {
        return Ok(Response::ok()); // everything already bound exactly so
    }
    let mut data = serde_json::Map::new();
    if !new_fields.is_empty() {
        data.insert("fields".into(), Value::Object(new_fields.clone()));
    }
    if !new_lots.is_empty() {
        data.insert("lots".into(), Value::Object(new_lots.clone()));
    }
    if !new_children.is_empty() {
        data.insert("children".into(), Value::Array(new_children.clone()));
    }
    let ev = event(tx, EventType::Bound, station, unit, Value::Object(data))?;
    for (f, v) in &new_fields {
        tx.set_binding(u.idx, f, v.as_str().unwrap_or_default(), ev.seq)?;
    }
    for (p, l) in &new_lots {
        tx.set_component_lot(u.idx, p, l.as_str().unwrap_or_default(), ev.seq)?;
    }
    for c in &new_children {
        tx.link_child(u.idx, c.as_str().unwrap_or_default(), ev.seq)?;
    }
    Ok(Response::ok())
}
