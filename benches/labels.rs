//! Label rendering (issue 5): a 50 x 30 mm label at 300 dpi to ZPL, PNG and
//! PDF; the QR encoders compared on the same Digital Link URIs; and the
//! `zint` command-line tool on the same QR, when installed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use linemark::gs1::{Gtin, Level};
use linemark::label::render;
use linemark::label::{codes, layout, Ec, LabelData, Template};

fn template() -> Template {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/label-templates/pack-50x30.toml"
    );
    Template::parse(&std::fs::read_to_string(path).expect("template"), path).expect("valid")
}

fn data(i: u64) -> LabelData {
    let codec = linemark::ids::IdCodec::new(
        &linemark::ids::NamespaceKey::from_hex(
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        )
        .expect("key"),
    );
    LabelData {
        resolver: "https://id.example.com".into(),
        gtin: Gtin::parse("09506000134352").expect("gtin"),
        level: Level::Item,
        lot: Some("L2026-11".into()),
        unit: codec.id_of(1_048_576 + i).to_string(),
        product: "PACK-48V".into(),
        line: "P1-L03".into(),
        date: "2026-11-20".into(),
    }
}

fn bench(c: &mut Criterion) {
    let t = template();
    let d = data(0);
    let uri = d.uri();
    let mut g = c.benchmark_group("labels");
    g.bench_function(
        "QR encode, linemark (fast_qr) (Digital Link URI, EC M)",
        |b| b.iter(|| black_box(codes::qr(black_box(&uri), Ec::M).expect("qr"))),
    );
    g.bench_function("QR encode, fast_qr crate (same URI, EC M)", |b| {
        b.iter(|| {
            black_box(
                fast_qr::QRBuilder::new(black_box(uri.as_str()))
                    .ecl(fast_qr::ECL::M)
                    .build()
                    .expect("qr"),
            )
        })
    });
    g.bench_function("GS1 DataMatrix encode (element string)", |b| {
        let es = d.element_string();
        b.iter(|| black_box(codes::datamatrix(black_box(&es)).expect("dm")))
    });
    g.bench_function("layout (both codes encoded)", |b| {
        b.iter(|| black_box(layout(&t, black_box(&d)).expect("layout")))
    });
    let l = layout(&t, &d).expect("layout");
    g.bench_function("ZPL from a layout", |b| {
        b.iter(|| black_box(render::zpl(black_box(&l))))
    });
    g.bench_function("PNG from a layout", |b| {
        b.iter(|| black_box(render::png(black_box(&l)).expect("png")))
    });
    g.bench_function("PDF from a layout", |b| {
        b.iter(|| black_box(render::pdf(black_box(&l))))
    });
    g.bench_function("label to ZPL, end to end (layout + ZPL)", |b| {
        b.iter(|| black_box(render::zpl(&layout(&t, black_box(&d)).expect("layout"))))
    });
    g.bench_function("label to PNG, end to end (layout + PNG)", |b| {
        b.iter(|| black_box(render::png(&layout(&t, black_box(&d)).expect("layout")).expect("png")))
    });
    g.bench_function("label to PDF, end to end (layout + PDF)", |b| {
        b.iter(|| black_box(render::pdf(&layout(&t, black_box(&d)).expect("layout"))))
    });
    g.finish();

    // The peer a line engineer would otherwise script: zint, same QR as PNG.
    match std::process::Command::new("zint").arg("--version").output() {
        Ok(_) => {
            let dir = std::env::temp_dir();
            let n = 50;
            let t0 = Instant::now();
            for i in 0..n {
                let out = dir.join(format!("zint-bench-{i}.png"));
                let _ = std::process::Command::new("zint")
                    .args(["-b", "58", "--secure=2", "--scale=2", "-o"])
                    .arg(&out)
                    .arg(format!("--data={uri}"))
                    .output();
            }
            let per = t0.elapsed() / n;
            let t1 = Instant::now();
            for i in 0..n {
                black_box(render::png(&layout(&t, &data(i as u64)).expect("layout")).expect("png"));
            }
            let ours = t1.elapsed() / n;
            eprintln!("SUMMARY zint QR to PNG: {per:?} per code (process start included); linemark whole label to PNG: {ours:?}; ratio {:.0}x", per.as_secs_f64() / ours.as_secs_f64());
        }
        Err(_) => eprintln!(
            "SUMMARY zint is not installed (apt-get install zint) — no comparison in this run"
        ),
    }
    let _ = Duration::ZERO;
}

criterion_group!(benches, bench);

/// FINAL PASS frame in -> label bytes at a (fake, loopback) Zebra printer.
fn final_to_printer(c: &mut Criterion) {
    use linemark::client::StationClient;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = c;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/labels");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("keys")).expect("dir");
    std::fs::write(
        dir.join("keys/namespace.key"),
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
    )
    .expect("key");
    let (arrivals_tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let printer = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let tx = arrivals_tx.clone();
                tokio::spawn(async move {
                    let ready = linemark::printer::zebra::answer(Default::default());
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    while let Ok(n) = s.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(p) = buf.windows(3).position(|w| w == b"~HS") {
                            if buf[..p].windows(3).any(|w| w == b"^XZ") {
                                let _ = tx.send(Instant::now());
                            }
                            buf.drain(..p + 3);
                            if s.write_all(&ready).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    });
    let text = format!(
        "line_id = \"P1-L03\"\ndata_dir = \"var\"\nresolver = \"https://id.example.com\"\ntemplates_dir = \"{}/label-templates\"\n[ids]\nnamespace_key_file = \"keys/namespace.key\"\nissuer_public_key = \"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c\"\nallow_dev_grants = true\n[[product]]\nkey = \"BENCH\"\ngtin = \"09506000134352\"\nlevel = \"item\"\ntemplate = \"pack-50x30\"\n[[station]]\nname = \"fin\"\nport = \"tcp://127.0.0.1:0\"\nallow = [\"ALLOC\", \"FINAL\"]\nstep = \"final\"\nprinter = \"z\"\n[[printer]]\nname = \"z\"\nurl = \"zpl+tcp://{printer}\"\n",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::write(dir.join("linemark.toml"), text).expect("config");
    let cfg = linemark::config::Config::load(&dir.join("linemark.toml")).expect("config");
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
        count: 1 << 30,
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
    let mut lat = rt.block_on(async {
        let d = linemark::daemon::Daemon::start(cfg).await.expect("daemon");
        let s = tokio::net::TcpStream::connect(d.tcp_addr("fin").expect("addr"))
            .await
            .expect("connect");
        let mut c = StationClient::new(s, "bench");
        let mut lat = Vec::new();
        for _ in 0..300 {
            let a = c
                .request("ALLOC", &[("product", "BENCH")])
                .await
                .expect("alloc");
            let unit = a.get("unit").expect("unit").to_string();
            let t = Instant::now();
            c.request("FINAL", &[("unit", &unit), ("status", "PASS")])
                .await
                .expect("final");
            let arrived = arrivals.recv().await.expect("label");
            lat.push(arrived.duration_since(t));
        }
        d.shutdown().await;
        lat
    });
    lat.sort();
    eprintln!(
        "SUMMARY FINAL PASS frame in -> label bytes at the fake Zebra printer (300 labels): p50 {:?}, p99 {:?}, max {:?}",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        lat[lat.len() - 1]
    );
}

criterion_group!(e2e, final_to_printer);
criterion_main!(benches, e2e);
