//! A line's routes (SPEC sections 7 and 11): journal ingest and block
//! requests, with the line's own token only (no token 401, another line's
//! or a person's token 403).
//!
//! Must not: write SQL or decide what a batch or grant is.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{bearer, read_body, reason, store_error, App};
use crate::central::blocks::Issuer;
use crate::central::ingest;
use crate::central::store::{StoreError, TokenOwner};
use crate::central::token::Role;

/// The token's owner, when it may act for `line_id`.
async fn line_token(app: &App, headers: &HeaderMap, line_id: &str) -> Result<TokenOwner, Response> {
    let Some(owner) = bearer(app, headers).await? else {
        return Err(reason(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer ...)",
        ));
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

pub(super) async fn journal(
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

pub(super) async fn blocks(
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
