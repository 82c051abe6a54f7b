//! The command line: global --config, exit codes, one-line reasons,
//! config errors that point at the key, unit show, backup.

use crate::helper::{alloc, stderr, stdout, Line, BASE_CONFIG};

#[test]
fn config_errors_name_file_line_and_key_and_exit_2() {
    let line = Line::new();
    line.write_config(&BASE_CONFIG.replace("09506000134352", "09506000134353"));
    let out = line.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("linemark.toml:16: product[0].gtin: "), "{err}");
    assert!(err.contains("check digit"), "{err}");

    line.write_config(&BASE_CONFIG.replace("low_water = 10", "low_water = \"ten\""));
    let err = stderr(&line.cli(&["check-config"]));
    assert!(err.contains("linemark.toml:11: ids.low_water: "), "{err}");

    line.write_config(&BASE_CONFIG.replace("low_water", "lowwater"));
    let err = stderr(&line.cli(&["check-config"]));
    assert!(err.contains("linemark.toml:11: ids.lowwater"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
        .args([
            "check-config",
            "--config",
            &format!("{root}/config/linemark.toml"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("key_id 630dcd2966c43366"));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let bin = env!("CARGO_BIN_EXE_linemark");
    let out = std::process::Command::new(bin)
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for cmd in ["check-config", "blocks", "unit", "journal", "backup"] {
        assert!(help.contains(cmd), "{cmd} missing from help");
    }
}

#[test]
fn the_config_option_works_anywhere_on_the_line() {
    let line = Line::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_linemark"))
        .arg("--config")
        .arg(line.config_path())
        .args(["blocks", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn unit_show_prints_state_uri_and_history_and_refuses_bad_ids() {
    let line = Line::new();
    let j = line.open();
    line.grant_into(&j, "b1", 1048576, 10);
    let id = alloc(&j).unwrap();
    drop(j);
    let out = line.cli(&["unit", "show", &id.to_lowercase()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = stdout(&out);
    assert!(
        s.contains("https://id.example.com/01/09506000134352/10/L1/21/V700QW11S6PJ4"),
        "{s}"
    );
    assert!(
        s.contains("(01) 09506000134352 (10) L1 (21) V700QW11S6PJ4"),
        "{s}"
    );
    assert!(s.contains("ALLOCATED"), "{s}");
    let out = line.cli(&["unit", "show", &id, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["events"][0]["type"], "ALLOCATED");
    assert_eq!(v["events"][0]["data"]["product"], "PACK-48V");

    let out = line.cli(&["unit", "show", "V700QW11S6PJ5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("wrong check character"));
    let out = line.cli(&["unit", "show", "FTY8JWEQF4GZ0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not in this line's journal"));
}

#[test]
fn backup_writes_a_verified_copy_and_never_overwrites() {
    let line = Line::new();
    let j = line.open();
    line.grant_into(&j, "b1", 0, 100);
    for _ in 0..20 {
        alloc(&j).unwrap();
    }
    // Online: the journal stays open while the backup runs.
    let dest = line.path().join("bk.db");
    let out = line.cli(&["backup", dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("seq 1..21"), "{}", stdout(&out));
    let c = rusqlite::Connection::open(&dest).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM units", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 20);
    let out = line.cli(&["backup", dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exists already"));
    // A folder gets a dated file.
    let folder = line.path().join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    let out = line.cli(&["backup", folder.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1);
    drop(j);
}
