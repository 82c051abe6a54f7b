//! The local web page (SPEC section 10), served by the daemon on
//! `[web] listen` (default `127.0.0.1:8470`).
//!
//! Owns: routes, reading what they show (journal readers, station and
//! printer counters, sync status), the bearer-token gate of the actions
//! and their answers: 401 without a known token, 403 for a role too low,
//! 400 naming what is wrong with a body; accepted actions go through
//! `Line::act` / `Journal::import_grant_blocking` and are journaled with
//! the actor `web:ROLE:NAME`; refused ones are logged and counted.
//! Must not: hold line rules (it calls `line`) or write SQL.

pub mod auth;
pub mod metrics;
pub mod pages;
pub mod server;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Role};
use crate::gs1::{self, Gtin, Identity, Level};
use crate::ids::{Grant, IdCodec, UnitId};
use crate::journal::{query, ImportError, Journal, JournalError};
use crate::line::{Action, Line};
use crate::printer::Hub;
use crate::protocol::ErrorCode;
use crate::report;
use crate::station::StationStats;
use crate::sync::SyncStatus;

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    pub config: Arc<Config>,
    pub journal: Journal,
    pub line: Line,
    pub hub: Arc<Hub>,
    pub stations: BTreeMap<String, Arc<StationStats>>,
    pub sync: Arc<SyncStatus>,
    /// (action, outcome) -> count, for `/metrics`.
    pub actions: Arc<Mutex<BTreeMap<(String, String), u64>>>,
    /// Read connections kept between requests (opening one per request
    /// costs more than most pages).
    pub readers: Arc<Mutex<Vec<crate::journal::Reader>>>,
}

/// Read connections kept at most.
const READERS_KEPT: usize = 8;

impl WebState {
    fn count(&self, action: &str, outcome: &str) {
        if let Ok(mut m) = self.actions.lock() {
            *m.entry((action.to_string(), outcome.to_string()))
                .or_default() += 1;
        }
    }
}

/// Every route of SPEC section 10.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/api/status", get(status_json))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/units", get(unit_search))
        .route("/units/{id}", get(unit_page))
        .route("/units/{id}/reprint", post(reprint))
        .route("/units/{id}/scrap", post(scrap))
        .route("/blocks", post(import_block))
        .route("/reports/shift", get(shift_report))
        .with_state(state)
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: CancellationToken,
) {
    let limits = server::Limits {
        max_connections: state.config.web.max_connections,
        header_timeout: Duration::from_secs(state.config.web.header_timeout_s),
        idle_timeout: Duration::from_secs(state.config.web.idle_timeout_s),
    };
    server::serve(listener, router(state), limits, shutdown).await;
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json_answer(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Runs `f` on a read connection (a kept one, or a new one) on a blocking
/// thread; the connection is kept for the next request.
async fn read<T: Send + 'static>(
    state: &WebState,
    f: impl FnOnce(&crate::journal::Reader) -> Result<T, JournalError> + Send + 'static,
) -> Result<T, Response> {
    let (journal, readers) = (state.journal.clone(), state.readers.clone());
    let r = tokio::task::spawn_blocking(move || {
        let kept = readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match kept {
            Some(c) => c,
            None => journal.reader()?,
        };
        let out = f(&conn);
        if let Ok(mut v) = readers.lock() {
            if v.len() < READERS_KEPT {
                v.push(conn);
            }
        }
        out
    })
    .await;
    r.map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| {
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::error("Journal read failed", &e),
            )
        })
}

fn status_of(state: &WebState) -> pages::Status {
    let tz = &state.config.timezone;
    let stations = state
        .stations
        .iter()
        .map(|(name, s)| {
            let ms = s.last_frame_ms.load(Ordering::Relaxed);
            pages::StationStatus {
                name: name.clone(),
                connected: s.connected.load(Ordering::Relaxed),
                last_frame: if ms > 0 {
                    jiff::Timestamp::from_millisecond(ms)
                        .map(|t| report::civil_text(tz.to_datetime(t)))
                        .unwrap_or_default()
                } else {
                    String::new()
                },
                frames: s.frames.load(Ordering::Relaxed),
                errors: s.errors.load(Ordering::Relaxed),
                last_error: s
                    .last_error
                    .lock()
                    .ok()
                    .and_then(|e| e.map(|c| c.as_str().to_string()))
                    .unwrap_or_default(),
            }
        })
        .collect();
    let printers = state
        .config
        .printers
        .iter()
        .map(|p| {
            let (st, q) = state.hub.get(&p.name);
            pages::PrinterStatus {
                name: p.name.clone(),
                state: st.as_str().to_string(),
                queued: q,
            }
        })
        .collect();
    let shared = state.journal.shared();
    let last_seq = shared.last_seq.load(Ordering::Acquire);
    pages::Status {
        line_id: state.config.line_id.clone(),
        facility: state.config.facility.clone(),
        ids_left: shared.ids_left.load(Ordering::Acquire),
        last_seq,
        stations,
        printers,
        sync: state.sync.state().as_str().to_string(),
        sync_lag: if state.config.upstream.is_some() {
            (last_seq - state.sync.acked_through()).max(0)
        } else {
            0
        },
        sync_halt: state.sync.halt_reason(),
    }
}

async fn status_page(State(state): State<WebState>) -> Response {
    html(StatusCode::OK, pages::status(&status_of(&state)))
}

async fn status_json(State(state): State<WebState>) -> Response {
    axum::Json(status_of(&state)).into_response()
}

/// 200 while a no-op job gets through the journal writer within 2 s.
async fn healthz(State(state): State<WebState>) -> Response {
    let probe = state.journal.write(|_tx| Ok::<(), JournalError>(()));
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(())) => match state.journal.shared().storage_fault() {
            None => (StatusCode::OK, "ok\n").into_response(),
            Some(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the last durable write failed: {why}\n"),
            )
                .into_response(),
        },
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("journal not writable: {e}\n"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "journal writer did not answer within 2 s\n",
        )
            .into_response(),
    }
}

async fn metrics_text(State(state): State<WebState>) -> Response {
    let shared = state.journal.shared();
    let status = status_of(&state);
    let snap = metrics::Snapshot {
        stations: state
            .stations
            .iter()
            .map(|(name, s)| metrics::StationFigures {
                name: name.clone(),
                connected: s.connected.load(Ordering::Relaxed),
                frames: s.frames.load(Ordering::Relaxed),
                errors: ErrorCode::ALL
                    .iter()
                    .filter_map(|c| {
                        let n = s.by_code[*c as usize].load(Ordering::Relaxed);
                        (n > 0).then(|| (c.as_str(), n))
                    })
                    .collect(),
            })
            .collect(),
        commits: shared.commits.load(Ordering::Relaxed),
        commit_latency: shared.commit_latency.snapshot(),
        last_seq: status.last_seq,
        labels_printed: state.hub.printed.load(Ordering::Relaxed),
        printer_faults: state.hub.faults.load(Ordering::Relaxed),
        printers: status
            .printers
            .iter()
            .map(|p| (p.name.clone(), p.state.clone(), p.queued))
            .collect(),
        ids_left: status.ids_left,
        sync_configured: state.config.upstream.is_some(),
        sync_lag: status.sync_lag,
        sync_halted: state.sync.state() == crate::line::UpstreamState::Halted,
        storage_errors: shared.storage_errors.load(Ordering::Relaxed),
        storage_ok: shared.storage_fault().is_none(),
        web_actions: state
            .actions
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((a, o), n)| (a.clone(), o.clone(), *n))
                    .collect()
            })
            .unwrap_or_default(),
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        metrics::render(&snap),
    )
        .into_response()
}

/// A unit ID, or the unit a scanned Digital Link URI or element string names.
pub fn resolve_unit(q: &str) -> Result<UnitId, String> {
    let q = q.trim();
    if q.is_empty() {
        return Err("type a unit ID, or scan its label".into());
    }
    if let Ok(u) = UnitId::parse(q) {
        return Ok(u);
    }
    // The GS1 error names the input itself; it is shown once, cut short.
    let id = gs1::parse_scanned(q).map_err(|e| {
        let why = e.to_string();
        let why = if why.chars().count() > 160 {
            format!("{}…", why.chars().take(160).collect::<String>())
        } else {
            why
        };
        format!("neither a unit ID nor a GS1 Digital Link URI or element string: {why}")
    })?;
    let serial = id.serial.ok_or_else(|| {
        format!(
            "{q:?} names GTIN {} without a serial (a batch- or model-level label), not one unit",
            id.gtin
        )
    })?;
    UnitId::parse(&serial).map_err(|e| format!("the serial {serial:?} is not a unit ID: {e}"))
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn unit_search(State(state): State<WebState>, Query(s): Query<Search>) -> Response {
    show_unit(state, s.q).await
}

async fn unit_page(State(state): State<WebState>, Path(id): Path<String>) -> Response {
    show_unit(state, id).await
}

async fn show_unit(state: WebState, q: String) -> Response {
    let unit = match resolve_unit(&q) {
        Ok(u) => u,
        Err(e) => return html(StatusCode::BAD_REQUEST, pages::error("Not a unit", &e)),
    };
    let codec = IdCodec::new(&state.config.ids.namespace_key);
    let view = match read(&state, move |c| query::unit(c, &codec, unit)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(v) = view else {
        return html(
            StatusCode::NOT_FOUND,
            pages::error(
                "Unknown unit",
                &format!(
                    "unit {unit} was not allocated on line {}",
                    state.config.line_id
                ),
            ),
        );
    };
    let identity = Gtin::parse(&v.gtin).ok().map(|g| {
        Identity::for_unit(
            g,
            Level::parse(&v.level).unwrap_or(Level::Item),
            v.lot.as_deref(),
            &v.unit,
        )
    });
    let uri = identity
        .as_ref()
        .map(|i| gs1::build_uri(&state.config.resolver, i));
    let hri = identity.as_ref().map(gs1::hri);
    html(
        StatusCode::OK,
        pages::unit(&v, uri.as_deref(), hri.as_deref(), &state.config.timezone),
    )
}

/// Checks the token; a refusal is logged, counted and answered.
fn gate(
    state: &WebState,
    headers: &HeaderMap,
    needed: Role,
    action: &str,
) -> Result<auth::Who, (StatusCode, serde_json::Value)> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth::authorize(&state.config.web.tokens, h, needed).map_err(|d| {
        let outcome = if d.status() == 401 {
            "unauthorized"
        } else {
            "forbidden"
        };
        state.count(action, outcome);
        tracing::warn!(action, outcome, reason = %d.message(), "web action refused");
        (
            StatusCode::from_u16(d.status()).unwrap_or(StatusCode::UNAUTHORIZED),
            serde_json::json!({"error": outcome, "message": d.message()}),
        )
    })
}

fn bad_request(state: &WebState, action: &str, message: String) -> Response {
    state.count(action, "bad_request");
    tracing::warn!(action, %message, "web action refused: malformed request");
    json_answer(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": "bad_request", "message": message}),
    )
}

/// `{"reason": "..."}`: a non-empty line of at most 200 characters.
fn reason_of(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        reason: String,
    }
    let b: Body = serde_json::from_slice(body)
        .map_err(|e| format!("the body must be JSON {{\"reason\": \"...\"}}: {e}"))?;
    let r = b.reason.trim();
    if r.is_empty() {
        return Err("reason is required and must not be empty".into());
    }
    if r.chars().count() > 200 {
        return Err("reason is longer than 200 characters".into());
    }
    if r.chars().any(char::is_control) {
        return Err("reason must be one line without control characters".into());
    }
    // Bidirectional overrides and isolates can make a journaled reason
    // read differently from what it says (CVE-2021-42574, "Trojan Source").
    if r.chars().any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')) {
        return Err("reason must not contain bidirectional override or isolate characters".into());
    }
    Ok(r.to_string())
}

async fn act(
    state: WebState,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    kind: &'static str,
) -> Response {
    let needed = if kind == "reprint" {
        Role::Operator
    } else {
        Role::Quality
    };
    let who = match gate(&state, &headers, needed, kind) {
        Ok(w) => w,
        Err((status, body)) => return json_answer(status, body),
    };
    let unit = match UnitId::parse(&id) {
        Ok(u) => u.to_string(),
        Err(e) => return bad_request(&state, kind, format!("{id:?} is not a unit ID: {e}")),
    };
    let reason = match reason_of(&body) {
        Ok(r) => r,
        Err(m) => return bad_request(&state, kind, m),
    };
    let action = if kind == "reprint" {
        Action::Reprint {
            unit: unit.clone(),
            reason,
        }
    } else {
        Action::Scrap {
            unit: unit.clone(),
            reason,
        }
    };
    match state.line.act(who.actor(), action).await {
        Ok(summary) => {
            state.count(kind, "accepted");
            tracing::info!(action = kind, unit = %unit, actor = %who.actor(), "{summary}");
            json_answer(
                StatusCode::OK,
                serde_json::json!({"ok": true, "message": summary, "unit": unit}),
            )
        }
        Err(r) => {
            state.count(kind, "refused");
            tracing::warn!(action = kind, unit = %unit, actor = %who.actor(), code = r.code.as_str(), reason = %r.msg, "web action refused");
            let status = match r.code {
                ErrorCode::UnknownUnit => StatusCode::NOT_FOUND,
                ErrorCode::Storage => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            json_answer(
                status,
                serde_json::json!({"error": r.code.as_str(), "message": r.msg}),
            )
        }
    }
}

async fn reprint(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(state, headers, id, body, "reprint").await
}

async fn scrap(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(state, headers, id, body, "scrap").await
}

async fn import_block(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let who = match gate(&state, &headers, Role::Admin, "import_block") {
        Ok(w) => w,
        Err((status, body)) => return json_answer(status, body),
    };
    let grant = match Grant::from_json(&body) {
        Ok(g) => g,
        Err(e) => return bad_request(&state, "import_block", format!("not a block grant: {e}")),
    };
    let policy = match state.config.grant_policy() {
        Ok(p) => p,
        Err(e) => return bad_request(&state, "import_block", e.to_string()),
    };
    let (j, actor) = (state.journal.clone(), who.actor());
    let block = grant.block_id.clone();
    let r =
        tokio::task::spawn_blocking(move || j.import_grant_blocking(grant, &policy, &actor)).await;
    match r {
        Ok(Ok(ev)) => {
            state.count("import_block", "accepted");
            tracing::info!(block = %block, actor = %who.actor(), seq = ev.seq, "block imported from the web page");
            json_answer(
                StatusCode::OK,
                serde_json::json!({"ok": true, "message": format!("block {block} imported"), "seq": ev.seq,
                    "ids_left": state.journal.shared().ids_left.load(Ordering::Acquire)}),
            )
        }
        Ok(Err(ImportError::Grant(g))) => bad_request(
            &state,
            "import_block",
            format!("grant {block} refused: {g}"),
        ),
        Ok(Err(ImportError::Journal(e))) => {
            state.count("import_block", "failed");
            json_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "storage", "message": e.to_string()}),
            )
        }
        Err(e) => json_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "internal", "message": e.to_string()}),
        ),
    }
}

#[derive(Deserialize)]
struct ReportQuery {
    date: Option<String>,
    shift: Option<String>,
    format: Option<String>,
}

async fn shift_report(State(state): State<WebState>, Query(q): Query<ReportQuery>) -> Response {
    let date = match q.date.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match d.parse::<jiff::civil::Date>() {
            Ok(d) => Some(d),
            Err(_) => {
                return html(
                    StatusCode::BAD_REQUEST,
                    pages::error("Bad date", &format!("date {d:?}: expected YYYY-MM-DD")),
                )
            }
        },
    };
    let shift = q.shift.filter(|s| !s.is_empty());
    let w = match report::resolve_window(
        &state.config,
        date,
        shift.as_deref(),
        jiff::Timestamp::now(),
    ) {
        Ok(w) => w,
        Err(e) => return html(StatusCode::BAD_REQUEST, pages::error("No such shift", &e)),
    };
    let cfg = state.config.clone();
    let w2 = w.clone();
    let r = match read(&state, move |c| report::for_config(&cfg, c, &w2)).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let stem = format!("shift-{}-{}-{}", r.line_id, r.date, r.shift);
    match q.format.as_deref().unwrap_or("html") {
        "html" => {
            let mut qs = format!("date={}&shift=", r.date);
            gs1::digital_link::percent_encode_into(&mut qs, &r.shift);
            html(
                StatusCode::OK,
                pages::report(&report::render::html(&r, Some(&qs))),
            )
        }
        "csv" => match report::render::csv(&r) {
            Ok(b) => download(b, "text/csv; charset=utf-8", &format!("{stem}.csv")),
            Err(e) => html(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::error("Report failed", &e.to_string()),
            ),
        },
        "pdf" => match report::render::pdf(&r) {
            Ok(b) => download(b, "application/pdf", &format!("{stem}.pdf")),
            Err(e) => html(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::error("Report failed", &e.to_string()),
            ),
        },
        f => html(
            StatusCode::BAD_REQUEST,
            pages::error(
                "Bad format",
                &format!("format {f:?}: expected html, csv or pdf"),
            ),
        ),
    }
}

fn download(bytes: Vec<u8>, mime: &'static str, name: &str) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_found_by_id_uri_or_element_string() {
        let key = crate::ids::NamespaceKey::from_hex(&"00".repeat(32)).expect("key");
        let unit = IdCodec::new(&key).id_of(5).to_string();
        let gtin = Gtin::parse("09506000134352").expect("gtin");
        let ident = Identity::for_unit(gtin, Level::Item, Some("L1"), &unit);
        let uri = gs1::build_uri("https://id.example.com", &ident);
        assert_eq!(resolve_unit(&unit).expect("id").to_string(), unit);
        assert_eq!(
            resolve_unit(&unit.to_lowercase())
                .expect("lower")
                .to_string(),
            unit
        );
        assert_eq!(resolve_unit(&uri).expect("uri").to_string(), unit);
        let es = format!("(01)09506000134352(10)L1(21){unit}");
        assert_eq!(resolve_unit(&es).expect("element string").to_string(), unit);
    }

    #[test]
    fn a_batch_level_code_or_garbage_is_a_clear_error() {
        let e = resolve_unit("https://id.example.com/01/09506000134352/10/L1").expect_err("batch");
        assert!(e.contains("without a serial"), "{e}");
        let e = resolve_unit("hello").expect_err("garbage");
        assert!(e.contains("neither a unit ID"), "{e}");
        assert!(resolve_unit("  ").is_err());
        // A long scanned text is shown once, cut short, never twice.
        let long = format!("https://id.example.com/01/{}", "9".repeat(3000));
        let e = resolve_unit(&long).expect_err("long");
        assert!(e.len() < 400, "{} bytes: {e}", e.len());
        assert!(e.matches("https://id.example.com").count() <= 1, "{e}");
    }

    #[test]
    fn reasons_are_one_non_empty_line() {
        assert_eq!(
            reason_of(br#"{"reason":" smudged "}"#),
            Ok("smudged".into())
        );
        assert!(reason_of(br#"{"reason":""}"#)
            .expect_err("empty")
            .contains("required"));
        assert!(reason_of(br#"{"why":"x"}"#)
            .expect_err("field")
            .contains("reason"));
        assert!(reason_of(b"not json").is_err());
        assert!(reason_of("{\"reason\":\"a\\nb\"}".as_bytes()).is_err());
        // A right-to-left override would make the journal read otherwise.
        let trojan = reason_of("{\"reason\":\"label ok \u{202E}gnirps\"}".as_bytes());
        assert!(trojan.expect_err("bidi").contains("bidirectional"));
        assert!(reason_of("{\"reason\":\"etiqueta ilegible, reimpresión\"}".as_bytes()).is_ok());
    }
}
