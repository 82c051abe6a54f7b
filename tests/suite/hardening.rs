//! The line keeps working whatever happens on the web port or on a
//! station's sockets: real processes, real sockets, a real file limit.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helper::{free_port, grant, ready_unit, spawn_daemon, station_toml, wait_for, Line};
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
    let mut extra = station_toml(
        "t",
        &format!("tcp://127.0.0.1:{station_port}"),
        &["ALLOC", "RESULT", "FINAL"],
        None,
        "optional",
    );
    extra += "printer = \"p1\"\n";
    extra += &format!(
        "\n[[printer]]\nname = \"p1\"\nurl = \"dir://{}\"\n",
        labels.path().display()
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
    line.open()
        .import_grant_blocking(
            grant("b1", 0, 1000),
            &line.config().grant_policy().unwrap(),
            "t",
        )
        .unwrap();
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
    let a = live.request("PING", &[]).await.unwrap();
    assert!(a.is_ok(), "{a:?}");
    // The oldest silent one gave way; the others are still open.
    assert!(closed_within(&mut dead[0], Duration::from_secs(5)).await);
    for s in &mut dead[1..] {
        assert!(!closed_within(s, Duration::from_millis(200)).await);
    }
    // Again: the next oldest gives way, and the live one keeps working.
    let mut again = StationClient::new(tokio::net::TcpStream::connect(addr).await.unwrap(), "plc2");
    assert!(again.request("PING", &[]).await.unwrap().is_ok());
    assert!(closed_within(&mut dead[1], Duration::from_secs(5)).await);
    assert!(live.request("PING", &[]).await.unwrap().is_ok());
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
        assert!(talking.request("PING", &[]).await.unwrap().is_ok());
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
        j.import_grant_blocking(
            grant("b1", 0, 100),
            &line.config().grant_policy().unwrap(),
            "t",
        )
        .unwrap();
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
