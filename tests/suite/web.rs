//! The local web page over real HTTP on port 0: every endpoint of SPEC
//! section 10, the token gate (401/403), malformed bodies (400, nothing
//! changed), actions journaled with their actor, `/metrics` in Prometheus
//! text format, and `linemark token new`.

use std::collections::BTreeMap;

use crate::helper::{
    connect, count_events, grant, ok, printing_station, ready_unit, stderr, stdout, Line,
};
use linemark::daemon::Daemon;
use linemark::web::auth::sha256;

/// Percent-encodes a path segment or query value.
fn pct(s: &str) -> String {
    let mut out = String::new();
    linemark::gs1::digital_link::percent_encode_into(&mut out, s);
    out
}

const VERBS: &[&str] = &["ALLOC", "RESULT", "FINAL", "STATUS"];

fn token_toml(role: &str, name: &str, token: &str) -> String {
    format!(
        "\n[[web.token]]\nrole = \"{role}\"\nname = \"{name}\"\nsha256 = \"{}\"\n",
        hex::encode(sha256(token))
    )
}

pub fn web_line(printer_dir: &std::path::Path) -> Line {
    let mut extra = printing_station(
        "tcp://127.0.0.1:0",
        VERBS,
        &format!("dir://{}", printer_dir.display()),
    );
    extra += &token_toml("operator", "op", "op-secret");
    extra += &token_toml("quality", "qe", "qe-secret");
    extra += &token_toml("admin", "ad", "ad-secret");
    let line = Line::with_config(&extra);
    let j = line.open();
    line.grant_into(&j, "b1", 1048576, 10_000);
    line
}

/// A unit that passed final test, through the station protocol.
pub async fn passed_unit(d: &Daemon) -> String {
    let mut c = connect(d, "t", "t").await;
    let u = ready_unit(&mut c).await;
    ok(&mut c, "FINAL", &[("unit", &u), ("status", "PASS")]).await;
    u
}

/// Checks Prometheus text exposition format strictly enough to catch what
/// a scraper would reject: names, labels, values, TYPE before samples,
/// histogram buckets cumulative with `+Inf` equal to `_count`.
pub fn check_prometheus(text: &str) -> Result<usize, String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut buckets: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    let mut samples = 0;
    for (no, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line}", no + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut p = rest.splitn(3, ' ');
            match (p.next(), p.next(), p.next()) {
                (Some("TYPE"), Some(n), Some(t)) => {
                    if !name_ok(n)
                        || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t)
                    {
                        return Err(at("bad TYPE"));
                    }
                    if types.insert(n.to_string(), t.to_string()).is_some() {
                        return Err(at("TYPE given twice"));
                    }
                }
                (Some("HELP"), Some(n), _) if name_ok(n) => {}
                _ => return Err(at("bad comment")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| at("value is not a number"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').ok_or_else(|| at("unclosed labels"))?),
            None => (series, ""),
        };
        if !name_ok(name) {
            return Err(at("bad metric name"));
        }
        let mut le = None;
        let mut rest = labels;
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"").ok_or_else(|| at("bad label"))?;
            if !name_ok(k) {
                return Err(at("bad label name"));
            }
            let mut end = None;
            let mut esc = false;
            for (i, c) in after.char_indices() {
                match (esc, c) {
                    (true, '\\' | '"' | 'n') => esc = false,
                    (true, _) => return Err(at("bad escape")),
                    (false, '\\') => esc = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| at("unterminated label value"))?;
            if k == "le" {
                le = Some(after[..end].to_string());
            }
            rest = after[end + 1..]
                .strip_prefix(',')
                .unwrap_or(&after[end + 1..]);
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(at("sample before its TYPE"));
        }
        if name.ends_with("_bucket") {
            buckets
                .entry(family.to_string())
                .or_default()
                .push((le.ok_or_else(|| at("bucket without le"))?, v));
        }
        if name.ends_with("_count") && family != name {
            counts.insert(family.to_string(), v);
        }
        samples += 1;
    }
    for (f, b) in &buckets {
        if b.windows(2).any(|w| w[1].1 < w[0].1) {
            return Err(format!("{f}: buckets are not cumulative"));
        }
        let last = b.last().ok_or("no buckets")?;
        if last.0 != "+Inf" || Some(&last.1) != counts.get(f) {
            return Err(format!("{f}: +Inf bucket missing or not equal to _count"));
        }
    }
    Ok(samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_action_over_http() {
    let out = tempfile::tempdir().unwrap();
    let line = web_line(out.path());
    let d = Daemon::start(line.config()).await.unwrap();
    let base = format!("http://{}", d.web_addr().expect("web listens"));
    let u = passed_unit(&d).await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, ct, r.bytes().await.unwrap().to_vec())
        }
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let (s, _, b) = get("/healthz".into()).await;
    assert_eq!((s, text(&b).as_str()), (200, "ok\n"));
    let (s, ct, b) = get("/".into()).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/html"));
    assert!(
        text(&b).contains("IDs left") && text(&b).contains(">t<"),
        "{}",
        text(&b)
    );
    let (s, _, b) = get("/api/status".into()).await;
    assert_eq!(s, 200);
    let st: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(st["ids_left"], 9_999);
    assert_eq!(st["stations"][0]["name"], "t");
    assert_eq!(st["printers"][0]["name"], "p1");

    // The unit page, by ID, by a percent-encoded Digital Link URI, by a search.
    let (s, _, b) = get(format!("/units/{u}")).await;
    assert_eq!(s, 200);
    let page = text(&b);
    assert!(page.contains(&u) && page.contains("FINAL_PASS") && page.contains("LABEL_QUEUED"));
    let uri = format!("https://id.example.com/01/09506000134352/10/L1/21/{u}");
    assert!(page.contains(&uri), "the page shows the Digital Link URI");
    let (s, _, b) = get(format!("/units/{}", pct(&uri))).await;
    assert_eq!(s, 200, "{}", text(&b));
    assert!(text(&b).contains(&u));
    let (s, _, b) = get(format!(
        "/units?q={}",
        pct(&format!("(01)09506000134352(10)L1(21){u}"))
    ))
    .await;
    assert_eq!(s, 200, "{}", text(&b));
    assert!(text(&b).contains(&u));
    let (s, _, b) = get("/units/not-a-unit".into()).await;
    assert_eq!(s, 400);
    assert!(text(&b).contains("neither a unit ID"));
    let (s, _, _) = get(format!(
        "/units/{}",
        linemark::ids::IdCodec::new(&line.config().ids.namespace_key).id_of(7)
    ))
    .await;
    assert_eq!(s, 404);

    // The shift report (no shifts configured: the whole day is one shift).
    let today = jiff::Timestamp::now()
        .to_zoned(line.config().timezone.clone())
        .date()
        .to_string();
    let (s, ct, b) = get(format!("/reports/shift?date={today}&format=csv")).await;
    assert_eq!(s, 200, "{}", text(&b));
    assert!(ct.starts_with("text/csv"));
    assert!(text(&b).starts_with("unit,product,lot,"));
    assert!(text(&b).contains(&u));
    let (s, _, b) = get(format!("/reports/shift?date={today}&format=pdf")).await;
    assert_eq!(s, 200);
    assert!(b.starts_with(b"%PDF-"));
    let (s, _, b) = get(format!("/reports/shift?date={today}")).await;
    assert_eq!(s, 200);
    assert!(text(&b).contains("First-pass yield") && text(&b).contains("format=pdf"));
    assert_eq!(get("/reports/shift?date=2026-02-30".into()).await.0, 400);
    assert_eq!(
        get(format!("/reports/shift?date={today}&format=xls"))
            .await
            .0,
        400
    );
    assert_eq!(
        get(format!("/reports/shift?date={today}&shift=Z")).await.0,
        400
    );

    // Actions: the token gate first, then the body, then the line's rules.
    let events = || {
        count_events(&line.db_path(), "LABEL_REPRINTED") + count_events(&line.db_path(), "SCRAPPED")
    };
    let post = |path: String, token: Option<&'static str>, body: &'static str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let mut rq = http.post(url).body(body);
            if let Some(t) = token {
                rq = rq.bearer_auth(t);
            }
            let r = rq.send().await.unwrap();
            let s = r.status().as_u16();
            let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            (s, v)
        }
    };
    let reprint = format!("/units/{u}/reprint");
    let scrap = format!("/units/{u}/scrap");
    assert_eq!(
        post(reprint.clone(), None, r#"{"reason":"smudged"}"#)
            .await
            .0,
        401
    );
    assert_eq!(
        post(reprint.clone(), Some("guess"), r#"{"reason":"smudged"}"#)
            .await
            .0,
        401
    );
    let (s, v) = post(reprint.clone(), Some("op-secret"), "{}").await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("reason"), "{v}");
    let (s, v) = post(reprint.clone(), Some("op-secret"), r#"{"reason":""}"#).await;
    assert_eq!(
        (s, v["message"].as_str().unwrap().contains("required")),
        (400, true)
    );
    assert_eq!(
        post(reprint.clone(), Some("op-secret"), "not json").await.0,
        400
    );
    assert_eq!(events(), 0, "nothing changed by refused requests");
    let (s, v) = post(
        reprint.clone(),
        Some("op-secret"),
        r#"{"reason":"smudged"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(count_events(&line.db_path(), "LABEL_REPRINTED"), 1);
    let (s, v) = post(scrap.clone(), Some("op-secret"), r#"{"reason":"dented"}"#).await;
    assert_eq!(s, 403);
    assert!(
        v["message"].as_str().unwrap().contains("needs quality"),
        "{v}"
    );
    let (s, v) = post(scrap.clone(), Some("qe-secret"), r#"{"reason":"dented"}"#).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(scrap.clone(), Some("qe-secret"), r#"{"reason":"again"}"#).await;
    assert_eq!((s, v["error"].as_str()), (409, Some("E_SCRAPPED")));
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    let actors: Vec<String> = c
        .prepare(
            "SELECT actor FROM events WHERE type IN ('LABEL_REPRINTED','SCRAPPED') ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actors, vec!["web:operator:op", "web:quality:qe"]);

    // Blocks: admin only; a forged grant changes nothing.
    let good = serde_json::to_string(&grant("b2", 2_000_000, 500)).unwrap();
    let mut forged = grant("b3", 3_000_000, 500);
    forged.count = 5_000;
    let forged = serde_json::to_string(&forged).unwrap();
    let good: &'static str = Box::leak(good.into_boxed_str());
    let forged: &'static str = Box::leak(forged.into_boxed_str());
    assert_eq!(post("/blocks".into(), Some("qe-secret"), good).await.0, 403);
    let (s, v) = post("/blocks".into(), Some("ad-secret"), "{\"grant\":").await;
    assert_eq!(s, 400);
    assert!(
        v["message"].as_str().unwrap().contains("not a block grant"),
        "{v}"
    );
    let (s, v) = post("/blocks".into(), Some("ad-secret"), forged).await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("refused"), "{v}");
    assert_eq!(count_events(&line.db_path(), "BLOCK_IMPORTED"), 1);
    let (s, v) = post("/blocks".into(), Some("ad-secret"), good).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ids_left"], 9_999 + 500);
    assert_eq!(count_events(&line.db_path(), "BLOCK_IMPORTED"), 2);

    // Metrics: valid text format with the figures above.
    let (s, ct, b) = get("/metrics".into()).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"));
    let m = text(&b);
    let n = check_prometheus(&m).unwrap_or_else(|e| panic!("{e}\n{m}"));
    assert!(n > 20);
    assert!(
        m.contains("linemark_station_frames_total{station=\"t\"} 4"),
        "{m}"
    );
    assert!(m.contains("linemark_ids_left 10499"), "{m}");
    assert!(
        m.contains("linemark_web_actions_total{action=\"reprint\",outcome=\"unauthorized\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("linemark_web_actions_total{action=\"scrap\",outcome=\"forbidden\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("linemark_web_actions_total{action=\"reprint\",outcome=\"bad_request\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("linemark_web_actions_total{action=\"scrap\",outcome=\"accepted\"} 1"),
        "{m}"
    );
    assert!(m.contains("linemark_journal_commit_seconds_count"), "{m}");

    // A stuck journal writer: /healthz says so (503) until it answers again.
    let j = d.journal().clone();
    let stall = tokio::task::spawn_blocking(move || {
        j.write_blocking(|_tx| {
            std::thread::sleep(std::time::Duration::from_secs(3));
            Ok::<(), linemark::journal::JournalError>(())
        })
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (s, _, b) = get("/healthz".into()).await;
    assert_eq!(s, 503, "{}", text(&b));
    assert!(text(&b).contains("did not answer"), "{}", text(&b));
    stall.await.unwrap().unwrap();
    assert_eq!(get("/healthz".into()).await.0, 200);
    d.shutdown().await;
}

#[test]
fn the_prometheus_checker_rejects_what_a_scraper_would() {
    assert!(check_prometheus("# TYPE a counter\na 1\n").is_ok());
    assert!(check_prometheus("a 1\n").is_err(), "sample before TYPE");
    assert!(check_prometheus("# TYPE a counter\na{x=\"1} 1\n").is_err());
    assert!(check_prometheus("# TYPE a counter\na one\n").is_err());
    assert!(check_prometheus(
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"
    )
    .is_err());
}

#[test]
fn token_new_prints_a_token_once_with_its_config_lines() {
    let line = Line::new();
    let out = line.cli(&["token", "new", "--role", "quality", "--name", "qe-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let token = text.lines().nth(1).unwrap().trim().to_string();
    assert_eq!(token.len(), 43);
    assert!(text.contains("[[web.token]]\nrole = \"quality\"\nname = \"qe-1\""));
    assert!(text.contains(&format!("sha256 = \"{}\"", hex::encode(sha256(&token)))));
    // The printed lines are a valid config.
    let cfg_lines = text.split_once("restart linemark:\n").unwrap().1;
    line.write_config(&format!("{}{cfg_lines}", crate::helper::BASE_CONFIG));
    assert_eq!(line.cli(&["check-config"]).status.code(), Some(0));
    let out = line.cli(&["token", "new", "--role", "root", "--name", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("operator, quality or admin"));
}
