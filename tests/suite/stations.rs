//! Stations over real pseudo-terminals and sockets, against an in-process
//! daemon: a unit's whole life, lost answers, every refusal, bad input, a
//! port that disappears and comes back.

use std::time::{Duration, Instant};

use crate::helper::{count_events, grant, station_toml, stderr, stdout, wait_connected, Line, Pty};
use linemark::client::StationClient;
use linemark::daemon::Daemon;
use linemark::protocol::{ErrorCode, Response};

const ALL: &[&str] = &[
    "HELLO", "PING", "STATUS", "ALLOC", "BIND", "RESULT", "FINAL", "SCRAP",
];

/// A line with three pty stations (provision, functional, final) and a TCP
/// station that may do everything.
pub(crate) struct Rig {
    pub(crate) line: Line,
    pub(crate) provision: Pty,
    pub(crate) functional: Pty,
    pub(crate) fin: Pty,
}

pub(crate) fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("provision");
    let f = dir.path().join("functional");
    let x = dir.path().join("final");
    let provision = Pty::new(&p);
    let functional = Pty::new(&f);
    let fin = Pty::new(&x);
    let mut extra = String::new();
    extra += &station_toml(
        "provision-1",
        p.to_str().unwrap(),
        &["HELLO", "PING", "STATUS", "ALLOC", "BIND", "RESULT"],
        Some("provision"),
        "optional",
    );
    extra += &station_toml(
        "functional-1",
        f.to_str().unwrap(),
        &["RESULT", "SCRAP", "PING"],
        Some("functional"),
        "required",
    );
    extra += &station_toml(
        "final-1",
        x.to_str().unwrap(),
        &["FINAL", "STATUS", "SCRAP", "PING"],
        Some("final"),
        "optional",
    );
    extra += &station_toml("tcp-1", "tcp://127.0.0.1:0", ALL, None, "optional");
    let line = Line::with_config(&extra);
    // Keep the symlinks' folder alive with the line.
    std::mem::forget(dir);
    {
        let j = line.open();
        j.import_grant_blocking(
            grant("b1", 1048576, 100_000),
            &line.config().grant_policy().unwrap(),
            "t",
        )
        .unwrap();
    }
    Rig {
        line,
        provision,
        functional,
        fin,
    }
}

pub(crate) async fn start(r: &Rig) -> Daemon {
    let d = Daemon::start(r.line.config()).await.unwrap();
    for s in ["provision-1", "functional-1", "final-1"] {
        wait_connected(&d, s).await;
    }
    d
}

pub(crate) fn client(p: Pty, name: &str) -> StationClient<tokio_serial::SerialStream> {
    let mut c = StationClient::new(p.master, name);
    c.timeout = Duration::from_secs(5);
    c
}

pub(crate) async fn tcp(d: &Daemon) -> StationClient<tokio::net::TcpStream> {
    let s = tokio::net::TcpStream::connect(d.tcp_addr("tcp-1").unwrap())
        .await
        .unwrap();
    StationClient::new(s, "tcp")
}

/// A station client on either kind of port (for the transcript driver).
pub(crate) enum AnyClient {
    Tcp(StationClient<tokio::net::TcpStream>),
    Pty(StationClient<tokio_serial::SerialStream>),
}

impl AnyClient {
    pub(crate) async fn send(
        &mut self,
        frame: &[u8],
    ) -> Result<Response, linemark::client::ClientError> {
        match self {
            AnyClient::Tcp(c) => c.send_frame(frame).await,
            AnyClient::Pty(c) => c.send_frame(frame).await,
        }
    }
}

fn code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Err { code, .. } => Some(*code),
        Response::Ok(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_units_whole_life_over_pseudo_terminals() {
    let r = rig();
    let d = start(&r).await;
    let line = &r.line;
    let mut prov = client(r.provision, "prov");
    let mut func = client(r.functional, "func");
    let mut fin = client(r.fin, "fin");

    let hello = prov.request("HELLO", &[("fw", "2.1.0")]).await.unwrap();
    assert_eq!(hello.get("line"), Some("P1-L03"));
    assert_eq!(hello.get("station"), Some("provision-1"));
    let a = prov
        .request("ALLOC", &[("product", "PACK-48V"), ("lot", "L2026/11")])
        .await
        .unwrap();
    assert!(a.is_ok(), "{a:?}");
    let unit = a.get("unit").unwrap().to_string();
    assert_eq!(
        unit, "V700QW11S6PJ4",
        "the first index of the block gives the SPEC vector ID"
    );
    assert_eq!(
        a.get("uri"),
        Some("https://id.example.com/01/09506000134352/10/L2026%2F11/21/V700QW11S6PJ4")
    );
    let b = prov
        .request(
            "BIND",
            &[
                ("unit", &unit),
                ("serial", "SN-001"),
                ("mac", "00-1b-63-84-45-e6"),
                ("uid", "04a3b2c1"),
                ("fw", "2.1.0"),
                ("lot.cell", "CELL-77"),
            ],
        )
        .await
        .unwrap();
    assert!(b.is_ok(), "{b:?}");
    let res = prov
        .request(
            "RESULT",
            &[("unit", &unit), ("status", "PASS"), ("m.flash_ms", "812")],
        )
        .await
        .unwrap();
    assert!(res.is_ok(), "{res:?}");
    let res = func
        .request(
            "RESULT",
            &[
                ("unit", &unit),
                ("status", "PASS"),
                ("m.voltage", "48.12"),
                ("m.ir_mohm", "11.5"),
            ],
        )
        .await
        .unwrap();
    assert!(res.is_ok(), "{res:?}");
    let f = fin
        .request(
            "FINAL",
            &[
                ("unit", &unit),
                ("status", "PASS"),
                ("m.insulation_mohm", "520"),
            ],
        )
        .await
        .unwrap();
    assert!(f.is_ok(), "{f:?}");
    let st = fin.request("STATUS", &[]).await.unwrap();
    assert_eq!(st.get("ids_left"), Some("99999"));

    let out = line.cli(&["unit", "show", &unit]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = stdout(&out);
    for want in [
        "state     passed",
        "mac       00:1B:63:84:45:E6",
        "serial    SN-001",
        "uid       04A3B2C1",
        "lot.cell  CELL-77",
        "provision",
        "functional",
        "FINAL_PASS",
        "\"voltage\":\"48.12\"",
    ] {
        assert!(s.contains(want), "{want:?} missing from unit show:\n{s}");
    }
    d.shutdown().await;
    let out = line.cli(&["journal", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_req_gets_the_same_answer_and_changes_nothing() {
    let r = rig();
    let d = start(&r).await;
    let mut c = tcp(&d).await;
    let a1 = c
        .request("ALLOC", &[("product", "PACK-48V"), ("req", "a-1")])
        .await
        .unwrap();
    let a2 = c
        .request("ALLOC", &[("product", "PACK-48V"), ("req", "a-1")])
        .await
        .unwrap();
    assert_eq!(a1, a2);
    let unit = a1.get("unit").unwrap().to_string();
    for step in ["provision", "functional"] {
        assert!(c
            .request(
                "RESULT",
                &[("unit", &unit), ("step", step), ("status", "PASS")]
            )
            .await
            .unwrap()
            .is_ok());
    }
    let f1 = c
        .request(
            "FINAL",
            &[("unit", &unit), ("status", "PASS"), ("req", "f-1")],
        )
        .await
        .unwrap();
    let f2 = c
        .request(
            "FINAL",
            &[("unit", &unit), ("status", "PASS"), ("req", "f-1")],
        )
        .await
        .unwrap();
    assert!(f1.is_ok());
    assert_eq!(f1, f2);
    // The same token for a different request is refused, not answered wrongly.
    let wrong = c
        .request("ALLOC", &[("product", "BMS"), ("req", "f-1")])
        .await
        .unwrap();
    assert_eq!(
        code(&wrong),
        Some(ErrorCode::UnknownProduct),
        "validation comes first"
    );
    let wrong = c
        .request("SCRAP", &[("unit", &unit), ("reason", "x"), ("req", "f-1")])
        .await
        .unwrap();
    assert_eq!(code(&wrong), Some(ErrorCode::BadValue));
    // Without req, a second final pass is refused.
    let f3 = c
        .request(
            "FINAL",
            &[("unit", &unit), ("status", "PASS"), ("req", "f-2")],
        )
        .await
        .unwrap();
    assert_eq!(code(&f3), Some(ErrorCode::AlreadyFinal));
    d.shutdown().await;
    let db = r.line.db_path();
    assert_eq!(count_events(&db, "ALLOCATED"), 1, "no second ID burned");
    assert_eq!(count_events(&db, "FINAL_PASS"), 1);
    // Tokens survive a restart.
    let d = Daemon::start(r.line.config()).await.unwrap();
    let mut c = tcp(&d).await;
    let a3 = c
        .request("ALLOC", &[("product", "PACK-48V"), ("req", "a-1")])
        .await
        .unwrap();
    assert_eq!(a3, a1);
    d.shutdown().await;
    assert_eq!(count_events(&db, "ALLOCATED"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_and_never_slows_another_station() {
    let r = rig();
    let d = start(&r).await;
    let mut bad = client(r.functional, "func"); // checksum = required
    let mut good = client(r.provision, "prov");

    // Wrong, missing and malformed checksums.
    let a = bad.send_frame(b"PING*00\r\n").await.unwrap();
    assert_eq!(code(&a), Some(ErrorCode::Checksum));
    let a = bad.send_frame(b"PING\r\n").await.unwrap();
    assert_eq!(
        code(&a),
        Some(ErrorCode::Checksum),
        "this station requires a checksum"
    );
    assert!(bad.send_frame(b"PING*10\r\n").await.unwrap().is_ok());
    // NUL bytes and binary.
    let a = bad.send_frame(b"PI\0NG*10\r\n").await.unwrap();
    assert_eq!(code(&a), Some(ErrorCode::BadFrame));
    let a = bad
        .send_frame(&[0xff, 0xfe, 0x00, 0x80, b'\n'])
        .await
        .unwrap();
    assert_eq!(code(&a), Some(ErrorCode::BadFrame));
    // Over-long frame, then the next frame is read normally.
    let mut long = vec![b'A'; 3000];
    long.extend_from_slice(b"\r\n");
    let a = bad.send_frame(&long).await.unwrap();
    assert_eq!(code(&a), Some(ErrorCode::TooLong));
    assert!(bad.send_frame(b"PING*10\r\n").await.unwrap().is_ok());
    // A frame split across many writes with pauses.
    let frame = linemark::protocol::encode_request("PING", &[]);
    for b in &frame[..frame.len() - 1] {
        bad.write_raw(&[*b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    bad.write_raw(&frame[frame.len() - 1..]).await.unwrap();
    assert!(bad.read_answer().await.unwrap().is_ok());

    // Baseline latency of the good station.
    let mut base = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        assert!(good.request("PING", &[]).await.unwrap().is_ok());
        base.push(t.elapsed());
    }
    base.sort();
    // Flood: 10,000 garbage lines (random bytes, no checksum) as fast as the
    // port takes them, with the answers read on the side.
    let (mut rd, mut wr) = tokio::io::split(bad.into_inner());
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 65536];
        let mut answers = 0usize;
        let mut text = Vec::new();
        while answers < 10_000 {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0);
            answers += buf[..n].iter().filter(|b| **b == b'\n').count();
            if text.len() < 4096 {
                text.extend_from_slice(&buf[..n]);
            }
        }
        (answers, text)
    });
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut rng = crate::helper::Rng::seeded();
        for i in 0..10_000u32 {
            let mut l: Vec<u8> = (0..(rng.below(60) + 1))
                .map(|_| (rng.below(255) + 1) as u8)
                // CR and LF end a frame: one garbage line is one frame.
                .filter(|b| *b != b'\n' && *b != b'\r')
                .collect();
            // Blank lines (only spaces or CR) are keep-alives and get no
            // answer; make every garbage line non-blank.
            l.insert(0, 0xAA);
            if i % 100 == 0 {
                l = vec![b'X'; 1500]; // over-long lines in the mix
            }
            l.push(b'\n');
            wr.write_all(&l).await.unwrap();
        }
    });
    let mut during = Vec::new();
    while !writer.is_finished() {
        let t = Instant::now();
        assert!(good.request("PING", &[]).await.unwrap().is_ok());
        during.push(t.elapsed());
    }
    writer.await.unwrap();
    let (answers, text) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answers, 10_000, "every garbage line got an answer");
    assert!(
        String::from_utf8_lossy(&text).contains("ERR code=E_"),
        "garbage is answered with ERR"
    );
    during.sort();
    let p50 = |v: &[Duration]| v[v.len() / 2];
    eprintln!(
        "good station PING p50 before {:?}, during flood {:?} ({} samples)",
        p50(&base),
        p50(&during),
        during.len()
    );
    assert!(
        during.is_empty() || p50(&during) <= p50(&base) * 10 + Duration::from_millis(20),
        "the flood slowed another station: p50 {:?} -> {:?}",
        p50(&base),
        p50(&during)
    );
    // The daemon is still up and correct.
    let a = good
        .request("ALLOC", &[("product", "PACK-48V")])
        .await
        .unwrap();
    assert!(a.is_ok());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_disappears_and_comes_back_resumes_without_a_restart() {
    let r = rig();
    let d = start(&r).await;
    let link = r.provision.link.clone();
    let mut prov = client(r.provision, "prov");
    assert!(prov.request("PING", &[]).await.unwrap().is_ok());
    // Unplug: the master closes and, as udev does for /dev/serial/by-id,
    // the stable name goes away (pty numbers are reused by other tests).
    drop(prov);
    std::fs::remove_file(&link).unwrap();
    let stats = d.station_stats("provision-1").unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.connected.load(std::sync::atomic::Ordering::Acquire) {
        assert!(
            Instant::now() < deadline,
            "the daemon never noticed the port was gone"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // a few failed reopen attempts
                                                          // Plug back in: a new pty behind the same stable name.
    let back = Pty::new(&link);
    wait_connected(&d, "provision-1").await;
    let mut prov = client(back, "prov2");
    let a = prov
        .request("ALLOC", &[("product", "PACK-48V")])
        .await
        .unwrap();
    assert!(a.is_ok(), "{a:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_spelling_the_unit_in_lower_case_is_the_same_request() {
    let r = rig();
    let d = start(&r).await;
    let mut c = tcp(&d).await;
    let unit = crate::helper::alloc_unit(&mut c).await;
    let first = c
        .request(
            "SCRAP",
            &[("unit", &unit), ("reason", "dropped"), ("req", "s-1")],
        )
        .await
        .unwrap();
    assert!(first.is_ok(), "{first:?}");
    let lower = unit.to_ascii_lowercase();
    let again = c
        .request(
            "SCRAP",
            &[("unit", &lower), ("reason", "dropped"), ("req", "s-1")],
        )
        .await
        .unwrap();
    assert_eq!(again, first, "the stored answer, not E_BAD_VALUE");
    d.shutdown().await;
    assert_eq!(count_events(&r.line.db_path(), "SCRAPPED"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_ending_frames_with_cr_alone_is_answered_per_frame() {
    let r = rig();
    let d = start(&r).await;
    let mut c = tcp(&d).await;
    c.write_raw(b"PING\rPING\r").await.unwrap();
    assert!(c.read_answer().await.unwrap().is_ok());
    assert!(c.read_answer().await.unwrap().is_ok());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_station_cannot_record_another_step() {
    let r = rig();
    let d = start(&r).await;
    let mut t = tcp(&d).await;
    let unit = crate::helper::alloc_unit(&mut t).await;
    let mut fin = client(r.fin, "fin");
    for step in ["provision", "functional"] {
        let a = fin
            .request(
                "RESULT",
                &[("unit", &unit), ("step", step), ("status", "PASS")],
            )
            .await
            .unwrap();
        // RESULT is not even allowed on final-1; its FINAL may not name a step.
        assert_eq!(code(&a), Some(ErrorCode::NotAllowed), "{a:?}");
        let a = fin
            .request(
                "FINAL",
                &[("unit", &unit), ("step", step), ("status", "PASS")],
            )
            .await
            .unwrap();
        assert_eq!(code(&a), Some(ErrorCode::NotAllowed), "{a:?}");
    }
    let a = fin
        .request("FINAL", &[("unit", &unit), ("status", "PASS")])
        .await
        .unwrap();
    assert_eq!(
        code(&a),
        Some(ErrorCode::Route),
        "still missing its steps: {a:?}"
    );
    d.shutdown().await;
    assert_eq!(count_events(&r.line.db_path(), "FINAL_PASS"), 0);
    assert_eq!(count_events(&r.line.db_path(), "LABEL_QUEUED"), 0);
}
