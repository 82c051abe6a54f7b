//! The web page under load (issue 7): 50 concurrent HTTP clients on
//! loopback asking for `/` and `/units/ID` while 8 TCP stations drive
//! units through ALLOC, RESULT, RESULT, FINAL (each FINAL PASS prints a
//! label to a folder). Reports p50/p99/max latency per page, pages/s, and
//! the stations' frames/s during the run. The daemon runs on its own
//! 2-worker runtime; the load generators on another (both share the
//! machine's 2 cores). A bench binary: one 10-second run.
//!
//! `cargo bench --bench web`

mod common;
use common::pct;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linemark::client::StationClient;
use linemark::config::Config;
use linemark::daemon::Daemon;

const STATIONS: usize = 8;
const CLIENTS: usize = 50;
const RUN: Duration = Duration::from_secs(10);

fn setup(dir: &std::path::Path) -> Config {
    std::fs::create_dir_all(dir.join("labels")).expect("dir");
    let mut extra = format!(
        "\n[web]\nlisten = \"127.0.0.1:0\"\n\n[[printer]]\nname = \"p1\"\nurl = \"dir://{}\"\n",
        dir.join("labels").display()
    );
    for i in 0..STATIONS {
        extra.push_str(&format!(
            "\n[[station]]\nname = \"s{i}\"\nport = \"tcp://127.0.0.1:0\"\nallow = [\"ALLOC\", \"RESULT\", \"FINAL\"]\nstep = \"final\"\nprinter = \"p1\"\n"
        ));
    }
    Config::load(&common::write_config(dir, &extra)).expect("config")
}

fn grant(cfg: &Config) {
    let j = linemark::journal::Journal::open(linemark::journal::JournalOptions::from_config(cfg))
        .expect("journal");
    common::grant_into(&j);
}

async fn one_unit(c: &mut StationClient<tokio::net::TcpStream>) -> Option<String> {
    let u = c
        .request("ALLOC", &[("product", "PACK-48V"), ("lot", "L1")])
        .await
        .ok()?
        .get("unit")?
        .to_string();
    for step in ["provision", "functional"] {
        c.request(
            "RESULT",
            &[("unit", &u), ("step", step), ("status", "PASS")],
        )
        .await
        .ok()?;
    }
    c.request("FINAL", &[("unit", &u), ("status", "PASS")])
        .await
        .ok()?;
    Some(u)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let cfg = setup(dir.path());
    grant(&cfg);
    let daemon_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let d = daemon_rt.block_on(Daemon::start(cfg)).expect("daemon");
    let web = d.web_addr().expect("web");
    let addrs: Vec<_> = (0..STATIONS)
        .map(|i| d.tcp_addr(&format!("s{i}")).expect("station"))
        .collect();
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    load_rt.block_on(async move {
        // Some units to look at.
        let mut c = StationClient::new(tokio::net::TcpStream::connect(addrs[0]).await.expect("connect"), "warm");
        let mut units = Vec::new();
        for _ in 0..200 {
            units.push(one_unit(&mut c).await.expect("unit"));
        }
        drop(c);
        let units = Arc::new(units);
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for (i, a) in addrs.iter().enumerate() {
            let (stop, frames, a) = (stop.clone(), frames.clone(), *a);
            tasks.push(tokio::spawn(async move {
                let mut c = StationClient::new(tokio::net::TcpStream::connect(a).await.expect("connect"), &format!("l{i}"));
                while !stop.load(Ordering::Relaxed) {
                    if one_unit(&mut c).await.is_some() {
                        frames.fetch_add(4, Ordering::Relaxed);
                    }
                }
            }));
        }
        let lat_status = Arc::new(Mutex::new(Vec::new()));
        let lat_unit = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        for k in 0..CLIENTS {
            let (stop, units, ls, lu, errors) = (stop.clone(), units.clone(), lat_status.clone(), lat_unit.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = k;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let (path, unit_page) = if n % 2 == 0 {
                        ("/".to_string(), false)
                    } else {
                        (format!("/units/{}", units[n % units.len()]), true)
                    };
                    let t = Instant::now();
                    let ok = match http.get(format!("http://{web}{path}")).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    let el = t.elapsed();
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let target = if unit_page { &lu } else { &ls };
                    if let Ok(mut v) = target.lock() {
                        v.push(el);
                    }
                }
            }));
        }
        tokio::time::sleep(RUN).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let secs = started.elapsed().as_secs_f64();
        for (name, v) in [("/", &lat_status), ("/units/ID", &lat_unit)] {
            let mut v = v.lock().expect("lock").clone();
            let n = v.len();
            let p50 = pct(&mut v, 0.5);
            let p99 = pct(&mut v, 0.99);
            let max = pct(&mut v, 1.0);
            println!(
                "web/{name:<10} {CLIENTS} clients: {n} requests ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
                n as f64 / secs,
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
                max.as_secs_f64() * 1e3
            );
        }
        println!(
            "web/stations {STATIONS} stations meanwhile: {:.0} frames/s; HTTP errors: {}",
            frames.load(Ordering::Relaxed) as f64 / secs,
            errors.load(Ordering::Relaxed)
        );
    });
    daemon_rt.block_on(d.shutdown());
}
