//! Shift report for a shift of 100,000 units inside a 10,000,000-event
//! journal (issue 7). The generator below writes the synthetic journal
//! once (kept in target/bench-data/report-10m): 1.67 million units, each
//! with ALLOCATED, two TEST_RESULTs, FINAL_PASS/FAIL, LABEL_QUEUED and
//! LABEL_PRINTED, 100,000 units per 8-hour shift around the clock; 2 % fail
//! a step and are retested, 0.5 % are scrapped, 0.3 % reprinted.
//!
//! `cargo bench --bench report`

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use linemark::config::Config;
use linemark::journal::{AllocError, EventType, NewEvent};
use linemark::report::{self, render};
use serde_json::json;

const EVENTS: u64 = 10_000_000;
const UNITS_PER_SHIFT: u64 = 100_000;
/// The first shift (A, 06:00 Berlin) of the synthetic journal.
const START: &str = "2026-11-01T05:00:00Z";

fn config(dir: &Path) -> Config {
    let shifts = r#"
[[shift]]
name = "A"
start = "06:00"
end = "14:00"

[[shift]]
name = "B"
start = "14:00"
end = "22:00"

[[shift]]
name = "C"
start = "22:00"
end = "06:00"
"#;
    Config::load(&common::write_config(dir, shifts)).expect("config")
}

/// Writes the synthetic journal unless it exists.
fn generate(dir: &Path) -> PathBuf {
    let db = dir.join("var/journal.db");
    if db.exists() {
        return db;
    }
    std::fs::create_dir_all(dir.join("var")).expect("dir");
    let j = common::open_with_block(&db, 1_000_000);
    let start: jiff::Timestamp = START.parse().expect("ts");
    // 8 hours per 100,000 units.
    let step_ms = 8 * 3600 * 1000 / UNITS_PER_SHIFT as i64;
    let t0 = Instant::now();
    let mut n: u64 = 0;
    let mut events: u64 = 1;
    while events < EVENTS {
        let first = n;
        let (written, units) = j
            .write_blocking(move |tx| {
                let mut written = 0u64;
                let mut i = first;
                while written < 20_000 {
                    let at = |ms: i64| {
                        start
                            .checked_add(jiff::SignedDuration::from_millis(i as i64 * step_ms + ms))
                            .expect("time")
                    };
                    tx.set_time(at(0));
                    let a = tx.allocate(&common::pack())?;
                    written += 1;
                    let mut ev = |ms: i64, kind: EventType, station: &str, data: serde_json::Value| {
                        tx.set_time(at(ms));
                        tx.append(NewEvent {
                            kind,
                            station: Some(station.into()),
                            actor: format!("station:{station}"),
                            unit: Some(a.unit.clone()),
                            data,
                        })
                        .map(|_| ())
                    };
                    ev(60_000, EventType::TestResult, "provision-1", json!({"step": "provision", "status": "PASS", "measurements": {}}))?;
                    let fail = i % 50 == 7;
                    ev(120_000, EventType::TestResult, &format!("func-{}", i % 4 + 1), json!({"step": "functional", "status": if fail { "FAIL" } else { "PASS" }, "measurements": {"v": format!("{:.2}", 47.0 + (i % 100) as f64 / 100.0), "ir_mohm": "12.5"}}))?;
                    written += 2;
                    if i % 200 == 3 {
                        ev(150_000, EventType::Scrapped, "rework", json!({"reason": "cell imbalance", "previous_state": "allocated"}))?;
                        written += 1;
                    } else {
                        ev(180_000, if fail { EventType::FinalFail } else { EventType::FinalPass }, "final-1", json!({"step": "final", "status": if fail { "FAIL" } else { "PASS" }, "measurements": {}}))?;
                        written += 1;
                        if !fail {
                            ev(180_001, EventType::LabelQueued, "final-1", json!({"job": i, "printer": "line-end", "template": "pack-50x30"}))?;
                            ev(181_000, EventType::LabelPrinted, "final-1", json!({"job": i, "printer": "line-end", "kind": "final", "after_restart": false}))?;
                            written += 2;
                            if i % 333 == 5 {
                                ev(240_000, EventType::LabelReprinted, "final-1", json!({"job": i, "printer": "line-end", "template": "pack-50x30", "reason": "smudged"}))?;
                                written += 1;
                            }
                        }
                    }
                    i += 1;
                }
                Ok::<(u64, u64), AllocError>((written, i - first))
            })
            .expect("generate");
        n += units;
        events += written;
        if n % 200_000 < units {
            eprintln!(
                "  generated {events} events ({n} units) in {:.0} s",
                t0.elapsed().as_secs_f64()
            );
        }
    }
    drop(j);
    eprintln!(
        "synthetic journal: {events} events, {n} units, {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    db
}

fn bench(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/report-10m");
    let db = generate(&dir);
    let cfg = config(&dir);
    let conn = linemark::journal::open_read_only(&db).expect("db");
    let total: i64 = conn
        .query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0))
        .expect("count");
    // Shift B of 2026-11-03: the 8th shift, inside the journal.
    let w = report::resolve_window(
        &cfg,
        Some("2026-11-03".parse().expect("date")),
        Some("B"),
        jiff::Timestamp::now(),
    )
    .expect("window");
    let r = report::for_config(&cfg, &conn, &w).expect("report");
    eprintln!(
        "journal: {total} events; shift B 2026-11-03: {} allocated, {} final-passed, {} failed, {} scrapped, {} reprints, {} unit rows",
        r.allocated, r.final_passed, r.failed_units, r.scrapped, r.reprints.len(), r.units.len()
    );
    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    g.bench_function("shift_100k_units_in_10m_events/build", |b| {
        b.iter(|| report::for_config(&cfg, &conn, &w).expect("report"))
    });
    g.bench_function("shift_100k_units_in_10m_events/build+csv", |b| {
        b.iter(|| render::csv(&report::for_config(&cfg, &conn, &w).expect("report")).expect("csv"))
    });
    g.bench_function("shift_100k_units_in_10m_events/build+html", |b| {
        b.iter(|| render::html(&report::for_config(&cfg, &conn, &w).expect("report"), None))
    });
    g.bench_function("shift_100k_units_in_10m_events/build+pdf", |b| {
        b.iter(|| render::pdf(&report::for_config(&cfg, &conn, &w).expect("report")).expect("pdf"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
