//! The resolver under load (issue 16): 64 concurrent clients, each on its
//! own keep-alive connection, for a few seconds per target, against
//!
//! - the bound: a bare hyper handler answering a static `307` (no
//!   routing, no database), in this process;
//! - `linemark-central run` resolving a known unit's Digital Link URI
//!   (`307` to its passport: a passport lookup in PostgreSQL per request);
//! - the same for the product only (`/01/{gtin}`: no database);
//! - a unit's passport as JSON (`GET /passports/{id}`);
//! - a unit's merged Battery Pass aspect, its passport page with all seven
//!   aspects, and the model's passport (issue 19).
//!
//! Prints requests/s and p50/p99 per target. A bench binary
//! (`cargo bench --bench resolver`); without PostgreSQL it says so.

#[path = "../tests/helper/postgres.rs"]
#[allow(dead_code)]
mod postgres;

mod central_common;
use central_common::{central, free_port, Instance};

use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 64;

/// `CLIENTS` clients for `secs`, each request one of `urls` in turn;
/// answers (requests/s, p50, p99).
async fn load(
    urls: Arc<Vec<String>>,
    accept: &'static str,
    secs: u64,
) -> (f64, Duration, Duration) {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let urls = urls.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut lat = Vec::new();
            let mut n = i;
            while Instant::now() < until {
                let url = &urls[n % urls.len()];
                n += CLIENTS;
                let t = Instant::now();
                let r = http
                    .get(url)
                    .header("Accept", accept)
                    .send()
                    .await
                    .expect("request");
                let ok = r.status().as_u16() == 307 || r.status().is_success();
                let _ = r.bytes().await;
                assert!(ok, "{url}");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let q = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (all.len() as f64 / elapsed, q(0.50), q(0.99))
}

/// The bound: hyper answering `307` to a fixed location.
async fn bare_307(listener: tokio::net::TcpListener) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .status(307)
                        .header("Location", "https://id.example.com/passports/V700QW11S6PJ4")
                        .body(String::new())
                        .expect("response"),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                .await;
        });
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(pg) = postgres::Postgres::start("bench resolver") else {
        return;
    };
    let secs: u64 = std::env::var("SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let url = pg.create_db("central");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("keys")).expect("keys");
    std::fs::write(dir.path().join("keys/issuer.key"), "07".repeat(32)).expect("key");
    std::fs::write(dir.path().join("keys/namespace.key"), "00".repeat(32)).expect("key");
    let port = free_port();
    let cfg = dir.path().join("central.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{url}\"\npool_size = 16\n[http]\nlisten = \"127.0.0.1:{port}\"\npublic_base = \"https://id.example.com\"\n\
             [issuer]\nkey_file = \"keys/issuer.key\"\nnamespace = \"acme-batteries\"\nnamespace_key_file = \"keys/namespace.key\"\n\
             [[line]]\nid = \"P1-L03\"\ncountry = \"Germany\"\n\
             [[product]]\ngtin = \"09506000134352\"\nname = \"PACK-48V\"\n[[product.link]]\nrel = \"gs1:pip\"\nhref = \"https://www.example.com/packs\"\n"
        ),
    )
    .expect("config");
    assert!(central(&["migrate"], &cfg).status.success());
    let out = central(&["line", "add", "P1-L03"], &cfg);
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/product-09506000134352"
    );
    assert!(
        central(&["product", "import", "09506000134352", example], &cfg)
            .status
            .success()
    );
    let _inst = Instance::start(&cfg, port);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/healthz")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            assert!(Instant::now() < deadline, "central did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // 1,000 units in the store, by the ingest path.
        let units: Vec<String> = (0..1000).map(|i| format!("U{i:05}")).collect();
        let mut prev = linemark::journal::event::GENESIS_HASH.to_string();
        let mut scratch = String::new();
        let mut events = Vec::new();
        for (i, u) in units.iter().enumerate() {
            let seq = i as i64 + 1;
            let data = r#"{"gtin":"09506000134352","level":"item","product":"PACK-48V"}"#;
            let id = format!("e{seq}");
            let input = linemark::journal::event::HashInput {
                seq, event_id: &id, ts: "2026-12-03T08:00:00.000Z", line_id: "P1-L03", station: Some("s"),
                actor: "station:s", kind: "ALLOCATED", unit: Some(u), data,
            };
            let h = input.hash(&prev, &mut scratch);
            let mut json = String::new();
            input.json_with_hash_into(&mut json, &h);
            events.push(json);
            prev = h;
        }
        let body = format!(
            "{{\"line_id\":\"P1-L03\",\"first_seq\":1,\"last_seq\":1000,\"prev_hash\":\"{}\",\"events\":[{}]}}",
            linemark::journal::event::GENESIS_HASH,
            events.join(",")
        );
        let r = http.post(format!("{base}/v1/lines/P1-L03/journal")).bearer_auth(&token).body(body).send().await.expect("ingest");
        assert!(r.status().is_success(), "ingest");

        let bound_port = free_port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", bound_port)).await.expect("bind");
        tokio::spawn(bare_307(listener));
        let targets: Vec<(&str, Vec<String>, &'static str)> = vec![
            ("bound: bare hyper static 307", vec![format!("http://127.0.0.1:{bound_port}/01/09506000134352/21/U00001")], "*/*"),
            ("resolver: known unit -> 307", units.iter().map(|u| format!("{base}/01/09506000134352/21/{u}")).collect(), "*/*"),
            ("resolver: product /01/{gtin} -> 307", vec![format!("{base}/01/09506000134352")], "*/*"),
            ("passport JSON", units.iter().map(|u| format!("{base}/passports/{u}")).collect(), "application/json"),
            ("unit aspect GeneralProductInformation (merged, public)", units.iter().map(|u| format!("{base}/passports/{u}/aspects/GeneralProductInformation")).collect(), "application/json"),
            ("passport page HTML (seven aspects, public)", units.iter().map(|u| format!("{base}/passports/{u}")).collect(), "text/html"),
            ("model passport JSON", vec![format!("{base}/models/09506000134352")], "application/json"),
        ];
        let mut bound = 0.0;
        for (name, urls, accept) in targets {
            let (rps, p50, p99) = load(Arc::new(urls), accept, secs).await;
            if bound == 0.0 {
                bound = rps;
            }
            println!(
                "SUMMARY {name}: {rps:.0} requests/s ({:.0} % of the bound), p50 {:.2} ms, p99 {:.2} ms ({CLIENTS} clients)",
                100.0 * rps / bound,
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
        }
    });
}
