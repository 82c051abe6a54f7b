//! The OPC UA server (SPEC section 12) with the stack's own client over
//! TCP: a unit's life through the methods, refusals, `Req` replay,
//! subscriptions, who may sign in, and a SIGKILL during a burst.

use std::time::Duration;

use ::opcua::types::{StatusCode, Variant};
use linemark::daemon::Daemon;

use crate::helper::opcua::{arr, connect, s, Auth, Plc};
use crate::helper::*;

const ALL_VERBS: &[&str] = &[
    "ALLOC", "BIND", "RESULT", "FINAL", "REPRINT", "VERIFY", "SCRAP", "SHIP", "REPLACE",
];

/// A line with PLC station `plc1` (every verb, printer `p1` writing into
/// `labels`), TCP station `tcp1`, and `[plc.opcua]` as given.
fn plc_line(labels: &std::path::Path, opcua: &str) -> Line {
    let allow: Vec<String> = ALL_VERBS.iter().map(|v| format!("\"{v}\"")).collect();
    let extra = format!(
        r#"
[[station]]
name = "plc1"
port = "plc"
allow = [{}]
printer = "p1"
{}
[[printer]]
name = "p1"
url = "dir://{}"

[plc.opcua]
{opcua}
"#,
        allow.join(", "),
        station_toml("tcp1", "tcp://127.0.0.1:0", &["ALLOC"], None, "optional"),
        labels.display()
    );
    let line = Line::with_config(&extra);
    line.grant_block("b1", 0, 1000);
    line
}

async fn start(line: &Line) -> (Daemon, String) {
    let d = Daemon::start(line.config()).await.expect("daemon starts");
    let addr = d.opcua_addr().expect("OPC UA listens");
    (d, format!("opc.tcp://{addr}/linemark"))
}

/// A line with anonymous access, its daemon, and a connected session
/// (the label folder lives as long as the test holds it).
async fn anonymous_line() -> (tempfile::TempDir, Line, Daemon, Plc) {
    let labels = tempfile::tempdir().unwrap();
    let line = plc_line(
        labels.path(),
        "listen = \"127.0.0.1:0\"\nallow_anonymous = true",
    );
    let (d, url) = start(&line).await;
    let plc = anonymous(&line, &url).await;
    (labels, line, d, plc)
}

async fn anonymous(line: &Line, url: &str) -> Plc {
    connect(url, &line.path().join("client-pki"), Auth::Anonymous)
        .await
        .expect("anonymous session")
}

fn events(line: &Line) -> i64 {
    let db = rusqlite::Connection::open(line.db_path()).expect("journal");
    db.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .expect("count")
}

/// Passes `unit` through both required steps.
async fn pass_steps(plc: &Plc, unit: &str) {
    for step in ["provision", "functional"] {
        plc.call(
            "Result",
            vec![
                s("plc1"),
                s(unit),
                s(step),
                s("PASS"),
                arr(&[]),
                arr(&[]),
                s(""),
            ],
        )
        .await
        .assert_ok(step);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_lives_its_whole_life_through_the_opcua_methods() {
    let (labels, line, d, plc) = anonymous_line().await;

    let a = plc.alloc("plc1", "").await;
    a.assert_ok("Alloc");
    let unit = a.text(0);
    assert_eq!(
        a.text(1),
        format!("https://id.example.com/01/09506000134352/10/L1/21/{unit}")
    );
    let a2 = plc.alloc("plc1", "").await;
    let (m1, m2) = (a2.text(0), plc.alloc("plc1", "").await.text(0));
    assert_ne!(unit, m1);

    plc.call(
        "Bind",
        vec![
            s("plc1"),
            s(&unit),
            arr(&["serial", "mac", "lot.cell", "child", "child"]),
            arr(&["SN 001", "00-1b-63-84-45-e6", "CELL-77", &m1, &m2]),
            s(""),
        ],
    )
    .await
    .assert_ok("Bind");
    plc.call(
        "Result",
        vec![
            s("plc1"),
            s(&unit),
            s("provision"),
            s("PASS"),
            arr(&["voltage"]),
            arr(&["48.1"]),
            s(""),
        ],
    )
    .await
    .assert_ok("Result provision");
    plc.call(
        "Result",
        vec![
            s("plc1"),
            s(&unit),
            s("functional"),
            s("PASS"),
            arr(&[]),
            arr(&[]),
            s(""),
        ],
    )
    .await
    .assert_ok("Result functional");
    let f = plc
        .call(
            "Final",
            vec![
                s("plc1"),
                s(&unit),
                s("PASS"),
                arr(&["ir"]),
                arr(&["0.8"]),
                s(""),
            ],
        )
        .await;
    f.assert_ok("Final");
    let job = f.label_job();
    assert!(job > 0, "a label was queued: {f:?}");
    wait_for("the label printed", || {
        std::fs::read_dir(labels.path()).is_ok_and(|d| d.count() > 0)
    })
    .await;

    let uri = a.text(1);
    plc.call("Verify", vec![s("plc1"), s(&unit), s(&uri), s("")])
        .await
        .assert_ok("Verify");
    let r = plc
        .call(
            "Reprint",
            vec![s("plc1"), s(&unit), s("smudged label"), s("")],
        )
        .await;
    r.assert_ok("Reprint");
    assert!(r.label_job() > job, "{r:?}");
    let m3 = plc.alloc("plc1", "").await.text(0);
    plc.call(
        "Replace",
        vec![s("plc1"), s(&unit), s(&m1), s(&m3), s("cell drift"), s("")],
    )
    .await
    .assert_ok("Replace");
    plc.call(
        "Ship",
        vec![s("plc1"), s(&unit), s("SH-1"), s("Acme GmbH"), s("")],
    )
    .await
    .assert_ok("Ship");
    plc.call("Scrap", vec![s("plc1"), s(&m2), s("dropped"), s("")])
        .await
        .assert_ok("Scrap");
    d.shutdown().await;

    // The journal holds what the station protocol would have written.
    let show = line.cli(&["unit", "show", &unit]);
    let out = stdout(&show);
    for want in [
        "SN 001",
        "00:1B:63:84:45:E6",
        "CELL-77",
        "voltage",
        "smudged label",
        "cell drift",
        "SH-1",
        "Acme GmbH",
        "station:plc1",
        "FINAL_PASS",
        "LABEL_VERIFIED",
        "LABEL_REPRINTED",
        "CHILD_REPLACED",
    ] {
        assert!(out.contains(want), "unit show lacks {want:?}:\n{out}");
    }
    let scrapped = stdout(&line.cli(&["unit", "show", &m2]));
    assert!(scrapped.contains("state     scrapped"), "{scrapped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_its_code_and_changes_nothing() {
    let (_labels, line, d, plc) = anonymous_line().await;
    let unit = plc.alloc("plc1", "").await.text(0);
    let before = events(&line);

    let cases: Vec<(&str, Vec<Variant>, &str)> = vec![
        (
            "Alloc",
            vec![s("plc1"), s("NOPE"), s(""), s("")],
            "E_UNKNOWN_PRODUCT",
        ),
        (
            "Alloc",
            vec![s("tcp1"), s("PACK-48V"), s(""), s("")],
            "E_NOT_ALLOWED",
        ),
        (
            "Alloc",
            vec![s("nobody"), s("PACK-48V"), s(""), s("")],
            "E_NOT_ALLOWED",
        ),
        (
            "Final",
            vec![s("plc1"), s(&unit), s("PASS"), arr(&[]), arr(&[]), s("")],
            "E_ROUTE",
        ),
        (
            "Scrap",
            vec![s("plc1"), s("V700QW11S6PJ4"), s("x"), s("")],
            "E_UNKNOWN_UNIT",
        ),
        (
            "Scrap",
            vec![s("plc1"), s(&unit), s(""), s("")],
            "E_BAD_VALUE",
        ),
        (
            "Ship",
            vec![s("plc1"), s(&unit), s("SH-1"), s(""), s("")],
            "E_ROUTE",
        ),
        (
            "Bind",
            vec![
                s("plc1"),
                s(&unit),
                arr(&["serial", "mac"]),
                arr(&["1"]),
                s(""),
            ],
            "E_BAD_FRAME",
        ),
        (
            "Bind",
            vec![
                s("plc1"),
                s(&unit),
                arr(&["mac"]),
                arr(&["nonsense"]),
                s(""),
            ],
            "E_BAD_VALUE",
        ),
        (
            "Scrap",
            vec![s("plc1"), s(&unit), s(&"x".repeat(1100)), s("")],
            "E_TOO_LONG",
        ),
        (
            "Scrap",
            vec![s("plc1"), s(&unit), s("défaut"), s("")],
            "E_BAD_VALUE",
        ),
        (
            "Alloc",
            vec![s("plc1"), s("PACK-48V"), s(""), s(&"r".repeat(65))],
            "E_BAD_VALUE",
        ),
    ];
    for (method, args, code) in cases {
        let out = plc.call(method, args).await;
        assert_eq!(out.code, code, "{method}: {out:?}");
        assert!(!out.message.is_empty(), "{method} says why: {out:?}");
    }
    let out = plc
        .call(
            "Final",
            vec![s("plc1"), s(&unit), s("PASS"), arr(&[]), arr(&[]), s("")],
        )
        .await;
    assert!(
        out.message.starts_with("missing=provision,functional"),
        "{out:?}"
    );
    assert_eq!(events(&line), before, "no refusal wrote an event");

    // Arguments the declaration does not fit are OPC UA errors.
    let (st, _) = plc.call_raw("Alloc", vec![s("plc1"), s("PACK-48V")]).await;
    assert_eq!(st, StatusCode::BadArgumentsMissing);
    let (st, _) = plc
        .call_raw("Alloc", vec![s("plc1"), s("PACK-48V"), s(""), s(""), s("")])
        .await;
    assert_eq!(st, StatusCode::BadTooManyArguments);
    let (st, _) = plc
        .call_raw("Alloc", vec![s("plc1"), Variant::Int32(7), s(""), s("")])
        .await;
    assert_eq!(st, StatusCode::BadTypeMismatch);
    let (st, _) = plc
        .call_raw(
            "Bind",
            vec![s("plc1"), s(&unit), s("serial"), arr(&["1"]), s("")],
        )
        .await;
    assert_eq!(st, StatusCode::BadTypeMismatch);
    assert_eq!(events(&line), before, "no bad call wrote an event");
    // The server still answers after all of that.
    plc.alloc("plc1", "")
        .await
        .assert_ok("Alloc after refusals");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_req_returns_the_first_answer_and_is_shared_with_the_station_protocol() {
    let (_labels, line, d, plc) = anonymous_line().await;
    let first = plc.alloc("plc1", "A-7").await;
    first.assert_ok("Alloc");
    let allocated = events(&line);
    let again = plc.alloc("plc1", "A-7").await;
    assert_eq!(
        (again.text(0), again.text(1)),
        (first.text(0), first.text(1))
    );
    assert_eq!(events(&line), allocated, "the replay burned no ID");
    // The same token for another request is refused, as over TCP.
    let other = plc
        .call("Alloc", vec![s("plc1"), s("PACK-48V"), s("L2"), s("A-7")])
        .await;
    assert_eq!(other.code, "E_BAD_VALUE", "{other:?}");
    assert!(other.message.contains("already used"), "{other:?}");
    // A final pass replayed answers the same label job and prints once.
    let unit = first.text(0);
    pass_steps(&plc, &unit).await;
    let fin = vec![s("plc1"), s(&unit), s("PASS"), arr(&[]), arr(&[]), s("F-1")];
    let j1 = plc.call("Final", fin.clone()).await.label_job();
    let j2 = plc.call("Final", fin).await.label_job();
    assert_eq!(j1, j2);
    assert_eq!(count_events(&line.db_path(), "LABEL_QUEUED"), 1);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_sees_ids_left_and_last_unit_change() {
    use ::opcua::client::DataChangeCallback;
    use ::opcua::types::{MonitoredItemCreateRequest, TimestampsToReturn};
    let (_labels, _line, d, plc) = anonymous_line().await;
    assert_eq!(plc.read("LineId").await, Variant::from("P1-L03"));
    assert_eq!(plc.read("PrinterState").await, Variant::from("ready"));
    assert_eq!(plc.read("SyncState").await, Variant::from("off"));
    let Variant::UInt64(left) = plc.read("IdsLeft").await else {
        panic!("IdsLeft is a UInt64")
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sub = plc
        .session
        .create_subscription(
            Duration::from_millis(50),
            100,
            10,
            0,
            0,
            true,
            DataChangeCallback::new(move |dv, item| {
                let _ = tx.send((item.item_to_monitor().node_id.clone(), dv.value));
            }),
        )
        .await
        .expect("subscription");
    let items: Vec<MonitoredItemCreateRequest> = ["IdsLeft", "LastUnit"]
        .iter()
        .map(|n| plc.node(n).into())
        .collect();
    plc.session
        .create_monitored_items(sub, TimestampsToReturn::Both, items)
        .await
        .expect("monitored items");
    let unit = plc.alloc("plc1", "").await.text(0);
    let (mut saw_left, mut saw_unit) = (false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(saw_left && saw_unit) {
        let (node, value) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a data change in time")
            .expect("the subscription runs");
        saw_left |= node == plc.node("IdsLeft") && value == Some(Variant::UInt64(left - 1));
        saw_unit |= node == plc.node("LastUnit") && value == Some(Variant::from(unit.as_str()));
    }
    d.shutdown().await;
}

/// A `linemark run` child, killed when the test ends (also on a panic).
struct Child(std::process::Child);

impl Child {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `linemark run` as a child on `port`, and the endpoint URL once the
/// server accepts connections.
async fn spawn_on(line: &Line, port: u16) -> (Child, String) {
    let child = Child(spawn_daemon(line, 4096));
    let _ = connect_when_up(port).await;
    (child, format!("opc.tcp://127.0.0.1:{port}/linemark"))
}

fn daemon_log(line: &Line) -> String {
    std::fs::read_to_string(line.path().join("daemon.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_trusted_client_with_a_good_password_signs_in_when_anonymous_is_off() {
    let hash = linemark::plc::opcua::auth::hash_password("line3-plc-pass").expect("hash");
    let labels = tempfile::tempdir().unwrap();
    let port = free_port();
    let line = plc_line(
        labels.path(),
        &format!(
            "listen = \"127.0.0.1:{port}\"\n[[plc.opcua.user]]\nname = \"plc\"\npassword_hash = \"{hash}\"\n"
        ),
    );
    let (mut child, url) = spawn_on(&line, port).await;
    let pki = line.path().join("client-pki");

    // No anonymous session and no unencrypted endpoint (the client finds
    // no endpoint or token policy that would take it).
    let anon = connect(&url, &pki, Auth::Anonymous).await;
    assert!(anon.is_err(), "anonymous must be refused");
    // A client whose certificate the line does not trust yet: refused,
    // its certificate kept in rejected/ for the administrator.
    let first = connect(&url, &pki, Auth::User("plc", "line3-plc-pass")).await;
    assert!(first.is_err(), "an untrusted certificate must be refused");
    let rejected = line.cli(&["plc", "rejected"]);
    assert!(stdout(&rejected).contains(".der"), "{}", stdout(&rejected));

    // The administrator trusts the PLC's certificate; no restart.
    let cert = pki.join("own/cert.der");
    let trusted = line.cli(&["plc", "trust", cert.to_str().unwrap()]);
    assert!(trusted.status.success(), "{}", stderr(&trusted));
    assert!(stdout(&trusted).contains("removed from rejected/"));
    assert!(stdout(&line.cli(&["plc", "rejected"])).contains("no refused certificates"));

    let anon = connect(&url, &pki, Auth::AnonymousEncrypted).await;
    assert!(
        anon.is_err(),
        "anonymous must be refused on the encrypted endpoint too"
    );
    for (user, pw) in [("plc", "wrong-password"), ("nobody", "line3-plc-pass")] {
        let r = connect(&url, &pki, Auth::User(user, pw)).await;
        assert!(r.is_err(), "{user}/{pw} must be refused");
    }
    let plc = connect(&url, &pki, Auth::User("plc", "line3-plc-pass"))
        .await
        .expect("a trusted client with the right password signs in");
    plc.alloc("plc1", "")
        .await
        .assert_ok("Alloc over SignAndEncrypt");
    drop(plc);

    // The server's key is the owner's only; each refusal is in the log.
    use std::os::unix::fs::PermissionsExt;
    let key = line.data_dir().join("opcua/private/private.pem");
    let mode = std::fs::metadata(&key)
        .expect("server key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the private key is not readable by others");
    let log = daemon_log(&line);
    for want in [
        "untrusted",
        "sign-in refused: wrong password",
        "sign-in refused: unknown user",
        "user signed in",
    ] {
        assert!(log.contains(want), "the log lacks {want:?}:\n{log}");
    }
    assert!(!log.contains("line3-plc-pass") && !log.contains("wrong-password"));
    child.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_calls_loses_no_answered_unit_and_issues_no_id_twice() {
    let labels = tempfile::tempdir().unwrap();
    let port = free_port();
    let line = plc_line(
        labels.path(),
        &format!("listen = \"127.0.0.1:{port}\"\nallow_anonymous = true"),
    );
    let (mut child, url) = spawn_on(&line, port).await;
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let plc = anonymous(&line, &url).await;
        let answered = answered.clone();
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let req = format!("w{w}-{i}");
                let call = plc
                    .session
                    .call_one(::opcua::types::CallMethodRequest {
                        object_id: plc.node(""),
                        method_id: plc.node("Alloc"),
                        input_arguments: Some(vec![s("plc1"), s("PACK-48V"), s(""), s(&req)]),
                    })
                    .await;
                let Ok(r) = call else { break };
                let Some(out) = r.output_arguments else { break };
                if let Some(Variant::String(u)) = out.get(2) {
                    let unit = u.value().clone().unwrap_or_default();
                    if !unit.is_empty() {
                        answered.lock().unwrap().push((req, unit));
                    }
                }
            }
        }));
    }
    let count = || answered.lock().unwrap().len();
    wait_for("40 answered units", || count() >= 40).await;
    child.kill();
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(15), w).await;
    }
    let answered = answered.lock().unwrap().clone();

    let stored = units_in(&line.db_path());
    for (_, unit) in &answered {
        assert!(stored.contains(unit), "answered unit {unit} was lost");
    }
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "an ID was issued twice");

    // After the restart a replayed Req gets its first answer and new
    // calls get IDs never seen before.
    let (mut child, url) = spawn_on(&line, port).await;
    let plc = anonymous(&line, &url).await;
    let (req, unit) = &answered[answered.len() / 2];
    let again = plc
        .call("Alloc", vec![s("plc1"), s("PACK-48V"), s(""), s(req)])
        .await;
    assert_eq!(&again.text(0), unit, "{req} answered again the same");
    for i in 0..10 {
        let fresh = plc.alloc("plc1", &format!("after-{i}")).await.text(0);
        assert!(
            !stored.contains(&fresh),
            "{fresh} was issued before the kill"
        );
    }
    drop(plc);
    child.kill();
}
