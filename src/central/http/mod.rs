//! The central service's HTTP side (SPEC sections 7 and 11): the router,
//! `/healthz` and `/metrics`, and what every route shares.
//!
//! Owns: reading tokens (a malformed or unknown one is 401), body limits (a batch over
//! `http.max_body_bytes`, compressed or decompressed, is 413 naming the
//! limit: a gzip bomb is cut off there), and turning store answers into
//! status codes with a JSON `{"reason": ...}`.
//! Routes by concern: `lines` (ingest and blocks, a line's token),
//! `resolve` (the GS1 resolver), `passports` (passports, lifecycle updates,
//! history, the audit log), `products` (Battery Pass content per product
//! and per unit).
//! Must not: hold state between requests (any number of instances serve
//! one database; the identity cache holds only what never changes) or
//! write SQL.

mod lines;
mod passports;
mod products;
mod resolve;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::config::CentralConfig;
use super::ingest::Refused;
use super::store::{Store, StoreError, TokenOwner};
use super::token::{self, Role};
pub use resolve::IdentityCache;

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

/// The router of `linemark-central run`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/lines/{line_id}/journal", post(lines::journal))
        .route("/v1/lines/{line_id}/blocks", post(lines::blocks))
        .route("/01/{*rest}", get(resolve::resolve))
        .route("/.well-known/gs1resolver", get(resolve::well_known))
        .route("/passports/{unit_id}", get(passports::passport))
        .route(
            "/passports/{unit_id}/events",
            post(passports::lifecycle_event),
        )
        .route("/passports/{unit_id}/history", get(passports::history))
        .route("/v1/audit", get(passports::audit_log))
        .route(
            "/v1/products/{gtin}/aspects/{aspect}",
            get(products::get_aspect).put(products::put_aspect),
        )
        .route(
            "/v1/products/{gtin}/aspects/{aspect}/versions",
            get(products::aspect_versions),
        )
        .route(
            "/v1/products/{gtin}/completeness",
            get(products::completeness),
        )
        .route(
            "/passports/{unit_id}/aspects/{aspect}",
            get(products::unit_aspect),
        )
        .route("/passports/{unit_id}/signin", post(passports::sign_in))
        .route("/models/{gtin}", get(products::model_passport))
        .route(
            "/models/{gtin}/batches/{lot}",
            get(products::batch_passport),
        )
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

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The owner of the request's bearer token: `Ok(None)` without one, 401
/// for a malformed or unknown one.
async fn bearer(app: &App, headers: &HeaderMap) -> Result<Option<TokenOwner>, Response> {
    let Some(h) = header_str(headers, header::AUTHORIZATION) else {
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

/// The cookie a passport page's sign-in sets.
pub(super) const TOKEN_COOKIE: &str = "lmk_token";

/// Who reads a page: the bearer token, else the sign-in cookie (an unknown
/// cookie reads as nobody: the page offers the sign-in again).
async fn reader(app: &App, headers: &HeaderMap) -> Result<Option<TokenOwner>, Response> {
    if let Some(o) = bearer(app, headers).await? {
        return Ok(Some(o));
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{TOKEN_COOKIE}="))
                .map(str::to_string)
        });
    let Some(t) = cookie else { return Ok(None) };
    match app.store.token_owner(&token::hash(&t)).await {
        Ok(Some(o)) if o.role != Role::Line => Ok(Some(o)),
        Ok(_) => Ok(None),
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

/// A person's token with one of `roles`, or 401/403 saying what the
/// caller's role cannot do (`what`) and which roles can.
async fn person_with(
    app: &App,
    headers: &HeaderMap,
    roles: &[Role],
    what: &str,
) -> Result<TokenOwner, Response> {
    let owner = person(app, headers).await?;
    if roles.contains(&owner.role) {
        return Ok(owner);
    }
    let can: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(reason(
        StatusCode::FORBIDDEN,
        format!(
            "a {} token cannot {what} ({} can)",
            owner.role.as_str(),
            can.join(" or ")
        ),
    ))
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
