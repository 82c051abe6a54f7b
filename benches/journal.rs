//! Durable allocation and verification on a real SQLite file
//! (synchronous=FULL), with the disk's fsync measured in the same run.
//!
//! Targets (issue 3): one caller close to one fsync; 16 and 64 concurrent
//! callers >= 80 % of callers / fsync; `journal verify` >= 500,000 events/s.

mod common;
use common::bench_dir;

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use linemark::ids::IdCodec;
use linemark::journal::{self, AllocRequest, Journal};

fn open(name: &str) -> Journal {
    common::open_with_block(&bench_dir(name).join("journal.db"), 1000)
}

fn alloc(j: &Journal) {
    j.write_blocking(|tx| {
        tx.allocate(&AllocRequest {
            product: "PACK-48V",
            gtin: "09506000134352",
            level: "item",
            lot: Some("L2026-11"),
            station: Some("provision-1"),
            actor: "station:provision-1",
        })
    })
    .expect("allocation");
}

/// `callers` threads, each allocating and waiting for its own commit,
/// `iters` allocations in all.
fn concurrent(j: &Journal, callers: u64, iters: u64) -> Duration {
    let per = iters.div_ceil(callers);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..callers {
            s.spawn(|| {
                for _ in 0..per {
                    alloc(j);
                }
            });
        }
    });
    // Report per allocation actually done.
    start
        .elapsed()
        .mul_f64(iters as f64 / (per * callers) as f64)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("durability");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    let dir = bench_dir("fsync");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("probe"))
        .expect("probe file");
    let page = [0x5au8; 4096];
    g.bench_function("fsync: append 4 KiB + fdatasync", |b| {
        b.iter(|| {
            f.write_all(&page).expect("write");
            f.sync_data().expect("fdatasync");
        })
    });

    let j = open("one");
    g.throughput(Throughput::Elements(1));
    g.bench_function("allocate, 1 caller (durable)", |b| b.iter(|| alloc(&j)));
    drop(j);

    for callers in [16u64, 64] {
        let j = open(&format!("c{callers}"));
        g.bench_function(format!("allocate, {callers} concurrent callers"), |b| {
            b.iter_custom(|iters| concurrent(&j, callers, iters.max(callers)))
        });
        let s = j.shared();
        let commits = s.commits.load(std::sync::atomic::Ordering::Relaxed);
        let jobs = s.jobs.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "  {callers} callers: {jobs} jobs in {commits} commits = {:.1} per commit",
            jobs as f64 / commits.max(1) as f64
        );
        drop(j);
    }
    g.finish();

    // verify: build a journal of 200,000 events once, then verify it.
    let j = open("verify");
    const EVENTS: u64 = 200_000;
    concurrent(&j, 64, EVENTS - 1);
    let path = j.db_path().to_path_buf();
    drop(j);
    let conn = journal::open_read_only(&path).expect("reader");
    let codec = IdCodec::new(&common::key());
    let mut g = c.benchmark_group("verify");
    g.sample_size(10).throughput(Throughput::Elements(EVENTS));
    g.bench_function("journal verify (200k events)", |b| {
        b.iter(|| journal::verify::verify(&conn, &codec, |_, _| {}).expect("clean journal"))
    });
    // What the daemon checks at start on the same journal: the units of
    // the last 20,000 events rebuilt, and every state row against its event.
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("daemon start-up check (200k units)", |b| {
        b.iter(|| journal::derive::check_recent(&conn, &codec, 20_000).expect("consistent"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
