//! The real `linemark run` process under load from 8 TCP stations: killed
//! with SIGKILL at random moments, and stopped with SIGTERM.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helper::{station_toml, wait_for, Line, Rng};
use linemark::client::StationClient;
use linemark::ids::{IdCodec, NamespaceKey};
use linemark::journal;

const STATIONS: usize = 8;

/// A line with 8 TCP stations on free ports.
fn line_with_tcp_stations() -> (Line, Vec<u16>) {
    let ports: Vec<u16> = (0..STATIONS)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let mut extra = String::new();
    for (i, p) in ports.iter().enumerate() {
        extra += &station_toml(
            &format!("s{i}"),
            &format!("tcp://127.0.0.1:{p}"),
            &["PING", "ALLOC", "BIND", "RESULT", "FINAL"],
            Some("provision"),
            "optional",
        );
    }
    let line = Line::with_config(&extra);
    {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 10_000_000);
    }
    (line, ports)
}

fn spawn_daemon(line: &Line) -> Child {
    Command::new(env!("CARGO_BIN_EXE_linemark"))
        .args(["run", "--config"])
        .arg(line.config_path())
        .env("LINEMARK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon starts")
}

/// What the stations were told `OK` to.
#[derive(Default)]
struct Acked {
    units: Vec<String>,
    macs: Vec<(String, String)>,
}

/// Eight stations allocating and binding as fast as they can until their
/// connection fails or `stop` is set.
async fn load(
    ports: Vec<u16>,
    round: usize,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tasks = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (acked, stop, port) = (acked.clone(), stop.clone(), *port);
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            let sock = loop {
                match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(s) => break s,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(5)).await
                    }
                    Err(e) => panic!("station {i} cannot connect: {e}"),
                }
            };
            let mut c = StationClient::new(sock, &format!("r{round}s{i}"));
            c.timeout = Duration::from_secs(3);
            c.tries = 1;
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(a) = c.request("ALLOC", &[("product", "PACK-48V")]).await else {
                    return;
                };
                let Some(unit) = a.get("unit").map(str::to_string) else {
                    return;
                };
                acked.lock().unwrap().units.push(unit.clone());
                n += 1;
                let mac = format!(
                    "02:{round:02X}:{i:02X}:{:02X}:{:02X}:{:02X}",
                    n >> 16 & 0xff,
                    n >> 8 & 0xff,
                    n & 0xff
                );
                let Ok(b) = c.request("BIND", &[("unit", &unit), ("mac", &mac)]).await else {
                    return;
                };
                if b.is_ok() {
                    acked.lock().unwrap().macs.push((unit, mac));
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn check_journal(line: &Line, acked: &Acked, round: usize) {
    let conn = journal::open_read_only(&line.db_path()).unwrap();
    let codec = IdCodec::new(&NamespaceKey::from_hex(crate::helper::NAMESPACE_KEY_HEX).unwrap());
    journal::verify::verify(&conn, &codec, |_, _| {})
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
    let units: HashSet<String> = crate::helper::units_in(&line.db_path())
        .into_iter()
        .collect();
    for u in &acked.units {
        assert!(
            units.contains(u),
            "round {round}: ALLOC of {u} was answered OK but is not in the journal"
        );
    }
    let mut st = conn
        .prepare("SELECT u.unit FROM bindings b JOIN units u ON u.idx = b.unit_idx WHERE b.field = 'mac' AND b.value = ?1")
        .unwrap();
    for (unit, mac) in &acked.macs {
        let bound: String = st
            .query_row([mac], |r| r.get(0))
            .unwrap_or_else(|_| panic!("round {round}: BIND {mac} lost"));
        assert_eq!(&bound, unit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_from_8_stations_loses_no_acknowledged_request() {
    let (line, ports) = line_with_tcp_stations();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut rng = Rng::seeded();
    let mut all_units: HashSet<String> = HashSet::new();
    for round in 0..20 {
        let mut daemon = spawn_daemon(&line);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = tokio::spawn(load(ports.clone(), round, acked.clone(), stop.clone()));
        let wait = Duration::from_millis(150 + rng.below(350));
        tokio::time::sleep(wait).await;
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = load.await;
        let a = acked.lock().unwrap();
        check_journal(&line, &a, round);
        for u in &a.units {
            all_units.insert(u.clone());
        }
        assert_eq!(
            all_units.len(),
            a.units.len(),
            "round {round}: a unit ID was handed out twice"
        );
    }
    assert!(
        all_units.len() > 100,
        "the load was too light to mean anything: {}",
        all_units.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_loses_nothing() {
    let (line, ports) = line_with_tcp_stations();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut daemon = spawn_daemon(&line);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn(load(ports.clone(), 0, acked.clone(), stop.clone()));
    wait_for("the stations to be allocating", || {
        acked.lock().unwrap().units.len() >= 100
    })
    .await;
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    let rc = unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = tokio::task::spawn_blocking(move || daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "linemark run exited with {status:?} after SIGTERM"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = load.await;
    check_journal(&line, &acked.lock().unwrap(), 0);
    // A clean stop releases the reservation: the high-water file equals use.
    let hw: serde_json::Value = serde_json::from_slice(
        &std::fs::read(line.data_dir().join("journal.db.highwater")).unwrap(),
    )
    .unwrap();
    let used = acked.lock().unwrap().units.len() as u64;
    assert!(
        hw["blocks"][crate::helper::block_uuid("b1")]
            .as_u64()
            .unwrap()
            >= used
    );
    assert!(
        hw["blocks"][crate::helper::block_uuid("b1")]
            .as_u64()
            .unwrap()
            <= used + STATIONS as u64,
        "{hw}"
    );
}
