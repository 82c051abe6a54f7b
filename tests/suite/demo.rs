//! `linemark demo` through the real binary: a small shift, labels on disk,
//! every label verified, the journal intact.

use crate::helper::{stderr, stdout};

#[test]
fn the_demo_runs_a_shift_prints_verified_labels_and_leaves_a_valid_journal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let bin = env!("CARGO_BIN_EXE_linemark");
    let run = std::process::Command::new(bin)
        .args(["demo", "--units", "30", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let s = stdout(&run);
    assert!(s.contains("units allocated            30"), "{s}");
    let passed: u64 = s
        .lines()
        .find(|l| l.contains("final test passed"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let verified: u64 = s
        .lines()
        .find(|l| l.contains("labels verified"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(
        passed, verified,
        "every passed unit's label was scanned back and matched"
    );
    let pngs = std::fs::read_dir(out.join("labels"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(pngs as u64, passed + 1, "one PNG per pass plus the reprint");
    let verify = std::process::Command::new(bin)
        .args(["journal", "verify", "--config"])
        .arg(out.join("linemark.toml"))
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    // The shift report at the end: one CSV row per unit, HTML and PDF beside it.
    assert!(s.contains("shift-report.html (also .csv and .pdf)"), "{s}");
    let csv = std::fs::read_to_string(out.join("shift-report.csv")).unwrap();
    assert_eq!(csv.lines().count(), 31, "a header and one row per unit");
    let html = std::fs::read_to_string(out.join("shift-report.html")).unwrap();
    assert!(
        html.contains("<th>Units allocated</th><td>30</td>"),
        "{html}"
    );
    assert!(std::fs::read(out.join("shift-report.pdf"))
        .unwrap()
        .starts_with(b"%PDF-"));
    // A second run starts a fresh shift in the same folder.
    let again = std::process::Command::new(bin)
        .args(["demo", "--units", "5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
}

#[test]
fn label_preview_writes_each_format_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/linemark.toml");
    let bin = env!("CARGO_BIN_EXE_linemark");
    for ext in ["png", "pdf", "zpl"] {
        let out = dir.path().join(format!("l.{ext}"));
        let r = std::process::Command::new(bin)
            .args([
                "label",
                "preview",
                "--template",
                "pack-50x30",
                "--product",
                "PACK-48V",
                "--lot",
                "AB/7%",
                "--config",
                cfg,
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        assert!(std::fs::metadata(&out).unwrap().len() > 100);
        assert!(stdout(&r).contains("/10/AB%2F7%25/21/"), "{}", stdout(&r));
    }
    for (args, why) in [
        (
            vec!["--template", "pack-50x30", "--product", "NOPE"],
            "no product",
        ),
        (
            vec!["--template", "nope", "--product", "PACK-48V"],
            "no template",
        ),
        (
            vec![
                "--template",
                "pack-50x30",
                "--product",
                "PACK-48V",
                "--lot",
                "A B",
            ],
            "--lot",
        ),
    ] {
        let r = std::process::Command::new(bin)
            .args(["label", "preview"])
            .args(&args)
            .args(["--config", cfg, "--out"])
            .arg(dir.path().join("x.png"))
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        assert!(stderr(&r).contains(why), "{}", stderr(&r));
    }
}
