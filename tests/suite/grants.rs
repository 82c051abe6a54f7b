//! Block grants through the real binary: every refusal has its own
//! message, exits 2, and leaves the journal as it was.

use crate::helper::{grant, issuer, stderr, stdout, Line, VECTOR_GRANT};
use ed25519_dalek::SigningKey;

/// Every event's (seq, hash) and every block (id, start, count).
type Snapshot = (Vec<(i64, String)>, Vec<(String, i64, i64)>);

/// The journal's logical content.
fn snapshot(line: &Line) -> Snapshot {
    let c = rusqlite::Connection::open(line.db_path()).unwrap();
    let ev = c
        .prepare("SELECT seq, hash FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let bl = c
        .prepare("SELECT block_id, start, count FROM blocks ORDER BY ordinal")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (ev, bl)
}

fn import(line: &Line, name: &str, text: &str) -> std::process::Output {
    let f = line.grant_file(name, text);
    line.cli(&["blocks", "import", f.to_str().unwrap()])
}

#[test]
fn the_spec_vector_grant_imports_and_lists() {
    let line = Line::new();
    let out = import(&line, "vector.json", VECTOR_GRANT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("65536 IDs"));
    let out = line.cli(&["blocks", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let s = stdout(&out);
    assert!(s.contains("018f3a2e-7c4d-7000-8000-000000000001"), "{s}");
    assert!(s.contains("1048576") && s.contains("1114112"), "{s}");
    let out = line.cli(&["blocks", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["left"], 65536);
    assert_eq!(v[0]["used"], 0);
}

#[test]
fn each_bad_grant_is_refused_with_its_own_message_and_nothing_changes() {
    let line = Line::new();
    let ok = import(&line, "vector.json", VECTOR_GRANT);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let before = snapshot(&line);

    let mut tampered = grant("b-sig", 5_000_000, 10);
    tampered.count = 11;
    let mut other_line = grant("b-line", 5_000_000, 10);
    other_line.line_id = "P2-L01".into();
    other_line.sign(&issuer());
    let mut wrong_key = grant("b-key", 5_000_000, 10);
    wrong_key.key_id = "ffffffffffffffff".into();
    wrong_key.sign(&issuer());
    let mut foreign_issuer = grant("b-issuer", 5_000_000, 10);
    foreign_issuer.sign(&SigningKey::from_bytes(&[8u8; 32]));
    let overlap = grant("b-overlap", 1048576 + 65535, 10);
    let json = |g: &linemark::ids::Grant| serde_json::to_string(g).unwrap();

    let cases: Vec<(&str, String, &str)> = vec![
        ("altered", json(&tampered), "signature does not verify"),
        (
            "foreign issuer",
            json(&foreign_issuer),
            "signature does not verify",
        ),
        ("another line", json(&other_line), "is for line \"P2-L01\""),
        (
            "wrong key id",
            json(&wrong_key),
            "namespace key ffffffffffffffff",
        ),
        (
            "overlap",
            json(&overlap),
            "overlaps block 018f3a2e-7c4d-7000-8000-000000000001",
        ),
        ("twice", VECTOR_GRANT.to_string(), "already imported"),
        ("truncated", VECTOR_GRANT[..80].to_string(), "truncated"),
        (
            "not json",
            "this is not a grant\n".to_string(),
            "not valid JSON",
        ),
        (
            "missing field",
            r#"{"grant_version":1,"block_id":"x"}"#.to_string(),
            "missing or has a malformed field",
        ),
        ("empty", String::new(), "truncated"),
    ];
    for (what, text, expect) in cases {
        let out = import(&line, "bad.json", &text);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(expect),
            "{what}: expected {expect:?} in {err:?}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{what}: one-line reason: {err:?}"
        );
        assert_eq!(snapshot(&line), before, "{what} changed the journal");
    }
}

#[test]
fn a_grant_file_that_does_not_exist_is_bad_input() {
    let line = Line::new();
    let out = line.cli(&["blocks", "import", "nope.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read grant file nope.json"));
}

#[test]
fn dev_grants_are_refused_unless_the_config_allows_them() {
    let line = Line::new();
    let out = line.cli(&["blocks", "dev-grant", "--count", "100"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ids.allow_dev_grants = false"));
    assert!(
        !line.db_path().exists(),
        "a refused dev grant must not create a journal"
    );

    let text = crate::helper::BASE_CONFIG.replace(
        "reserve_ahead = 50",
        "reserve_ahead = 50\nallow_dev_grants = true",
    );
    line.write_config(&text);
    let out = line.cli(&["blocks", "dev-grant", "--count", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = line.cli(&["blocks", "dev-grant", "--count", "50"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: serde_json::Value =
        serde_json::from_slice(&line.cli(&["blocks", "list", "--json"]).stdout).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["count"], 100);
    assert_eq!(
        rows[1]["start"], rows[0]["end"],
        "the second dev block follows the first"
    );
    assert!(line.data_dir().join("keys/dev-issuer.key").exists());

    // Turned off again, grants signed by the dev key no longer verify.
    line.write_config(crate::helper::BASE_CONFIG);
    let dev_file = std::fs::read_dir(line.data_dir().join("grants"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = line.cli(&["blocks", "import", dev_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("signature does not verify"),
        "{}",
        stderr(&out)
    );
}
