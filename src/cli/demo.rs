//! `linemark demo`: a whole simulated shift on the embedded default config,
//! with no set-up: a development grant, three simulated stations on
//! pseudo-terminals (provisioning, functional test, final test with VERIFY
//! of the printed label), a few failures and scraps, labels written to a
//! folder as PNG, PDF and ZPL, a progress bar and a summary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{progress_bar, CliError};
use crate::client::StationClient;
use crate::config::{Config, BUILTIN_TEMPLATES, EMBEDDED_DEFAULT};
use crate::daemon::Daemon;
use crate::journal::{Journal, JournalOptions};

type Port = tokio_serial::SerialStream;

/// The SPEC's public test-vector namespace key (development only).
const DEMO_NAMESPACE_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// What happened, counted by the simulated stations.
#[derive(Default)]
struct Tally {
    allocated: AtomicU64,
    passed: AtomicU64,
    failed: AtomicU64,
    retested: AtomicU64,
    scrapped: AtomicU64,
    verified: AtomicU64,
    reprinted: AtomicU64,
}

/// A small deterministic generator so every demo run looks alike.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn io(what: &str, p: &Path) -> impl Fn(std::io::Error) -> CliError {
    let (what, p) = (what.to_string(), p.display().to_string());
    move |e| CliError::runtime(format!("{what} {p}: {e}"))
}

/// Writes the demo folder: config (the embedded default with the demo's
/// ports and printer folder), key, templates.
fn prepare(out: &Path) -> Result<Config, CliError> {
    for sub in ["var", "labels", "ports"] {
        let p = out.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(io("cannot clear", &p))?;
        }
    }
    for sub in ["keys", "labels", "ports", "label-templates"] {
        std::fs::create_dir_all(out.join(sub)).map_err(io("cannot create", &out.join(sub)))?;
    }
    let abs = std::fs::canonicalize(out).map_err(io("cannot resolve", out))?;
    std::fs::write(
        out.join("keys/namespace.key"),
        format!("{DEMO_NAMESPACE_KEY}\n"),
    )
    .map_err(io("cannot write", out))?;
    for (name, text) in BUILTIN_TEMPLATES {
        std::fs::write(out.join(format!("label-templates/{name}.toml")), text)
            .map_err(io("cannot write", out))?;
    }
    let mut text = EMBEDDED_DEFAULT
        .replace(
            "templates_dir = \"../label-templates\"",
            "templates_dir = \"label-templates\"",
        )
        .replace("allow_dev_grants = false", "allow_dev_grants = true")
        // Any free port: a demo beside a running linemark must not collide.
        .replace("listen = \"127.0.0.1:8470\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "url = \"dir:///tmp/linemark-labels\"",
            &format!("url = \"dir://{}/labels\"", abs.display()),
        );
    for (port, station) in [
        ("7001", "provision-1"),
        ("7002", "functional-1"),
        ("7003", "final-1"),
    ] {
        text = text.replace(
            &format!("port = \"tcp://127.0.0.1:{port}\""),
            &format!("port = \"{}/ports/{station}\"", abs.display()),
        );
    }
    let path = out.join("linemark.toml");
    std::fs::write(&path, text).map_err(io("cannot write", &path))?;
    Config::load(&path)
        .map_err(|e| CliError::runtime(format!("the embedded default config does not load: {e}")))
}

/// A pseudo-terminal pair; the daemon opens `link`, the station uses the master.
fn pty(link: &Path) -> Result<Port, CliError> {
    let (master, slave) = tokio_serial::SerialStream::pair()
        .map_err(|e| CliError::runtime(format!("cannot make a pseudo-terminal: {e}")))?;
    let name = tokio_serial::SerialPort::name(&slave)
        .ok_or_else(|| CliError::runtime("pseudo-terminal without a name"))?;
    drop(slave);
    std::os::unix::fs::symlink(&name, link).map_err(io("cannot link", link))?;
    Ok(master)
}

async fn ok(
    c: &mut StationClient<Port>,
    verb: &str,
    fields: &[(&str, &str)],
) -> Result<crate::protocol::Response, CliError> {
    let r = c
        .request(verb, fields)
        .await
        .map_err(|e| CliError::runtime(format!("simulated station: {verb}: {e}")))?;
    if let crate::protocol::Response::Err { code, msg, .. } = &r {
        return Err(CliError::runtime(format!(
            "simulated station: {verb} refused: {} {msg}",
            code.as_str()
        )));
    }
    Ok(r)
}

/// Provisioning: ALLOC, BIND (serial, random MAC/UID, firmware), RESULT.
async fn provisioning(
    mut c: StationClient<Port>,
    units: u64,
    lot: String,
    tally: Arc<Tally>,
    next: tokio::sync::mpsc::Sender<String>,
) -> Result<StationClient<Port>, CliError> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    ok(&mut c, "HELLO", &[("fw", "prov-sim-1.0")]).await?;
    for i in 0..units {
        let a = ok(&mut c, "ALLOC", &[("product", "PACK-48V"), ("lot", &lot)]).await?;
        let unit = a.get("unit").unwrap_or_default().to_string();
        tally.allocated.fetch_add(1, Ordering::Relaxed);
        let mac = format!(
            "02:4C:{:02X}:{:02X}:{:02X}:{:02X}",
            rng.below(256),
            rng.below(256),
            i >> 8 & 0xff,
            i & 0xff
        );
        let uid = format!("{:016X}", rng.next());
        let serial = format!("SN{:06}", i + 1);
        let fwhash = format!("{:016x}{:016x}", rng.next(), rng.next());
        ok(
            &mut c,
            "BIND",
            &[
                ("unit", &unit),
                ("serial", &serial),
                ("mac", &mac),
                ("uid", &uid),
                ("fw", "2.1.0"),
                ("fwhash", &fwhash),
                ("lot.cell", "CELL-2026-118"),
            ],
        )
        .await?;
        let flash = format!("{}", 700 + rng.below(200));
        ok(
            &mut c,
            "RESULT",
            &[("unit", &unit), ("status", "PASS"), ("m.flash_ms", &flash)],
        )
        .await?;
        if next.send(unit).await.is_err() {
            break;
        }
    }
    Ok(c)
}

/// Functional test: measurements, about 6 % failures; half of those pass a
/// retest, the rest are scrapped.
async fn functional(
    mut c: StationClient<Port>,
    tally: Arc<Tally>,
    mut inbox: tokio::sync::mpsc::Receiver<String>,
    next: tokio::sync::mpsc::Sender<String>,
    done: Arc<AtomicU64>,
) -> Result<StationClient<Port>, CliError> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    while let Some(unit) = inbox.recv().await {
        let fail = rng.below(100) < 6;
        let v = if fail {
            46.0 + rng.below(100) as f64 / 100.0
        } else {
            47.8 + rng.below(50) as f64 / 100.0
        };
        let ir = format!("{:.1}", 10.0 + rng.below(30) as f64 / 10.0);
        let status = if fail { "FAIL" } else { "PASS" };
        ok(
            &mut c,
            "RESULT",
            &[
                ("unit", &unit),
                ("status", status),
                ("m.voltage", &format!("{v:.2}")),
                ("m.ir_mohm", &ir),
            ],
        )
        .await?;
        if fail {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            if rng.below(2) == 0 {
                tally.retested.fetch_add(1, Ordering::Relaxed);
                ok(
                    &mut c,
                    "RESULT",
                    &[
                        ("unit", &unit),
                        ("status", "PASS"),
                        ("m.voltage", "48.05"),
                        ("m.ir_mohm", &ir),
                    ],
                )
                .await?;
            } else {
                ok(
                    &mut c,
                    "SCRAP",
                    &[
                        ("unit", &unit),
                        ("reason", &format!("pack voltage {v:.2} V below 47.5 V")),
                    ],
                )
                .await?;
                tally.scrapped.fetch_add(1, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        if next.send(unit).await.is_err() {
            break;
        }
    }
    Ok(c)
}

/// Reads the QR code of a printed PNG label, as a scanner would.
fn scan_png(path: &Path) -> Option<String> {
    crate::label::scan::qr_text(&std::fs::read(path).ok()?)
}

/// Final test: FINAL PASS (the label is printed), then VERIFY the printed
/// label by scanning its PNG; one reprint for a smudged label.
async fn final_test(
    mut c: StationClient<Port>,
    labels: PathBuf,
    tally: Arc<Tally>,
    mut inbox: tokio::sync::mpsc::Receiver<String>,
    done: Arc<AtomicU64>,
) -> Result<StationClient<Port>, CliError> {
    let mut n = 0u64;
    while let Some(unit) = inbox.recv().await {
        n += 1;
        let f = ok(
            &mut c,
            "FINAL",
            &[
                ("unit", &unit),
                ("status", "PASS"),
                ("m.insulation_mohm", "520"),
            ],
        )
        .await?;
        tally.passed.fetch_add(1, Ordering::Relaxed);
        let mut job = f.get("label").unwrap_or_default().to_string();
        if n == 10 {
            let r = ok(
                &mut c,
                "REPRINT",
                &[
                    ("unit", &unit),
                    ("reason", "label smudged at the applicator"),
                ],
            )
            .await?;
            job = r.get("label").unwrap_or_default().to_string();
            tally.reprinted.fetch_add(1, Ordering::Relaxed);
        }
        let png = labels.join(format!("{unit}-{job}.png"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let scan = loop {
            if let Some(s) = scan_png(&png) {
                break s;
            }
            if Instant::now() > deadline {
                return Err(CliError::runtime(format!(
                    "label {} never appeared",
                    png.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        ok(&mut c, "VERIFY", &[("unit", &unit), ("scan", &scan)]).await?;
        tally.verified.fetch_add(1, Ordering::Relaxed);
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(c)
}

pub fn run(units: u64, out: &Path) -> Result<(), CliError> {
    if units == 0 || units > 100_000 {
        return Err(CliError::input("--units must be between 1 and 100000"));
    }
    let started = Instant::now();
    let shift_start = jiff::Timestamp::now();
    let cfg = prepare(out)?;
    // A development grant, imported before the line starts.
    let grant = super::blocks::sign_dev_grant(&cfg, (units * 2).max(10_000))?;
    {
        let j = Journal::open(JournalOptions::from_config(&cfg))?;
        j.import_grant_blocking(grant, &cfg.grant_policy().map_err(CliError::input)?, "demo")
            .map_err(CliError::runtime)?;
    }
    let labels = out.join("labels");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    let tally = Arc::new(Tally::default());
    let lot = format!(
        "L{}",
        jiff::Zoned::now()
            .with_time_zone(cfg.timezone.clone())
            .date()
            .strftime("%Y%m%d")
    );
    let result: Result<(), CliError> = rt.block_on(async {
        let ports = out.join("ports");
        let prov = pty(&ports.join("provision-1"))?;
        let func = pty(&ports.join("functional-1"))?;
        let fin = pty(&ports.join("final-1"))?;
        let daemon = Daemon::start(cfg.clone())
            .await
            .map_err(CliError::runtime)?;
        for s in ["provision-1", "functional-1", "final-1"] {
            let stats = daemon.station_stats(s).cloned();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !stats
                .as_ref()
                .is_some_and(|st| st.connected.load(Ordering::Acquire))
            {
                if Instant::now() > deadline {
                    return Err(CliError::runtime(format!(
                        "station {s} never opened its port"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let done = Arc::new(AtomicU64::new(0));
        let (to_func, func_in) = tokio::sync::mpsc::channel(8);
        let (to_final, final_in) = tokio::sync::mpsc::channel(8);
        let pb = progress_bar(units, "shift");
        let stations = tokio::spawn({
            let (t1, t2, t3) = (tally.clone(), tally.clone(), tally.clone());
            let (d1, d2) = (done.clone(), done.clone());
            let labels = labels.clone();
            let lot = lot.clone();
            async move {
                let p = provisioning(StationClient::new(prov, "prov"), units, lot, t1, to_func);
                let f = functional(StationClient::new(func, "func"), t2, func_in, to_final, d1);
                let x = final_test(StationClient::new(fin, "fin"), labels, t3, final_in, d2);
                let (a, b, c) = tokio::join!(p, f, x);
                Ok::<_, CliError>((a?, b?, c?))
            }
        });
        while !stations.is_finished() {
            pb.set_position(done.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pb.finish_and_clear();
        let r = stations
            .await
            .map_err(|e| CliError::runtime(format!("a simulated station stopped: {e}")))?;
        // The stations keep their ports open until the line has stopped.
        daemon.shutdown().await;
        r.map(drop)
    });
    result?;
    let reports = shift_report(&cfg, out, shift_start)?;
    summary(&cfg, &tally, out, started.elapsed())?;
    if let Some(html) = reports.first() {
        println!("  report      {html} (also .csv and .pdf)");
    }
    Ok(())
}

/// The demo's shift as a report (HTML, CSV, PDF) beside the labels.
fn shift_report(cfg: &Config, out: &Path, start: jiff::Timestamp) -> Result<Vec<String>, CliError> {
    let end = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_millis(1))
        .map_err(CliError::runtime)?;
    let w = crate::report::Window {
        name: "demo".into(),
        date: start.to_zoned(cfg.timezone.clone()).date(),
        start,
        end,
    };
    let conn = crate::journal::open_read_only(&cfg.journal_path())?;
    let r = crate::report::for_config(cfg, &conn, &w)?;
    let mut written = Vec::new();
    for (ext, bytes) in [
        ("html", crate::report::render::html(&r, None).into_bytes()),
        (
            "csv",
            crate::report::render::csv(&r).map_err(CliError::runtime)?,
        ),
        (
            "pdf",
            crate::report::render::pdf(&r).map_err(CliError::runtime)?,
        ),
    ] {
        let p = out.join(format!("shift-report.{ext}"));
        std::fs::write(&p, bytes).map_err(io("cannot write", &p))?;
        written.push(p.display().to_string());
    }
    Ok(written)
}

fn summary(cfg: &Config, t: &Tally, out: &Path, took: Duration) -> Result<(), CliError> {
    let conn = crate::journal::open_read_only(&cfg.journal_path())?;
    let count = |kind: &str| crate::journal::query::count_of_type(&conn, kind).unwrap_or(0) as i64;
    let left = crate::journal::query::ids_left(&conn).unwrap_or(0) as i64;
    let printed = count("LABEL_PRINTED");
    let files = std::fs::read_dir(out.join("labels"))
        .map(|d| d.count())
        .unwrap_or(0);
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let passed = g(&t.passed);
    let first_pass = passed.saturating_sub(g(&t.retested));
    println!(
        "linemark demo: one simulated shift on line {} ({})",
        cfg.line_id, cfg.facility
    );
    println!();
    println!("  units allocated        {:>6}", g(&t.allocated));
    println!("  final test passed      {:>6}", passed);
    println!(
        "  functional failures    {:>6}  ({} passed a retest, {} scrapped)",
        g(&t.failed),
        g(&t.retested),
        g(&t.scrapped)
    );
    println!(
        "  first-pass yield       {:>6.1} %",
        100.0 * first_pass as f64 / g(&t.allocated).max(1) as f64
    );
    println!(
        "  labels printed         {:>6}  ({} reprint; {} files as PNG, PDF and ZPL)",
        printed,
        g(&t.reprinted),
        files
    );
    println!(
        "  labels verified        {:>6}  (each printed QR scanned back and matched)",
        g(&t.verified)
    );
    println!(
        "  journal events         {:>6}",
        crate::journal::query::last_seq(&conn)?
    );
    println!("  IDs left               {:>6}", left);
    println!("  time                   {:>6.1} s", took.as_secs_f64());
    println!();
    let cfgp = out.join("linemark.toml");
    println!("Where to look:");
    println!("  labels      {}", out.join("labels").display());
    println!("  journal     {}", cfg.journal_path().display());
    println!(
        "  a unit      linemark unit show <ID> --config {}",
        cfgp.display()
    );
    println!(
        "  the chain   linemark journal verify --config {}",
        cfgp.display()
    );
    Ok(())
}
