//! linemark-central at scale (issue 15), on a throwaway PostgreSQL cluster:
//!
//! 1. `LINES` simulated lines (default 100) send `EVENTS` events each
//!    (default 10,000; real hash chains, batches of 5,000, gzip) through
//!    two `linemark-central run` instances, 16 lines at a time; then the
//!    store is checked: every line's chain complete, no gap, no duplicate.
//! 2. The same rows `COPY`'d (binary) into a table of the same shape in the
//!    same database: the bound ingest is compared with.
//! 3. 1,000 block requests at once over both instances: overlaps (must be
//!    0) and requests/s.
//!
//! A bench binary (`cargo bench --bench central`), not a test: it prints
//! `SUMMARY` lines. Without PostgreSQL it says so and exits.

#[path = "../tests/helper/postgres.rs"]
#[allow(dead_code)]
mod postgres;

mod central_common;
use central_common::{central, free_port, Instance};

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use linemark::journal::event::{HashInput, GENESIS_HASH};

const BATCH: i64 = 5_000;

fn env_or(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Ev {
    seq: i64,
    unit: String,
    data: String,
    hash: String,
}

fn line_id(i: i64) -> String {
    format!("B{i:03}")
}

/// A line's chain: ALLOCATED events with distinct units.
fn chain(line: &str, n: i64) -> Vec<Ev> {
    let mut prev = GENESIS_HASH.to_string();
    let mut scratch = String::new();
    (1..=n)
        .map(|seq| {
            let unit = format!("{line}U{seq:07}");
            let data = "{\"gtin\":\"09506000134352\",\"level\":\"item\",\"product\":\"PACK-48V\"}"
                .to_string();
            let hash = HashInput {
                seq,
                event_id: &format!("{line}-{seq}"),
                ts: "2026-12-03T08:00:00.000Z",
                line_id: line,
                station: Some("s1"),
                actor: "station:s1",
                kind: "ALLOCATED",
                unit: Some(&unit),
                data: &data,
            }
            .hash(&prev, &mut scratch);
            prev = hash.clone();
            Ev {
                seq,
                unit,
                data,
                hash,
            }
        })
        .collect()
}

fn body(line: &str, events: &[Ev], prev: &str) -> Vec<u8> {
    let mut json = format!(
        "{{\"line_id\":\"{line}\",\"first_seq\":{},\"last_seq\":{},\"prev_hash\":\"{prev}\",\"events\":[",
        events[0].seq,
        events[events.len() - 1].seq
    );
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        HashInput {
            seq: e.seq,
            event_id: &format!("{line}-{}", e.seq),
            ts: "2026-12-03T08:00:00.000Z",
            line_id: line,
            station: Some("s1"),
            actor: "station:s1",
            kind: "ALLOCATED",
            unit: Some(&e.unit),
            data: &e.data,
        }
        .json_with_hash_into(&mut json, &e.hash);
    }
    json.push_str("]}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json.as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list
    }
    let Some(pg) = postgres::Postgres::start("bench central") else {
        return;
    };
    let (lines, events) = (env_or("LINES", 100), env_or("EVENTS", 10_000));
    let url = pg.create_db("central");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("keys")).expect("keys");
    std::fs::write(dir.path().join("keys/issuer.key"), "07".repeat(32)).expect("key");
    std::fs::write(dir.path().join("keys/namespace.key"), "00".repeat(32)).expect("key");
    let config = |port: u16| {
        let p = dir.path().join(format!("central-{port}.toml"));
        std::fs::write(
            &p,
            format!(
                "[database]\nurl = \"{url}\"\npool_size = 16\n[http]\nlisten = \"127.0.0.1:{port}\"\npublic_base = \"https://id.example.com\"\n\
                 [issuer]\nkey_file = \"keys/issuer.key\"\nnamespace = \"acme-batteries\"\nnamespace_key_file = \"keys/namespace.key\"\nfirst_index = 1048576\nmax_block = 100000\n"
            ),
        )
        .expect("config");
        p
    };
    let base_cfg = config(0);
    assert!(central(&["migrate"], &base_cfg).status.success(), "migrate");
    let mut tokens = Vec::new();
    for i in 0..lines {
        let out = central(&["line", "add", &line_id(i)], &base_cfg);
        assert!(out.status.success(), "line add");
        tokens.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let instances: Vec<Instance> = (0..2)
        .map(|_| {
            let port = free_port();
            Instance::start(&config(port), port)
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::new();
    rt.block_on(async {
        for inst in &instances {
            let deadline = Instant::now() + Duration::from_secs(20);
            while http
                .get(format!("http://127.0.0.1:{}/healthz", inst.1))
                .send()
                .await
                .map(|r| !r.status().is_success())
                .unwrap_or(true)
            {
                assert!(Instant::now() < deadline, "instance did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });

    // 1. Ingest through both instances.
    eprintln!("building {lines} chains of {events} events ...");
    let mut work = Vec::new();
    for i in 0..lines {
        let id = line_id(i);
        let evs = chain(&id, events);
        let mut bodies = Vec::new();
        let mut prev = GENESIS_HASH.to_string();
        for part in evs.chunks(BATCH as usize) {
            bodies.push(body(&id, part, &prev));
            prev = part[part.len() - 1].hash.clone();
        }
        work.push((id, tokens[i as usize].clone(), bodies));
    }
    let ports: Vec<u16> = instances.iter().map(|i| i.1).collect();
    let total = (lines * events) as f64;
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for (n, (id, token, bodies)) in work.into_iter().enumerate() {
            let (http, gate) = (http.clone(), gate.clone());
            let port = ports[n % 2];
            tasks.push(tokio::spawn(async move {
                let _slot = gate.acquire().await.expect("gate");
                for b in bodies {
                    let r = http
                        .post(format!("http://127.0.0.1:{port}/v1/lines/{id}/journal"))
                        .bearer_auth(&token)
                        .header("Content-Encoding", "gzip")
                        .body(b)
                        .send()
                        .await
                        .expect("ingest");
                    assert!(
                        r.status().is_success(),
                        "{}",
                        r.text().await.unwrap_or_default()
                    );
                }
            }));
        }
        for t in tasks {
            t.await.expect("line task");
        }
    });
    let ingest_s = started.elapsed().as_secs_f64();
    let stored: i64 = pg
        .sql("central", "SELECT count(*) FROM events")
        .parse()
        .expect("count");
    let gaps = pg.sql(
        "central",
        "SELECT count(*) FROM (SELECT line_id, max(seq) - min(seq) + 1 - count(*) AS g FROM events GROUP BY line_id) x WHERE g <> 0",
    );
    let heads = pg.sql(
        "central",
        &format!("SELECT count(*) FROM lines WHERE head_seq = {events}"),
    );
    let passports = pg.sql("central", "SELECT count(*) FROM passports");
    println!(
        "SUMMARY ingest {lines} lines x {events} events via 2 instances: {:.1} s = {:.0} events/s; stored {stored}, lines with a gap {gaps}, lines complete {heads}, passports {passports}",
        ingest_s,
        total / ingest_s
    );
    assert_eq!(stored, lines * events, "every event once");

    // 2. The bound: a binary COPY of the same rows into a table of the same shape.
    let copy_s = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&pg.url("central"), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute("CREATE TABLE events_copy (LIKE events INCLUDING ALL)")
            .await
            .expect("table");
        let rows: Vec<(String, Vec<Ev>)> = (0..lines).map(|i| (line_id(i), chain(&line_id(i), events))).collect();
        let started = Instant::now();
        let sink = client
            .copy_in("COPY events_copy (line_id, seq, event_id, ts, station, actor, type, unit, data, hash) FROM STDIN BINARY")
            .await
            .expect("copy");
        use tokio_postgres::types::Type;
        let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(
            sink,
            &[Type::TEXT, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT],
        );
        let mut writer = std::pin::pin!(writer);
        for (line, evs) in &rows {
            for e in evs {
                let event_id = format!("{line}-{}", e.seq);
                writer
                    .as_mut()
                    .write(&[
                        line,
                        &e.seq,
                        &event_id,
                        &"2026-12-03T08:00:00.000Z",
                        &"s1",
                        &"station:s1",
                        &"ALLOCATED",
                        &e.unit,
                        &e.data,
                        &e.hash,
                    ])
                    .await
                    .expect("row");
            }
        }
        writer.finish().await.expect("copy done");
        started.elapsed().as_secs_f64()
    });
    println!(
        "SUMMARY plain binary COPY of the same {} rows: {:.1} s = {:.0} rows/s; ingest reaches {:.0} % of it",
        lines * events,
        copy_s,
        total / copy_s,
        100.0 * copy_s / ingest_s
    );

    // 3. 1,000 block requests at once over both instances.
    let started = Instant::now();
    let grants: Vec<(u64, u64)> = rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::new();
        for n in 0..1000usize {
            let (http, gate) = (http.clone(), gate.clone());
            let port = ports[n % 2];
            let i = (n as i64) % lines;
            let (id, token) = (line_id(i), tokens[i as usize].clone());
            tasks.push(tokio::spawn(async move {
                let _slot = gate.acquire().await.expect("gate");
                let r = http
                    .post(format!("http://127.0.0.1:{port}/v1/lines/{id}/blocks"))
                    .bearer_auth(&token)
                    .body(format!("{{\"count\":{}}}", 1 + n * 97 % 5000))
                    .send()
                    .await
                    .expect("block");
                let text = r.text().await.expect("grant");
                let g: linemark::ids::Grant = serde_json::from_str(&text).expect("grant");
                (g.start, g.end())
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("block task"));
        }
        out
    });
    let blocks_s = started.elapsed().as_secs_f64();
    let mut sorted = grants.clone();
    sorted.sort();
    let overlaps = sorted.windows(2).filter(|w| w[0].1 > w[1].0).count();
    println!(
        "SUMMARY 1000 block requests (64 at a time) via 2 instances: {:.2} s = {:.0} requests/s; overlaps {overlaps}",
        blocks_s,
        1000.0 / blocks_s
    );
    assert_eq!(overlaps, 0);
    drop(instances);
}
