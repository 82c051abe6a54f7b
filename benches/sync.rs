//! A week offline for a busy line: 1,000,000 backlog events synced to the
//! loopback fake store by the real `linemark sync` binary, end to end
//! (read, batch, gzip, HTTP, the store's own chain check, acknowledgement,
//! state file fsync). Reports wall time and the sync process's peak RSS,
//! for a 100,000-event backlog and the full 1,000,000, to show memory stays
//! flat. A bench binary rather than criterion: one run takes seconds.
//!
//! `cargo bench --bench sync`

mod common;

#[path = "../tests/helper/store.rs"]
#[allow(dead_code)]
mod store;

use std::path::{Path, PathBuf};
use std::time::Instant;

use linemark::journal::AllocError;

const EVENTS: u64 = 1_000_000;

fn build(dir: &Path) -> PathBuf {
    let db = dir.join("var/journal.db");
    if db.exists() {
        return db;
    }
    std::fs::create_dir_all(dir.join("var")).expect("dir");
    let j = common::open_with_block(&db, 100_000);
    eprintln!("building a {EVENTS}-event journal (once, kept in target/bench-data)");
    let mut left = EVENTS - 1;
    while left > 0 {
        let n = left.min(10_000);
        left -= n;
        j.write_blocking(move |tx| {
            for _ in 0..n {
                tx.allocate(&common::pack())?;
            }
            Ok::<(), AllocError>(())
        })
        .expect("allocations");
    }
    drop(j);
    db
}

fn config(dir: &Path, url: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("config/keys")).expect("dir");
    std::fs::write(dir.join("config/keys/upstream.token"), store::TOKEN).expect("token");
    common::write_config(
        dir,
        &format!(
            "\n[upstream]\nurl = \"{url}\"\ntoken_file = \"keys/upstream.token\"\nmode = \"off\"\n"
        ),
    )
}

/// Runs `linemark sync`; answers (seconds, peak RSS in MiB, CPU seconds). The peak is
/// the child's own `VmHWM`, sampled while it runs (`ru_maxrss` from wait4
/// would include this bench process's memory, inherited at exec).
fn run_sync(config: &Path) -> (f64, f64, f64) {
    let t = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
        .args(["sync", "--config"])
        .arg(config)
        .env("LINEMARK_LOG", "warn")
        .spawn()
        .expect("linemark sync");
    let status_file = format!("/proc/{}/status", child.id());
    let stat_file = format!("/proc/{}/stat", child.id());
    let mut peak_kib = 0u64;
    let mut cpu_ticks = 0u64;
    let status = loop {
        if let Ok(stat) = std::fs::read_to_string(&stat_file) {
            // utime and stime: fields 14 and 15, counted after the ")" of comm.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.len() > 13 {
                let t = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
                cpu_ticks = cpu_ticks.max(t);
            }
        }
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(status.success(), "linemark sync failed ({status})");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (
        t.elapsed().as_secs_f64(),
        peak_kib as f64 / 1024.0,
        cpu_ticks as f64 / hz,
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/sync-1m");
    let db = build(&dir);
    let state = dir.join("var/sync-state.json");
    for backlog in [100_000i64, EVENTS as i64] {
        let store = store::FakeStore::start("P1-L03");
        let cfg = config(&dir, &store.url());
        let total = EVENTS as i64;
        let start = total - backlog;
        // Pretend the store already has everything before the backlog.
        {
            let c = rusqlite::Connection::open(&db).expect("db");
            let mut s = c
                .prepare("SELECT hash FROM events WHERE seq <= ?1 ORDER BY seq")
                .expect("sql");
            let hashes: Vec<String> = s
                .query_map([start], |r| r.get(0))
                .expect("sql")
                .collect::<Result<_, _>>()
                .expect("rows");
            let last = hashes.last().cloned();
            store.state.lock().expect("store").hashes = hashes;
            std::fs::write(
                &state,
                serde_json::json!({"acked_through": start, "acked_hash": last}).to_string(),
            )
            .expect("state");
        }
        let (secs, rss, cpu) = run_sync(&cfg);
        assert_eq!(store.acked(), total, "the store has every event");
        println!(
            "sync/backlog {backlog:>9} events: {secs:6.2} s end to end ({:.0} events/s); linemark sync: {cpu:.2} s CPU, peak RSS {rss:.1} MiB",
            backlog as f64 / secs
        );
    }
}
