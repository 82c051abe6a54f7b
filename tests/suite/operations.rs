//! Running as a service: systemd units, sd_notify and the watchdog, the
//! restore drill, and fault log lines.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::helper::{
    alloc, connect, count_events, ok, printing_station, station_toml, stderr, wait_for, Line,
};
use linemark::client::StationClient;
use linemark::daemon::notify::Notifier;
use linemark::daemon::{Daemon, Supervision};

#[test]
fn the_systemd_units_verify() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed, the units were not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut files = Vec::new();
    for name in [
        "linemark.service",
        "linemark-backup.service",
        "linemark-backup.timer",
        "linemark-sync.service",
        "linemark-sync.timer",
        "linemark-central.service",
    ] {
        let text = std::fs::read_to_string(format!("{root}/systemd/{name}")).unwrap();
        // Point ExecStart at the binary under test instead of /usr/bin.
        let text = text
            .replace(
                "/usr/bin/linemark-central",
                env!("CARGO_BIN_EXE_linemark-central"),
            )
            .replace("/usr/bin/linemark", env!("CARGO_BIN_EXE_linemark"));
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        files.push(p);
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

fn recv(sock: &std::os::unix::net::UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 1024];
    sock.recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_comes_once_it_can_serve_and_watchdog_pings_stop_while_the_writer_is_stuck() {
    let line = Line::with_config(&station_toml(
        "t",
        "tcp://127.0.0.1:0",
        &["PING", "ALLOC"],
        None,
        "optional",
    ));
    {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 100);
    }
    let sock_path = line.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let d = Daemon::start_supervised(
        line.config(),
        Supervision {
            notifier: Notifier::to_path(&sock_path),
            watchdog: Some(Duration::from_millis(100)),
        },
    )
    .await
    .unwrap();
    let ready = recv(&sock).expect("a message");
    assert!(
        ready.starts_with("READY=1\nSTATUS=ids_left=100 queued=0 sync=off"),
        "{ready:?}"
    );
    // Ready means serving.
    let mut c = connect(&d, "t", "t").await;
    ok(&mut c, "PING", &[]).await;
    let pings_in = |ms: u64| {
        let until = Instant::now() + Duration::from_millis(ms);
        let mut n = 0;
        while Instant::now() < until {
            if recv(&sock).is_some_and(|m| m.starts_with("WATCHDOG=1")) {
                n += 1;
            }
        }
        n
    };
    assert!(pings_in(600) >= 3, "a healthy daemon pings its watchdog");
    // Stall the writer for 2 s: the probe cannot get through, pings stop.
    let j = d.journal().clone();
    let stall = tokio::task::spawn_blocking(move || {
        j.write_blocking(|_tx| {
            std::thread::sleep(Duration::from_secs(2));
            Ok::<(), linemark::journal::JournalError>(())
        })
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    while recv(&sock).is_some() {} // drop pings sent before the stall
    assert_eq!(
        pings_in(1200),
        0,
        "pings went on while the writer was stuck"
    );
    stall.await.unwrap().unwrap();
    assert!(pings_in(600) >= 2, "pings resume once the writer answers");
    d.shutdown().await;
    let mut last = String::new();
    while let Some(m) = recv(&sock) {
        last = m;
    }
    assert_eq!(last, "STOPPING=1");
}

#[test]
fn the_restore_drill_reissues_nothing_and_the_chain_verifies() {
    let line = Line::new();
    let mut all = HashSet::new();
    let j = line.open();
    line.grant_into(&j, "b1", 0, 100_000);
    for _ in 0..10 {
        assert!(all.insert(alloc(&j).unwrap()));
    }
    let backup = line.path().join("nightly.db");
    assert_eq!(
        line.cli(&["backup", backup.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    for _ in 0..10 {
        assert!(all.insert(alloc(&j).unwrap()));
    }
    // Refused while linemark holds the data dir.
    let out = line.cli(&["restore", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("restore needs linemark stopped"),
        "{}",
        stderr(&out)
    );
    drop(j);
    // A damaged backup is refused before anything is touched.
    let bad = line.path().join("bad.db");
    std::fs::write(&bad, b"not a database").unwrap();
    assert_eq!(
        line.cli(&["restore", bad.to_str().unwrap()]).status.code(),
        Some(2)
    );
    let out = line.cli(&["restore", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kept = std::fs::read_dir(line.data_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("journal.db.before-restore-")
        })
        .count();
    assert!(kept >= 1, "the replaced journal is kept");
    let j = line.open();
    for _ in 0..10 {
        let id = alloc(&j).unwrap();
        assert!(
            all.insert(id.clone()),
            "{id} issued twice across the restore"
        );
    }
    drop(j);
    assert!(count_events(&line.db_path(), "RESTORE_DETECTED") >= 1);
    let out = line.cli(&["journal", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_log_lines_name_the_station_or_printer_and_the_code() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap(); // closed right away
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = printing_station(
        &format!("tcp://127.0.0.1:{port}"),
        &["ALLOC", "RESULT", "FINAL"],
        &format!("zpl+tcp://{dead}"),
    );
    let line = Line::with_config(&extra);
    {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 100);
    }
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
        .args(["run", "--log-format", "json", "--config"])
        .arg(line.config_path())
        .env("LINEMARK_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sock = crate::helper::connect_when_up(port).await;
    let mut c = StationClient::new(sock, "t");
    c.send_frame(b"FLY away\r\n").await.unwrap();
    let u = c
        .request("ALLOC", &[("product", "PACK-48V")])
        .await
        .unwrap()
        .get("unit")
        .unwrap()
        .to_string();
    for step in ["provision", "functional"] {
        c.request(
            "RESULT",
            &[("unit", &u), ("step", step), ("status", "PASS")],
        )
        .await
        .unwrap();
    }
    c.request("FINAL", &[("unit", &u), ("status", "PASS")])
        .await
        .unwrap();
    // Read the log as it is written, until the printer's fault is in it.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = daemon.stderr.take().unwrap();
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stderr).lines() {
                let Ok(l) = l else { break };
                let mut log = log.lock().unwrap();
                log.push_str(&l);
                log.push('\n');
            }
        })
    };
    wait_for("the printer's fault in the log", || {
        log.lock().unwrap().contains("cannot connect")
    })
    .await;
    // SAFETY: kill(2) with a pid we spawned.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let out = tokio::task::spawn_blocking(move || {
        let _ = daemon.wait();
        reader.join().unwrap();
        let out = log.lock().unwrap().clone();
        out
    })
    .await
    .unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "JSON log lines expected:\n{out}");
    let station_fault = lines
        .iter()
        .any(|l| l["fields"]["station"] == "t" && l["fields"]["code"] == "E_BAD_FRAME");
    assert!(
        station_fault,
        "no log line names the station and E_BAD_FRAME:\n{out}"
    );
    let printer_fault = lines.iter().any(|l| {
        l["level"] == "WARN"
            && l["fields"]["printer"] == "p1"
            && l["fields"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("cannot connect"))
    });
    assert!(
        printer_fault,
        "no warning names the printer and its fault:\n{out}"
    );
}
