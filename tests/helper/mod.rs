//! Test helpers: a temporary line (config, keys, data dir), signed grants,
//! running the real `linemark` binary, and a small seeded random source.

#![allow(dead_code)]

pub mod central;
pub mod cups;
pub mod modbus;
pub mod opcua;
pub mod postgres;
pub mod store;

use std::path::{Path, PathBuf};
use std::process::Output;

use ed25519_dalek::SigningKey;
use linemark::config::Config;
use linemark::ids::Grant;
use linemark::journal::{AllocError, AllocRequest, Journal, JournalOptions};

/// The SPEC test-vector namespace key.
pub const NAMESPACE_KEY_HEX: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const KEY_ID: &str = "630dcd2966c43366";
pub const LINE: &str = "P1-L03";

/// The SPEC test-vector grant, signed by the test-vector issuer.
pub const VECTOR_GRANT: &str = r#"{"grant_version": 1, "block_id": "018f3a2e-7c4d-7000-8000-000000000001", "namespace": "acme-batteries", "key_id": "630dcd2966c43366", "line_id": "P1-L03", "start": 1048576, "count": 65536, "issued_at": "2026-11-20T08:00:00Z", "issuer": "central", "signature": "eKfMtPmmBOelZlUssGl2nFtabx1SEMCpHxqFmX6xqlcwCwbacKeIEveD9uLjRgpwrLVUjZjhf2387F1BxIfCCA=="}"#;

/// The test-vector issuer (seed = 32 bytes of 0x07).
pub fn issuer() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// The block ID (a UUID, as grants require) a test calls `name`: the
/// name's bytes in a version-8 UUID, so tests can name blocks `b1`, `b2`.
pub fn block_uuid(name: &str) -> String {
    let mut bytes = [0u8; 16];
    for (b, c) in bytes.iter_mut().zip(name.bytes()) {
        *b = c;
    }
    uuid::Uuid::new_v8(bytes).to_string()
}

/// A grant for this line's key, signed by the test issuer.
pub fn grant(name: &str, start: u64, count: u64) -> Grant {
    let mut g = Grant {
        grant_version: 1,
        block_id: block_uuid(name),
        namespace: "acme-batteries".into(),
        key_id: KEY_ID.into(),
        line_id: LINE.into(),
        start,
        count,
        issued_at: "2026-11-20T08:00:00Z".into(),
        issuer: "central".into(),
        signature: String::new(),
    };
    g.sign(&issuer());
    g
}

/// A line in a temporary folder: `config/linemark.toml`, keys, data dir.
pub struct Line {
    pub dir: tempfile::TempDir,
    pub extra_config: String,
}

pub const BASE_CONFIG: &str = r#"line_id = "P1-L03"
facility = "Test hall"
data_dir = "../var"
resolver = "https://id.example.com"
timezone = "Europe/Berlin"

[ids]
namespace_key_file = "keys/namespace.key"
namespace = "acme-batteries"
issuer_public_key = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
low_water = 10
reserve_ahead = 50

[[product]]
key = "PACK-48V"
gtin = "09506000134352"
level = "item"
template = "pack-50x30"
required_steps = ["provision", "functional"]

[web]
listen = "127.0.0.1:0"
"#;

impl Line {
    pub fn new() -> Line {
        Self::with_config("")
    }

    /// A line whose config is the base plus `extra` (appended, or replacing
    /// `[ids]` lines when it starts with a key of that table).
    pub fn with_config(extra: &str) -> Line {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = dir.path().join("config");
        std::fs::create_dir_all(cfg.join("keys")).expect("config dir");
        std::fs::write(
            cfg.join("keys/namespace.key"),
            format!("{NAMESPACE_KEY_HEX}\n"),
        )
        .expect("key");
        let line = Line {
            dir,
            extra_config: extra.to_string(),
        };
        line.write_config(&format!("{BASE_CONFIG}{extra}"));
        line
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("config");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/linemark.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("var")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("journal.db")
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path()).expect("valid test config")
    }

    pub fn open(&self) -> Journal {
        Journal::open(JournalOptions::from_config(&self.config())).expect("journal opens")
    }

    /// Writes a grant file in the line's folder and returns its path.
    pub fn grant_file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("grant file");
        p
    }

    /// Runs the real binary with `--config` added at the end.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_linemark"));
        cmd.args(args)
            .arg("--config")
            .arg(self.config_path())
            .env("LINEMARK_LOG", "warn")
            .current_dir(self.dir.path());
        cmd.output().expect("linemark runs")
    }
}

/// One unit of PACK-48V from the provisioning station.
pub fn pack() -> AllocRequest<'static> {
    AllocRequest {
        product: "PACK-48V",
        gtin: "09506000134352",
        level: "item",
        lot: Some("L1"),
        station: Some("provision-1"),
        actor: "station:provision-1",
    }
}

/// Allocates one unit of PACK-48V.
pub fn alloc(j: &Journal) -> Result<String, AllocError> {
    j.write_blocking(|tx| tx.allocate(&pack()).map(|a| a.unit))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A small deterministic random source (xorshift64*), seeded per test so a
/// failure can be replayed from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        let seed = std::env::var("LINEMARK_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("random seed {seed} (replay with LINEMARK_TEST_SEED={seed})");
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every unit in the journal, by reading its state table directly.
pub fn units_in(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).expect("db");
    let mut s = c.prepare("SELECT unit FROM units").expect("query");
    s.query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<Vec<String>, _>>()
        .expect("units")
}

/// Count of events of one type.
pub fn count_events(db: &Path, kind: &str) -> i64 {
    let c = rusqlite::Connection::open(db).expect("db");
    c.query_row("SELECT COUNT(*) FROM events WHERE type = ?1", [kind], |r| {
        r.get(0)
    })
    .expect("count")
}

/// A child process (this test binary, re-run on one ignored test) that
/// allocates from several threads and prints `ID <unit>` after each commit.
pub struct Allocator {
    pub child: std::process::Child,
    pub ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Allocator {
    pub fn spawn(line: &Line) -> Allocator {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "suite::crash::allocating_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LINEMARK_CRASH_CHILD", line.config_path())
            .env("LINEMARK_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child starts");
        let out = child.stdout.take().expect("stdout");
        let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = ids.clone();
        let reader = std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(id) = l.strip_prefix("ID ") {
                    sink.lock().expect("ids").push(id.to_string());
                }
            }
        });
        Allocator {
            child,
            ids,
            reader: Some(reader),
        }
    }

    pub fn printed(&self) -> usize {
        self.ids.lock().expect("ids").len()
    }

    /// SIGKILL, then every ID the child printed before it died.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let ids = self.ids.lock().expect("ids").clone();
        ids
    }
}

/// A pseudo-terminal pair: the daemon opens `link` (a symlink to the slave,
/// like /dev/serial/by-id/...), the test speaks through `master`.
pub struct Pty {
    pub master: tokio_serial::SerialStream,
    pub link: PathBuf,
}

impl Pty {
    /// Creates a pty and points `link` at its slave (replacing an old link).
    pub fn new(link: &Path) -> Pty {
        let (master, slave) = tokio_serial::SerialStream::pair().expect("pty pair");
        let name = tokio_serial::SerialPort::name(&slave).expect("slave name");
        // The slave is opened exclusively; the daemon must be able to open it.
        drop(slave);
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&name, link).expect("symlink");
        Pty {
            master,
            link: link.to_path_buf(),
        }
    }
}

/// A `[[station]]` block.
pub fn station_toml(
    name: &str,
    port: &str,
    allow: &[&str],
    step: Option<&str>,
    checksum: &str,
) -> String {
    let allow: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
    let step = step
        .map(|s| format!("step = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        "\n[[station]]\nname = \"{name}\"\nport = \"{port}\"\nchecksum = \"{checksum}\"\nallow = [{}]\n{step}",
        allow.join(", ")
    )
}

/// Waits until a station's port is open in the daemon.
pub async fn wait_connected(d: &linemark::daemon::Daemon, station: &str) {
    let stats = d.station_stats(station).expect("station").clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !stats.connected.load(std::sync::atomic::Ordering::Acquire) {
        assert!(
            std::time::Instant::now() < deadline,
            "station {station} never connected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// How the fake Zebra printer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZebraMode {
    Ready,
    PaperOut,
    HeadOpen,
    Paused,
    RibbonOut,
    /// Accepts the connection and never answers `~HS`.
    Silent,
    /// Answers `~HS` as ready, then drops the connection mid-job.
    DropMidJob,
}

/// A fake Zebra printer on loopback: answers `~HS` per its mode and keeps
/// every complete label (`^XA ... ^XZ`) it receives, in order.
pub struct FakeZebra {
    pub addr: std::net::SocketAddr,
    pub mode: std::sync::Arc<std::sync::Mutex<ZebraMode>>,
    pub labels: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeZebra {
    pub async fn start() -> FakeZebra {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mode = std::sync::Arc::new(std::sync::Mutex::new(ZebraMode::Ready));
        let labels = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (m, l) = (mode.clone(), labels.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (m, l) = (m.clone(), l.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let mode = *m.lock().unwrap();
                    let status = |paper_out, paused, head_open, ribbon_out| {
                        linemark::printer::zebra::answer(linemark::printer::zebra::HostStatus {
                            paper_out,
                            paused,
                            head_open,
                            ribbon_out,
                        })
                    };
                    loop {
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        // Handle commands in the order they arrived.
                        loop {
                            let hs = find(&buf, b"~HS");
                            let xa = find(&buf, b"^XA");
                            match (hs, xa) {
                                (Some(h), x) if x.is_none_or(|x| h < x) => {
                                    buf.drain(..h + 3);
                                    let answer = match mode {
                                        ZebraMode::Ready | ZebraMode::DropMidJob => {
                                            status(false, false, false, false)
                                        }
                                        ZebraMode::PaperOut => status(true, false, false, false),
                                        ZebraMode::Paused => status(false, true, false, false),
                                        ZebraMode::HeadOpen => status(false, false, true, false),
                                        ZebraMode::RibbonOut => status(false, false, false, true),
                                        ZebraMode::Silent => continue,
                                    };
                                    if sock.write_all(&answer).await.is_err() {
                                        return;
                                    }
                                }
                                (_, Some(a)) => {
                                    if mode == ZebraMode::DropMidJob {
                                        return; // hang up in the middle of the label
                                    }
                                    let Some(z) = find(&buf[a..], b"^XZ") else {
                                        break;
                                    };
                                    l.lock().unwrap().push(
                                        String::from_utf8_lossy(&buf[a..a + z + 3]).into_owned(),
                                    );
                                    buf.drain(..a + z + 3);
                                }
                                _ => break,
                            }
                        }
                    }
                });
            }
        });
        FakeZebra { addr, mode, labels }
    }

    pub fn set(&self, mode: ZebraMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn received(&self) -> Vec<String> {
        self.labels.lock().unwrap().clone()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The unit ID printed as text in a ZPL label (the `^FD` of a field that
/// is a 13-character ID).
pub fn unit_in_zpl(zpl: &str) -> Option<String> {
    zpl.split("^FD")
        .filter_map(|f| f.split("^FS").next())
        .find(|f| f.len() == 13 && linemark::ids::UnitId::parse(f).is_ok())
        .map(str::to_string)
}

/// Connects to a station port of a `linemark run` child once it listens
/// (it needs a moment to open the journal and bind).
pub async fn connect_when_up(port: u16) -> tokio::net::TcpStream {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => return s,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("linemark run never listened on port {port}: {e}"),
        }
    }
}

/// `[upstream]` for the fake store at `url`: a token file, short
/// time-outs and back-off from 20 ms, so fault scripts run quickly.
pub fn upstream_toml(url: &str, mode: &str) -> String {
    format!(
        r#"
[upstream]
url = "{url}"
token_file = "keys/upstream.token"
mode = "{mode}"
interval_s = 1
request_timeout_s = 4
connect_timeout_s = 2
retry_initial_ms = 20
retry_max_s = 1
attempts = 30
block_count = 1000
"#
    )
}

/// A line whose upstream is `url`, with the fake store's token in place.
pub fn line_with_upstream(url: &str, mode: &str, extra: &str) -> Line {
    let line = Line::with_config(&format!("{extra}{}", upstream_toml(url, mode)));
    std::fs::write(
        line.path().join("config/keys/upstream.token"),
        format!("{}\n", store::TOKEN),
    )
    .expect("token file");
    line
}

/// Allocates `units` units in jobs of 1,000 (one ALLOCATED event each).
pub fn fill(j: &Journal, units: u64) {
    let mut left = units;
    while left > 0 {
        let n = left.min(1000);
        j.write_blocking(move |tx| {
            for _ in 0..n {
                tx.allocate(&pack())?;
            }
            Ok::<(), AllocError>(())
        })
        .expect("allocations");
        left -= n;
    }
}

/// Every event hash in the journal, by seq.
pub fn journal_hashes(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).expect("db");
    let mut s = c
        .prepare("SELECT hash FROM events ORDER BY seq")
        .expect("sql");
    let rows = s
        .query_map([], |r| r.get::<_, String>(0))
        .expect("sql")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    rows
}

/// Allocates a unit and passes its required steps; returns the ID.
pub async fn ready_unit<S>(c: &mut linemark::client::StationClient<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let u = c
        .request("ALLOC", &[("product", "PACK-48V"), ("lot", "L1")])
        .await
        .unwrap()
        .get("unit")
        .unwrap()
        .to_string();
    for step in ["provision", "functional"] {
        assert!(c
            .request(
                "RESULT",
                &[("unit", &u), ("step", step), ("status", "PASS")]
            )
            .await
            .unwrap()
            .is_ok());
    }
    u
}

/// Waits (polling every 20 ms, at most 20 s) until `f` holds.
pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A free loopback TCP port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `linemark run` on the line's config as a child process, with its
/// open-file limit (soft and hard) set to `nofile`, logging to a file.
pub fn spawn_daemon(line: &Line, nofile: u64) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(line.path().join("daemon.log")).expect("log file");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_linemark"));
    cmd.args(["run", "--config"])
        .arg(line.config_path())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: setrlimit is async-signal-safe; it only changes the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("linemark run starts")
}

/// A private tmpfs of `size` (e.g. "16m") mounted on a temporary folder,
/// unmounted on drop. `None` (after a loud SKIPPED line) where mounting is
/// not allowed, e.g. a developer's laptop without root; CI runs as root.
pub struct TmpMount {
    pub dir: tempfile::TempDir,
}

impl TmpMount {
    pub fn new(test: &str, size: &str) -> Option<TmpMount> {
        let dir = tempfile::tempdir().expect("mount point");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "none"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: {test}: cannot mount a tmpfs here (needs root, as CI has)");
            return None;
        }
        Some(TmpMount { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts read-only (`true`) or read-write.
    pub fn set_read_only(&self, ro: bool) {
        let opt = if ro { "remount,ro" } else { "remount,rw" };
        let ok = std::process::Command::new("mount")
            .args(["-o", opt])
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount -o {opt} failed");
    }
}

impl Drop for TmpMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

impl Line {
    /// Imports the test issuer's grant for block `name` into this line.
    pub fn grant_block(&self, name: &str, start: u64, count: u64) {
        self.grant_into(&self.open(), name, start, count);
    }

    /// Imports a signed block grant into this line's open journal `j`.
    pub fn grant_into(&self, j: &Journal, name: &str, start: u64, count: u64) {
        j.import_grant_blocking(
            grant(name, start, count),
            &self.config().grant_policy().expect("policy"),
            "test",
        )
        .expect("grant imports");
    }
}

/// `ALLOC product=PACK-48V`, asserting OK; the unit's ID.
pub async fn alloc_unit<S>(c: &mut linemark::client::StationClient<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let a = ok(c, "ALLOC", &[("product", "PACK-48V")]).await;
    a.get("unit").expect("unit=").to_string()
}

/// Sends a request that must be answered OK; panics naming the request
/// and the answer otherwise. Answers the OK.
pub async fn ok<S>(
    c: &mut linemark::client::StationClient<S>,
    verb: &str,
    fields: &[(&str, &str)],
) -> linemark::protocol::Response
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let a = c
        .request(verb, fields)
        .await
        .unwrap_or_else(|e| panic!("{verb} {fields:?}: no answer: {e}"));
    assert!(a.is_ok(), "{verb} {fields:?} was refused: {a:?}");
    a
}

/// A station client on the daemon's TCP station `station`; `prefix` keeps
/// its `req=` tokens apart from other clients'.
pub async fn connect(
    d: &linemark::daemon::Daemon,
    station: &str,
    prefix: &str,
) -> linemark::client::StationClient<tokio::net::TcpStream> {
    let addr = d
        .tcp_addr(station)
        .unwrap_or_else(|| panic!("no TCP station {station}"));
    let sock = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to station {station}: {e}"));
    linemark::client::StationClient::new(sock, prefix)
}

/// A station `t` on `port` allowed `allow`, printing on printer `p1` at
/// `printer_url` (the config lines, to append to a line's config).
pub fn printing_station(port: &str, allow: &[&str], printer_url: &str) -> String {
    let mut extra = station_toml("t", port, allow, None, "optional");
    extra += "printer = \"p1\"\n";
    extra += &format!("\n[[printer]]\nname = \"p1\"\nurl = \"{printer_url}\"\n");
    extra
}
