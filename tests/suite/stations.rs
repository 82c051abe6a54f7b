//! Stations over real pseudo-terminals and sockets, against an in-process
//! daemon: a unit's whole life, lost answers, every refusal, bad input, a
//! port that disappears and comes back.

use std::time::{Duration, Instant};

use crate::helper::{ok, station_toml, wait_connected, Line, Pty};
use linemark::client::StationClient;
use linemark::daemon::Daemon;
use linemark::protocol::{ErrorCode, Response};

const ALL: &[&str] = &[
    "HELLO", "PING", "STATUS", "ALLOC", "BIND", "RESULT", "FINAL", "SCRAP", "SHIP", "REPLACE",
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
        line.grant_into(&j, "b1", 1048576, 100_000);
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
        ok(&mut good, "PING", &[]).await;
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
        ok(&mut good, "PING", &[]).await;
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
    ok(&mut good, "ALLOC", &[("product", "PACK-48V")]).await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_disappears_and_comes_back_resumes_without_a_restart() {
    let r = rig();
    let d = start(&r).await;
    let link = r.provision.link.clone();
    let mut prov = client(r.provision, "prov");
    ok(&mut prov, "PING", &[]).await;
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
    ok(&mut prov, "ALLOC", &[("product", "PACK-48V")]).await;
    d.shutdown().await;
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
