//! The HTML of the local web page: the live status, a unit and its
//! history, error pages. Self-contained (inline CSS and a little inline
//! script; nothing is fetched from elsewhere).
//!
//! Owns: markup (pure: data in, text out). Must not: read the journal.

use std::fmt::Write as _;

use serde::Serialize;

use crate::journal::query::UnitView;
use crate::report::render::esc;

/// What `/` and `/api/status` show.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub line_id: String,
    pub facility: String,
    pub ids_left: u64,
    pub last_seq: i64,
    pub stations: Vec<StationStatus>,
    pub printers: Vec<PrinterStatus>,
    /// `ok`, `halted`, `error` or `off`.
    pub sync: String,
    pub sync_lag: i64,
    pub sync_halt: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StationStatus {
    pub name: String,
    pub connected: bool,
    /// Local time of the last frame, or empty.
    pub last_frame: String,
    pub frames: u64,
    pub errors: u64,
    pub last_error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrinterStatus {
    pub name: String,
    pub state: String,
    pub queued: u64,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}header{background:#1d3557;color:#fff;padding:.7rem 1.5rem;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}header a{color:#fff;text-decoration:none;font-weight:600}header form{margin-left:auto}main{padding:1rem 1.5rem}h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.5rem}table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;font-size:.9rem;vertical-align:top}thead th{background:#eee}.ok{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}.warn{color:#9a6700;font-weight:600}.big{font-size:1.6rem;font-weight:700}.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:10rem}input,textarea,button{font:inherit}input[type=search]{width:28rem;max-width:60vw}.actions{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;margin-top:1rem}.msg{margin-left:.5rem}pre{white-space:pre-wrap;margin:0;font-size:.8rem}";

/// Sign-in (token kept in this tab's sessionStorage) and a helper that
/// posts JSON with it.
const AUTH_SCRIPT: &str = r#"
function tok(){return sessionStorage.getItem('linemark-token')||'';}
function signin(){const t=document.getElementById('token').value.trim();if(t){sessionStorage.setItem('linemark-token',t);}showSignin();}
function signout(){sessionStorage.removeItem('linemark-token');showSignin();}
function showSignin(){const s=document.getElementById('signedin');if(s){s.textContent=tok()?'signed in':'not signed in';}}
async function post(url,body,out){const el=document.getElementById(out);el.textContent='…';
 try{const r=await fetch(url,{method:'POST',headers:{'Content-Type':'application/json','Authorization':'Bearer '+tok()},body:body});
 const t=await r.text();let m=t;try{const j=JSON.parse(t);m=j.message||j.error||t;}catch(e){}
 el.textContent=r.status+': '+m;el.className='msg '+(r.ok?'ok':'bad');if(r.ok){setTimeout(()=>location.reload(),800);}}
 catch(e){el.textContent='failed: '+e;el.className='msg bad';}}
document.addEventListener('DOMContentLoaded',showSignin);
"#;

fn page(title: &str, body: &str, script: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width,initial-scale=1'><title>{}</title><style>{STYLE}</style></head><body>\
<header><a href='/'>linemark</a><a href='/reports/shift'>Shift report</a><a href='/metrics'>Metrics</a>\
<form action='/units' method=get role=search><input type=search name=q id=q placeholder='Unit ID, Digital Link URI or element string' aria-label='Find a unit'> <button id=find>Find</button></form>\
<span><input type=password id=token placeholder='token' size=12 aria-label='Token'> <button onclick='signin()'>Sign in</button> <button onclick='signout()'>Sign out</button> <small id=signedin></small></span></header>\
<main>{body}</main><script>{AUTH_SCRIPT}{script}</script></body></html>",
        esc(title)
    )
}

fn state_class(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "bad"
    }
}

/// The live status page; the script refreshes it from `/api/status`
/// every two seconds without reloading.
pub fn status(s: &Status) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Line {} <small>{}</small></h1><div class=cards>\
<div class=card>IDs left<div class=big id=ids_left>{}</div></div>\
<div class=card>Last event<div class=big id=last_seq>{}</div></div>\
<div class=card>Sync<div class=big id=sync>{}</div><div id=sync_lag>{} events behind</div></div></div>",
        esc(&s.line_id),
        esc(&s.facility),
        s.ids_left,
        s.last_seq,
        esc(&s.sync),
        s.sync_lag
    );
    if let Some(h) = &s.sync_halt {
        let _ = write!(
            b,
            "<p class=bad id=halt>Sync halted: {}. Run <code>linemark sync --resume</code> once the cause is fixed.</p>",
            esc(h)
        );
    }
    b.push_str("<h2>Stations</h2><table id=stations><thead><tr><th>station</th><th>connected</th><th>last frame</th><th>frames</th><th>errors</th><th>last error</th></tr></thead><tbody>");
    for st in &s.stations {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class={}>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&st.name),
            state_class(st.connected),
            if st.connected { "yes" } else { "no" },
            esc(&st.last_frame),
            st.frames,
            st.errors,
            esc(&st.last_error)
        );
    }
    b.push_str("</tbody></table><h2>Printers</h2><table id=printers><thead><tr><th>printer</th><th>state</th><th>queued</th></tr></thead><tbody>");
    for p in &s.printers {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class={}>{}</td><td>{}</td></tr>",
            esc(&p.name),
            state_class(p.state == "ready"),
            esc(&p.state),
            p.queued
        );
    }
    b.push_str("</tbody></table>");
    b.push_str("<div class=actions><h2>Import a block grant (admin)</h2><textarea id=grant rows=4 cols=80 placeholder='Paste the grant JSON'></textarea><br><button onclick=\"post('/blocks',document.getElementById('grant').value,'grant_msg')\">Import</button><span id=grant_msg class=msg></span></div>");
    let script = r#"
function cell(t,c){const d=document.createElement('td');d.textContent=t;if(c){d.className=c;}return d;}
async function refresh(){try{const r=await fetch('/api/status');if(!r.ok)return;const s=await r.json();
 document.getElementById('ids_left').textContent=s.ids_left;document.getElementById('last_seq').textContent=s.last_seq;
 document.getElementById('sync').textContent=s.sync;document.getElementById('sync_lag').textContent=s.sync_lag+' events behind';
 const st=document.querySelector('#stations tbody');st.replaceChildren(...s.stations.map(x=>{const tr=document.createElement('tr');
  tr.append(cell(x.name),cell(x.connected?'yes':'no',x.connected?'ok':'bad'),cell(x.last_frame),cell(x.frames),cell(x.errors),cell(x.last_error));return tr;}));
 const pr=document.querySelector('#printers tbody');pr.replaceChildren(...s.printers.map(x=>{const tr=document.createElement('tr');
  tr.append(cell(x.name),cell(x.state,x.state==='ready'?'ok':'bad'),cell(x.queued));return tr;}));
}catch(e){}}
setInterval(refresh,2000);
"#;
    page(&format!("linemark {}", s.line_id), &b, script)
}

/// A unit and its whole history, with the actions a signed-in user may try.
/// Times are shown in the line's zone.
pub fn unit(v: &UnitView, uri: Option<&str>, hri: Option<&str>, tz: &jiff::tz::TimeZone) -> String {
    let local = |ts: &str| crate::report::local_time(ts, tz);
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Unit <span id=unit>{}</span></h1><table class=unit><tbody>",
        esc(&v.unit)
    );
    let mut row = |k: &str, val: &str| {
        let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(val));
    };
    row("state", &v.state);
    row(
        "product",
        &format!("{} (GTIN {}, {} level)", v.product, v.gtin, v.level),
    );
    if let Some(l) = &v.lot {
        row("lot", l);
    }
    if let Some(u) = uri {
        row("Digital Link", u);
    }
    if let Some(h) = hri {
        row("HRI", h);
    }
    row(
        "allocated",
        &format!(
            "{} by {}",
            local(&v.allocated_at),
            v.allocated_by.as_deref().unwrap_or("-")
        ),
    );
    if let Some(f) = &v.final_at {
        row("final", &local(f));
    }
    if let Some(r) = &v.scrap_reason {
        row("scrapped", r);
    }
    if let Some(s) = &v.shipment {
        row("shipment", s);
    }
    for (f, val) in &v.bindings {
        row(f, val);
    }
    for (part, lot) in &v.component_lots {
        row(&format!("lot of {part}"), lot);
    }
    for (child, _, unlinked) in &v.children {
        row(
            "child",
            &format!(
                "{child}{}",
                if unlinked.is_some() {
                    " (replaced)"
                } else {
                    ""
                }
            ),
        );
    }
    b.push_str("</tbody></table>");
    if !v.results.is_empty() {
        b.push_str("<h2>Results</h2><table><thead><tr><th>local time</th><th>step</th><th>status</th><th>station</th><th>measurements</th></tr></thead><tbody>");
        for r in &v.results {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class={}>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&local(&r.ts)),
                esc(&r.step),
                state_class(r.status == "PASS"),
                esc(&r.status),
                esc(r.station.as_deref().unwrap_or("")),
                esc(&r.measurements.to_string())
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("<h2>History</h2><table id=history><thead><tr><th>seq</th><th>local time</th><th>type</th><th>station</th><th>actor</th><th>data</th></tr></thead><tbody>");
    for e in &v.events {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            e.event.seq,
            esc(&local(&e.event.ts)),
            esc(&e.event.kind),
            esc(e.event.station.as_deref().unwrap_or("")),
            esc(&e.event.actor),
            esc(&e.data.to_string())
        );
    }
    b.push_str("</tbody></table>");
    let u = esc(&v.unit);
    let _ = write!(
        b,
        "<div class=actions><h2>Actions (sign in first)</h2>\
<p><input id=reprint_reason placeholder='Reason for the reprint' size=40> <button onclick=\"post('/units/{u}/reprint',JSON.stringify({{reason:document.getElementById('reprint_reason').value}}),'reprint_msg')\">Reprint label</button> <small>operator or higher</small><span id=reprint_msg class=msg></span></p>\
<p><input id=scrap_reason placeholder='Reason for scrapping' size=40> <button onclick=\"post('/units/{u}/scrap',JSON.stringify({{reason:document.getElementById('scrap_reason').value}}),'scrap_msg')\">Scrap unit</button> <small>quality or higher</small><span id=scrap_msg class=msg></span></p></div>"
    );
    page(&format!("Unit {}", v.unit), &b, "")
}

/// A page for a request that could not be answered.
pub fn error(title: &str, message: &str) -> String {
    page(
        title,
        &format!(
            "<h1>{}</h1><p class=bad id=error>{}</p>",
            esc(title),
            esc(message)
        ),
        "",
    )
}

/// The shift report inside the site's frame.
pub fn report(inner: &str) -> String {
    // The report's own page is self-contained; keep its body only.
    let body = inner
        .split_once("<body>")
        .and_then(|(_, rest)| rest.rsplit_once("</body>"))
        .map_or(inner, |(b, _)| b);
    let style = inner
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map_or("", |(s, _)| s);
    page("Shift report", &format!("<style>{style}</style>{body}"), "")
}
