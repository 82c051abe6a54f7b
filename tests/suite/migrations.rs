//! Old journal files keep opening: each schema version has a frozen fixture
//! in tests/data/, written once by this file and never by hand.
//! Regenerate (only when adding a new version's fixture) with
//! `LINEMARK_WRITE_FIXTURES=1 cargo test migrations`.

use crate::helper::{alloc, Line};
use linemark::ids::{IdCodec, NamespaceKey};
use linemark::journal;

fn fixture(version: i64) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/journal-v{version}.db"))
}

#[test]
fn the_v1_journal_fixture_opens_verifies_and_accepts_new_events() {
    let path = fixture(1);
    if std::env::var_os("LINEMARK_WRITE_FIXTURES").is_some() && !path.exists() {
        let line = Line::new();
        let j = line.open();
        line.grant_into(&j, "fixture-v1", 1048576, 1000);
        for _ in 0..5 {
            alloc(&j).unwrap();
        }
        let conn = j.reader().unwrap();
        conn.execute("VACUUM INTO ?1", [path.to_str().unwrap()])
            .unwrap();
    }
    let line = Line::new();
    std::fs::create_dir_all(line.data_dir()).unwrap();
    std::fs::copy(&path, line.db_path()).expect("tests/data/journal-v1.db is committed");
    let j = line.open();
    assert!(
        j.recovery().restore_detected,
        "a journal without its high-water file is reported"
    );
    let id = alloc(&j).unwrap();
    drop(j);
    let codec = IdCodec::new(&NamespaceKey::from_hex(crate::helper::NAMESPACE_KEY_HEX).unwrap());
    let conn = journal::open_read_only(&line.db_path()).unwrap();
    let r = journal::verify::verify(&conn, &codec, |_, _| {}).unwrap();
    assert_eq!(r.units, 6);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, journal::schema::CURRENT_VERSION);
    assert!(
        journal::query::unit(&conn, &codec, linemark::ids::UnitId::parse(&id).unwrap())
            .unwrap()
            .is_some()
    );
}
