//! `linemark-central` on a real PostgreSQL (a throwaway cluster per test):
//! the unchanged `linemark run` and `linemark sync` syncing into it, blocks
//! from its authority imported by `blocks import` and by the daemon's
//! low-water request, two instances on one database, crashes mid-ingest,
//! bad input, and the database refusing changes to its append-only tables.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::helper::central::Central;
use crate::helper::{
    connect_when_up, free_port, journal_hashes, printing_station, ready_unit, spawn_daemon,
    station_toml, stderr, stdout, upstream_toml, wait_for, Line,
};
use linemark::client::StationClient;

/// A line syncing continuously to `base` with `token`, one TCP station.
fn line_for(base: &str, token: &str) -> (Line, u16) {
    let port = free_port();
    let extra = station_toml(
        "t",
        &format!("tcp://127.0.0.1:{port}"),
        &["ALLOC", "BIND", "RESULT", "FINAL"],
        None,
        "optional",
    );
    let line = Line::with_config(&format!("{extra}{}", upstream_toml(base, "continuous")));
    std::fs::write(
        line.path().join("config/keys/upstream.token"),
        format!("{token}\n"),
    )
    .expect("token");
    (line, port)
}

/// The line's last seq.
pub(crate) fn line_head(line: &Line) -> i64 {
    journal_hashes(&line.db_path()).len() as i64
}

fn central_head(c: &Central, line: &str) -> i64 {
    c.sql(&format!(
        "SELECT head_seq FROM lines WHERE line_id = '{line}'"
    ))
    .parse()
    .unwrap_or(-1)
}

/// The store holds exactly the line's chain: every seq once, every hash equal.
fn assert_same_chain(c: &Central, line: &Line) {
    let ours = journal_hashes(&line.db_path());
    let theirs: Vec<String> = c
        .sql("SELECT hash FROM events WHERE line_id = 'P1-L03' ORDER BY seq")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(theirs.len(), ours.len(), "events stored");
    assert_eq!(theirs, ours, "the stored chain is the line's chain");
    let dup = c.sql("SELECT count(*) - count(DISTINCT seq) FROM events");
    assert_eq!(dup, "0", "no event stored twice");
}

async fn post(url: &str, token: Option<&str>, body: Vec<u8>, gzip: bool) -> (u16, String) {
    let mut r = reqwest::Client::new().post(url).body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if gzip {
        r = r.header("Content-Encoding", "gzip");
    }
    let resp = r.send().await.expect("central answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_takes_its_blocks_from_central_and_syncs_every_event_into_it() {
    let Some(c) = Central::start("central::the_daemon_takes_its_blocks_from_central") else {
        return;
    };
    let token = c.add_line("P1-L03");
    let inst = c.run();
    let (line, port) = line_for(&inst.base(), &token);
    // No block held: the daemon asks central for one at start (low water).
    let mut daemon = spawn_daemon(&line, 4096);
    wait_for("a block from central", || {
        c.sql("SELECT count(*) FROM grants") == "1"
    })
    .await;
    let mut st = StationClient::new(connect_when_up(port).await, "t");
    wait_for("the block imported", || {
        line.cli(&["blocks", "list"]).status.success()
            && stdout(&line.cli(&["blocks", "list"])).contains("1048576")
    })
    .await;
    let mut units = Vec::new();
    for _ in 0..5 {
        let u = ready_unit(&mut st).await;
        crate::helper::ok(
            &mut st,
            "BIND",
            &[
                ("unit", &u),
                ("mac", &format!("AA:BB:CC:00:00:{:02X}", units.len())),
            ],
        )
        .await;
        crate::helper::ok(&mut st, "FINAL", &[("unit", &u), ("status", "PASS")]).await;
        units.push(u);
    }
    let scrap_me = crate::helper::alloc_unit(&mut st).await;
    wait_for("central to hold the whole chain", || {
        central_head(&c, "P1-L03") == line_head(&line)
    })
    .await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_same_chain(&c, &line);
    // The passports are projected in the same transactions.
    for u in &units {
        let status = c.sql(&format!(
            "SELECT status FROM passports WHERE unit_id = '{u}'"
        ));
        assert_eq!(status, "passed", "{u}");
        let doc = c.sql(&format!(
            "SELECT doc::text FROM passports WHERE unit_id = '{u}'"
        ));
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert!(
            doc["bindings"]["mac"]
                .as_str()
                .is_some_and(|m| m.starts_with("AA:BB:CC")),
            "{doc}"
        );
        assert_eq!(doc["tests"].as_array().map(Vec::len), Some(3), "{doc}");
        assert!(doc["manufactured_at"].is_string(), "{doc}");
    }
    assert_eq!(
        c.sql(&format!(
            "SELECT status FROM passports WHERE unit_id = '{scrap_me}'"
        )),
        "in_production",
        "a unit has a passport from its ALLOCATED event on"
    );
    // `linemark sync` once, with the daemon stopped, sends what is new.
    {
        let j = line.open();
        crate::helper::alloc(&j).unwrap();
    }
    let out = line.cli(&["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_same_chain(&c, &line);
    drop(inst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_from_two_instances_at_once_never_overlap_and_the_line_imports_them() {
    let Some(c) = Central::start("central::grants_from_two_instances") else {
        return;
    };
    let tokens: Vec<String> = ["P1-L03", "P1-L04", "P2-L01"]
        .iter()
        .map(|l| c.add_line(l))
        .collect();
    let (a, b) = (c.run(), c.run());
    let mut tasks = Vec::new();
    for i in 0..120usize {
        let base = if i % 2 == 0 { a.base() } else { b.base() };
        let (line, token) = match i % 3 {
            0 => ("P1-L03", tokens[0].clone()),
            1 => ("P1-L04", tokens[1].clone()),
            _ => ("P2-L01", tokens[2].clone()),
        };
        let count = 1 + (i as u64 * 37) % 5000;
        tasks.push(tokio::spawn(async move {
            let url = format!("{base}/v1/lines/{line}/blocks");
            let (s, body) = post(
                &url,
                Some(&token),
                format!("{{\"count\":{count}}}").into_bytes(),
                false,
            )
            .await;
            assert_eq!(s, 200, "{body}");
            let g: linemark::ids::Grant = serde_json::from_str(&body).unwrap();
            assert_eq!((g.line_id.as_str(), g.count), (line, count));
            g
        }));
    }
    let mut grants = Vec::new();
    for t in tasks {
        grants.push(t.await.unwrap());
    }
    grants.sort_by_key(|g| g.start);
    for w in grants.windows(2) {
        assert!(
            w[0].end() <= w[1].start,
            "overlap: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    assert!(grants[0].start >= 1_048_576, "first_index");
    let ids: BTreeSet<&str> = grants.iter().map(|g| g.block_id.as_str()).collect();
    assert_eq!(ids.len(), grants.len());
    assert_eq!(
        c.sql("SELECT count(*) FROM grants"),
        "120",
        "every grant recorded"
    );
    // The offline path: `grant --out`, then `linemark blocks import`.
    let file = c.path().join("g.json");
    let out = c.cli(&[
        "grant",
        "--line",
        "P1-L03",
        "--count",
        "500",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = Line::new();
    let out = line.cli(&["blocks", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let g: linemark::ids::Grant =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(
        grants
            .iter()
            .all(|o| o.end() <= g.start || g.end() <= o.start),
        "the CLI's grant comes from the same allocator"
    );
    // Another line's grant is refused by this line.
    let other = grants.iter().find(|g| g.line_id == "P1-L04").unwrap();
    let f2 = c.path().join("other.json");
    std::fs::write(&f2, serde_json::to_string(other).unwrap()).unwrap();
    let out = line.cli(&["blocks", "import", f2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Counts out of range, unknown lines and a bad token change nothing.
    for (count, want) in [("0", 400), ("100001", 400), ("\"x\"", 400)] {
        let (s, body) = post(
            &format!("{}/v1/lines/P1-L03/blocks", a.base()),
            Some(&tokens[0]),
            format!("{{\"count\":{count}}}").into_bytes(),
            false,
        )
        .await;
        assert_eq!(s, want, "{count}: {body}");
        assert!(body.contains("reason"), "{body}");
    }
    let (s, _) = post(
        &format!("{}/v1/lines/P1-L04/blocks", a.base()),
        Some(&tokens[0]),
        b"{\"count\":1}".to_vec(),
        false,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = post(
        &format!("{}/v1/lines/P1-L03/blocks", a.base()),
        Some("lmk_nope"),
        b"{\"count\":1}".to_vec(),
        false,
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(c.sql("SELECT count(*) FROM grants"), "121");
    let out = c.cli(&["grant", "--line", "NOPE", "--count", "5"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("line add NOPE"), "{}", stderr(&out));
}

/// A batch body for seqs `first..=last` of `line`'s journal (as the line
/// would send it).
pub(crate) fn batch_of(line: &Line, first: i64, last: i64) -> serde_json::Value {
    let ours = journal_hashes(&line.db_path());
    let conn = rusqlite::Connection::open(line.db_path()).unwrap();
    let mut s = conn
        .prepare("SELECT seq, event_id, ts, line_id, station, actor, type, unit, data, hash FROM events WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq")
        .unwrap();
    let events: Vec<serde_json::Value> = s
        .query_map([first, last], |r| {
            Ok(serde_json::json!({
                "seq": r.get::<_, i64>(0)?, "event_id": r.get::<_, String>(1)?, "ts": r.get::<_, String>(2)?,
                "line_id": r.get::<_, String>(3)?, "station": r.get::<_, Option<String>>(4)?,
                "actor": r.get::<_, String>(5)?, "type": r.get::<_, String>(6)?, "unit": r.get::<_, Option<String>>(7)?,
                "data": serde_json::from_str::<serde_json::Value>(&r.get::<_, String>(8)?).unwrap(),
                "hash": r.get::<_, String>(9)?,
            }))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let prev = if first == 1 {
        "0".repeat(64)
    } else {
        ours[(first - 2) as usize].clone()
    };
    serde_json::json!({"line_id": "P1-L03", "first_seq": first, "last_seq": last, "prev_hash": prev, "events": events})
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_are_refused_with_the_reason_and_store_nothing() {
    let Some(c) = Central::start("central::bad_batches") else {
        return;
    };
    let token = c.add_line("P1-L03");
    let other_token = c.add_line("P1-L04");
    let inst = c.run();
    let line = Line::new();
    line.grant_block("b1", 1_048_576, 1000);
    {
        let j = line.open();
        for _ in 0..20 {
            crate::helper::alloc(&j).unwrap();
        }
    }
    let url = format!("{}/v1/lines/P1-L03/journal", inst.base());
    let good = batch_of(&line, 1, 10);
    let send = |v: &serde_json::Value| serde_json::to_vec(v).unwrap();
    /// (what, body, gzip'd, token, status, the reason says).
    type Case<'a> = (&'a str, Vec<u8>, bool, Option<&'a str>, u16, &'a str);
    let mut cases: Vec<Case> = Vec::new();
    cases.push(("no token", send(&good), false, None, 401, "bearer token"));
    cases.push((
        "another line's token",
        send(&good),
        false,
        Some(&other_token),
        403,
        "P1-L04",
    ));
    cases.push((
        "malformed JSON",
        b"{\"line_id\": ".to_vec(),
        false,
        Some(&token),
        400,
        "not a journal batch",
    ));
    let mut v = good.clone();
    v["line_id"] = "P1-L04".into();
    cases.push((
        "line_id differs from the path",
        send(&v),
        false,
        Some(&token),
        400,
        "sent to line",
    ));
    let mut v = good.clone();
    v["events"][3]["seq"] = 9.into();
    cases.push((
        "non-monotonic seqs",
        send(&v),
        false,
        Some(&token),
        400,
        "consecutive",
    ));
    let mut v = good.clone();
    v["events"][2]["line_id"] = "P1-L04".into();
    cases.push((
        "an event of another line",
        send(&v),
        false,
        Some(&token),
        400,
        "is of line",
    ));
    let mut v = good.clone();
    v["events"][4]["data"]["product"] = "FORGED".into();
    cases.push((
        "an altered event",
        send(&v),
        false,
        Some(&token),
        409,
        "altered",
    ));
    cases.push((
        "a batch after a gap",
        send(&batch_of(&line, 5, 10)),
        false,
        Some(&token),
        409,
        "missing",
    ));
    cases.push((
        "oversized",
        vec![b' '; 9 * 1024 * 1024],
        false,
        Some(&token),
        413,
        "8388608",
    ));
    cases.push((
        "a gzip bomb",
        gzip(&vec![b' '; 64 * 1024 * 1024]),
        true,
        Some(&token),
        413,
        "8388608",
    ));
    cases.push((
        "gzip that is not",
        b"not gzip".to_vec(),
        true,
        Some(&token),
        400,
        "decompress",
    ));
    for (what, body, gz, tok, want, says) in cases {
        let (s, answer) = post(&url, tok, body, gz).await;
        assert_eq!(s, want, "{what}: {answer}");
        assert!(
            answer.contains(says),
            "{what}: {answer:?} should say {says:?}"
        );
        assert_eq!(
            c.sql("SELECT count(*) FROM events"),
            "0",
            "{what} stored something"
        );
    }
    // The good batch, gzip'd; again (nothing twice); overlapping; the rest.
    let (s, a) = post(&url, Some(&token), gzip(&send(&good)), true).await;
    assert_eq!((s, a.as_str()), (200, "{\"acked_through\":10}"));
    let (s, a) = post(&url, Some(&token), send(&good), false).await;
    assert_eq!((s, a.as_str()), (200, "{\"acked_through\":10}"), "re-sent");
    let (s, a) = post(&url, Some(&token), send(&batch_of(&line, 6, 15)), false).await;
    assert_eq!(
        (s, a.as_str()),
        (200, "{\"acked_through\":15}"),
        "overlapping"
    );
    assert_eq!(c.sql("SELECT count(*) FROM events"), "15");
    let mut v = batch_of(&line, 8, 21);
    v["events"][0]["data"]["product"] = "FORGED".into();
    let (s, a) = post(&url, Some(&token), send(&v), false).await;
    assert_eq!(s, 409, "an overlap that differs from what is stored: {a}");
    assert_eq!(c.sql("SELECT count(*) FROM events"), "15");
    // The rest of the journal (a BLOCK_IMPORTED and 20 ALLOCATED events).
    let (s, _) = post(&url, Some(&token), send(&batch_of(&line, 16, 21)), false).await;
    assert_eq!(s, 200);
    assert_same_chain(&c, &line);
    assert_eq!(c.sql("SELECT count(*) FROM passports"), "20");
}

#[test]
fn the_database_itself_refuses_to_change_events_and_grants() {
    let Some(c) = Central::start("central::the_database_itself_refuses") else {
        return;
    };
    c.add_line("P1-L03");
    let out = c.cli(&["grant", "--line", "P1-L03", "--count", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    c.sql("INSERT INTO events (line_id, seq, event_id, ts, station, actor, type, unit, data, hash) VALUES ('P1-L03', 1, 'e', 't', NULL, 'a', 'ALLOCATED', NULL, '{}', 'h')");
    for sql in [
        "UPDATE events SET actor = 'x'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE grants SET count = 1",
        "DELETE FROM grants",
        "TRUNCATE grants CASCADE",
    ] {
        let out = c.pg.psql(&c.db, sql);
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(
            stderr(&out).contains("append-only"),
            "{sql}: {}",
            stderr(&out)
        );
    }
    assert_eq!(c.sql("SELECT count(*) FROM events"), "1");
    assert_eq!(c.sql("SELECT count(*) FROM grants"), "1");
    // Two grants sharing an index cannot both be stored.
    let out = c.pg.psql(&c.db, "INSERT INTO grants (block_id, line_id, start_index, count, issued_at, grant_json, requested_by) SELECT gen_random_uuid(), line_id, start_index + 5, 10, issued_at, grant_json, 'test' FROM grants");
    assert!(!out.status.success(), "an overlapping grant was stored");
    // migrate is idempotent; a second run applies nothing.
    let out = c.cli(&["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("up to date"), "{}", stdout(&out));
}

#[test]
fn the_command_line_names_bad_input_and_exits_2() {
    let Some(c) = Central::start("central::the_command_line") else {
        return;
    };
    let out = c.cli(&["token", "new", "--role", "boss", "--name", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--role"), "{}", stderr(&out));
    let out = c.cli(&[
        "token",
        "new",
        "--role",
        "authority",
        "--name",
        "Market surveillance",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = stdout(&out);
    let token = t.lines().last().unwrap().trim();
    assert_eq!(
        c.sql(&format!("SELECT role || ' ' || name FROM tokens WHERE token_sha256 = encode(sha256('{token}'::bytea), 'hex')")),
        "authority Market surveillance",
        "only the token's sha256 is kept"
    );
    assert_eq!(
        c.sql(&format!(
            "SELECT count(*) FROM tokens WHERE token_sha256 = '{token}'"
        )),
        "0"
    );
    c.add_line("P1-L03");
    let out = c.cli(&["line", "add", "P1-L03"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = c.cli(&["line", "add", "bad id"]);
    assert_eq!(out.status.code(), Some(2));
    // A config error names file:line: key.
    c.write_config(
        0,
        "\n[[product]]\ngtin = \"09506000134353\"\nname = \"x\"\n",
    );
    let out = c.cli(&["migrate"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("central.toml:24: product[0].gtin:"), "{e}");
    // A database that does not answer is a runtime failure (exit 1).
    c.write_config(0, "");
    std::fs::write(
        c.config_path(),
        std::fs::read_to_string(c.config_path()).unwrap().replace(
            &c.url,
            "postgresql://linemark@/central?host=/nonexistent&port=1",
        ),
    )
    .unwrap();
    let out = c.cli(&["migrate"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_ingest_loses_nothing_and_stores_nothing_twice() {
    let Some(c) = Central::start("central::sigkill_mid_ingest") else {
        return;
    };
    let token = c.add_line("P1-L03");
    let port = free_port();
    // A fixed port, so the line's upstream URL stays valid across restarts.
    c.write_config(port, "");
    let start = |c: &Central| {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_linemark-central"))
            .args(["run", "--config"])
            .arg(c.config_path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        crate::helper::central::Instance { child, port }
    };
    let (line, _) = line_for(&format!("http://127.0.0.1:{port}"), &token);
    line.grant_block("b1", 1_048_576, 1_000_000);
    {
        let j = line.open();
        crate::helper::fill(&j, 60_000);
    }
    let mut daemon = spawn_daemon(&line, 4096);
    let mut rng = crate::helper::Rng::seeded();
    // Each round: wait until the line is sending (the store's head moves),
    // then SIGKILL at a random moment during the next batches.
    let mut held = 0;
    for round in 0..5 {
        let inst = start(&c);
        let deadline = Instant::now() + Duration::from_secs(30);
        while central_head(&c, "P1-L03") <= held {
            assert!(
                Instant::now() < deadline,
                "round {round}: the line is not syncing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        inst.kill();
        held = central_head(&c, "P1-L03");
        eprintln!("round {round}: central held {held} events when killed");
    }
    let _inst = start(&c);
    let deadline = Instant::now() + Duration::from_secs(120);
    while central_head(&c, "P1-L03") < line_head(&line) {
        assert!(Instant::now() < deadline, "the line never caught up");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_same_chain(&c, &line);
    assert_eq!(c.sql("SELECT count(*) FROM passports"), "60000");
}

/// A batch body of ALLOCATED events for `units` on `line`, seqs from
/// `first`, chained from `prev`; answers the body and the last hash.
fn allocations(line: &str, first: i64, units: &[String], prev: &str) -> (Vec<u8>, String) {
    use linemark::journal::event::HashInput;
    let mut p = prev.to_string();
    let mut scratch = String::new();
    let mut events = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let seq = first + i as i64;
        let data = r#"{"gtin":"09506000134352","level":"item","product":"PACK-48V"}"#;
        let event_id = format!("{line}-{seq}");
        let input = HashInput {
            seq,
            event_id: &event_id,
            ts: "2026-12-03T08:00:00.000Z",
            line_id: line,
            station: Some("s"),
            actor: "station:s",
            kind: "ALLOCATED",
            unit: Some(u),
            data,
        };
        let hash = input.hash(&p, &mut scratch);
        let mut json = String::new();
        input.json_with_hash_into(&mut json, &hash);
        events.push(serde_json::from_str::<serde_json::Value>(&json).unwrap());
        p = hash;
    }
    let body = serde_json::json!({"line_id": line, "first_seq": first,
        "last_seq": first + units.len() as i64 - 1, "prev_hash": prev, "events": events});
    (serde_json::to_vec(&body).unwrap(), p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_sync_through_two_instances_at_once_and_a_unit_id_issued_twice_is_refused() {
    let Some(c) = Central::start("central::lines_sync_through_two_instances") else {
        return;
    };
    let lines = ["L-A", "L-B", "L-C", "L-D"];
    let tokens: Vec<String> = lines.iter().map(|l| c.add_line(l)).collect();
    let (a, b) = (c.run(), c.run());
    let mut tasks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let (token, line) = (tokens[i].clone(), line.to_string());
        let bases = [a.base(), b.base()];
        tasks.push(tokio::spawn(async move {
            // 10 batches of 300, alternating instances, each line at once;
            // every batch is sent twice (a lost answer), once to each.
            let mut prev = "0".repeat(64);
            for k in 0..10i64 {
                let units: Vec<String> = (0..300)
                    .map(|j| format!("{line}-{:05}", k * 300 + j))
                    .collect();
                let (body, last) = allocations(&line, 1 + k * 300, &units, &prev);
                for base in [&bases[(k % 2) as usize], &bases[((k + 1) % 2) as usize]] {
                    let url = format!("{base}/v1/lines/{line}/journal");
                    let (s, answer) = post(&url, Some(&token), body.clone(), false).await;
                    assert_eq!(s, 200, "{line} batch {k}: {answer}");
                    assert_eq!(answer, format!("{{\"acked_through\":{}}}", (k + 1) * 300));
                }
                prev = last;
            }
        }));
        // Blocks asked through both instances meanwhile.
        let token = tokens[i].clone();
        let (line, base) = (lines[i], if i % 2 == 0 { b.base() } else { a.base() });
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let url = format!("{base}/v1/lines/{line}/blocks");
                let (s, body) = post(&url, Some(&token), b"{\"count\":1000}".to_vec(), false).await;
                assert_eq!(s, 200, "{body}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(c.sql("SELECT count(*) FROM events"), "12000");
    assert_eq!(c.sql("SELECT count(*) FROM passports"), "12000");
    assert_eq!(
        c.sql("SELECT string_agg(line_id || '=' || head_seq, ' ' ORDER BY line_id) FROM lines"),
        "L-A=3000 L-B=3000 L-C=3000 L-D=3000"
    );
    assert_eq!(
        c.sql("SELECT count(*) FROM grants g1 JOIN grants g2 ON g1.block_id < g2.block_id AND int8range(g1.start_index, g1.start_index + g1.count) && int8range(g2.start_index, g2.start_index + g2.count)"),
        "0"
    );
    // Line L-A allocates a unit L-B already has: refused, nothing stored.
    let url = format!("{}/v1/lines/L-A/journal", a.base());
    let prev = c.sql("SELECT head_hash FROM lines WHERE line_id = 'L-A'");
    let (body, _) = allocations("L-A", 3001, &["L-B-00007".to_string()], &prev);
    let (s, answer) = post(&url, Some(&tokens[0]), body, false).await;
    assert_eq!(s, 409, "{answer}");
    assert!(answer.contains("issued twice"), "{answer}");
    assert_eq!(c.sql("SELECT count(*) FROM events"), "12000");
    assert_eq!(
        c.sql("SELECT head_seq FROM lines WHERE line_id = 'L-A'"),
        "3000"
    );
}

const PRODUCTS: &str = r#"
[[product]]
gtin = "09506000134352"
name = "PACK-48V battery pack"
[[product.link]]
rel = "gs1:pip"
href = "https://www.example.com/en/packs"
title = "Product page"
lang = "en"
[[product.link]]
rel = "gs1:pip"
href = "https://www.example.com/de/packs"
title = "Produktseite"
lang = "de"
[[product.link]]
rel = "https://gs1.org/voc/instructions"
href = "https://www.example.com/manual.pdf"
"#;

/// Every linkset must validate against GS1's schema (tests/data/).
fn assert_gs1_linkset(doc: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/gs1-linkset-schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let v = jsonschema::draft7::new(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{doc}\n{errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolver_answers_as_gs1_conformant_resolvers_do() {
    let Some(c) = Central::start("central::the_resolver_answers") else {
        return;
    };
    c.write_config(0, PRODUCTS);
    let token = c.add_line("P1-L03");
    let inst = c.run();
    // A line's units in the store: all allocated with lot L1 (item level).
    let line = Line::new();
    line.grant_block("b1", 1_048_576, 1000);
    let units: Vec<String> = {
        let j = line.open();
        (0..3).map(|_| crate::helper::alloc(&j).unwrap()).collect()
    };
    let body = serde_json::to_vec(&batch_of(&line, 1, line_head(&line))).unwrap();
    let (s, a) = post(
        &format!("{}/v1/lines/P1-L03/journal", inst.base()),
        Some(&token),
        body,
        false,
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let lot = c.sql(&format!(
        "SELECT coalesce(lot, '') FROM passports WHERE unit_id = '{}'",
        units[0]
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: String, accept: Option<&'static str>, lang: Option<&'static str>| {
        let (http, base) = (http.clone(), inst.base());
        async move {
            let mut r = http.get(format!("{base}{path}"));
            if let Some(a) = accept {
                r = r.header("Accept", a);
            }
            if let Some(l) = lang {
                r = r.header("Accept-Language", l);
            }
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let h = |n: &str| {
                resp.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let (loc, link, ctype) = (h("location"), h("link"), h("content-type"));
            (
                status,
                loc,
                link,
                ctype,
                resp.text().await.unwrap_or_default(),
            )
        }
    };
    let unit_path = if lot.is_empty() {
        format!("/01/09506000134352/21/{}", units[0])
    } else {
        format!("/01/09506000134352/10/{lot}/21/{}", units[0])
    };
    // A known unit: 307 to its passport, every link in the Link header.
    let (s, loc, link, _, _) = get(unit_path.clone(), None, None).await;
    assert_eq!(s, 307);
    assert_eq!(
        loc,
        format!("https://id.example.com/passports/{}", units[0])
    );
    assert!(
        link.contains("rel=\"https://gs1.org/voc/pip\"") && link.contains("rel=\"linkset\""),
        "{link}"
    );
    // The multi-AI path's linkset, by query and by Accept, valid per GS1's schema.
    for (path, accept) in [
        (format!("{unit_path}?linkType=linkset"), None),
        (unit_path.clone(), Some("application/linkset+json")),
        ("/01/09506000134352?linkType=linkset".to_string(), None),
    ] {
        let (s, _, _, ctype, body) = get(path.clone(), accept, None).await;
        assert_eq!(s, 200, "{path}: {body}");
        assert_eq!(ctype, "application/linkset+json");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_gs1_linkset(&doc);
        assert!(doc["linkset"][0]["anchor"]
            .as_str()
            .unwrap()
            .starts_with("https://id.example.com/01/09506000134352"));
    }
    // The product: its model passport by default; a link type's link in
    // the language asked for.
    let (s, loc, ..) = get("/01/09506000134352".into(), None, None).await;
    assert_eq!(
        (s, loc.as_str()),
        (307, "https://id.example.com/models/09506000134352")
    );
    let (s, loc, ..) = get(
        "/01/09506000134352?linkType=gs1:pip".into(),
        None,
        Some("de-DE,de;q=0.9"),
    )
    .await;
    assert_eq!((s, loc.as_str()), (307, "https://www.example.com/de/packs"));
    let (s, loc, ..) = get("/01/09506000134352?linkType=gs1:pip".into(), None, None).await;
    assert_eq!((s, loc.as_str()), (307, "https://www.example.com/en/packs"));
    let (s, loc, ..) = get(
        "/01/09506000134352/10/L-ANY?linkType=gs1:instructions".into(),
        None,
        None,
    )
    .await;
    assert_eq!(
        (s, loc.as_str()),
        (307, "https://www.example.com/manual.pdf"),
        "batch level"
    );
    let (s, ..) = get(
        "/01/09506000134352?linkType=gs1:recipeInfo".into(),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404, "a link type not offered");
    // A bad check digit is 400; an unknown GTIN 404; an unknown unit 404 with a warning.
    let (s, _, _, _, body) = get("/01/09506000134353".into(), None, None).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("check digit"), "{body}");
    let (s, ..) = get("/01/09506000134369".into(), None, None).await;
    assert_eq!(s, 404);
    let (s, _, _, _, body) = get("/01/09506000134352/21/FTY8JWEQF4GZ0".into(), None, None).await;
    assert_eq!(s, 404);
    assert!(body.contains("counterfeit"), "{body}");
    // A real unit under another GTIN is not that product's unit.
    let (s, ..) = get(format!("/01/09506000134369/21/{}", units[1]), None, None).await;
    assert_eq!(s, 404);
    // HEAD answers the same status and headers.
    let r = http
        .head(format!("{}{unit_path}", inst.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 307);
    // The resolver description file.
    let (s, _, _, _, body) = get("/.well-known/gs1resolver".into(), None, None).await;
    assert_eq!(s, 200);
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["resolverRoot"], "https://id.example.com");
    assert!(d["supportedPrimaryKeys"]
        .as_array()
        .is_some_and(|k| k.iter().any(|v| v == "gtin")));
    // The passport: public fields for everyone, restricted with an authority token.
    let (s, _, _, _, body) = get(
        format!("/passports/{}", units[0]),
        Some("application/json"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["public"]["id"], units[0].as_str());
    assert_eq!(doc["public"]["gtin"], "09506000134352");
    assert_eq!(doc["public"]["status"], "in_production");
    assert_eq!(doc["public"]["facility"]["country"], "Germany");
    assert!(doc.get("restricted").is_none(), "{doc}");
    let out = c.cli(&["token", "new", "--role", "authority", "--name", "MSA"]);
    let authority = stdout(&out).lines().last().unwrap().trim().to_string();
    let r = http
        .get(format!("{}/passports/{}", inst.base(), units[0]))
        .header("Accept", "application/json")
        .bearer_auth(&authority)
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default();
    assert!(doc["restricted"].is_object(), "{doc}");
    let r = http
        .get(format!("{}/passports/{}", inst.base(), units[0]))
        .bearer_auth("lmk_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (s, _, _, ctype, html) = get(format!("/passports/{}", units[0]), None, None).await;
    assert_eq!(s, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(
        html.contains("PACK-48V battery pack") && html.contains(&units[0]),
        "{html}"
    );
}

/// A token for a person or system with `role`.
fn person_token(c: &Central, role: &str, name: &str) -> String {
    let out = c.cli(&["token", "new", "--role", role, "--name", name]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out).lines().last().unwrap().trim().to_string()
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = reqwest::Client::new()
        .request(method, url)
        .header("Accept", "application/json");
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        s,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_updates_are_versions_and_every_token_access_is_audited() {
    let Some(c) = Central::start("central::lifecycle_updates") else {
        return;
    };
    let token = c.add_line("P1-L03");
    let inst = c.run();
    let line = Line::new();
    line.grant_block("b1", 1_048_576, 1000);
    let unit = {
        let j = line.open();
        crate::helper::alloc(&j).unwrap()
    };
    let body = serde_json::to_vec(&batch_of(&line, 1, line_head(&line))).unwrap();
    let (s, _) = post(
        &format!("{}/v1/lines/P1-L03/journal", inst.base()),
        Some(&token),
        body,
        false,
    )
    .await;
    assert_eq!(s, 200);
    let service = person_token(&c, "service", "Workshop Berlin");
    let recycler = person_token(&c, "recycler", "Recycling GmbH");
    let authority = person_token(&c, "authority", "Market surveillance");
    let events = format!("{}/passports/{unit}/events", inst.base());
    let soh = serde_json::json!({"type": "state_of_health", "reason": "annual check", "evidence": "https://workshop.example/r/1.pdf", "delta": {"state_of_health": 0.93}});
    use reqwest::Method;
    // Who may write what, and bad bodies: nothing changes.
    for (tok, body, want) in [
        (None, soh.clone(), 401),
        (Some("lmk_nope"), soh.clone(), 401),
        (Some(token.as_str()), soh.clone(), 403),
        (Some(authority.as_str()), soh.clone(), 403),
        (
            Some(service.as_str()),
            serde_json::json!({"type": "recycled", "reason": "x"}),
            403,
        ),
        (
            Some(service.as_str()),
            serde_json::json!({"type": "painted", "reason": "x"}),
            400,
        ),
        (
            Some(service.as_str()),
            serde_json::json!({"type": "repaired"}),
            400,
        ),
    ] {
        let (s, b) = call(Method::POST, events.clone(), tok, Some(body)).await;
        assert_eq!(s, want, "{b}");
    }
    let (s, _) = call(
        Method::POST,
        format!("{}/passports/FTY8JWEQF4GZ0/events", inst.base()),
        Some(&service),
        Some(soh.clone()),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(c.sql("SELECT count(*) FROM passport_versions"), "0");
    // Versions 2 and 3; the recycled unit takes no more.
    let (s, b) = call(
        Method::POST,
        events.clone(),
        Some(&service),
        Some(soh.clone()),
    )
    .await;
    assert_eq!((s, b["version"].as_i64()), (201, Some(2)), "{b}");
    let (s, b) = call(Method::POST, events.clone(), Some(&recycler), Some(serde_json::json!({"type": "recycled", "reason": "end of life", "delta": {"recovered_kg": 12.5}}))).await;
    assert_eq!((s, b["version"].as_i64()), (201, Some(3)), "{b}");
    let (s, _) = call(
        Method::POST,
        events.clone(),
        Some(&service),
        Some(soh.clone()),
    )
    .await;
    assert_eq!(s, 409);
    let (s, p) = call(
        Method::GET,
        format!("{}/passports/{unit}", inst.base()),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            p["public"]["status"].as_str(),
            p["public"]["version"].as_i64()
        ),
        (Some("recycled"), Some(3))
    );
    // The history: the line's record, then each update with its actor and delta.
    let (s, h) = call(
        Method::GET,
        format!("{}/passports/{unit}/history", inst.base()),
        None,
        None,
    )
    .await;
    assert_eq!(s, 401, "{h}");
    let (s, h) = call(
        Method::GET,
        format!("{}/passports/{unit}/history", inst.base()),
        Some(&authority),
        None,
    )
    .await;
    assert_eq!(s, 200, "{h}");
    let v = h["versions"].as_array().unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(
        (v[0]["version"].as_i64(), v[0]["role"].as_str()),
        (Some(1), Some("line"))
    );
    assert_eq!(v[1]["actor"], "Workshop Berlin");
    assert_eq!(v[1]["evidence"], "https://workshop.example/r/1.pdf");
    assert_eq!(v[1]["delta"]["state_of_health"], 0.93);
    assert_eq!(
        (v[2]["type"].as_str(), v[2]["role"].as_str()),
        (Some("recycled"), Some("recycler"))
    );
    // The audit log: every token-authenticated read and change, for authority/admin only.
    let (s, _) = call(
        Method::GET,
        format!("{}/v1/audit?passport={unit}", inst.base()),
        Some(&service),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, a) = call(
        Method::GET,
        format!("{}/v1/audit?passport={unit}", inst.base()),
        Some(&authority),
        None,
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let actions: Vec<String> = a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["role"].as_str().unwrap(),
                e["action"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "service update:state_of_health",
            "recycler update:recycled",
            "authority history",
            "authority audit"
        ],
        "refused requests changed nothing and wrote nothing"
    );
    // The chain verifies; the database refuses to change it; a removed
    // entry (by a superuser disabling the trigger) is found.
    let out = c.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("4 entries"), "{}", stdout(&out));
    for sql in [
        "UPDATE audit_log SET actor = 'x'",
        "DELETE FROM audit_log",
        "DELETE FROM passport_versions",
    ] {
        let out = c.pg.psql(&c.db, sql);
        assert!(
            !out.status.success() && stderr(&out).contains("append-only"),
            "{sql}"
        );
    }
    c.sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; UPDATE audit_log SET actor = 'someone else' WHERE seq = 2");
    let out = c.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("entry 2"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_label_resolves_to_the_units_passport() {
    let Some(c) = Central::start("central::a_scanned_label_resolves") else {
        return;
    };
    c.write_config(0, PRODUCTS);
    let token = c.add_line("P1-L03");
    let inst = c.run();
    // A line with a label printer writing files, syncing continuously.
    let labels = tempfile::tempdir().unwrap();
    let mut extra = printing_station(
        "tcp://127.0.0.1:0",
        &["ALLOC", "RESULT", "FINAL"],
        &format!("dir://{}", labels.path().display()),
    );
    extra += &upstream_toml(&inst.base(), "continuous");
    let line = Line::with_config(&extra);
    std::fs::write(
        line.path().join("config/keys/upstream.token"),
        format!("{token}\n"),
    )
    .unwrap();
    line.grant_block("b1", 1_048_576, 1000);
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let mut st = crate::helper::connect(&d, "t", "t").await;
    let unit = ready_unit(&mut st).await;
    crate::helper::ok(&mut st, "FINAL", &[("unit", &unit), ("status", "PASS")]).await;
    let png = labels.path().join(format!("{unit}-1.png"));
    wait_for("the label", || png.exists()).await;
    wait_for("central to hold the line's chain", || {
        central_head(&c, "P1-L03") == line_head(&line)
    })
    .await;
    d.shutdown().await;
    // Scan the printed label as a phone would, and follow it.
    let scanned =
        linemark::label::scan::qr_text(&std::fs::read(&png).unwrap()).expect("a readable QR code");
    let path = scanned
        .strip_prefix("https://id.example.com")
        .expect("the label points at the resolver");
    assert!(path.ends_with(&format!("/21/{unit}")), "{scanned}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}{path}", inst.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let passport = location
        .strip_prefix("https://id.example.com")
        .expect("the passport is on the resolver");
    let r = http
        .get(format!("{}{passport}", inst.base()))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let final_ts: String = rusqlite::Connection::open(line.db_path())
        .unwrap()
        .query_row(
            "SELECT ts FROM events WHERE type = 'FINAL_PASS' AND unit = ?1",
            [&unit],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(doc["public"]["id"], unit.as_str());
    assert_eq!(doc["public"]["gtin"], "09506000134352");
    assert_eq!(doc["public"]["manufactured_at"], final_ts.as_str());
    assert_eq!(doc["public"]["status"], "passed");
    assert_eq!(
        doc["public"]["uri"],
        scanned.as_str(),
        "the passport names the label's URI"
    );
}

/// A line whose unit passed final test, its events in the central store.
pub(crate) async fn passed_unit_in(inst_base: &str, token: &str) -> String {
    let extra = crate::helper::station_toml(
        "t",
        "tcp://127.0.0.1:0",
        &["ALLOC", "RESULT", "FINAL"],
        None,
        "optional",
    );
    let line = Line::with_config(&extra);
    line.grant_block("b1", 1_048_576, 1000);
    let d = linemark::daemon::Daemon::start(line.config())
        .await
        .unwrap();
    let mut st = crate::helper::connect(&d, "t", "c").await;
    let unit = crate::helper::ready_unit(&mut st).await;
    crate::helper::ok(&mut st, "FINAL", &[("unit", &unit), ("status", "PASS")]).await;
    d.shutdown().await;
    let body = serde_json::to_vec(&batch_of(&line, 1, line_head(&line))).unwrap();
    let (s, answer) = post(
        &format!("{inst_base}/v1/lines/P1-L03/journal"),
        Some(token),
        body,
        false,
    )
    .await;
    assert_eq!(s, 200, "{answer}");
    unit
}

pub(crate) fn example_product(aspect: &str) -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/product-09506000134352")
        .join(format!("{aspect}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_data_is_checked_versioned_merged_per_unit_and_cut_per_role() {
    use linemark::central::access::{classification, Level};
    use linemark::central::aspects::{check_full, Aspect};
    use reqwest::Method;
    let Some(c) = Central::start("central::product_content") else {
        return;
    };
    c.write_config(0, PRODUCTS);
    let token = c.add_line("P1-L03");
    let inst = c.run();
    let base = inst.base();
    let unit = passed_unit_in(&base, &token).await;
    let maker = person_token(&c, "manufacturer", "Acme product data");
    let service = person_token(&c, "service", "Workshop Berlin");
    let authority = person_token(&c, "authority", "Market surveillance");
    let gtin = "09506000134352";
    let put = |aspect: &str| format!("{base}/v1/products/{gtin}/aspects/{aspect}");

    // Who may upload, and bad documents: 4xx naming the problem, nothing stored.
    let gpi = example_product("GeneralProductInformation");
    for (tok, url, body, want) in [
        (None, put("GeneralProductInformation"), gpi.clone(), 401),
        (
            Some(service.as_str()),
            put("GeneralProductInformation"),
            gpi.clone(),
            403,
        ),
        (Some(maker.as_str()), put("Nope"), gpi.clone(), 404),
        (
            Some(maker.as_str()),
            format!("{base}/v1/products/09506000134353/aspects/Labeling"),
            gpi.clone(),
            404,
        ),
        (
            Some(maker.as_str()),
            put("GeneralProductInformation"),
            serde_json::json!({"batteryMass": "heavy", "batteryCategory": "spaceship"}),
            400,
        ),
    ] {
        let (s, answer) = call(Method::PUT, url.clone(), tok, Some(body)).await;
        assert_eq!(s, want, "{url}: {answer}");
    }
    let (_, answer) = call(
        Method::PUT,
        put("GeneralProductInformation"),
        Some(&maker),
        Some(serde_json::json!({"batteryMass": "heavy"})),
    )
    .await;
    assert!(
        answer["problems"][0]["path"] == "/batteryMass",
        "the problem names the attribute: {answer}"
    );
    assert_eq!(c.sql("SELECT count(*) FROM product_aspects"), "0");

    // The completeness report before any data, by CLI.
    let check = c.cli(&["product", "check", gtin]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).contains("batteryMass"), "{}", stdout(&check));

    // A partial upload, then every aspect from the example product by CLI.
    let (s, answer) = call(
        Method::PUT,
        put("GeneralProductInformation"),
        Some(&maker),
        Some(serde_json::json!({"batteryMass": 12.5})),
    )
    .await;
    assert_eq!((s, answer["version"].clone()), (201, 1.into()), "{answer}");
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/product-09506000134352");
    let import = c.cli(&["product", "import", gtin, dir.to_str().unwrap()]);
    assert_eq!(import.status.code(), Some(0), "{}", stderr(&import));
    assert!(stdout(&import).contains("GeneralProductInformation: version 2"));
    let (s, versions) = call(
        Method::GET,
        format!("{}/versions", put("GeneralProductInformation")),
        Some(&maker),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        2,
        "{versions}"
    );
    assert_eq!(versions["versions"][0]["actor"], "Acme product data");
    assert_eq!(versions["versions"][1]["actor"], "cli:product-import");
    let check = c.cli(&["product", "check", gtin, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&check)).unwrap();
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["battery_category"], "lmt", "{report}");
    let (s, web) = call(
        Method::GET,
        format!("{base}/v1/products/{gtin}/completeness"),
        Some(&maker),
        None,
    )
    .await;
    assert_eq!((s, &web), (200, &report), "the web report is the CLI's");
    let page = reqwest::Client::new()
        .get(format!("{base}/v1/products/{gtin}/completeness"))
        .header("Accept", "text/html")
        .bearer_auth(&maker)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Every required attribute is supplied")
            && page.contains("Battery category: lmt"),
        "{page}"
    );
    let (s, _) = call(
        Method::GET,
        format!("{base}/v1/products/{gtin}/completeness"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 401);
    // An upload is append-only in the database.
    for sql in [
        "UPDATE product_aspects SET actor = 'x'",
        "DELETE FROM product_aspects",
    ] {
        let out = c.pg.psql(&c.db, sql);
        assert!(
            !out.status.success() && stderr(&out).contains("append-only"),
            "{sql}"
        );
    }

    // A state of health recorded by a workshop reaches the unit's document.
    let (s, _) = call(
        Method::POST,
        format!("{base}/passports/{unit}/events"),
        Some(&service),
        Some(serde_json::json!({"type": "state_of_health", "reason": "annual check", "delta": {"state_of_health": 93.5}})),
    )
    .await;
    assert_eq!(s, 201);

    // Each role sees exactly its attributes of every aspect; the full
    // document validates for those who see everything.
    let c13n = classification().unwrap();
    for a in Aspect::ALL {
        let url = format!("{base}/passports/{unit}/aspects/{}", a.name());
        let (s, full) = call(Method::GET, url.clone(), Some(&authority), None).await;
        assert_eq!(s, 200, "{url}: {full}");
        check_full(a, &full).unwrap_or_else(|e| panic!("{a:?}: {e}\n{full}"));
        for (tok, level) in [
            (None, Level::Public),
            (Some(service.as_str()), Level::LegitimateInterest),
        ] {
            let (s, seen) = call(Method::GET, url.clone(), tok, None).await;
            match c13n.filter(a, &full, level) {
                Some(want) => assert_eq!((s, &seen), (200, &want), "{a:?} for {level:?}"),
                None => assert_eq!(s, 403, "{a:?} for {level:?}: {seen}"),
            }
        }
    }
    let gpi_url = format!("{base}/passports/{unit}/aspects/GeneralProductInformation");
    let (_, public) = call(Method::GET, gpi_url.clone(), None, None).await;
    let text = public.to_string();
    assert!(
        !text.contains("batteryStatus") && !text.contains("puttingIntoService"),
        "{text}"
    );
    assert_eq!(
        public["batteryPassportIdentifier"],
        format!("urn:linemark:{}", unit.to_lowercase())
    );
    assert_eq!(public["manufacturingPlace"]["postalCode"], "10719");
    let (_, li) = call(Method::GET, gpi_url, Some(&service), None).await;
    assert_eq!(li["batteryStatus"], "Original");
    let (_, perf) = call(
        Method::GET,
        format!("{base}/passports/{unit}/aspects/PerformanceAndDurability"),
        Some(&service),
        None,
    )
    .await;
    assert_eq!(
        perf["batteryCondition"]["stateOfCertifiedEnergy"]["stateOfCertifiedEnergyValue"],
        93.5
    );
    // The model-level document for the public.
    let (s, model) = call(Method::GET, put("Labeling"), None, None).await;
    assert_eq!(s, 200);
    assert!(model.get("resultOfTestReport").is_none(), "{model}");

    // The resolver leads a product's and a batch's Digital Link to the
    // model's and the batch's passport, with the attributes of that level.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, want) in [
        (
            format!("/01/{gtin}"),
            format!("https://id.example.com/models/{gtin}"),
        ),
        (
            format!("/01/{gtin}/10/L1"),
            format!("https://id.example.com/models/{gtin}/batches/L1"),
        ),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 307, "{path}");
        assert_eq!(r.headers()["location"].to_str().unwrap(), want, "{path}");
    }
    let (s, m) = call(Method::GET, format!("{base}/models/{gtin}"), None, None).await;
    assert_eq!((s, m["granularity"].as_str()), (200, Some("model")), "{m}");
    let g = &m["aspects"]["GeneralProductInformation"];
    assert!(g.get("batteryMass").is_some(), "{m}");
    for per_unit in ["productIdentifier", "manufacturingDate", "batteryStatus"] {
        assert!(
            g.get(per_unit).is_none(),
            "{per_unit} on a model passport: {m}"
        );
    }
    let (s, b) = call(
        Method::GET,
        format!("{base}/models/{gtin}/batches/L1"),
        Some(&authority),
        None,
    )
    .await;
    assert_eq!(
        (s, b["lot"].as_str(), b["granularity"].as_str()),
        (200, Some("L1"), Some("batch")),
        "{b}"
    );
    assert!(
        b["aspects"]["Labeling"].get("resultOfTestReport").is_some(),
        "an authority sees it: {b}"
    );
}
