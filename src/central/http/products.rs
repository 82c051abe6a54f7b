//! Passport content routes (SPEC section 11, "Passport content"): a
//! product's Battery Pass aspects (upload, read, versions, completeness)
//! and a unit's merged aspect, each cut down to what the caller may see.
//!
//! Must not: check documents, merge or classify attributes (that is
//! `aspects`, `content` and `access`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{bearer, read_body, reason, store_error, App};
use crate::central::access::{self, Level};
use crate::central::aspects::{self, Aspect, CheckError};
use crate::central::content::{self, UnitFacts};
use crate::central::passport;
use crate::central::projection::Passport;
use crate::central::token::Role;

/// A 404 naming what is not there.
struct NotFound(String);

impl IntoResponse for NotFound {
    fn into_response(self) -> Response {
        reason(StatusCode::NOT_FOUND, self.0)
    }
}

/// The aspect named in the path, or 404 listing them.
fn aspect(name: &str) -> Result<Aspect, NotFound> {
    Aspect::parse(name).ok_or_else(|| {
        let all: Vec<&str> = Aspect::ALL.iter().map(|a| a.name()).collect();
        NotFound(format!(
            "{name:?} is not an aspect; use one of {}",
            all.join(", ")
        ))
    })
}

/// The GTIN of a configured product, or 404.
fn product(app: &App, gtin: &str) -> Result<String, NotFound> {
    app.config
        .products
        .iter()
        .find(|p| p.gtin.as_str() == gtin)
        .map(|p| p.gtin.as_str().to_string())
        .ok_or_else(|| {
            NotFound(format!(
                "GTIN {gtin} is not a product of this service; add a [[product]] to central.toml"
            ))
        })
}

/// The product and the aspect a path names.
fn product_aspect(app: &App, gtin: &str, name: &str) -> Result<(String, Aspect), NotFound> {
    Ok((product(app, gtin)?, aspect(name)?))
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "passport content data is damaged");
    reason(StatusCode::INTERNAL_SERVER_ERROR, e)
}

/// `doc` as `viewer` may see it: 200, or 403 when nothing of it is.
fn visible(a: Aspect, doc: &Value, viewer: Level) -> Response {
    let c = match access::classification() {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    match c.filter(a, doc, viewer) {
        Some(seen) => axum::Json(seen).into_response(),
        None => reason(
            StatusCode::FORBIDDEN,
            format!(
                "nothing of {} is {} information; sign in with a token that may see more",
                a.name(),
                viewer.as_str()
            ),
        ),
    }
}

/// `PUT /v1/products/{gtin}/aspects/{aspect}`: a new version of the
/// product's aspect (manufacturer, admin); every attribute present must be
/// valid. `201 {"version": N}`; 400 names each problem.
pub(super) async fn put_aspect(
    State(app): State<Arc<App>>,
    Path((gtin, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let owner = match super::person_with(
        &app,
        &headers,
        &[Role::Manufacturer, Role::Admin],
        "supply product data",
    )
    .await
    {
        Ok(o) => o,
        Err(r) => return r,
    };
    let (gtin, a) = match product_aspect(&app, &gtin, &name) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let body = match read_body(&headers, body, app.config.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return reason(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            )
        }
    };
    match aspects::check_partial(a, &doc) {
        Ok(()) => {}
        Err(CheckError::Invalid { problems }) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "reason": format!("the {} document is not valid against the Battery Pass schema; nothing was stored", a.name()),
                    "problems": problems,
                })),
            )
                .into_response()
        }
        Err(e @ CheckError::Schema(_)) => return internal(e),
    }
    match app.store.put_aspect(&gtin, a, &doc, &owner).await {
        Ok(version) => {
            tracing::info!(gtin, aspect = a.name(), version, actor = %owner.name, "product data stored");
            (
                StatusCode::CREATED,
                axum::Json(json!({ "gtin": gtin, "aspect": a.name(), "version": version })),
            )
                .into_response()
        }
        Err(e) => store_error(&app, e),
    }
}

/// `GET /v1/products/{gtin}/aspects/{aspect}`: the model-level document,
/// cut down to the caller's level.
pub(super) async fn get_aspect(
    State(app): State<Arc<App>>,
    Path((gtin, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let owner = match bearer(&app, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let (gtin, a) = match product_aspect(&app, &gtin, &name) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    match app.store.aspect(&gtin, a).await {
        Ok(Some(v)) => visible(a, &v.doc, access::viewer(owner.map(|o| o.role))),
        Ok(None) => reason(
            StatusCode::NOT_FOUND,
            format!("no {} data for GTIN {gtin} yet", a.name()),
        ),
        Err(e) => store_error(&app, e),
    }
}

/// `GET /v1/products/{gtin}/aspects/{aspect}/versions`: every upload
/// (version, actor, role, time), for manufacturer, admin and authority.
pub(super) async fn aspect_versions(
    State(app): State<Arc<App>>,
    Path((gtin, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = super::person_with(
        &app,
        &headers,
        &[Role::Manufacturer, Role::Admin, Role::Authority],
        "read the upload history",
    )
    .await
    {
        return r;
    }
    let (gtin, a) = match product_aspect(&app, &gtin, &name) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    match app.store.aspect_versions(&gtin, a).await {
        Ok(v) => {
            axum::Json(json!({ "gtin": gtin, "aspect": a.name(), "versions": v })).into_response()
        }
        Err(e) => store_error(&app, e),
    }
}

/// `GET /v1/products/{gtin}/completeness`: per aspect, the required
/// attributes the product's data still lacks (what each unit gets from
/// the line is not asked for).
pub(super) async fn completeness(
    State(app): State<Arc<App>>,
    Path(gtin): Path<String>,
    headers: HeaderMap,
) -> Response {
    match super::reader(&app, &headers).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return reason(
                StatusCode::UNAUTHORIZED,
                "a person's token is required (Authorization: Bearer ..., or sign in on a passport page)",
            )
        }
        Err(r) => return r,
    }
    let gtin = match product(&app, &gtin) {
        Ok(g) => g,
        Err(r) => return r.into_response(),
    };
    let html = super::header_str(&headers, axum::http::header::ACCEPT)
        .is_some_and(|a| a.contains("text/html"));
    let data = match app.store.aspects(&gtin).await {
        Ok(d) => d,
        Err(e) => return store_error(&app, e),
    };
    match content::completeness(&gtin, |a| data.get(&a).map(|v| (v.version, &v.doc))) {
        Ok(v) if html => {
            axum::response::Html(crate::central::sheet::completeness_html(&v)).into_response()
        }
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => internal(e),
    }
}

/// `GET /passports/{unit}/aspects/{aspect}`: the unit's aspect (product
/// data merged with the line's and the lifecycle's), cut down to the
/// caller's level; a read with a token is audited.
pub(super) async fn unit_aspect(
    State(app): State<Arc<App>>,
    Path((unit_id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let owner = match bearer(&app, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let a = match aspect(&name) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let id = crate::ids::UnitId::parse(&unit_id)
        .map(|u| u.to_string())
        .unwrap_or(unit_id);
    if let Some(o) = &owner {
        if let Err(e) = app
            .store
            .audit(o, &format!("read:{}", a.name()), Some(&id))
            .await
        {
            return store_error(&app, e);
        }
    }
    let (p, _) = match app.store.passport(&id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return reason(
                StatusCode::NOT_FOUND,
                format!("unit {id} is unknown: no line of this manufacturer made it"),
            )
        }
        Err(e) => return store_error(&app, e),
    };
    let stored = match app.store.aspect(&p.gtin, a).await {
        Ok(s) => s,
        Err(e) => return store_error(&app, e),
    };
    let (uri, lifecycle) = match unit_context(&app, &p).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let facts = unit_facts(&app, &p, &uri, &lifecycle);
    let doc = content::unit_aspect(a, stored.as_ref().map(|v| &v.doc), &facts);
    visible(a, &doc, access::viewer(owner.map(|o| o.role)))
}

/// What a unit's aspects are merged with besides its product's data: its
/// Digital Link URI and its lifecycle versions.
async fn unit_context(app: &App, p: &Passport) -> Result<(String, Vec<Value>), Response> {
    let lifecycle = app
        .store
        .versions(&p.unit_id)
        .await
        .map_err(|e| store_error(app, e))?;
    Ok((passport::uri(&app.config.public_base, p), lifecycle))
}

fn unit_facts<'a>(
    app: &'a App,
    p: &'a Passport,
    uri: &'a str,
    lifecycle: &'a [Value],
) -> UnitFacts<'a> {
    UnitFacts {
        passport: p,
        uri,
        site: app.config.lines.iter().find(|l| l.id == p.line_id),
        lifecycle,
    }
}

/// The sections of a unit's page: every aspect the viewer sees something
/// of, merged and cut down.
pub(super) async fn unit_sections(
    app: &App,
    p: &Passport,
    viewer: Level,
) -> Result<String, Response> {
    let c = access::classification().map_err(internal)?;
    let (uri, lifecycle) = unit_context(app, p).await?;
    let facts = unit_facts(app, p, &uri, &lifecycle);
    let stored = app
        .store
        .aspects(&p.gtin)
        .await
        .map_err(|e| store_error(app, e))?;
    let mut out = String::new();
    for a in Aspect::ALL {
        let doc = content::unit_aspect(a, stored.get(&a).map(|v| &v.doc), &facts);
        if let Some(seen) = c.filter(a, &doc, viewer) {
            out.push_str(&crate::central::sheet::section(c, a, &seen));
        }
    }
    Ok(out)
}

/// A model's (no lot) or a batch's passport: the product's data with the
/// attributes of that granularity the caller may see.
async fn level_passport(
    app: &App,
    gtin: &str,
    lot: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let owner = match super::reader(app, headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let gtin = match product(app, gtin) {
        Ok(g) => g,
        Err(r) => return r.into_response(),
    };
    let name = app
        .config
        .products
        .iter()
        .find(|p| p.gtin.as_str() == gtin)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let c = match access::classification() {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let viewer = access::viewer(owner.as_ref().map(|o| o.role));
    let granularity = if lot.is_some() {
        access::Granularity::Batch
    } else {
        access::Granularity::Model
    };
    let all = match app.store.aspects(&gtin).await {
        Ok(s) => s,
        Err(e) => return store_error(app, e),
    };
    let mut aspects = serde_json::Map::new();
    let mut sections = String::new();
    for a in Aspect::ALL {
        let Some(stored) = all.get(&a) else { continue };
        if let Some(seen) = c.filter_for(a, &stored.doc, viewer, granularity) {
            sections.push_str(&crate::central::sheet::section(c, a, &seen));
            aspects.insert(a.name().into(), seen);
        }
    }
    let wants_json =
        super::header_str(headers, axum::http::header::ACCEPT).is_some_and(|a| a.contains("json"));
    if wants_json {
        return axum::Json(json!({
            "gtin": gtin,
            "product": name,
            "lot": lot,
            "granularity": granularity,
            "aspects": aspects,
        }))
        .into_response();
    }
    let title = match &lot {
        Some(l) => format!("{name} — batch {l}"),
        None => format!("{name} — battery model"),
    };
    axum::response::Html(passport::level_html(
        &title,
        &gtin,
        lot.as_deref(),
        &sections,
    ))
    .into_response()
}

/// `GET /models/{gtin}`: the battery model's passport.
pub(super) async fn model_passport(
    State(app): State<Arc<App>>,
    Path(gtin): Path<String>,
    headers: HeaderMap,
) -> Response {
    level_passport(&app, &gtin, None, &headers).await
}

/// `GET /models/{gtin}/batches/{lot}`: a batch's passport.
pub(super) async fn batch_passport(
    State(app): State<Arc<App>>,
    Path((gtin, lot)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    level_passport(&app, &gtin, Some(lot), &headers).await
}
