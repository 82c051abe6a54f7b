//! Station protocol benchmarks (issue 4): codec throughput, one station's
//! FINAL PASS round trip over a pseudo-terminal (p50/p99 against the disk's
//! fsync, measured in the same run), and 16 stations at once.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use linemark::client::StationClient;
use linemark::config::Config;
use linemark::daemon::Daemon;
use linemark::protocol::{self, FrameDecoder};
use std::hint::black_box;

mod common;
use common::{bench_dir, fsync_probe, pct};

fn codec(c: &mut Criterion) {
    let frame = protocol::encode_request(
        "RESULT",
        &[
            ("unit", "V700QW11S6PJ4"),
            ("step", "functional"),
            ("status", "PASS"),
            ("m.voltage", "48.12"),
            ("m.ir_mohm", "11.5"),
            ("req", "fn-1-000123"),
        ],
    );
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse one RESULT frame (checksum, 6 fields)", |b| {
        b.iter(|| {
            black_box(protocol::parse(black_box(&frame[..frame.len() - 2]), true).expect("valid"))
        })
    });
    let stream: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 1000)
        .collect();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("decode + parse 1000 frames from a byte stream", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::new();
            let mut n = 0;
            for chunk in stream.chunks(4096) {
                d.push(chunk);
                while let Some(protocol::Decoded::Frame(f)) = d.next() {
                    black_box(protocol::parse(f, true).expect("valid"));
                    n += 1;
                }
            }
            assert_eq!(n, 1000);
        })
    });
    g.throughput(Throughput::Elements(1));
    let answer = protocol::Response::ok_with([
        ("unit", "V700QW11S6PJ4"),
        (
            "uri",
            "https://id.example.com/01/09506000134352/10/L1/21/V700QW11S6PJ4",
        ),
    ]);
    g.bench_function("encode one OK answer", |b| {
        b.iter(|| black_box(answer.to_bytes()))
    });
    g.finish();
}

/// A line with one pty station and 16 TCP stations, and a product without
/// required steps so every unit can go straight to FINAL.
fn config(dir: &std::path::Path, pty: &str) -> Config {
    std::fs::write(
        dir.join("keys/namespace.key"),
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
    )
    .expect("key");
    let mut text = String::from(
        r#"line_id = "P1-L03"
data_dir = "var"
resolver = "https://id.example.com"
[ids]
namespace_key_file = "keys/namespace.key"
issuer_public_key = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
allow_dev_grants = true
[[product]]
key = "BENCH"
gtin = "09506000134352"
level = "item"
template = "pack-50x30"
required_steps = []
"#,
    );
    text += &format!("[[station]]\nname = \"pty\"\nport = \"{pty}\"\nallow = [\"ALLOC\", \"FINAL\", \"PING\"]\nstep = \"final\"\n");
    for i in 0..16 {
        text += &format!("[[station]]\nname = \"t{i}\"\nport = \"tcp://127.0.0.1:0\"\nallow = [\"ALLOC\", \"FINAL\"]\nstep = \"final\"\n");
    }
    let path = dir.join("linemark.toml");
    std::fs::write(&path, text).expect("config");
    let cfg = Config::load(&path).expect("config");
    // A large block, signed by a throw-away development issuer.
    let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    std::fs::create_dir_all(cfg.data_dir.join("keys")).expect("keys");
    std::fs::write(cfg.dev_issuer_key_path(), hex::encode([3u8; 32])).expect("dev key");
    let mut g = linemark::ids::Grant {
        grant_version: 1,
        block_id: "018f3a2e-7c4d-7000-8000-0000000be0c4".into(),
        namespace: "bench".into(),
        key_id: cfg.ids.namespace_key.key_id(),
        line_id: "P1-L03".into(),
        start: 0,
        count: 1 << 40,
        issued_at: "2026-11-20T08:00:00Z".into(),
        issuer: "bench".into(),
        signature: String::new(),
    };
    g.sign(&key);
    let j = linemark::journal::Journal::open(linemark::journal::JournalOptions::from_config(&cfg))
        .expect("journal");
    j.import_grant_blocking(g, &cfg.grant_policy().expect("policy"), "bench")
        .expect("grant");
    drop(j);
    cfg
}

fn round_trips(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = bench_dir("stations");
    let link = dir.join("pty-link");
    let (master, slave) = rt
        .block_on(async { tokio_serial::SerialStream::pair() })
        .expect("pty");
    let name = tokio_serial::SerialPort::name(&slave).expect("pty name");
    drop(slave);
    std::os::unix::fs::symlink(name, &link).expect("link");
    let cfg = config(&dir, link.to_str().expect("utf-8 path"));
    let daemon = rt.block_on(Daemon::start(cfg)).expect("daemon");
    rt.block_on(async {
        let stats = daemon.station_stats("pty").expect("pty station").clone();
        while !stats.connected.load(std::sync::atomic::Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut client = StationClient::new(master, "bench");

    // p50/p99 of FINAL PASS over the pty, with fsync probed in the same run.
    let fsync = fsync_probe(&dir, 300);
    let mut rtt = Vec::new();
    rt.block_on(async {
        for _ in 0..300 {
            let a = client
                .request("ALLOC", &[("product", "BENCH")])
                .await
                .expect("alloc");
            let unit = a.get("unit").expect("unit").to_string();
            let t = Instant::now();
            let f = client
                .request("FINAL", &[("unit", &unit), ("status", "PASS")])
                .await
                .expect("final");
            rtt.push(t.elapsed());
            assert!(f.is_ok(), "{f:?}");
        }
    });
    let fsync_after = fsync_probe(&dir, 300);
    let mut fs: Vec<Duration> = fsync.into_iter().chain(fsync_after).collect();
    let (f50, f99) = (pct(&mut fs, 0.5), pct(&mut fs, 0.99));
    let (r50, r99) = (pct(&mut rtt, 0.5), pct(&mut rtt, 0.99));
    eprintln!("SUMMARY fsync p50 {f50:?} p99 {f99:?}");
    eprintln!(
        "SUMMARY pty FINAL PASS round trip p50 {r50:?} (target <= fsync p50 + 1 ms = {:?})",
        f50 + Duration::from_millis(1)
    );
    eprintln!(
        "SUMMARY pty FINAL PASS round trip p99 {r99:?} (target <= 2 x fsync p50 = {:?})",
        f50 * 2
    );

    let mut g = c.benchmark_group("stations");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    g.bench_function("pty: FINAL PASS round trip (ALLOC untimed)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let a = client
                        .request("ALLOC", &[("product", "BENCH")])
                        .await
                        .expect("alloc");
                    let unit = a.get("unit").expect("unit").to_string();
                    let t = Instant::now();
                    client
                        .request("FINAL", &[("unit", &unit), ("status", "PASS")])
                        .await
                        .expect("final");
                    total += t.elapsed();
                }
                total
            })
        })
    });

    // 16 TCP stations at once, each waiting for its own answer.
    let addrs: Vec<_> = (0..16)
        .map(|i| daemon.tcp_addr(&format!("t{i}")).expect("tcp"))
        .collect();
    g.throughput(Throughput::Elements(1));
    g.bench_function(
        "16 stations: durable ALLOC, each waits for its answer",
        |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(16);
                rt.block_on(async {
                    let mut clients = Vec::new();
                    for (i, a) in addrs.iter().enumerate() {
                        let s = tokio::net::TcpStream::connect(a).await.expect("connect");
                        clients.push(StationClient::new(s, &format!("t{i}-{iters}")));
                    }
                    let t = Instant::now();
                    let tasks: Vec<_> = clients
                        .into_iter()
                        .map(|mut c| {
                            tokio::spawn(async move {
                                for _ in 0..per {
                                    c.request("ALLOC", &[("product", "BENCH")])
                                        .await
                                        .expect("alloc");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("station task");
                    }
                    t.elapsed().mul_f64(iters as f64 / (per * 16) as f64)
                })
            })
        },
    );
    g.finish();
    let fs2 = fsync_probe(&dir, 300);
    let mut fs2 = fs2;
    eprintln!(
        "SUMMARY fsync p50 after the 16-station run {:?}",
        pct(&mut fs2, 0.5)
    );
    rt.block_on(daemon.shutdown());
}

criterion_group!(benches, codec, round_trips);
criterion_main!(benches);
