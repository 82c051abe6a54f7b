//! What a passport shows (SPEC section 11): the public fields everyone
//! sees, the restricted ones for `authority`, `manufacturer` and `admin`
//! tokens, and the page a phone opens when it scans a label.
//!
//! Owns: the split between public and restricted fields, the JSON object
//! `{"public": {...}, "restricted": {...}}` and the HTML page.
//! Must not: do IO or decide who may read what beyond the role list.

use serde_json::{json, Value};

use super::config::{LineSite, ProductInfo};
use super::projection::Passport;
use super::token::Role;
use crate::gs1::{self, Gtin, Identity, Level};
use crate::report::render::esc;

/// Roles that see the restricted fields.
pub fn sees_restricted(role: Role) -> bool {
    matches!(role, Role::Authority | Role::Manufacturer | Role::Admin)
}

/// The unit's Digital Link URI on `public_base`.
pub fn uri(public_base: &str, p: &Passport) -> String {
    let level = Level::parse(&p.level).unwrap_or(Level::Item);
    match Gtin::parse(&p.gtin) {
        Ok(g) => gs1::build_uri(
            public_base,
            &Identity::for_unit(g, level, p.lot.as_deref(), &p.unit_id),
        ),
        Err(_) => String::new(),
    }
}

/// The fields everyone may read.
pub fn public(
    public_base: &str,
    p: &Passport,
    site: Option<&LineSite>,
    product: Option<&ProductInfo>,
) -> Value {
    let links: Vec<Value> = product
        .map(|pr| pr.links.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|l| json!({"rel": l.rel, "href": l.href, "title": l.title, "lang": l.lang}))
        .collect();
    json!({
        "id": p.unit_id,
        "uri": uri(public_base, p),
        "gtin": p.gtin,
        "product": product.map(|pr| pr.name.clone()).unwrap_or_else(|| p.product.clone()),
        "level": p.level,
        "lot": p.lot,
        "facility": site.map(|s| json!({"line_id": s.id, "street": s.street, "postal_code": s.postal_code, "country": s.country})),
        "line_id": p.line_id,
        "manufactured_at": p.manufactured_at,
        "status": p.status.as_str(),
        "version": 1,
        "links": links,
    })
}

/// The fields only `authority`, `manufacturer` and `admin` may read.
pub fn restricted(p: &Passport) -> Value {
    let b = |k: &str| p.bindings.get(k).cloned();
    json!({
        "serial": b("serial"),
        "mac": b("mac"),
        "uid": b("uid"),
        "firmware": b("fw"),
        "firmware_hash": b("fwhash"),
        "cert": b("cert"),
        "component_lots": p.component_lots,
        "children": p.children,
        "tests": p.tests,
        "shipment": p.shipment,
        "buyer": p.buyer,
    })
}

/// The JSON answer: `restricted` only when the role may see it.
pub fn document(
    public_base: &str,
    p: &Passport,
    site: Option<&LineSite>,
    product: Option<&ProductInfo>,
    role: Option<Role>,
) -> Value {
    let mut doc = json!({ "public": public(public_base, p, site, product) });
    if role.is_some_and(sees_restricted) {
        doc["restricted"] = restricted(p);
    }
    doc
}

/// The page a scan opens: readable on a phone, public fields and links.
pub fn html(public: &Value) -> String {
    let s = |k: &str| public[k].as_str().map(esc).unwrap_or_else(|| "—".into());
    let status = s("status").replace('_', " ");
    let mut links = String::new();
    for l in public["links"].as_array().into_iter().flatten() {
        let title = l["title"]
            .as_str()
            .filter(|t| !t.is_empty())
            .or(l["href"].as_str())
            .unwrap_or_default();
        links.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>",
            esc(l["href"].as_str().unwrap_or_default()),
            esc(title)
        ));
    }
    let place = match &public["facility"] {
        Value::Object(f) => esc(&[&f["street"], &f["postal_code"], &f["country"]]
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
            .join(", ")),
        _ => s("line_id"),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Passport {id}</title><style>body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;line-height:1.4;max-width:40rem}}\
h1{{font-size:1.4rem;margin:.2rem 0}}dl{{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}}dt{{color:#555}}dd{{margin:0;word-break:break-all}}\
.status{{display:inline-block;padding:.2rem .6rem;border-radius:1rem;background:#e8f0fe}}</style></head><body>\
<p>Battery passport</p><h1>{product}</h1><p class=\"status\">{status}</p><dl>\
<dt>Unit</dt><dd>{id}</dd><dt>GTIN</dt><dd>{gtin}</dd><dt>Lot</dt><dd>{lot}</dd>\
<dt>Manufactured</dt><dd>{made}</dd><dt>Place</dt><dd>{place}</dd><dt>Digital Link</dt><dd>{uri}</dd></dl>\
<h2>Links</h2><ul>{links}</ul></body></html>",
        id = s("id"),
        product = s("product"),
        gtin = s("gtin"),
        lot = s("lot"),
        made = s("manufactured_at"),
        uri = s("uri"),
    )
}

/// The page for a `/21/` the store does not know.
pub fn unknown_page(reason: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Unknown unit</title></head>\
<body style=\"font-family:system-ui,sans-serif;padding:1rem\"><h1>Unknown unit</h1><p>{}</p>\
<p>Do not rely on this product's label. Report it to the manufacturer.</p></body></html>",
        esc(reason)
    )
}
