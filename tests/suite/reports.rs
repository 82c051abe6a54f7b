//! Shift reports over a synthetic journal with known answers: counts,
//! first-pass yield, failures by step and station, a night shift across
//! midnight, and both daylight-saving nights of 2026 in Europe/Berlin.

use linemark::journal::{AllocRequest, EventType, Journal, JournalError, NewEvent, WriteTx};
use linemark::report::{self, shift, Window};
use serde_json::json;

use crate::helper::{stderr, stdout, Line};

const SHIFTS: &str = r#"
[[shift]]
name = "A"
start = "06:00"
end = "14:00"

[[shift]]
name = "B"
start = "14:00"
end = "22:00"

[[shift]]
name = "C"
start = "22:00"
end = "06:00"
"#;

fn at(tx: &mut WriteTx<'_>, ts: &str) {
    tx.set_time(ts.parse().unwrap());
}

fn alloc(tx: &mut WriteTx<'_>, ts: &str) -> String {
    at(tx, ts);
    tx.allocate(&AllocRequest {
        product: "PACK-48V",
        gtin: "09506000134352",
        level: "item",
        lot: Some("L7"),
        station: Some("provision-1"),
        actor: "station:provision-1",
    })
    .unwrap()
    .unit
}

fn ev(
    tx: &mut WriteTx<'_>,
    ts: &str,
    kind: EventType,
    station: &str,
    unit: &str,
    data: serde_json::Value,
) {
    at(tx, ts);
    tx.append(NewEvent {
        kind,
        station: Some(station.into()),
        actor: format!("station:{station}"),
        unit: Some(unit.into()),
        data,
    })
    .unwrap();
}

fn result(step: &str, ok: bool, m: serde_json::Value) -> serde_json::Value {
    json!({"step": step, "status": if ok { "PASS" } else { "FAIL" }, "measurements": m})
}

/// The spring-forward night (shift C of 2026-03-28, 7 hours) with known
/// answers, plus events just outside it.
fn spring_night(j: &Journal) -> Vec<String> {
    j.write_blocking(|tx| {
        let _before = alloc(tx, "2026-03-28T20:59:59.999Z"); // shift B
        let u: Vec<String> = (0..4).map(|_| alloc(tx, "2026-03-28T21:00:00.000Z")).collect();
        use EventType::*;
        ev(tx, "2026-03-28T23:00:00.000Z", TestResult, "prov-1", &u[0], result("provision", true, json!({})));
        ev(tx, "2026-03-29T01:30:00.000Z", FinalPass, "final-1", &u[0], result("final", true, json!({})));
        ev(tx, "2026-03-29T02:00:00.000Z", TestResult, "func-1", &u[1], result("functional", false, json!({"v": "47.1"})));
        ev(tx, "2026-03-29T02:10:00.000Z", FinalFail, "final-1", &u[1], result("final", false, json!({"leak": "yes"})));
        ev(tx, "2026-03-29T02:30:00.000Z", TestResult, "func-2", &u[2], result("functional", false, json!({"v": "46.9"})));
        ev(tx, "2026-03-29T02:40:00.000Z", TestResult, "func-1", &u[2], result("functional", true, json!({"v": "48.0"})));
        ev(tx, "2026-03-29T03:00:00.000Z", FinalPass, "final-1", &u[2], result("final", true, json!({})));
        ev(tx, "2026-03-29T03:30:00.000Z", Scrapped, "rework", &u[3], json!({"reason": "dented case", "previous_state": "allocated"}));
        ev(tx, "2026-03-29T03:40:00.000Z", LabelReprinted, "final-1", &u[0], json!({"job": 2, "printer": "p", "template": "t", "reason": "smudged"}));
        ev(tx, "2026-03-29T03:45:00.000Z", LabelMismatch, "final-1", &u[2], json!({"scan": "x", "expected": "y", "problem": "wrong unit"}));
        for (ts, state, lasted) in [
            ("2026-03-29T03:50:00.000Z", "paused", 0.0),
            ("2026-03-29T03:52:05.000Z", "cleared", 125.0),
        ] {
            at(tx, ts);
            tx.append(NewEvent {
                kind: PrinterFault,
                station: None,
                actor: "printer:p".into(),
                unit: None,
                data: json!({"printer": "p", "state": state, "reason": "paper out", "lasted_s": lasted, "job": 3}),
            })?;
        }
        let _after = alloc(tx, "2026-03-29T04:00:00.000Z"); // 06:00 CEST: shift A
        Ok::<_, JournalError>(u)
    })
    .unwrap()
}

fn line_with_journal() -> (Line, Journal) {
    let line = Line::with_config(SHIFTS);
    let j = line.open();
    line.grant_into(&j, "b1", 0, 10_000);
    (line, j)
}

fn window(line: &Line, date: &str, name: &str) -> Window {
    report::resolve_window(
        &line.config(),
        Some(date.parse().unwrap()),
        Some(name),
        jiff::Timestamp::now(),
    )
    .unwrap()
}

#[test]
fn a_shift_report_has_the_known_counts_yield_and_failures() {
    let (line, j) = line_with_journal();
    let u = spring_night(&j);
    drop(j);
    let cfg = line.config();
    let conn = linemark::journal::open_read_only(&line.db_path()).unwrap();
    let w = window(&line, "2026-03-28", "C");
    assert_eq!(w.hours(), 7.0, "the night clocks go forward is 7 hours");
    let r = report::for_config(&cfg, &conn, &w).unwrap();
    assert_eq!(r.allocated, 4);
    assert_eq!(r.final_passed, 2);
    assert_eq!(r.final_failed, 1);
    assert_eq!(r.failed_units, 2);
    assert_eq!(r.scrapped, 1);
    assert_eq!(r.first_pass_yield, Some(1.0 / 3.0));
    assert_eq!(
        r.failures_by_step,
        vec![("functional".to_string(), 2), ("final".to_string(), 1)]
    );
    assert_eq!(
        r.failures_by_station,
        vec![
            ("final-1".to_string(), 1),
            ("func-1".to_string(), 1),
            ("func-2".to_string(), 1)
        ]
    );
    assert_eq!(r.failures[0].measurements, "v=47.1");
    assert_eq!(
        r.failures[0].ts, "2026-03-29 04:00:00",
        "local time, summer time"
    );
    assert_eq!(r.reprints.len(), 1);
    assert_eq!(r.reprints[0].reason, "smudged");
    assert_eq!(r.mismatches[0].problem, "wrong unit");
    assert_eq!(
        r.printer_faults.len(),
        1,
        "one fault, from its start to its clearing"
    );
    let f = &r.printer_faults[0];
    assert_eq!(
        (f.state.as_str(), f.reason.as_str(), f.lasted_s, f.open),
        ("paused", "paper out", 125.0, false)
    );
    assert_eq!(f.began, "2026-03-29 05:50:00");
    assert_eq!(r.ids_left, 10_000 - 6);
    // 4 IDs in 7 hours: 13.7 a day; 9,994 left.
    let days = r.days_of_stock.unwrap();
    assert!((days - 9994.0 / (4.0 / 7.0 * 24.0)).abs() < 1e-6, "{days}");
    assert_eq!(r.units.len(), 4);
    assert_eq!(
        r.units.iter().map(|l| l.unit.clone()).collect::<Vec<_>>(),
        u
    );
    assert_eq!(r.units[2].failed_steps, "functional");
    assert_eq!(r.units[2].final_status, "PASS");
    assert_eq!(r.units[3].scrapped, "dented case");
    assert_eq!(r.units[0].reprints, 1);
    // The shifts around it saw one allocation each.
    let b = report::for_config(&cfg, &conn, &window(&line, "2026-03-28", "B")).unwrap();
    assert_eq!(b.allocated, 1);
    let a = report::for_config(&cfg, &conn, &window(&line, "2026-03-29", "A")).unwrap();
    assert_eq!(a.allocated, 1);
    assert_eq!(a.first_pass_yield, None, "no verdicts, no yield");
}

#[test]
fn the_night_clocks_go_back_is_nine_hours_and_counts_the_repeated_hour_once() {
    let (line, j) = line_with_journal();
    j.write_blocking(|tx| {
        alloc(tx, "2026-10-24T20:00:00.000Z"); // 22:00 CEST: start, included
        alloc(tx, "2026-10-25T00:30:00.000Z"); // 02:30 CEST, first 02:30
        alloc(tx, "2026-10-25T01:30:00.000Z"); // 02:30 CET, second 02:30
        alloc(tx, "2026-10-25T04:59:59.999Z"); // 05:59:59 CET
        alloc(tx, "2026-10-25T05:00:00.000Z"); // 06:00 CET: end, excluded
        Ok::<_, JournalError>(())
    })
    .unwrap();
    drop(j);
    let conn = linemark::journal::open_read_only(&line.db_path()).unwrap();
    let w = window(&line, "2026-10-24", "C");
    assert_eq!(w.hours(), 9.0);
    let r = report::for_config(&line.config(), &conn, &w).unwrap();
    assert_eq!(r.allocated, 4);
    assert_eq!(r.start, "2026-10-24T22:00+02:00");
    assert_eq!(r.end, "2026-10-25T06:00+01:00");
}

#[test]
fn a_winter_night_shift_crosses_midnight_with_start_in_and_end_out() {
    let (line, j) = line_with_journal();
    j.write_blocking(|tx| {
        alloc(tx, "2026-11-23T20:59:59.999Z"); // 21:59:59: shift B
        alloc(tx, "2026-11-23T21:00:00.000Z"); // 22:00: C
        alloc(tx, "2026-11-23T23:30:00.000Z"); // 00:30 on the 24th: C
        alloc(tx, "2026-11-24T05:00:00.000Z"); // 06:00: A of the 24th
        Ok::<_, JournalError>(())
    })
    .unwrap();
    drop(j);
    let conn = linemark::journal::open_read_only(&line.db_path()).unwrap();
    let r = report::for_config(&line.config(), &conn, &window(&line, "2026-11-23", "C")).unwrap();
    assert_eq!(r.allocated, 2);
    assert_eq!(r.hours, 8.0);
    // The default is the last finished shift.
    let last = shift::last_finished(
        &line.config().shifts,
        "2026-11-24T05:30:00Z".parse().unwrap(),
        &line.config().timezone,
    )
    .unwrap();
    assert_eq!(
        (last.name.as_str(), last.date.to_string().as_str()),
        ("C", "2026-11-23")
    );
}

/// `linemark report shift --date 2026-03-28 --shift S --format F [--out P]`.
fn report_cli(
    line: &Line,
    shift: &str,
    format: &str,
    out: Option<&std::path::Path>,
) -> std::process::Output {
    let mut args = vec![
        "report",
        "shift",
        "--date",
        "2026-03-28",
        "--shift",
        shift,
        "--format",
        format,
    ];
    if let Some(p) = out {
        args.extend(["--out", p.to_str().unwrap()]);
    }
    line.cli(&args)
}

#[test]
fn report_shift_writes_csv_html_and_pdf_and_refuses_bad_input() {
    let (line, j) = line_with_journal();
    let units = spring_night(&j);
    drop(j);
    let csv_path = line.path().join("c.csv");
    let out = report_cli(&line, "C", "csv", Some(&csv_path));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut rd = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(
        rd.headers().unwrap().iter().collect::<Vec<_>>(),
        linemark::report::render::CSV_HEADER.to_vec()
    );
    let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 4, "one row per unit");
    assert_eq!(&rows[1][0], units[1].as_str());
    assert_eq!(&rows[1][4], "FAIL");
    assert_eq!(&rows[1][6], "functional;final");
    let out = report_cli(&line, "C", "html", None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = stdout(&out);
    assert!(
        html.contains("<th>First-pass yield</th><td>33.3 %</td>"),
        "{html}"
    );
    assert!(html.contains("<th>Scrapped</th><td>1</td>"), "{html}");
    assert!(
        html.contains("paper out") && html.contains("2 min 05 s"),
        "{html}"
    );
    let pdf = line.path().join("c.pdf");
    let out = report_cli(&line, "C", "pdf", Some(&pdf));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = lopdf::Document::load(&pdf).unwrap();
    assert!(!doc.get_pages().is_empty());
    let out = report_cli(&line, "X", "csv", None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the shifts are: A, B, C"),
        "{}",
        stderr(&out)
    );
    let out = line.cli(&[
        "report",
        "shift",
        "--date",
        "2026-13-01",
        "--shift",
        "C",
        "--format",
        "csv",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("YYYY-MM-DD"), "{}", stderr(&out));
    let out = line.cli(&["report", "shift", "--date", "2026-03-28", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--shift"), "{}", stderr(&out));
}
