//! Export of a 100,000-unit shipment (issue 9): time (criterion) and the
//! peak resident memory of the export itself.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use linemark::ids::{Grant, GrantPolicy, IdCodec, NamespaceKey};
use linemark::journal::{AllocRequest, EventType, Journal, JournalError, JournalOptions, NewEvent};

const UNITS: u64 = 100_000;

fn key() -> NamespaceKey {
    NamespaceKey::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        .expect("key")
}

/// A journal with one shipment of `UNITS` units, each with a serial and a MAC.
fn build() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/export-v2");
    let db = dir.join("journal.db");
    if db.exists() {
        return db;
    }
    std::fs::create_dir_all(&dir).expect("dir");
    let j = Journal::open(JournalOptions {
        db_path: db.clone(),
        line_id: "P1-L03".into(),
        codec: IdCodec::new(&key()),
        reserve_ahead: 100_000,
        low_water: 0,
    })
    .expect("journal");
    let issuer = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let mut g = Grant {
        grant_version: 1,
        block_id: "018f3a2e-7c4d-7000-8000-0000000be0c4".into(),
        namespace: "x".into(),
        key_id: key().key_id(),
        line_id: "P1-L03".into(),
        start: 0,
        count: 1 << 30,
        issued_at: "2026-11-20T08:00:00Z".into(),
        issuer: "central".into(),
        signature: String::new(),
    };
    g.sign(&issuer);
    let policy = GrantPolicy {
        line_id: "P1-L03".into(),
        key_id: key().key_id(),
        namespace: None,
        issuers: vec![issuer.verifying_key()],
    };
    j.import_grant_blocking(g, &policy, "bench").expect("grant");
    for chunk in 0..(UNITS / 1000) {
        j.write_blocking(move |tx| {
            for i in 0..1000u64 {
                let n = chunk * 1000 + i;
                let a = tx
                    .allocate(&AllocRequest {
                        product: "PACK-48V",
                        gtin: "09506000134352",
                        level: "item",
                        lot: Some("L2026-11"),
                        station: Some("s"),
                        actor: "station:s",
                    })
                    .map_err(|e| JournalError::Corrupt(e.to_string()))?;
                let idx = tx.index_of(&a.unit)? as i64;
                tx.append(NewEvent { kind: EventType::FinalPass, station: Some("final-1".into()), actor: "station:final-1".into(), unit: Some(a.unit.clone()), data: serde_json::json!({"step": "final", "status": "PASS", "measurements": {}}) })?;
                let ev = tx.append(NewEvent {
                    kind: EventType::Shipped,
                    station: Some("pack".into()),
                    actor: "station:pack".into(),
                    unit: Some(a.unit.clone()),
                    data: serde_json::json!({"shipment": "SH-100K"}),
                })?;
                tx.set_binding(idx, "serial", &format!("SN{n:08}"), ev.seq)?;
                tx.set_binding(
                    idx,
                    "mac",
                    &format!(
                        "02:00:00:{:02X}:{:02X}:{:02X}",
                        n >> 16 & 255,
                        n >> 8 & 255,
                        n & 255
                    ),
                    ev.seq,
                )?;
                tx.set_shipped(idx, "SH-100K", Some("Acme GmbH"), &ev)?;
            }
            Ok::<(), JournalError>(())
        })
        .expect("units");
    }
    db
}

/// Peak RSS since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn bench(c: &mut Criterion) {
    let db = build();
    let conn = linemark::journal::open_read_only(&db).expect("reader");
    let resolver = "https://id.example.com";
    for (name, json) in [("csv", false), ("json", true)] {
        // Reset the peak (Linux: "5" > clear_refs), export once, read the peak.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = peak_rss_mib();
        let t = Instant::now();
        let n = if json {
            linemark::export::json(
                &conn,
                resolver,
                "SH-100K",
                "P1-L03",
                std::io::sink(),
                |_| {},
            )
        } else {
            linemark::export::csv(&conn, resolver, "SH-100K", std::io::sink(), |_| {})
        }
        .expect("export");
        eprintln!(
            "SUMMARY export {name}: {n} units in {:.2} s; peak RSS {:.1} MiB (process before the export: {:.1} MiB)",
            t.elapsed().as_secs_f64(),
            peak_rss_mib(),
            before
        );
    }
    // EPCIS: 100,000 commissioning + 100,000 shipping events.
    let cfg_dir = db.parent().expect("dir").to_path_buf();
    std::fs::create_dir_all(cfg_dir.join("keys")).expect("keys");
    std::fs::write(
        cfg_dir.join("keys/namespace.key"),
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
    )
    .expect("key");
    let cfg = linemark::config::Config::parse(
        &format!("line_id = \"P1-L03\"\ndata_dir = \".\"\nresolver = \"{resolver}\"\ntimezone = \"Europe/Berlin\"\n[ids]\nnamespace_key_file = \"keys/namespace.key\"\nissuer_public_key = \"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c\"\n"),
        "bench",
        &cfg_dir,
    )
    .expect("config");
    let range = linemark::epcis::Range {
        from_seq: 1,
        to_seq: i64::MAX,
    };
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t = Instant::now();
    let n = linemark::epcis::export(&conn, &cfg, range, std::io::sink(), |_| {}).expect("epcis");
    eprintln!(
        "SUMMARY export epcis: {n} events for {UNITS} units in {:.2} s; peak RSS {:.1} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let mut g = c.benchmark_group("export");
    g.sample_size(10);
    g.bench_function("EPCIS export of 100,000 units (200,000 events)", |b| {
        b.iter(|| {
            linemark::epcis::export(&conn, &cfg, range, std::io::sink(), |_| {}).expect("epcis")
        })
    });
    g.bench_function("shipment of 100,000 units to CSV", |b| {
        b.iter(|| {
            linemark::export::csv(&conn, resolver, "SH-100K", std::io::sink(), |_| {})
                .expect("export")
        })
    });
    g.bench_function("shipment of 100,000 units to JSON", |b| {
        b.iter(|| {
            linemark::export::json(
                &conn,
                resolver,
                "SH-100K",
                "P1-L03",
                std::io::sink(),
                |_| {},
            )
            .expect("export")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
