//! The resolver's routes: `/01/...` and `/.well-known/gs1resolver`, and
//! the identities of units kept in memory.
//!
//! Must not: decide answers (that is `central::resolver`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{header_str, reason, store_error, App};
use crate::central::passport;
use crate::central::resolver::{self, Answer, Asked, UnitKnown};

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

/// `linkType=` from the query string.
fn link_type(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "linkType").then(|| crate::gs1::digital_link::percent_decode(v).unwrap_or_default())
    })
}

/// `GET`/`HEAD /01/...`: the resolver.
pub(super) async fn resolve(
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
        wants_linkset: header_str(&headers, header::ACCEPT)
            .is_some_and(|a| a.contains("application/linkset+json")),
        accept_language: header_str(&headers, header::ACCEPT_LANGUAGE),
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
            let wants_json =
                header_str(&headers, header::ACCEPT).is_some_and(|a| a.contains("json"));
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

pub(super) async fn well_known(State(app): State<Arc<App>>) -> Response {
    axum::Json(resolver::description(&app.config.public_base)).into_response()
}
