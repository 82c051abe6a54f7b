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

/// The page's style: readable on a phone, nothing wider than the screen.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;padding:1rem;line-height:1.4;max-width:40rem}\
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin-top:1.4rem}dl{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,3fr);gap:.3rem 1rem}\
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}ul{padding-left:1.1rem}dd dl{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}\
.status{display:inline-block;padding:.2rem .6rem;border-radius:1rem;background:#e8f0fe}\
section.aspect{border-top:1px solid #ddd}form{margin-top:1.5rem}input{max-width:100%}";

/// Who is signed in on a page, and where its sign-in form posts.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    /// `(name, role)` of the signed-in token.
    pub who: Option<(&'a str, &'a str)>,
    pub action: &'a str,
}

fn sign_in_html(s: &SignIn<'_>) -> String {
    match s.who {
        Some((name, role)) => format!(
            "<p class=\"signed-in\">Signed in as {} ({}): restricted information is shown.</p>",
            esc(name),
            esc(role)
        ),
        None => format!(
            "<form method=\"post\" action=\"{}\"><p>Repairers, recyclers and authorities see more after signing in.</p>\
<label>Access token <input type=\"password\" name=\"token\" autocomplete=\"off\"></label> <button type=\"submit\">Sign in</button></form>",
            esc(s.action)
        ),
    }
}

/// A battery model's or a batch's page: its aspects.
pub fn level_html(title: &str, gtin: &str, lot: Option<&str>, sections: &str) -> String {
    let lot = lot
        .map(|l| format!("<dt>Batch</dt><dd>{}</dd>", esc(l)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t}</title><style>{STYLE}</style></head><body><p>Battery passport</p><h1>{t}</h1>\
<dl><dt>GTIN</dt><dd>{g}</dd>{lot}</dl>{sections}</body></html>",
        t = esc(title),
        g = esc(gtin),
    )
}

/// The page a scan opens: readable on a phone, public fields and links,
/// then the passport's aspects the reader may see, then the sign-in.
pub fn html(public: &Value, sections: &str, sign_in: &SignIn<'_>) -> String {
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
<title>Passport {id}</title><style>{STYLE}</style></head><body>\
<p>Battery passport</p><h1>{product}</h1><p class=\"status\">{status}</p><dl>\
<dt>Unit</dt><dd>{id}</dd><dt>GTIN</dt><dd>{gtin}</dd><dt>Lot</dt><dd>{lot}</dd>\
<dt>Manufactured</dt><dd>{made}</dd><dt>Place</dt><dd>{place}</dd><dt>Digital Link</dt><dd>{uri}</dd></dl>\
<h2>Links</h2><ul>{links}</ul>{sections}{signin}</body></html>",
        signin = sign_in_html(sign_in),
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
