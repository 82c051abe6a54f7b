//! Tidy: the invariants of ARCHITECTURE.md, checked by reading the source
//! tree (as rust-analyzer's `xtask/src/tidy.rs` does), so a rule that
//! breaks fails here instead of living on in memory.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("source dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every source file under `src/` as (path relative to the crate, the code
/// before its `#[cfg(test)]` module: tests may read golden files).
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("source");
            let code = match text.find("#[cfg(test)]") {
                Some(i) => &text[..i],
                None => &text[..],
            };
            // Comments may name what a module must not use.
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            let rel = p
                .strip_prefix(root)
                .expect("under the crate")
                .to_string_lossy()
                .replace('\\', "/");
            (rel, code)
        })
        .collect()
}

fn has_sql(code: &str) -> bool {
    const SQL: [&str; 9] = [
        "\"SELECT ",
        "\"INSERT ",
        "\"UPDATE ",
        "\"DELETE ",
        "\"PRAGMA ",
        "\"CREATE ",
        "\"BEGIN",
        "\"COMMIT",
        "\"REPLACE ",
    ];
    code.contains("rusqlite") || SQL.iter().any(|s| code.contains(s))
}

#[test]
fn sql_lives_only_in_journal_and_the_central_store() {
    // SQLite (the line's journal) in journal/, PostgreSQL (the central
    // store) in central/store/, each driver only in its own module.
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(path, code)| {
            let journal = path.starts_with("src/journal/");
            let store = path.starts_with("src/central/store/");
            (has_sql(code) && !journal && !store)
                || (code.contains("rusqlite") && !journal)
                || ((code.contains("tokio_postgres") || code.contains("deadpool")) && !store)
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        offenders.is_empty(),
        "SQL outside src/journal/ and src/central/store/, or a database driver outside its module (ARCHITECTURE.md: add a named function there): {offenders:?}"
    );
}

#[test]
fn the_central_service_uses_no_part_of_the_line_runtime() {
    const LINE_RUNTIME: [&str; 5] = [
        "crate::line",
        "crate::station",
        "crate::printer",
        "crate::sync",
        "crate::journal::Journal",
    ];
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|(path, _)| path.starts_with("src/central/"))
        .flat_map(|(path, code)| {
            LINE_RUNTIME
                .into_iter()
                .filter(move |m| code.contains(m))
                .map(move |m| format!("{path}: {m}"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "central/ must not import these: {found:?}"
    );
}

#[test]
fn the_pure_modules_do_no_io_and_know_no_runtime() {
    const PURE: [&str; 18] = [
        "src/central/sheet.rs",
        "src/central/aspects.rs",
        "src/central/access.rs",
        "src/central/content.rs",
        "src/plc/call.rs",
        "src/plc/mailbox.rs",
        "src/ids/",
        "src/gs1/",
        "src/protocol/",
        "src/label/",
        "src/central/ingest.rs",
        "src/central/projection.rs",
        "src/central/blocks.rs",
        "src/central/token.rs",
        "src/central/resolver.rs",
        "src/central/passport.rs",
        "src/central/lifecycle.rs",
        "src/central/audit.rs",
    ];
    const IO: [&str; 9] = [
        "tokio_postgres",
        "tokio",
        "std::fs",
        "std::net",
        "std::process",
        "File::",
        "TcpStream",
        "std::env",
        "rusqlite",
    ];
    let mut found = Vec::new();
    for (path, code) in sources() {
        if PURE.iter().any(|p| path.starts_with(p)) {
            for word in IO.iter().filter(|w| code.contains(*w)) {
                found.push(format!("{path}: {word}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "IO or a runtime in a pure module (ARCHITECTURE.md invariants): {found:?}"
    );
}

#[test]
fn the_line_rules_know_neither_the_web_page_nor_sync() {
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|(path, _)| path.starts_with("src/line/"))
        .flat_map(|(path, code)| {
            ["crate::web", "crate::sync"]
                .into_iter()
                .filter(move |m| code.contains(m))
                .map(move |m| format!("{path}: {m}"))
        })
        .collect();
    assert!(found.is_empty(), "line/ must not import these: {found:?}");
}

#[test]
fn the_plc_gateway_runs_every_call_through_the_line_and_keeps_its_stacks_to_themselves() {
    let mut found: Vec<String> = Vec::new();
    for (path, code) in sources() {
        if path.starts_with("src/plc/") {
            for m in [
                "crate::journal",
                "crate::station",
                "crate::printer",
                "crate::web",
            ] {
                if code.contains(m) {
                    found.push(format!("{path}: {m}"));
                }
            }
        }
        // The stack's own modules (ours is `plc::opcua`).
        let stack = [
            "types", "server", "client", "crypto", "sync", "core", "nodes",
        ]
        .iter()
        .any(|m| code.contains(&format!("opcua::{m}")));
        if stack && !path.starts_with("src/plc/opcua/") {
            found.push(format!("{path}: the OPC UA stack outside src/plc/opcua/"));
        }
        if code.contains("tokio_modbus") && path != "src/plc/modbus.rs" {
            found.push(format!(
                "{path}: the Modbus crate outside src/plc/modbus.rs"
            ));
        }
    }
    assert!(
        found.is_empty(),
        "the PLC gateway reaches the line through line::Line only: {found:?}"
    );
}

/// Whether the file (read again, comments kept) opens with a `//!` doc.
fn doc_first(rel: &str) -> bool {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).expect("source");
    text.trim_start().starts_with("//!")
}

#[test]
fn every_module_says_what_it_owns() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(path, code)| !path.ends_with("main.rs") && !code.is_empty() && !doc_first(path))
        .map(|(path, _)| path)
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! doc saying what they own: {missing:?}"
    );
}
