//! The central service's HTTP side (SPEC sections 7 and 11): ingest,
//! blocks, `/healthz` and `/metrics`.
//!
//! Owns: authentication (a line's token for that line's routes only: no or
//! unknown token 401, another line's 403), body limits (a batch over
//! `http.max_body_bytes`, compressed or decompressed, is 413 naming the
//! limit: a gzip bomb is cut off there), and turning store answers into
//! status codes with a JSON `{"reason": ...}`.
//! Must not: hold state between requests (any number of instances serve
//! one database) or write SQL.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::blocks::Issuer;
use super::config::CentralConfig;
use super::ingest::{self, Refused};
use super::lifecycle::UpdateError;
use super::passport;
use super::resolver::{self, Answer, Asked, UnitKnown};
use super::store::{LifecycleError, Store, StoreError, TokenOwner};
use super::token::{self, Role};

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    batches: AtomicU64,
    events: AtomicU64,
    refused: AtomicU64,
    blocks: AtomicU64,
    errors: AtomicU64,
}

/// What every request needs.
pub struct App {
    pub store: Store,
    pub config: CentralConfig,
    pub metrics: Metrics,
    pub identities: IdentityCache,
}

/// Units' identities (GTIN, lot) as the resolver needs them. An identity
/// never changes once a unit is allocated, so an entry is never stale and
/// any number of instances can each keep one; only units the store knows
/// are kept (an unknown unit may arrive with the next batch).
#[derive(Default)]
pub struct IdentityCache {
    map: std::sync::RwLock<std::collections::HashMap<String, (String, Option<String>)>>,
}

impl IdentityCache {
    /// At most this many units; past it the cache starts over.
    const MAX: usize = 1_000_000;

    fn get(&self, unit: &str) -> Option<(String, Option<String>)> {
        self.map.read().ok()?.get(unit).cloned()
    }

    fn put(&self, unit: &str, id: (String, Option<String>)) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(unit.to_string(), id);
        }
    }
}

/// The router of `linemark-central run`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/lines/{line_id}/journal", post(journal))
        .route("/v1/lines/{line_id}/blocks", post(blocks))
        .route("/01/{*rest}", get(resolve))
        .route("/.well-known/gs1resolver", get(well_known))
        .route("/passports/{unit_id}", get(passport))
        .route("/passports/{unit_id}/events", post(lifecycle_event))
        .route("/passports/{unit_id}/history", get(history))
        .route("/v1/audit", get(audit_log))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

fn reason(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "reason": why.to_string() }))).into_response()
}

/// A store failure as an answer: the client's fault 4xx, the database's 503.
fn store_error(app: &App, e: StoreError) -> Response {
    match e {
        StoreError::Batch(Refused::BadBatch(m)) => reason(StatusCode::BAD_REQUEST, m),
        StoreError::Batch(Refused::Chain(m)) => reason(StatusCode::CONFLICT, m),
        e @ (StoreError::Count(_) | StoreError::UnknownLine(_)) => {
            reason(StatusCode::BAD_REQUEST, e)
        }
        e @ StoreError::Exhausted(_) => reason(StatusCode::CONFLICT, e),
        e => {
            app.metrics.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "store request failed");
            reason(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the store could not answer ({e}); try again"),
            )
        }
    }
}

/// The token's owner, when it may act for `line_id`.
async fn line_token(app: &App, headers: &HeaderMap, line_id: &str) -> Result<TokenOwner, Response> {
    let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(token::from_header)
    else {
        return Err(reason(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer ...)",
        ));
    };
    let owner = match app.store.token_owner(&token::hash(t)).await {
        Ok(Some(o)) => o,
        Ok(None) => return Err(reason(StatusCode::UNAUTHORIZED, "unknown token")),
        Err(e) => return Err(store_error(app, e)),
    };
    match (owner.role, owner.line_id.as_deref()) {
        (Role::Line, Some(l)) if l == line_id => Ok(owner),
        (Role::Line, Some(l)) => Err(reason(
            StatusCode::FORBIDDEN,
            format!("this token is line {l}'s, not line {line_id}'s"),
        )),
        (role, _) => Err(reason(
            StatusCode::FORBIDDEN,
            format!(
                "a {} token cannot act for a line; use the line's sync token",
                role.as_str()
            ),
        )),
    }
}

/// The request body, decompressed when sent with gzip, at most `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Response> {
    let too_big = || {
        reason(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {limit} bytes (http.max_body_bytes); send smaller batches"
            ),
        )
    };
    let raw: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_big())?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            reason(
                StatusCode::BAD_REQUEST,
                format!("the gzip body does not decompress: {e}"),
            )
        })?;
    if out.len() > limit {
        return Err(too_big());
    }
    Ok(out)
}

async fn journal(
    State(app): State<Arc<App>>,
    Path(line_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = line_token(&app, &headers, &line_id).await {
        return r;
    }
    let body = match read_body(&headers, body, app.config.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let batch =
        match ingest::parse(&body).and_then(|b| ingest::check_shape(&b, &line_id).map(|_| b)) {
            Ok(b) => b,
            Err(e) => {
                app.metrics.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(line = %line_id, reason = %e, "batch refused");
                return store_error(&app, StoreError::Batch(e));
            }
        };
    match app.store.ingest(&batch).await {
        Ok(done) => {
            app.metrics.batches.fetch_add(1, Ordering::Relaxed);
            app.metrics
                .events
                .fetch_add(done.stored as u64, Ordering::Relaxed);
            for p in &done.unprojected {
                tracing::warn!(line = %line_id, problem = %p, "event stored but not projected into a passport");
            }
            axum::Json(json!({ "acked_through": done.acked_through })).into_response()
        }
        Err(e) => {
            if matches!(e, StoreError::Batch(_)) {
                app.metrics.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(line = %line_id, reason = %e, "batch refused");
            }
            store_error(&app, e)
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockRequest {
    count: u64,
}

async fn blocks(
    State(app): State<Arc<App>>,
    Path(line_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let owner = match line_token(&app, &headers, &line_id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let body = match read_body(&headers, body, 4096).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req: BlockRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return reason(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"count\": N}}: {e}"),
            )
        }
    };
    let iss = &app.config.issuer;
    let issuer = Issuer {
        key: &iss.key,
        namespace: &iss.namespace,
        key_id: &iss.key_id,
        name: &iss.name,
    };
    let by = format!("{}:{}", owner.role.as_str(), owner.name);
    match app
        .store
        .grant_block(
            &issuer,
            iss.first_index,
            iss.max_block,
            &line_id,
            req.count,
            &by,
        )
        .await
    {
        Ok(g) => {
            app.metrics.blocks.fetch_add(1, Ordering::Relaxed);
            tracing::info!(line = %line_id, block = %g.block_id, start = g.start, count = g.count, "block granted");
            axum::Json(g).into_response()
        }
        Err(e) => store_error(&app, e),
    }
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `linkType=` from the query string.
fn link_type(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "linkType").then(|| crate::gs1::digital_link::percent_decode(v).unwrap_or_default())
    })
}

/// `GET`/`HEAD /01/...`: the resolver.
async fn resolve(
    State(app): State<Arc<App>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let base = &app.config.public_base;
    let id = match resolver::parse_path(base, uri.path()) {
        Ok(id) => id,
        Err(e) => return reason(StatusCode::BAD_REQUEST, format!("{}: {e}", uri.path())),
    };
    let unit = match &id.serial {
        None => UnitKnown::NoUnit,
        Some(serial) => {
            let known = match app.identities.get(serial) {
                Some(i) => Some(i),
                None => match app.store.identity(serial).await {
                    Ok(Some(i)) => {
                        app.identities.put(serial, i.clone());
                        Some(i)
                    }
                    Ok(None) => None,
                    Err(e) => return store_error(&app, e),
                },
            };
            match known {
                // The unit exists, and the label's GTIN and lot are its own.
                Some((gtin, lot))
                    if gtin == id.gtin.as_str()
                        && id.lot.as_ref().is_none_or(|l| Some(l) == lot.as_ref()) =>
                {
                    UnitKnown::Known {
                        unit_id: serial.clone(),
                    }
                }
                _ => UnitKnown::Unknown,
            }
        }
    };
    let product = app.config.products.iter().find(|p| p.gtin == id.gtin);
    let lt = link_type(uri.query());
    let asked = Asked {
        link_type: lt.as_deref(),
        wants_linkset: header(&headers, header::ACCEPT)
            .is_some_and(|a| a.contains("application/linkset+json")),
        accept_language: header(&headers, header::ACCEPT_LANGUAGE),
    };
    match resolver::decide(base, &id, product, &unit, &asked) {
        Answer::Redirect { location, link } => (
            StatusCode::TEMPORARY_REDIRECT,
            [
                (header::LOCATION, location),
                (header::LINK, link),
                (header::VARY, "Accept, Accept-Language".into()),
            ],
        )
            .into_response(),
        Answer::Linkset { body, link } => (
            [
                (header::CONTENT_TYPE, "application/linkset+json".to_string()),
                (header::LINK, link),
            ],
            body.to_string(),
        )
            .into_response(),
        Answer::NotFound {
            reason: why,
            counterfeit,
        } => {
            let wants_json = header(&headers, header::ACCEPT).is_some_and(|a| a.contains("json"));
            if counterfeit && !wants_json {
                (
                    StatusCode::NOT_FOUND,
                    axum::response::Html(passport::unknown_page(&why)),
                )
                    .into_response()
            } else {
                reason(StatusCode::NOT_FOUND, why)
            }
        }
    }
}

async fn well_known(State(app): State<Arc<App>>) -> Response {
    axum::Json(resolver::description(&app.config.public_base)).into_response()
}

/// The owner of the request's bearer token: `Ok(None)` without one, 401
/// for a malformed or unknown one.
async fn bearer(app: &App, headers: &HeaderMap) -> Result<Option<TokenOwner>, Response> {
    let Some(h) = header(headers, header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Some(t) = token::from_header(h) else {
        return Err(reason(
            StatusCode::UNAUTHORIZED,
            "the Authorization header must be Bearer TOKEN",
        ));
    };
    match app.store.token_owner(&token::hash(t)).await {
        Ok(Some(o)) => Ok(Some(o)),
        Ok(None) => Err(reason(StatusCode::UNAUTHORIZED, "unknown token")),
        Err(e) => Err(store_error(app, e)),
    }
}

/// A person's or system's token (not a line's), or 401/403.
async fn person(app: &App, headers: &HeaderMap) -> Result<TokenOwner, Response> {
    match bearer(app, headers).await? {
        None => Err(reason(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer ...)",
        )),
        Some(o) if o.role == Role::Line => Err(reason(
            StatusCode::FORBIDDEN,
            "a line's sync token cannot read or change passports",
        )),
        Some(o) => Ok(o),
    }
}

fn canonical_unit(unit_id: String) -> String {
    crate::ids::UnitId::parse(&unit_id)
        .map(|u| u.to_string())
        .unwrap_or(unit_id)
}

fn wants_json(headers: &HeaderMap) -> bool {
    header(headers, header::ACCEPT).is_some_and(|a| a.contains("json"))
}

fn unknown_unit(headers: &HeaderMap, id: &str) -> Response {
    let why = format!("unit {id} is unknown: no line of this manufacturer made it. The label may be counterfeit or damaged.");
    if wants_json(headers) {
        reason(StatusCode::NOT_FOUND, why)
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::response::Html(passport::unknown_page(&why)),
        )
            .into_response()
    }
}

/// `GET /passports/{unit}`: HTML, or JSON for `Accept: application/json`;
/// restricted fields for `authority`, `manufacturer` and `admin` tokens.
/// A read with a token is audited.
async fn passport(
    State(app): State<Arc<App>>,
    Path(unit_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let owner = match bearer(&app, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let id = canonical_unit(unit_id);
    if let Some(o) = &owner {
        if let Err(e) = app.store.audit(o, "read", Some(&id)).await {
            return store_error(&app, e);
        }
    }
    let (p, version) = match app.store.passport(&id).await {
        Ok(Some(p)) => p,
        Ok(None) => return unknown_unit(&headers, &id),
        Err(e) => return store_error(&app, e),
    };
    let site = app.config.lines.iter().find(|l| l.id == p.line_id);
    let product = app
        .config
        .products
        .iter()
        .find(|pr| pr.gtin.as_str() == p.gtin);
    let mut doc = passport::document(
        &app.config.public_base,
        &p,
        site,
        product,
        owner.map(|o| o.role),
    );
    doc["public"]["version"] = version.into();
    if wants_json(&headers) {
        axum::Json(doc).into_response()
    } else {
        axum::response::Html(passport::html(&doc["public"])).into_response()
    }
}

/// `POST /passports/{unit}/events`: a lifecycle update, `201 {"version": N}`.
async fn lifecycle_event(
    State(app): State<Arc<App>>,
    Path(unit_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let owner = match person(&app, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let body = match read_body(&headers, body, 64 * 1024).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = canonical_unit(unit_id);
    match app.store.lifecycle_update(&id, &body, &owner).await {
        Ok(Some(version)) => {
            tracing::info!(unit = %id, version, actor = %owner.name, role = owner.role.as_str(), "lifecycle update");
            (
                StatusCode::CREATED,
                axum::Json(json!({ "version": version })),
            )
                .into_response()
        }
        Ok(None) => unknown_unit(&headers, &id),
        Err(LifecycleError::Update(e)) => {
            let status = match e {
                UpdateError::Role { .. } | UpdateError::NotRecycler => StatusCode::FORBIDDEN,
                UpdateError::Bad(_) => StatusCode::BAD_REQUEST,
                UpdateError::Recycled(_) => StatusCode::CONFLICT,
            };
            reason(status, e)
        }
        Err(LifecycleError::Store(e)) => store_error(&app, e),
    }
}

/// `GET /passports/{unit}/history`: every version; version 1 is the line's
/// manufacturing record. Needs a token; audited.
async fn history(
    State(app): State<Arc<App>>,
    Path(unit_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let owner = match person(&app, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let id = canonical_unit(unit_id);
    if let Err(e) = app.store.audit(&owner, "history", Some(&id)).await {
        return store_error(&app, e);
    }
    let (p, _) = match app.store.passport(&id).await {
        Ok(Some(p)) => p,
        Ok(None) => return unknown_unit(&headers, &id),
        Err(e) => return store_error(&app, e),
    };
    let mut versions = vec![json!({
        "version": 1,
        "ts": p.manufactured_at.clone().unwrap_or_else(|| p.allocated_at.clone()),
        "actor": format!("line:{}", p.line_id),
        "role": "line",
        "type": "manufactured",
        "reason": "the line's manufacturing record",
        "evidence": null,
        "delta": {},
    })];
    match app.store.versions(&id).await {
        Ok(v) => versions.extend(v),
        Err(e) => return store_error(&app, e),
    }
    axum::Json(json!({ "unit": id, "versions": versions })).into_response()
}

/// `GET /v1/audit[?passport=ID]`: the audit log (authority, admin).
async fn audit_log(
    State(app): State<Arc<App>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let owner = match person(&app, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if !matches!(owner.role, Role::Authority | Role::Admin) {
        return reason(
            StatusCode::FORBIDDEN,
            format!(
                "a {} token cannot read the audit log (authority or admin can)",
                owner.role.as_str()
            ),
        );
    }
    let passport = uri.query().and_then(|q| {
        q.split('&').find_map(|kv| {
            kv.strip_prefix("passport=")
                .map(|v| canonical_unit(v.to_string()))
        })
    });
    if let Err(e) = app.store.audit(&owner, "audit", passport.as_deref()).await {
        return store_error(&app, e);
    }
    match app.store.audit_entries(passport.as_deref()).await {
        Ok(entries) => {
            let list: Vec<Value> = entries
                .into_iter()
                .map(|(e, _)| json!({"ts": e.ts, "actor": e.actor, "role": e.role, "action": e.action, "passport": e.passport}))
                .collect();
            axum::Json(json!({ "entries": list })).into_response()
        }
        Err(e) => store_error(&app, e),
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database does not answer: {e}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let m = &app.metrics;
    let mut out = String::new();
    for (name, help, v) in [
        (
            "linemark_central_batches_total",
            "Journal batches acknowledged.",
            &m.batches,
        ),
        (
            "linemark_central_events_stored_total",
            "Events stored (each once).",
            &m.events,
        ),
        (
            "linemark_central_batches_refused_total",
            "Batches refused (400 or 409).",
            &m.refused,
        ),
        (
            "linemark_central_blocks_granted_total",
            "Block grants issued.",
            &m.blocks,
        ),
        (
            "linemark_central_store_errors_total",
            "Requests the database could not answer.",
            &m.errors,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            v.load(Ordering::Relaxed)
        ));
    }
    let up = u8::from(app.store.ping().await.is_ok());
    out.push_str(&format!(
        "# HELP linemark_central_database_up Whether the database answers.\n# TYPE linemark_central_database_up gauge\nlinemark_central_database_up {up}\n"
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
