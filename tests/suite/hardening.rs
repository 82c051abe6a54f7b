//! The line keeps working whatever happens on the web port or on a
//! station's sockets: real processes, real sockets, a real file limit.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helper::{
    free_port, ok, printing_station, ready_unit, spawn_daemon, station_toml, wait_for, Line,
};
use linemark::client::StationClient;

/// Reads until EOF or an error; `true` if the peer closed within `within`.
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. a 408 before the close
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_web_connections_do_not_stop_production() {
    let labels = tempfile::tempdir().unwrap();
    let (station_port, web_port) = (free_port(), free_port());
    let extra = printing_station(
        &format!("tcp://127.0.0.1:{station_port}"),
        &["ALLOC", "RESULT", "FINAL"],
        &format!("dir://{}", labels.path().display()),
    );
    let line = Line::with_config(&extra);
    line.write_config(&format!(
        "{}{extra}",
        crate::helper::BASE_CONFIG.replace(
            "listen = \"127.0.0.1:0\"\n",
            &format!(
                "listen = \"127.0.0.1:{web_port}\"\nheader_timeout_s = 2\nidle_timeout_s = 3\n"
            )
        )
    ));
    line.grant_block("b1", 0, 1000);
    // The file limit systemd gives a service by default.
    let mut daemon = spawn_daemon(&line, 1024);
    let first = crate::helper::connect_when_up(station_port).await;

    // 1,100 idle connections to the web port, half with half a header.
    let mut idle = Vec::new();
    for i in 0..1100 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", web_port))
            .await
            .expect("the web port takes connections");
        if i % 2 == 0 {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
        }
        idle.push(s);
    }

    // Production goes on: the open station, a new station connection,
    // and a final pass whose label prints.
    let mut c = StationClient::new(first, "t");
    let u = ready_unit(&mut c).await;
    let mut c2 = StationClient::new(
        tokio::net::TcpStream::connect(("127.0.0.1", station_port))
            .await
            .unwrap(),
        "t2",
    );
    let f = c2
        .request("FINAL", &[("unit", &u), ("status", "PASS")])
        .await
        .unwrap();
    assert!(
        f.is_ok(),
        "FINAL PASS while the web port is saturated: {f:?}"
    );
    let png = labels.path().join(format!("{u}-1.png"));
    wait_for("the label to print", || png.exists()).await;

    // The web side lets go of every idle connection by itself ...
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(10)).await,
            "web connection {i} was still open"
        );
    }
    // ... and serves again.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", web_port))
        .await
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait().unwrap();
    let log = std::fs::read_to_string(line.path().join("daemon.log")).unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(log.contains("maximum of open connections"), "{log}");
}

fn tcp_line(idle_timeout_s: u64) -> Line {
    let mut extra = station_toml(
        "t",
        "tcp://127.0.0.1:0",
        &["PING", "ALLOC"],
        None,
        "optional",
    );
    extra += &format!("idle_timeout_s = {idle_timeout_s}\n");
    Line::with_config(&extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_half_open_connections_give_way_to_the_live_station() {
    let line = tcp_line(0);
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let addr = d.tcp_addr("t").unwrap();
    // Four sockets a PLC left behind when it lost power: open, silent.
    let mut dead = Vec::new();
    for _ in 0..4 {
        dead.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The PLC is back: its new connection is served, not closed at once.
    let mut live = StationClient::new(tokio::net::TcpStream::connect(addr).await.unwrap(), "plc");
    ok(&mut live, "PING", &[]).await;
    // The oldest silent one gave way; the others are still open.
    assert!(closed_within(&mut dead[0], Duration::from_secs(5)).await);
    for s in &mut dead[1..] {
        assert!(!closed_within(s, Duration::from_millis(200)).await);
    }
    // Again: the next oldest gives way, and the live one keeps working.
    let mut again = StationClient::new(tokio::net::TcpStream::connect(addr).await.unwrap(), "plc2");
    ok(&mut again, "PING", &[]).await;
    assert!(closed_within(&mut dead[1], Duration::from_secs(5)).await);
    ok(&mut live, "PING", &[]).await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_station_connection_is_closed_after_its_idle_timeout() {
    let line = tcp_line(1);
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let addr = d.tcp_addr("t").unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut talking = StationClient::new(tokio::net::TcpStream::connect(addr).await.unwrap(), "t");
    let started = Instant::now();
    // A station that speaks every 400 ms stays connected past the timeout.
    while started.elapsed() < Duration::from_millis(2500) {
        ok(&mut talking, "PING", &[]).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(
        closed_within(&mut silent, Duration::from_millis(100)).await,
        "the silent one was closed"
    );
    d.shutdown().await;
}

#[test]
fn evidence_is_read_from_a_read_only_file_system() {
    let Some(media) =
        crate::helper::TmpMount::new("evidence_is_read_from_a_read_only_file_system", "64m")
    else {
        return;
    };
    let line = Line::new();
    let unit = {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 100);
        let u = crate::helper::alloc(&j).unwrap();
        crate::helper::alloc(&j).unwrap();
        u
    };
    // The auditor's copy: the line's folder on write-protected media.
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", line.path().display()))
        .arg(media.path())
        .status()
        .unwrap();
    assert!(ok.success());
    media.set_read_only(true);
    let config = media.path().join("config/linemark.toml");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out_dir = tempfile::tempdir().unwrap();
    let epcis = out_dir.path().join("events.jsonld");
    for args in [
        vec!["journal", "verify"],
        vec!["unit", "show", &unit],
        vec!["report", "shift", "--format", "csv"],
        vec!["export", "epcis", "--out", epcis.to_str().unwrap()],
        vec!["blocks", "list"],
    ] {
        let out = cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} on read-only media: {err}");
        assert!(!err.contains("unable to open"), "{args:?}: {err}");
    }
    assert!(String::from_utf8_lossy(&cli(&["unit", "show", &unit]).stdout).contains(&unit));
}

/// Bytes in the files directly inside `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// `clients` station connections allocating (retrying on errors) until
/// `stop`; every unit acknowledged OK is collected.
fn allocate_until(
    addr: std::net::SocketAddr,
    clients: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    storage_errors: std::sync::Arc<std::sync::atomic::AtomicU64>,
    answered: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    use std::sync::atomic::Ordering;
    (0..clients)
        .map(|i| {
            let (stop, errors, answered) = (stop.clone(), storage_errors.clone(), answered.clone());
            tokio::spawn(async move {
                let mut c = StationClient::new(
                    tokio::net::TcpStream::connect(addr).await.unwrap(),
                    &format!("c{i}"),
                );
                let mut acked = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match c.request("ALLOC", &[("product", "PACK-48V")]).await {
                        Ok(r) if r.is_ok() => {
                            acked.push(r.get("unit").unwrap().to_string());
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(linemark::protocol::Response::Err {
                            code: linemark::protocol::ErrorCode::Storage,
                            ..
                        }) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("unexpected answer: {other:?}"),
                    }
                }
                acked
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_continuous_load() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let line = tcp_line(0);
    line.grant_block("b1", 0, 10_000_000);
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let errors = std::sync::Arc::new(AtomicU64::new(0));
    let answered = std::sync::Arc::new(AtomicU64::new(0));
    let load = allocate_until(
        d.tcp_addr("t").unwrap(),
        4,
        stop.clone(),
        errors.clone(),
        answered,
    );
    let mut biggest_wal = 0u64;
    let wal = line.data_dir().join("journal.db-wal");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        biggest_wal = biggest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    let data_dir = dir_size(&line.data_dir());
    stop.store(true, Ordering::Relaxed);
    let mut units = 0;
    for l in load {
        units += l.await.unwrap().len();
    }
    let backup = line.path().join("backup.db");
    let out = line.cli(&["backup", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", crate::helper::stderr(&out));
    let backup_size = std::fs::metadata(&backup).unwrap().len();
    d.shutdown().await;
    eprintln!(
        "{units} units in 15 s: data dir {} KiB, backup {} KiB, biggest WAL {} KiB",
        data_dir >> 10,
        backup_size >> 10,
        biggest_wal >> 10
    );
    assert!(units > 1000, "the load ran ({units} units)");
    assert_eq!(errors.load(Ordering::Relaxed), 0);
    // The WAL is truncated past 8 MiB; allow what one 250 ms tick adds.
    assert!(biggest_wal < 16 << 20, "WAL reached {biggest_wal} bytes");
    // The journal, at most the WAL limit's worth of WAL, and the 16 MiB
    // disk reserve.
    assert!(
        data_dir <= 3 * backup_size + (16 << 20),
        "data dir {data_dir} bytes for a {backup_size}-byte backup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_e_storage_and_serves_again_once_space_is_freed() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let Some(disk) = crate::helper::TmpMount::new(
        "a_full_disk_answers_e_storage_and_serves_again_once_space_is_freed",
        "64m",
    ) else {
        return;
    };
    let mut extra = station_toml(
        "t",
        "tcp://127.0.0.1:0",
        &["ALLOC", "STATUS"],
        None,
        "optional",
    );
    extra += "";
    let line = Line::with_config(&extra);
    let text = std::fs::read_to_string(line.config_path())
        .unwrap()
        .replace(
            "data_dir = \"../var\"",
            &format!("data_dir = \"{}\"", disk.path().display()),
        );
    line.write_config(&text);
    line.grant_block("b1", 0, 10_000_000);
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let addr = d.tcp_addr("t").unwrap();
    let web = d.web_addr().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let errors = std::sync::Arc::new(AtomicU64::new(0));
    let answered = std::sync::Arc::new(AtomicU64::new(0));
    let load = allocate_until(addr, 2, stop.clone(), errors.clone(), answered.clone());
    wait_for("the stations to be allocating", || {
        answered.load(Ordering::Relaxed) >= 50
    })
    .await;

    // Fill the disk.
    let filler = disk.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![7u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // Stations hear E_STORAGE (the reserve buys a little time first).
    let deadline = Instant::now() + Duration::from_secs(30);
    while errors.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "no E_STORAGE on a full disk");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let get = |path: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(web).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut a = String::new();
        s.read_to_string(&mut a).await.unwrap();
        a
    };
    let health = get("/healthz").await;
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(
        health.contains("disk is full") || health.contains("No space"),
        "{health}"
    );
    let metrics = get("/metrics").await;
    assert!(metrics.contains("linemark_storage_ok 0"), "{metrics}");
    let mut probe =
        StationClient::new(tokio::net::TcpStream::connect(addr).await.unwrap(), "probe");
    let status = probe.request("STATUS", &[]).await.unwrap();
    assert_eq!(status.get("storage"), Some("error"), "{status:?}");

    // Space comes back: the line serves again by itself, under the same load.
    std::fs::remove_file(&filler).unwrap();
    let errors_then = errors.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = get("/healthz").await;
        if h.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still unhealthy after space was freed: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = probe.request("STATUS", &[]).await.unwrap();
    assert_eq!(status.get("storage"), Some("ok"), "{status:?}");
    let before = answered.load(Ordering::Relaxed);
    wait_for("the load to be served again", || {
        answered.load(Ordering::Relaxed) >= before + 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for l in load {
        acked.extend(l.await.unwrap());
    }
    d.shutdown().await;
    eprintln!(
        "{} units acknowledged, {} E_STORAGE answers ({errors_then} before space was freed)",
        acked.len(),
        errors.load(Ordering::Relaxed)
    );
    // Every acknowledged unit is in the journal, and the journal verifies.
    let stored: std::collections::HashSet<String> =
        crate::helper::units_in(&disk.path().join("journal.db"))
            .into_iter()
            .collect();
    assert!(
        acked.iter().all(|u| stored.contains(u)),
        "an acknowledged unit is missing"
    );
    let out = line.cli(&["journal", "verify"]);
    assert!(out.status.success(), "{}", crate::helper::stderr(&out));
}
