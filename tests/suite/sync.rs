//! Upstream sync against the fake central store (tests/helper/store.rs):
//! every fault script ends with the store holding every event exactly
//! once, in order, with a chain it verified itself; a 409 halts syncing
//! until `linemark sync --resume`; a daemon killed mid-sync resumes from the
//! acknowledged seq; block answers go through the same checks as
//! `blocks import`.

use std::time::{Duration, Instant};

use crate::helper::store::{FakeStore, Fault, TestPki, TOKEN};
use crate::helper::{
    count_events, fill, grant, journal_hashes, line_with_upstream, stderr, stdout, Line,
};

fn grant_in(line: &Line, units: u64) {
    let j = line.open();
    line.grant_into(&j, "b1", 0, 1_000_000);
    fill(&j, units);
}

fn state(line: &Line) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(line.data_dir().join("sync-state.json")).unwrap())
        .unwrap()
}

fn sync(line: &Line, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_linemark"));
    cmd.arg("sync")
        .args(args)
        .arg("--config")
        .arg(line.config_path())
        .env("LINEMARK_LOG", "debug")
        .current_dir(line.path());
    cmd.output().unwrap()
}

#[test]
fn every_fault_script_leaves_each_event_in_the_store_once_and_in_order() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "off", "");
    grant_in(&line, 12_000); // 12,001 events: three batches
    for f in [
        Fault::Status500,
        Fault::CutMidBody,
        Fault::Slow(Duration::from_millis(4500)), // stored, but answered after the time-out
        Fault::WrongAck(999_999),
        Fault::WrongAck(-3),
        Fault::Status500,
    ] {
        store.fault(f);
    }
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("synced seq 1..=12001"),
        "{}",
        stdout(&out)
    );
    assert_eq!(store.hashes(), journal_hashes(&line.db_path()));
    let st = state(&line);
    assert_eq!(st["acked_through"], 12_001);
    let s = store.state.lock().unwrap();
    assert!(s.faults.is_empty(), "every fault was used");
    assert!(
        s.batches.iter().all(|(f, l)| l - f < 5000),
        "no batch holds more than 5,000 events: {:?}",
        s.batches
    );
    assert!(
        s.received > 12_001,
        "retries re-sent batches the store de-duplicated"
    );
    drop(s);
    let err = stderr(&out);
    assert!(
        err.contains("outside the batch"),
        "wrong acked_through is reported: {err}"
    );
    assert!(!err.contains(TOKEN), "the token leaked into the log");
    // Nothing new: a second sync sends nothing.
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("nothing to sync"), "{}", stdout(&out));
}

#[test]
fn a_conflict_halts_syncing_until_resume() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "off", "");
    grant_in(&line, 100);
    store.fault(Fault::Conflict("chain mismatch at seq 1 (test)".into()));
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("chain mismatch at seq 1 (test)") && err.contains("linemark sync --resume"),
        "{err}"
    );
    assert_eq!(count_events(&line.db_path(), "SYNC_HALTED"), 1);
    let uploads = store.state.lock().unwrap().batches.len();
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(1), "still halted");
    assert!(stderr(&out).contains("halted"), "{}", stderr(&out));
    assert_eq!(
        store.state.lock().unwrap().batches.len(),
        uploads,
        "nothing is sent while halted"
    );
    let out = sync(&line, &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cleared the halt"),
        "{}",
        stderr(&out)
    );
    assert_eq!(store.hashes(), journal_hashes(&line.db_path()));
    assert_eq!(
        store.state.lock().unwrap().types.last().map(String::as_str),
        Some("SYNC_HALTED"),
        "the halt itself reaches the store"
    );
}

#[test]
fn a_wrong_token_is_refused_at_once_without_showing_it() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "off", "");
    grant_in(&line, 10);
    std::fs::write(
        line.path().join("config/keys/upstream.token"),
        "wrong-token\n",
    )
    .unwrap();
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("401") && err.contains("token"), "{err}");
    assert!(!err.contains("wrong-token"), "{err}");
    assert_eq!(store.acked(), 0);
    // No token file at all: bad input naming the key.
    std::fs::remove_file(line.path().join("config/keys/upstream.token")).unwrap();
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("upstream.token_file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_store_that_stays_down_makes_sync_give_up_and_keep_its_place() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "off", "");
    grant_in(&line, 6_000);
    // First batch accepted, then the store fails every time.
    store.fault(Fault::WrongAck(5000)); // correct number: progress
    for _ in 0..40 {
        store.fault(Fault::Status500);
    }
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("gave up after 30 failed attempts")
            && stderr(&out).contains("starts from seq 5001"),
        "{}",
        stderr(&out)
    );
    assert_eq!(state(&line)["acked_through"], 5000);
    store.state.lock().unwrap().faults.clear();
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("synced seq 5001..=6001"),
        "{}",
        stdout(&out)
    );
    assert_eq!(store.hashes(), journal_hashes(&line.db_path()));
}

#[test]
fn a_daemon_killed_mid_sync_resumes_from_the_acknowledged_seq() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "continuous", "");
    grant_in(&line, 12_000);
    // Batch 1 is acknowledged; batch 2 is stored but answered far too late,
    // and the daemon is killed while it waits.
    store.fault(Fault::WrongAck(5000));
    store.fault(Fault::Slow(Duration::from_secs(30)));
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
            .args(["run", "--config"])
            .arg(line.config_path())
            .env("LINEMARK_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    let until = Instant::now() + Duration::from_secs(30);
    while store.state.lock().unwrap().batches.len() < 2 {
        assert!(Instant::now() < until, "the daemon never sent batch 2");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(state(&line)["acked_through"], 5000);
    let before = store.state.lock().unwrap().batches.len();
    let mut child = spawn();
    let until = Instant::now() + Duration::from_secs(30);
    while store.acked() < 12_001 {
        assert!(
            Instant::now() < until,
            "the restarted daemon did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let after: Vec<_> = store.state.lock().unwrap().batches[before..].to_vec();
    assert_eq!(
        after[0].0, 5001,
        "resumed from the acknowledged seq: {after:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let hashes = journal_hashes(&line.db_path());
    assert_eq!(store.hashes(), hashes[..store.hashes().len()].to_vec());
    assert!(store.hashes().len() >= 12_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_halt_and_the_daemon_journals_it() {
    let store = FakeStore::start("P1-L03");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let station = crate::helper::station_toml(
        "final-1",
        &format!("tcp://127.0.0.1:{port}"),
        &["STATUS"],
        None,
        "optional",
    );
    let line = line_with_upstream(&store.url(), "continuous", &station);
    grant_in(&line, 10);
    store.fault(Fault::Conflict("prev_hash mismatch (test)".into()));
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let mut c =
        linemark::client::StationClient::new(crate::helper::connect_when_up(port).await, "t");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.request("STATUS", &[]).await.unwrap();
        if r.get("sync") == Some("halted") {
            break;
        }
        assert!(
            Instant::now() < until,
            "STATUS never showed the halt: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let until = Instant::now() + Duration::from_secs(10);
    while count_events(&line.db_path(), "SYNC_HALTED") < 1 {
        assert!(
            Instant::now() < until,
            "the daemon did not journal the halt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // --resume beside the running daemon: it picks up from the state file.
    let out = tokio::task::spawn_blocking({
        let cfg = line.config_path();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
                .args(["sync", "--resume", "--config"])
                .arg(cfg)
                .env("LINEMARK_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.request("STATUS", &[]).await.unwrap();
        if r.get("sync") == Some("ok") && store.acked() >= 12 {
            break;
        }
        assert!(Instant::now() < until, "sync did not resume: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_answers_are_checked_like_blocks_import() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "off", "");
    {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 5);
    }
    let mut forged = grant("b2", 1000, 1000);
    forged.signature = grant("b9", 7, 7).signature;
    let mut other_line = grant("b3", 2000, 1000);
    other_line.line_id = "P9-L99".into();
    other_line.sign(&crate::helper::issuer());
    let good = grant("b4", 3000, 1000);
    {
        let mut s = store.state.lock().unwrap();
        for g in [&forged, &other_line, &good] {
            s.block_answers
                .push_back((200, serde_json::to_vec(g).unwrap()));
        }
    }
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while d
        .journal()
        .shared()
        .ids_left
        .load(std::sync::atomic::Ordering::Acquire)
        < 1000
    {
        assert!(Instant::now() < until, "the good block never arrived");
        // The allocator keeps working from what it has meanwhile.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unit = crate::helper::alloc(d.journal()).expect("allocation still works");
    assert_eq!(unit.len(), 13);
    d.shutdown().await;
    let requests = store.state.lock().unwrap().block_requests.clone();
    assert!(
        requests.len() >= 3 && requests.iter().all(|&c| c == 1000),
        "{requests:?}"
    );
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    let blocks: Vec<String> = c
        .prepare("SELECT block_id FROM blocks ORDER BY ordinal")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        blocks,
        vec![
            crate::helper::block_uuid("b1"),
            crate::helper::block_uuid("b4")
        ],
        "refused answers imported nothing"
    );
}

fn backup(line: &Line, name: &str) -> std::path::PathBuf {
    let b = line.path().join(name);
    let out = line.cli(&["backup", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    b
}

fn restore(line: &Line, b: &std::path::Path) {
    let out = line.cli(&["restore", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The restore drill with a store: back up, run (offline), restore, run,
/// sync: the store continues from where it is, with a chain it verifies.
#[test]
fn after_a_restore_sync_resumes_where_the_store_is() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "off", "");
    grant_in(&line, 100);
    assert_eq!(sync(&line, &[]).status.code(), Some(0));
    let synced = store.acked();
    let b = backup(&line, "nightly.db");
    fill(&line.open(), 50); // the line runs offline; these events are lost
    restore(&line, &b);
    fill(&line.open(), 20);
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("synced seq {}..=", synced + 1)),
        "{}",
        stdout(&out)
    );
    assert_eq!(store.hashes(), journal_hashes(&line.db_path()));
    assert!(store
        .state
        .lock()
        .unwrap()
        .types
        .iter()
        .any(|t| t == "RESTORE_DETECTED"));
    let out = line.cli(&["journal", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A backup older than what the store acknowledged cannot continue the
/// store's chain: sync halts before sending anything, and says why.
#[test]
fn a_journal_restored_behind_the_store_halts_sync_before_sending() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "off", "");
    grant_in(&line, 100);
    let b = backup(&line, "old.db");
    fill(&line.open(), 50);
    assert_eq!(sync(&line, &[]).status.code(), Some(0));
    let uploads = store.state.lock().unwrap().batches.len();
    restore(&line, &b);
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("restored from an older copy") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        store.state.lock().unwrap().batches.len(),
        uploads,
        "nothing sent"
    );
    assert_eq!(count_events(&line.db_path(), "SYNC_HALTED"), 1);
    // --resume lets the store decide: its chain differs, so it answers 409.
    let out = sync(&line, &["--resume"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("409"), "{}", stderr(&out));
    assert_eq!(store.acked(), 151, "the store kept its own chain");
}

/// A line syncing to a TLS store, trusting its CA and presenting a client
/// certificate only when told to.
fn tls_line(store: &FakeStore, pki: &TestPki, trust_ca: bool, client_cert: bool) -> Line {
    let mut up =
        crate::helper::upstream_toml(&store.url(), "off").replace("attempts = 30", "attempts = 2");
    if trust_ca {
        up.push_str("ca_file = \"keys/store-ca.pem\"\n");
    }
    if client_cert {
        up.push_str("client_cert = \"keys/line.crt\"\nclient_key = \"keys/line.key\"\n");
    }
    let line = Line::with_config(&up);
    let keys = line.path().join("config/keys");
    std::fs::write(keys.join("upstream.token"), TOKEN).unwrap();
    std::fs::write(keys.join("store-ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(keys.join("line.crt"), &pki.client_cert_pem).unwrap();
    std::fs::write(keys.join("line.key"), &pki.client_key_pem).unwrap();
    grant_in(&line, 20);
    line
}

#[test]
fn sync_over_mutual_tls_trusts_the_configured_ca() {
    let (store, pki) = FakeStore::start_tls("P1-L03");
    let line = tls_line(&store, &pki, true, true);
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(store.hashes(), journal_hashes(&line.db_path()));
}

#[test]
fn an_unknown_store_certificate_or_a_missing_client_certificate_fails_the_sync() {
    let (store, pki) = FakeStore::start_tls("P1-L03");
    // The store's CA is not trusted: the public roots do not know it.
    let line = tls_line(&store, &pki, false, true);
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).to_lowercase().contains("certificate"),
        "{}",
        stderr(&out)
    );
    // Trusted store, but no client certificate: the store hangs up.
    let line = tls_line(&store, &pki, true, false);
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(store.acked(), 0, "nothing reached the store");
    // A CA file that is not PEM is a config problem named by its key.
    let line = tls_line(&store, &pki, true, true);
    std::fs::write(
        line.path().join("config/keys/store-ca.pem"),
        "not a certificate",
    )
    .unwrap();
    let out = sync(&line, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("upstream.ca_file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_config_proves_the_token_and_tls_files_usable_now() {
    let store = FakeStore::start("P1-L03");
    let line = line_with_upstream(&store.url(), "nightly", "");
    let out = line.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("sync nightly at 02:00 Europe/Berlin; token readable"),
        "{}",
        stdout(&out)
    );
    std::fs::remove_file(line.path().join("config/keys/upstream.token")).unwrap();
    let out = line.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("upstream.token_file"),
        "{}",
        stderr(&out)
    );
}
