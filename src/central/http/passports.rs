//! Passports' routes: the passport (HTML or JSON), lifecycle updates,
//! history and the audit log; every token-authenticated access audited.
//!
//! Must not: decide who sees which field (that is `central::passport` and
//! `central::lifecycle`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{header_str, person, read_body, reason, store_error, App};
use crate::central::lifecycle::UpdateError;
use crate::central::passport;
use crate::central::store::LifecycleError;
use crate::central::token::Role;

fn canonical_unit(unit_id: String) -> String {
    crate::ids::UnitId::parse(&unit_id)
        .map(|u| u.to_string())
        .unwrap_or(unit_id)
}

fn wants_json(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT).is_some_and(|a| a.contains("json"))
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
pub(super) async fn passport(
    State(app): State<Arc<App>>,
    Path(unit_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let owner = match super::reader(&app, &headers).await {
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
        owner.as_ref().map(|o| o.role),
    );
    doc["public"]["version"] = version.into();
    if wants_json(&headers) {
        return axum::Json(doc).into_response();
    }
    let viewer = crate::central::access::viewer(owner.as_ref().map(|o| o.role));
    let sections = match super::products::unit_sections(&app, &p, viewer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let action = format!("/passports/{id}/signin");
    let sign_in = passport::SignIn {
        who: owner.as_ref().map(|o| (o.name.as_str(), o.role.as_str())),
        action: &action,
    };
    axum::response::Html(passport::html(&doc["public"], &sections, &sign_in)).into_response()
}

/// `POST /passports/{unit}/signin` (a form: `token=...`): a known
/// person's token becomes an HttpOnly, SameSite=Strict cookie that the
/// passport pages read; `303` back to the passport.
pub(super) async fn sign_in(
    State(app): State<Arc<App>>,
    Path(unit_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(&headers, body, 4096).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let token = String::from_utf8_lossy(&body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .and_then(|t| crate::gs1::digital_link::percent_decode(&t.replace('+', " ")).ok())
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    let id = canonical_unit(unit_id);
    let known = match app
        .store
        .token_owner(&crate::central::token::hash(&token))
        .await
    {
        Ok(o) => o.filter(|o| o.role != Role::Line),
        Err(e) => return store_error(&app, e),
    };
    let Some(owner) = known else {
        tracing::warn!(unit = %id, "passport sign-in refused: unknown token");
        return (
            StatusCode::UNAUTHORIZED,
            axum::response::Html(passport::unknown_page(
                "That access token is not known here. Go back and try again, or ask the manufacturer for one.",
            )),
        )
            .into_response();
    };
    if let Err(e) = app.store.audit(&owner, "sign-in", Some(&id)).await {
        return store_error(&app, e);
    }
    let secure = app.config.public_base.starts_with("https://")
        && header_str(&headers, header::HOST).is_some_and(|h| app.config.public_base.ends_with(h));
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800{}",
        super::TOKEN_COOKIE,
        if secure { "; Secure" } else { "" }
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, format!("/passports/{id}")),
        ],
    )
        .into_response()
}

/// `POST /passports/{unit}/events`: a lifecycle update, `201 {"version": N}`.
pub(super) async fn lifecycle_event(
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
pub(super) async fn history(
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
pub(super) async fn audit_log(
    State(app): State<Arc<App>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let owner = match super::person_with(
        &app,
        &headers,
        &[Role::Authority, Role::Admin],
        "read the audit log",
    )
    .await
    {
        Ok(o) => o,
        Err(r) => return r,
    };
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
