//! Labels end to end: printed only after a durable FINAL PASS, in order,
//! through faults of a fake Zebra printer, to a folder, reprinted and
//! verified.

use std::time::{Duration, Instant};

use crate::helper::{
    connect, count_events, ok, printing_station, ready_unit, unit_in_zpl, wait_for, FakeZebra,
    Line, ZebraMode,
};
use linemark::client::StationClient;
use linemark::daemon::Daemon;
use linemark::protocol::{ErrorCode, Response};

const VERBS: &[&str] = &[
    "ALLOC", "RESULT", "FINAL", "REPRINT", "VERIFY", "STATUS", "SCRAP",
];

fn line_with_printer(url: &str) -> Line {
    let line = Line::with_config(&printing_station("tcp://127.0.0.1:0", VERBS, url));
    let j = line.open();
    line.grant_into(&j, "b1", 1048576, 10_000);
    line
}

async fn client(d: &Daemon) -> StationClient<tokio::net::TcpStream> {
    connect(d, "t", "t").await
}

fn code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Err { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_label_without_a_durable_final_pass() {
    let out = tempfile::tempdir().unwrap();
    let line = line_with_printer(&format!("dir://{}", out.path().display()));
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = client(&d).await;
    let u = ready_unit(&mut c).await;
    // FINAL FAIL and REPRINT of an unpassed unit print nothing.
    ok(&mut c, "FINAL", &[("unit", &u), ("status", "FAIL")]).await;
    let r = c
        .request("REPRINT", &[("unit", &u), ("reason", "smudged")])
        .await
        .unwrap();
    assert_eq!(code(&r), Some(ErrorCode::Route));
    let other = c
        .request("ALLOC", &[("product", "PACK-48V")])
        .await
        .unwrap()
        .get("unit")
        .unwrap()
        .to_string();
    let r = c
        .request("FINAL", &[("unit", &other), ("status", "PASS")])
        .await
        .unwrap();
    assert_eq!(code(&r), Some(ErrorCode::Route), "routing gate: no label");
    // Nothing was queued by the refusals: the pass below gets job 1, and
    // the folder then holds that job's three files and nothing else.
    // The pass queues exactly one label, written as PNG, PDF and ZPL.
    let f = c
        .request("FINAL", &[("unit", &u), ("status", "PASS")])
        .await
        .unwrap();
    assert_eq!(f.get("label"), Some("1"));
    let png = out.path().join(format!("{u}-1.png"));
    wait_for("the label files", || {
        png.exists() && out.path().join(format!("{u}-1.zpl")).exists()
    })
    .await;
    assert!(out.path().join(format!("{u}-1.pdf")).exists());
    let mut files: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["pdf", "png", "zpl"].map(|x| format!("{u}-1.{x}")),
        "only the passed unit's label was printed"
    );
    // Reprint keeps the identity and needs a reason.
    let r = c.request("REPRINT", &[("unit", &u)]).await.unwrap();
    assert_eq!(code(&r), Some(ErrorCode::BadValue));
    let r = c
        .request("REPRINT", &[("unit", &u), ("reason", "label torn")])
        .await
        .unwrap();
    assert_eq!(r.get("label"), Some("2"));
    wait_for("the reprint", || {
        out.path().join(format!("{u}-2.png")).exists()
    })
    .await;
    d.shutdown().await;
    let db = line.db_path();
    assert_eq!(count_events(&db, "LABEL_QUEUED"), 1);
    assert_eq!(count_events(&db, "LABEL_REPRINTED"), 1);
    assert_eq!(count_events(&db, "LABEL_PRINTED"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_compares_the_scan_with_the_unit_and_journals_both_outcomes() {
    let out = tempfile::tempdir().unwrap();
    let line = line_with_printer(&format!("dir://{}", out.path().display()));
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = client(&d).await;
    let u = ready_unit(&mut c).await;
    c.request("FINAL", &[("unit", &u), ("status", "PASS")])
        .await
        .unwrap();
    let uri = format!("https://id.example.com/01/09506000134352/10/L1/21/{u}");
    for scan in [
        uri.clone(),
        format!("]Q1{uri}"),
        format!("(01)09506000134352(10)L1(21){u}"),
        // A raw element string cannot carry its GS separator in a frame
        // (printable ASCII only): stations send DataMatrix scans bracketed.
        format!("]d2(01)09506000134352(10)L1(21){u}"),
        format!("(01) 09506000134352 (10) L1 (21) {u}"),
    ] {
        let r = c
            .request("VERIFY", &[("unit", &u), ("scan", &scan)])
            .await
            .unwrap();
        assert!(r.is_ok(), "{scan:?}: {r:?}");
    }
    let wrong = c
        .request(
            "VERIFY",
            &[("unit", &u), ("scan", &uri.replace("/10/L1/", "/10/L2/"))],
        )
        .await
        .unwrap();
    assert_eq!(code(&wrong), Some(ErrorCode::Mismatch));
    let garbage = c
        .request("VERIFY", &[("unit", &u), ("scan", "NOREAD")])
        .await
        .unwrap();
    assert_eq!(code(&garbage), Some(ErrorCode::Mismatch));
    d.shutdown().await;
    assert_eq!(count_events(&line.db_path(), "LABEL_VERIFIED"), 5);
    assert_eq!(
        count_events(&line.db_path(), "LABEL_MISMATCH"),
        2,
        "mismatches are journaled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zebra_fault_holds_the_queue_and_labels_come_out_in_final_pass_order() {
    let zebra = FakeZebra::start().await;
    zebra.set(ZebraMode::PaperOut);
    let line = line_with_printer(&format!("zpl+tcp://{}", zebra.addr));
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = client(&d).await;
    let mut order = Vec::new();
    for _ in 0..3 {
        let u = ready_unit(&mut c).await;
        ok(&mut c, "FINAL", &[("unit", &u), ("status", "PASS")]).await;
        order.push(u);
    }
    wait_for("a paused printer in STATUS", || true).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = c.request("STATUS", &[]).await.unwrap();
        if st.get("printer") == Some("paused") && st.get("queued") == Some("3") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "STATUS never showed the held queue: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every fault kind in turn: nothing prints, each fault is journaled.
    let db = line.db_path();
    let journaled = |want: &str| {
        let c = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM events WHERE type = 'PRINTER_FAULT' AND json_extract(data, '$.reason') LIKE ?1",
                [format!("%{want}%")],
                |r| r.get(0),
            )
            .unwrap();
        n > 0
    };
    for (mode, reason) in [
        (ZebraMode::HeadOpen, "head open"),
        (ZebraMode::RibbonOut, "ribbon out"),
        (ZebraMode::Paused, "paused"),
        (ZebraMode::Silent, "no answer to ~HS"),
        (ZebraMode::DropMidJob, "connection lost"),
    ] {
        zebra.set(mode);
        wait_for(reason, || journaled(reason)).await;
        assert!(zebra.received().is_empty(), "{mode:?}: a label came out");
    }
    zebra.set(ZebraMode::Ready);
    wait_for("three labels", || zebra.received().len() >= 3).await;
    let printed: Vec<String> = zebra
        .received()
        .iter()
        .filter_map(|z| unit_in_zpl(z))
        .collect();
    assert_eq!(printed, order, "labels in FINAL PASS order");
    d.shutdown().await;
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    let reasons: Vec<String> = c
        .prepare("SELECT json_extract(data, '$.reason') FROM events WHERE type = 'PRINTER_FAULT'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for want in [
        "paper out",
        "head open",
        "ribbon out",
        "paused",
        "no answer to ~HS",
        "connection lost",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "{want:?} not journaled: {reasons:?}"
        );
    }
    assert_eq!(
        count_events(&line.db_path(), "LABEL_PRINTED"),
        3,
        "nothing lost, nothing doubled in the journal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_left_at_a_stop_are_sent_after_the_restart_and_the_event_says_so() {
    let zebra = FakeZebra::start().await;
    zebra.set(ZebraMode::PaperOut);
    let line = line_with_printer(&format!("zpl+tcp://{}", zebra.addr));
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = client(&d).await;
    let u = ready_unit(&mut c).await;
    ok(&mut c, "FINAL", &[("unit", &u), ("status", "PASS")]).await;
    d.shutdown().await;
    zebra.set(ZebraMode::Ready);
    let d = Daemon::start(line.config()).await.unwrap();
    wait_for("the held label", || !zebra.received().is_empty()).await;
    d.shutdown().await;
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    let after: bool = c
        .query_row(
            "SELECT json_extract(data, '$.after_restart') FROM events WHERE type = 'LABEL_PRINTED'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(after);
    assert_eq!(
        unit_in_zpl(&zebra.received()[0]).as_deref(),
        Some(u.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_final_pass_commit_and_the_print_loses_no_label() {
    let zebra = FakeZebra::start().await;
    zebra.set(ZebraMode::PaperOut); // the job is committed but cannot print yet
    let line = line_with_printer(&format!("zpl+tcp://{}", zebra.addr));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(line.config_path())
        .unwrap()
        .replace("tcp://127.0.0.1:0", &format!("tcp://127.0.0.1:{port}"));
    line.write_config(&text);
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
            .args(["run", "--config"])
            .arg(line.config_path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut daemon = spawn();
    let sock = crate::helper::connect_when_up(port).await;
    let mut c = StationClient::new(sock, "t");
    let u = ready_unit(&mut c).await;
    assert_eq!(
        c.request("FINAL", &[("unit", &u), ("status", "PASS")])
            .await
            .unwrap()
            .get("label"),
        Some("1")
    );
    daemon.kill().unwrap(); // SIGKILL: no clean stop
    daemon.wait().unwrap();
    assert!(zebra.received().is_empty());
    zebra.set(ZebraMode::Ready);
    let mut daemon = spawn();
    wait_for("the label after the crash", || !zebra.received().is_empty()).await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert_eq!(
        unit_in_zpl(&zebra.received()[0]).as_deref(),
        Some(u.as_str())
    );
    assert_eq!(zebra.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zpl_over_a_serial_port_checks_status_and_prints() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("zebra");
    let pty = crate::helper::Pty::new(&link);
    let line = line_with_printer(&format!("zpl+serial://{}?baud=9600", link.display()));
    // The printer side of the serial cable: paper out first, then ready.
    let mut master = pty.master;
    let (got_tx, mut got) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut asked = 0;
        loop {
            let n = match master.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            while let Some(p) = buf.windows(3).position(|w| w == b"~HS") {
                let before = String::from_utf8_lossy(&buf[..p]).into_owned();
                if before.contains("^XZ") {
                    let _ = got_tx.send(before);
                }
                buf.drain(..p + 3);
                asked += 1;
                let st = linemark::printer::zebra::HostStatus {
                    paper_out: asked == 1,
                    ..Default::default()
                };
                let _ = master
                    .write_all(&linemark::printer::zebra::answer(st))
                    .await;
            }
        }
    });
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = client(&d).await;
    let u = ready_unit(&mut c).await;
    ok(&mut c, "FINAL", &[("unit", &u), ("status", "PASS")]).await;
    let zpl = tokio::time::timeout(Duration::from_secs(20), got.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unit_in_zpl(&zpl).as_deref(), Some(u.as_str()));
    d.shutdown().await;
    assert_eq!(
        count_events(&line.db_path(), "PRINTER_FAULT"),
        2,
        "paper out, then its end"
    );
}

/// The first page's MediaBox of a PDF, in points.
fn media_box(pdf: &[u8]) -> Vec<f64> {
    let doc = lopdf::Document::load_mem(pdf).expect("a PDF");
    let page = *doc.get_pages().values().next().expect("a page");
    let obj = doc.get_object(page).expect("page object");
    let dict = obj.as_dict().expect("page dict");
    dict.get(b"MediaBox")
        .expect("MediaBox")
        .as_array()
        .expect("array")
        .iter()
        .map(|v| {
            v.as_float()
                .map(f64::from)
                .or_else(|_| v.as_i64().map(|i| i as f64))
                .expect("number")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_cups_queue_prints_only_when_cups_completes_and_holds_labels_while_stopped() {
    let Some(cups) = crate::helper::cups::Cups::start(
        "a_real_cups_queue_prints_only_when_cups_completes_and_holds_labels_while_stopped",
    ) else {
        return;
    };
    let printer = crate::helper::cups::SocketPrinter::start().await;
    cups.add_queue("Zebra_ZT410", printer.addr);
    let line = line_with_printer("cups://Zebra_ZT410");
    let port = crate::helper::free_port();
    let text = std::fs::read_to_string(line.config_path())
        .unwrap()
        .replace("tcp://127.0.0.1:0", &format!("tcp://127.0.0.1:{port}"));
    line.write_config(&text);
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
        .args(["run", "--config"])
        .arg(line.config_path())
        .env("CUPS_SERVER", cups.socket())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sock = crate::helper::connect_when_up(port).await;
    let mut c = StationClient::new(sock, "t");
    let printed = || count_events(&line.db_path(), "LABEL_PRINTED");

    // A final pass: the PDF reaches the printer through CUPS, at the
    // label's size, and counts as printed once CUPS completed the job.
    let u = ready_unit(&mut c).await;
    ok(&mut c, "FINAL", &[("unit", &u), ("status", "PASS")]).await;
    wait_for("the label through CUPS", || !printer.jobs().is_empty()).await;
    wait_for("LABEL_PRINTED after CUPS completed the job", || {
        printed() == 1
    })
    .await;
    let pdf = printer.jobs()[0].clone();
    let mm = |pt: f64| pt * 25.4 / 72.0;
    let b = media_box(&pdf);
    assert!(
        (mm(b[2] - b[0]) - 50.0).abs() < 0.5 && (mm(b[3] - b[1]) - 30.0).abs() < 0.5,
        "MediaBox {b:?}"
    );
    assert!(cups
        .tool("lpstat", &["-W", "completed", "-o", "Zebra_ZT410"])
        .contains("Zebra_ZT410-1"));

    // A stopped queue is a printer fault: the label stays queued.
    cups.tool("cupsdisable", &["-r", "paper out", "Zebra_ZT410"]);
    let u2 = ready_unit(&mut c).await;
    ok(&mut c, "FINAL", &[("unit", &u2), ("status", "PASS")]).await;
    let mut status = Response::ok();
    for _ in 0..100 {
        status = c.request("STATUS", &[]).await.unwrap();
        if status.get("printer") == Some("paused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status.get("printer"), Some("paused"), "{status:?}");
    assert_eq!(status.get("queued"), Some("1"), "{status:?}");
    assert_eq!(printed(), 1);
    assert_eq!(printer.jobs().len(), 1, "nothing reached the printer");
    assert!(count_events(&line.db_path(), "PRINTER_FAULT") >= 1);

    // Resumed: the held label prints.
    cups.tool("cupsenable", &["Zebra_ZT410"]);
    wait_for("the held label after the queue resumed", || printed() == 2).await;
    assert_eq!(printer.jobs().len(), 2);
    assert!(lopdf::Document::load_mem(&printer.jobs()[1]).is_ok());
    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_routing_gate_answers_with_missing_steps() {
    let out = tempfile::tempdir().unwrap();
    let line = line_with_printer(&format!("dir://{}", out.path().display()));
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = client(&d).await;
    let u = c
        .request("ALLOC", &[("product", "PACK-48V")])
        .await
        .unwrap()
        .get("unit")
        .unwrap()
        .to_string();
    let gate = c
        .request("FINAL", &[("unit", &u), ("status", "PASS")])
        .await
        .unwrap();
    assert_eq!(gate.get("missing"), Some("provision,functional"));
    let reprint = c
        .request("REPRINT", &[("unit", &u), ("reason", "x")])
        .await
        .unwrap();
    assert_eq!(code(&reprint), Some(ErrorCode::Route));
    assert_eq!(reprint.get("missing"), None, "{reprint:?}");
    assert!(reprint
        .get("msg")
        .unwrap()
        .contains("has not passed final test"));
    d.shutdown().await;
}
