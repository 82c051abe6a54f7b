//! PLC gateway benchmark (issues 17 and 18): Alloc and Final round trips
//! through OPC UA (policy None, and Basic256Sha256 SignAndEncrypt with a
//! signed-in user) and through a Modbus mailbox (write, poll, read) beside
//! the TCP station protocol's ALLOC and FINAL, interleaved in the same run
//! on the same daemon, with the disk's fsync probed before and after. A
//! bench binary: `cargo bench --bench plc`.

use std::path::Path;
use std::time::{Duration, Instant};

use linemark::client::StationClient;
use linemark::config::Config;
use linemark::daemon::Daemon;

mod common;
use common::{bench_dir, fsync_probe, pct};

#[allow(dead_code)]
#[path = "../tests/helper/modbus.rs"]
mod modbus_client;
#[allow(dead_code)]
#[path = "../tests/helper/opcua.rs"]
mod opcua_client;
use modbus_client::Mailbox;
use opcua_client::{arr, connect, s, Auth, Plc};

const ROUNDS: usize = 400;
const PASSWORD: &str = "bench-plc-password";

/// One PLC station and one TCP station (ALLOC, FINAL; no required steps,
/// no printer), the OPC UA server with anonymous and one user, a block.
fn config(dir: &Path) -> Config {
    std::fs::write(dir.join("keys/namespace.key"), common::KEY_HEX).expect("key");
    let hash = linemark::plc::opcua::auth::hash_password(PASSWORD).expect("hash");
    let text = format!(
        r#"line_id = "P1-L03"
data_dir = "var"
resolver = "https://id.example.com"
[ids]
namespace_key_file = "keys/namespace.key"
issuer_public_key = "{issuer}"
[[product]]
key = "PACK-48V"
gtin = "09506000134352"
level = "item"
template = "pack-50x30"
required_steps = []
[[station]]
name = "plc"
port = "plc"
allow = ["ALLOC", "FINAL"]
step = "final"
[[station]]
name = "mailbox"
port = "plc"
modbus_slot = 1
allow = ["ALLOC", "FINAL"]
step = "final"
[[station]]
name = "tcp"
port = "tcp://127.0.0.1:0"
allow = ["ALLOC", "FINAL"]
step = "final"
[plc.modbus]
listen = "127.0.0.1:0"
[plc.opcua]
listen = "127.0.0.1:0"
allow_anonymous = true
[[plc.opcua.user]]
name = "bench"
password_hash = "{hash}"
"#,
        issuer = hex::encode(common::issuer().verifying_key().to_bytes())
    );
    let path = dir.join("linemark.toml");
    std::fs::write(&path, text).expect("config");
    let cfg = Config::load(&path).expect("config");
    let j = linemark::journal::Journal::open(linemark::journal::JournalOptions::from_config(&cfg))
        .expect("journal");
    common::grant_into(&j);
    drop(j);
    cfg
}

#[derive(Default)]
struct Times {
    alloc: Vec<Duration>,
    fin: Vec<Duration>,
}

async fn opcua_round(plc: &Plc, t: &mut Times) {
    let start = Instant::now();
    let a = plc
        .call("Alloc", vec![s("plc"), s("PACK-48V"), s(""), s("")])
        .await;
    t.alloc.push(start.elapsed());
    a.assert_ok("Alloc");
    let unit = a.text(0);
    let start = Instant::now();
    let f = plc
        .call(
            "Final",
            vec![s("plc"), s(&unit), s("PASS"), arr(&[]), arr(&[]), s("")],
        )
        .await;
    t.fin.push(start.elapsed());
    f.assert_ok("Final");
}

async fn modbus_round(mb: &mut Mailbox, t: &mut Times) {
    let start = Instant::now();
    let a = mb.request(1, "product=PACK-48V").await;
    t.alloc.push(start.elapsed());
    assert_eq!(a.result, 0, "{a:?}");
    let unit = a.field("unit").expect("unit");
    let start = Instant::now();
    let f = mb.request(4, &format!("unit={unit} status=PASS")).await;
    t.fin.push(start.elapsed());
    assert_eq!(f.result, 0, "{f:?}");
}

async fn tcp_round(c: &mut StationClient<tokio::net::TcpStream>, t: &mut Times) {
    let start = Instant::now();
    let a = c
        .request("ALLOC", &[("product", "PACK-48V")])
        .await
        .expect("alloc");
    t.alloc.push(start.elapsed());
    let unit = a.get("unit").expect("unit").to_string();
    let start = Instant::now();
    let f = c
        .request("FINAL", &[("unit", &unit), ("status", "PASS")])
        .await
        .expect("final");
    t.fin.push(start.elapsed());
    assert!(f.is_ok(), "{f:?}");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = bench_dir("plc");
    let cfg = config(&dir);
    let data_dir = cfg.data_dir.clone();
    rt.block_on(async {
        let daemon = Daemon::start(cfg).await.expect("daemon");
        let url = format!(
            "opc.tcp://{}/linemark",
            daemon.opcua_addr().expect("OPC UA")
        );
        let plain = connect(&url, &dir.join("client-plain"), Auth::Anonymous)
            .await
            .expect("anonymous session");
        // The secure client's certificate is trusted as an administrator
        // would (`linemark plc trust`) after its first refused attempt.
        let pki = dir.join("client-secure");
        let _ = connect(&url, &pki, Auth::User("bench", PASSWORD)).await;
        linemark::plc::opcua::trust::trust(&data_dir, &pki.join("own/cert.der")).expect("trust");
        let secure = connect(&url, &pki, Auth::User("bench", PASSWORD))
            .await
            .expect("encrypted session");
        let tcp_addr = daemon.tcp_addr("tcp").expect("tcp station");
        let mut tcp = StationClient::new(
            tokio::net::TcpStream::connect(tcp_addr)
                .await
                .expect("connect"),
            "bench",
        );
        let mut mailbox = Mailbox::connect(daemon.modbus_addr().expect("Modbus"), 1).await;
        // Poll B+200 back to back: the line's turnaround, not a PLC cycle.
        mailbox.poll = Duration::ZERO;
        // Warm-up, then interleave so all four see the same disk.
        let mut warm = Times::default();
        for _ in 0..20 {
            opcua_round(&plain, &mut warm).await;
            opcua_round(&secure, &mut warm).await;
            modbus_round(&mut mailbox, &mut warm).await;
            tcp_round(&mut tcp, &mut warm).await;
        }
        let fsync_before = fsync_probe(&dir, 200);
        let (mut p, mut e, mut m, mut t) = (
            Times::default(),
            Times::default(),
            Times::default(),
            Times::default(),
        );
        for _ in 0..ROUNDS {
            opcua_round(&plain, &mut p).await;
            opcua_round(&secure, &mut e).await;
            modbus_round(&mut mailbox, &mut m).await;
            tcp_round(&mut tcp, &mut t).await;
        }
        let fsync_after = fsync_probe(&dir, 200);
        let mut fs: Vec<Duration> = fsync_before.into_iter().chain(fsync_after).collect();
        println!(
            "fsync (4 KiB fdatasync) p50 {:?} p99 {:?}",
            pct(&mut fs, 0.5),
            pct(&mut fs, 0.99)
        );
        println!("{ROUNDS} rounds each, interleaved; round trip as the client sees it");
        println!("{:<46} {:>10} {:>10}", "", "p50", "p99");
        for (name, times) in [
            ("OPC UA None/anonymous", &mut p),
            ("OPC UA Basic256Sha256 SignAndEncrypt", &mut e),
            ("Modbus mailbox (write, poll, read)", &mut m),
            ("TCP station protocol", &mut t),
        ] {
            for (verb, v) in [("Alloc", &mut times.alloc), ("Final", &mut times.fin)] {
                println!(
                    "{:<46} {:>10.3?} {:>10.3?}",
                    format!("{name}: {verb}"),
                    pct(v, 0.5),
                    pct(v, 0.99)
                );
            }
        }
        drop((plain, secure));
        daemon.shutdown().await;
    });
}
