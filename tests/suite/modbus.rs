//! The Modbus TCP mailboxes (SPEC section 12) with tokio-modbus's client
//! over TCP: a unit's life, the handshake, refusals, illegal addresses,
//! two slots at once, a PLC restart, and a SIGKILL during a burst.

use std::collections::BTreeSet;

use linemark::daemon::Daemon;
use tokio_modbus::client::Reader;
use tokio_modbus::ExceptionCode;

use crate::helper::modbus::Mailbox;
use crate::helper::*;

const ALLOC: u16 = 1;
const BIND: u16 = 2;
const RESULT: u16 = 3;
const FINAL: u16 = 4;
const REPRINT: u16 = 5;
const VERIFY: u16 = 6;
const SCRAP: u16 = 7;
const SHIP: u16 = 8;
const REPLACE: u16 = 9;
const STATUS: u16 = 10;
const PING: u16 = 11;

/// Two PLC stations with mailboxes in slots 1 (every verb, printer `p1`)
/// and 2 (ALLOC only), and the server on `listen`.
fn modbus_line(labels: &std::path::Path, listen: &str) -> Line {
    let extra = format!(
        r#"
[[station]]
name = "cell1"
port = "plc"
modbus_slot = 1
allow = ["ALLOC", "BIND", "RESULT", "FINAL", "REPRINT", "VERIFY", "SCRAP", "SHIP", "REPLACE", "STATUS", "PING"]
printer = "p1"

[[station]]
name = "cell2"
port = "plc"
modbus_slot = 2
allow = ["ALLOC"]

[[printer]]
name = "p1"
url = "dir://{}"

[plc.modbus]
listen = "{listen}"
"#,
        labels.display()
    );
    let line = Line::with_config(&extra);
    line.grant_block("b1", 0, 1000);
    line
}

async fn start(line: &Line) -> (Daemon, std::net::SocketAddr) {
    let d = Daemon::start(line.config()).await.expect("daemon starts");
    let addr = d.modbus_addr().expect("Modbus listens");
    (d, addr)
}

fn events(line: &Line) -> i64 {
    let db = rusqlite::Connection::open(line.db_path()).expect("journal");
    db.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_lives_its_whole_life_through_a_mailbox() {
    let labels = tempfile::tempdir().unwrap();
    let line = modbus_line(labels.path(), "127.0.0.1:0");
    let (d, addr) = start(&line).await;
    let mut mb = Mailbox::connect(addr, 1).await;

    assert_eq!(mb.ok(PING, "").await.text, "");
    let a = mb.ok(ALLOC, "product=PACK-48V lot=L1 req=a1").await;
    let unit = a.field("unit").expect("unit=");
    assert_eq!(
        a.field("uri").unwrap(),
        format!("https://id.example.com/01/09506000134352/10/L1/21/{unit}")
    );
    let (m1, m2) = (
        mb.ok(ALLOC, "product=PACK-48V")
            .await
            .field("unit")
            .unwrap(),
        mb.ok(ALLOC, "product=PACK-48V")
            .await
            .field("unit")
            .unwrap(),
    );
    mb.ok(
        BIND,
        &format!("unit={unit} serial=SN%20001 mac=00-1b-63-84-45-e6 lot.cell=CELL-77 child={m1}"),
    )
    .await;
    mb.ok(
        RESULT,
        &format!("unit={unit} step=provision status=PASS m.voltage=48.1"),
    )
    .await;
    mb.ok(RESULT, &format!("unit={unit} step=functional status=PASS"))
        .await;
    let f = mb
        .ok(FINAL, &format!("unit={unit} status=PASS m.ir=0.8"))
        .await;
    let job: u64 = f.field("label").expect("label=").parse().unwrap();
    assert!(job > 0);
    let uri = a.field("uri").unwrap();
    mb.ok(VERIFY, &format!("unit={unit} scan={uri}")).await;
    let r = mb.ok(REPRINT, &format!("unit={unit} reason=smudged")).await;
    assert!(r.field("label").is_some(), "{r:?}");
    mb.ok(
        REPLACE,
        &format!("unit={unit} old={m1} new={m2} reason=drift"),
    )
    .await;
    mb.ok(SHIP, &format!("unit={unit} shipment=SH-1 to=Acme%20GmbH"))
        .await;
    let m3 = mb
        .ok(ALLOC, "product=PACK-48V")
        .await
        .field("unit")
        .unwrap();
    mb.ok(SCRAP, &format!("unit={m3} reason=dropped")).await;
    let st = mb.ok(STATUS, "").await;
    assert_eq!(st.field("printer").as_deref(), Some("ready"), "{st:?}");
    assert!(st.field("ids_left").is_some());
    d.shutdown().await;

    let out = stdout(&line.cli(&["unit", "show", &unit]));
    for want in [
        "SN 001",
        "00:1B:63:84:45:E6",
        "CELL-77",
        "voltage",
        "FINAL_PASS",
        "LABEL_VERIFIED",
        "LABEL_REPRINTED",
        "CHILD_REPLACED",
        "Acme GmbH",
        "station:cell1",
    ] {
        assert!(out.contains(want), "unit show lacks {want:?}:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_sequence_number_runs_nothing_and_refusals_change_nothing() {
    let labels = tempfile::tempdir().unwrap();
    let line = modbus_line(labels.path(), "127.0.0.1:0");
    let (d, addr) = start(&line).await;
    let mut mb = Mailbox::connect(addr, 1).await;
    let first = mb.ok(ALLOC, "product=PACK-48V").await;
    let before = events(&line);
    // The same number again, even with other fields: nothing runs and the
    // answer stays the first one.
    mb.send(ALLOC, "product=PACK-48V lot=L9", mb.seq).await;
    mb.write(0, &[mb.seq]).await.unwrap();
    assert_eq!(mb.wait_answer(mb.seq).await, first);
    // 0 never runs anything.
    mb.send(ALLOC, "product=PACK-48V", 0).await;
    assert_eq!(
        events(&line),
        before,
        "no event from a repeated number or 0"
    );

    let unit = first.field("unit").unwrap();
    for (verb, fields, number, code) in [
        (ALLOC, "product=NOPE", 11, "E_UNKNOWN_PRODUCT"),
        (42, "product=PACK-48V", 12, "E_BAD_FRAME"),
        (ALLOC, "product", 12, "E_BAD_FRAME"),
        (ALLOC, "product=PACK-48V lot=L1 lot=L2", 12, "E_BAD_FRAME"),
        (
            SCRAP,
            &format!("unit={unit} reason=%zz") as &str,
            13,
            "E_BAD_VALUE",
        ),
        (
            FINAL,
            &format!("unit={unit} status=PASS") as &str,
            6,
            "E_ROUTE",
        ),
        (SHIP, "unit=V700QW11S6PJ4 shipment=S", 10, "E_UNKNOWN_UNIT"),
        (
            SCRAP,
            &format!("unit={unit} reason=x req={}", "r".repeat(65)) as &str,
            13,
            "E_BAD_VALUE",
        ),
    ] {
        let a = mb.request(verb, fields).await;
        assert_eq!(a.result, number, "{verb} {fields}: {a:?}");
        assert_eq!(a.field("code").as_deref(), Some(code), "{a:?}");
        assert!(a.field("msg").is_some(), "{a:?}");
    }
    let route = mb.request(FINAL, &format!("unit={unit} status=PASS")).await;
    assert_eq!(
        route.field("missing").as_deref(),
        Some("provision,functional"),
        "{route:?}"
    );
    // A station may only use its verbs.
    let mut other = Mailbox::connect(addr, 2).await;
    let a = other.request(PING, "").await;
    assert_eq!(
        (a.result, a.field("code").as_deref()),
        (1, Some("E_NOT_ALLOWED"))
    );
    assert_eq!(events(&line), before, "no refusal wrote an event");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_outside_a_mailbox_and_answer_writes_are_illegal_addresses() {
    let labels = tempfile::tempdir().unwrap();
    let line = modbus_line(labels.path(), "127.0.0.1:0");
    let (d, addr) = start(&line).await;
    let mut mb = Mailbox::connect(addr, 1).await;
    let illegal: Result<(), ExceptionCode> = Err(ExceptionCode::IllegalDataAddress);
    for (addr, n) in [
        (0u16, 1u16),
        (999, 2),
        (1130, 1),
        (1129, 2),
        (1199, 1),
        (1330, 1),
        (3000, 1),
    ] {
        let r = mb
            .ctx
            .read_holding_registers(addr, n)
            .await
            .expect("answered");
        assert_eq!(r, Err(ExceptionCode::IllegalDataAddress), "read {addr}+{n}");
    }
    for offset in [200, 201, 250, 329] {
        assert_eq!(mb.write(offset, &[7]).await, illegal, "write B+{offset}");
    }
    assert_eq!(mb.write(129, &[1, 2]).await, illegal, "a write past B+129");
    let coils = mb.ctx.read_coils(1000, 1).await.expect("answered");
    assert_eq!(coils, Err(ExceptionCode::IllegalFunction));
    // Still serving, and what was refused changed nothing.
    assert_eq!(mb.read(200, 2).await.unwrap(), vec![0, 0]);
    mb.ok(PING, "").await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_slots_allocate_at_once_forty_distinct_units() {
    let labels = tempfile::tempdir().unwrap();
    let line = modbus_line(labels.path(), "127.0.0.1:0");
    let (d, addr) = start(&line).await;
    let mut tasks = Vec::new();
    for slot in [1u16, 2] {
        tasks.push(tokio::spawn(async move {
            let mut mb = Mailbox::connect(addr, slot).await;
            let mut units = Vec::new();
            for i in 0..20 {
                let a = mb
                    .ok(ALLOC, &format!("product=PACK-48V req=s{slot}-{i}"))
                    .await;
                units.push(a.field("unit").expect("unit"));
            }
            units
        }));
    }
    let mut all = BTreeSet::new();
    for t in tasks {
        all.extend(t.await.expect("slot task"));
    }
    assert_eq!(all.len(), 40, "40 ALLOCs, 40 distinct units");
    d.shutdown().await;
    assert_eq!(count_events(&line.db_path(), "ALLOCATED"), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_plc_starting_at_one_with_the_same_req_gets_the_first_answer() {
    let labels = tempfile::tempdir().unwrap();
    let line = modbus_line(labels.path(), "127.0.0.1:0");
    let (d, addr) = start(&line).await;
    let mut mb = Mailbox::connect(addr, 1).await;
    let mut first = Vec::new();
    for i in 1..=5 {
        first.push(mb.ok(ALLOC, &format!("product=PACK-48V req=plc-{i}")).await);
    }
    let allocated = count_events(&line.db_path(), "ALLOCATED");
    // The PLC restarts: a new connection, its counters back at 1.
    drop(mb);
    let mut mb = Mailbox::connect(addr, 1).await;
    for (i, want) in first.iter().enumerate() {
        let again = mb
            .ok(ALLOC, &format!("product=PACK-48V req=plc-{}", i + 1))
            .await;
        assert_eq!(&again, want, "sequence {} answered as before", i + 1);
    }
    assert_eq!(count_events(&line.db_path(), "ALLOCATED"), allocated);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_mailbox_burst_loses_no_answered_unit() {
    let labels = tempfile::tempdir().unwrap();
    let port = free_port();
    let line = modbus_line(labels.path(), &format!("127.0.0.1:{port}"));
    let mut child = spawn_daemon(&line, 4096);
    let _ = connect_when_up(port).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for slot in [1u16, 2] {
        let answered = answered.clone();
        workers.push(tokio::spawn(async move {
            let mut mb = Mailbox::connect(addr, slot).await;
            for i in 1..u16::MAX {
                let fields = format!("product=PACK-48V req=k{slot}-{i}");
                let regs = crate::helper::modbus::pack(&fields, 128);
                let mut first = vec![ALLOC];
                first.extend_from_slice(&regs[..100]);
                let Ok(Ok(())) = tokio_modbus::client::Writer::write_multiple_registers(
                    &mut mb.ctx,
                    1000 * slot + 1,
                    &first,
                )
                .await
                else {
                    break;
                };
                let Ok(Ok(())) = tokio_modbus::client::Writer::write_multiple_registers(
                    &mut mb.ctx,
                    1000 * slot + 102,
                    &regs[100..],
                )
                .await
                else {
                    break;
                };
                let Ok(Ok(())) = tokio_modbus::client::Writer::write_single_register(
                    &mut mb.ctx,
                    1000 * slot,
                    i,
                )
                .await
                else {
                    break;
                };
                loop {
                    let Ok(Ok(r)) = mb.ctx.read_holding_registers(1000 * slot + 200, 100).await
                    else {
                        return;
                    };
                    if r[0] == i {
                        let text = crate::helper::modbus::unpack(&r[2..]);
                        if let Some(u) = text.split(' ').find_map(|f| f.strip_prefix("unit=")) {
                            answered.lock().unwrap().push(u.to_string());
                        }
                        break;
                    }
                }
            }
        }));
    }
    wait_for("40 answered units", || answered.lock().unwrap().len() >= 40).await;
    child.kill().expect("SIGKILL");
    child.wait().ok();
    for w in workers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(15), w).await;
    }
    let answered = answered.lock().unwrap().clone();
    let stored = units_in(&line.db_path());
    for unit in &answered {
        assert!(stored.contains(unit), "answered unit {unit} was lost");
    }
    let unique: BTreeSet<_> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an ID was issued twice");
}
