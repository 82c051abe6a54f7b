//! Per-shift reports for quality engineers (`linemark report shift`, the
//! web page's `/reports/shift`).
//!
//! Owns: what a shift report says, computed in one pass over the shift's
//! events (the journal's `ts` index), and its three forms (`render.rs`:
//! CSV with one row per unit, a self-contained HTML page, a PDF with the
//! same tables and a bar chart of failures by step). Shift arithmetic is in
//! `shift.rs`.
//! Must not: write anything, or read events outside the shift (beyond the
//! few current-state figures it names: IDs left, sync lag).
//!
//! Definitions (also in README.md):
//! - *allocated*: `ALLOCATED` events in the shift.
//! - *final-passed* / *final-failed*: units with a `FINAL_PASS` /
//!   `FINAL_FAIL` in the shift.
//! - *failed*: units with at least one failing result (`TEST_RESULT` with
//!   status `FAIL`, or `FINAL_FAIL`) in the shift.
//! - *first-pass yield*: of the units that got a final verdict in the shift,
//!   the share that passed final with no failing result in the shift.
//! - *days of stock*: IDs left ÷ (IDs allocated in this shift ÷ its hours × 24).

pub mod render;
pub mod shift;

use std::collections::{BTreeMap, HashMap};

use crate::journal::Reader;
use serde::Serialize;
use serde_json::Value;

use crate::journal::{query, JournalError};
pub use shift::Window;

/// A failing result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub ts: String,
    pub unit: String,
    pub station: String,
    pub step: String,
    /// The measurements as sent, `key=value` joined with spaces.
    pub measurements: String,
}

/// A label printed again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reprint {
    pub ts: String,
    pub unit: String,
    pub by: String,
    pub reason: String,
}

/// A VERIFY scan that did not match its unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    pub ts: String,
    pub unit: String,
    pub station: String,
    pub problem: String,
}

/// A printer fault: from its `PRINTER_FAULT` to the `cleared` one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrinterFault {
    /// Local time it began; empty when it began before the shift.
    pub began: String,
    pub printer: String,
    pub state: String,
    pub reason: String,
    /// How long it lasted; for a fault still open at the end of the
    /// shift, how long it had lasted by then.
    pub lasted_s: f64,
    pub open: bool,
}

/// One unit touched in the shift: a CSV row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitLine {
    pub unit: String,
    pub product: String,
    pub lot: String,
    pub allocated_at: String,
    /// `PASS`, `FAIL` or empty: the last final verdict in the shift.
    pub final_status: String,
    pub final_at: String,
    /// Steps that failed in the shift, `;`-separated, in order.
    pub failed_steps: String,
    pub scrapped: String,
    pub reprints: u32,
}

/// Sync figures at report time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncLag {
    pub configured: bool,
    pub last_seq: i64,
    pub acked_through: i64,
    pub lag_events: i64,
    pub acked_at: Option<String>,
    pub halted: Option<String>,
}

/// Everything a shift report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftReport {
    pub line_id: String,
    pub facility: String,
    pub timezone: String,
    pub shift: String,
    pub date: String,
    /// Local start and end, RFC 3339 with offset.
    pub start: String,
    pub end: String,
    pub hours: f64,
    pub allocated: u64,
    pub final_passed: u64,
    pub final_failed: u64,
    pub failed_units: u64,
    pub scrapped: u64,
    /// `None` when no unit got a final verdict.
    pub first_pass_yield: Option<f64>,
    pub failures_by_step: Vec<(String, u64)>,
    pub failures_by_station: Vec<(String, u64)>,
    pub failures: Vec<Failure>,
    pub reprints: Vec<Reprint>,
    pub mismatches: Vec<Mismatch>,
    pub printer_faults: Vec<PrinterFault>,
    pub ids_left: u64,
    pub days_of_stock: Option<f64>,
    pub sync: SyncLag,
    pub units: Vec<UnitLine>,
}

/// What a unit's row needs besides its text, kept beside `units`.
#[derive(Default, Clone, Copy)]
struct UnitFlags {
    any_fail: bool,
    verdict: bool,
}

fn measurements(v: &Value) -> String {
    match v.get("measurements") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Local time of a stored UTC timestamp, `YYYY-MM-DD HH:MM:SS`.
pub fn local_time(ts: &str, tz: &jiff::tz::TimeZone) -> String {
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => civil_text(tz.to_datetime(t)),
        Err(_) => ts.to_string(),
    }
}

/// A local date and time as reports and pages show it, `YYYY-MM-DD HH:MM:SS`.
pub fn civil_text(dt: jiff::civil::DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Local times for one window: a fixed offset when the zone keeps one
/// offset all through it (the usual case), the zone's rules otherwise.
struct LocalClock {
    tz: jiff::tz::TimeZone,
    fixed: Option<jiff::tz::Offset>,
}

impl LocalClock {
    fn new(tz: &jiff::tz::TimeZone, w: &Window) -> Self {
        let (a, b) = (tz.to_offset(w.start), tz.to_offset(w.end));
        LocalClock {
            tz: tz.clone(),
            fixed: (a == b).then_some(a),
        }
    }

    fn text(&self, ts: &str) -> String {
        let Ok(t) = ts.parse::<jiff::Timestamp>() else {
            return ts.to_string();
        };
        match self.fixed {
            Some(o) => civil_text(o.to_datetime(t)),
            None => civil_text(self.tz.to_datetime(t)),
        }
    }
}

/// What the report needs from outside the window.
pub struct Context<'a> {
    pub line_id: &'a str,
    pub facility: &'a str,
    pub tz: &'a jiff::tz::TimeZone,
    pub tz_name: &'a str,
    pub sync: SyncLag,
}

/// Builds the report for `w` from the journal.
pub fn build(conn: &Reader, ctx: &Context<'_>, w: &Window) -> Result<ShiftReport, JournalError> {
    let from = crate::journal::event::format_ts(w.start);
    let to = crate::journal::event::format_ts(w.end);
    let mut units: Vec<UnitLine> = Vec::new();
    // unit -> index into `units` and `flags`
    let mut acc: HashMap<String, usize> = HashMap::new();
    let mut flags: Vec<UnitFlags> = Vec::new();
    let mut by_step: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_station: BTreeMap<String, u64> = BTreeMap::new();
    let mut open_faults: HashMap<String, usize> = HashMap::new();
    let mut open_began: HashMap<String, String> = HashMap::new();
    let mut r = ShiftReport {
        line_id: ctx.line_id.to_string(),
        facility: ctx.facility.to_string(),
        timezone: ctx.tz_name.to_string(),
        shift: w.name.clone(),
        date: w.date.to_string(),
        start: w
            .start
            .to_zoned(ctx.tz.clone())
            .strftime("%Y-%m-%dT%H:%M%:z")
            .to_string(),
        end: w
            .end
            .to_zoned(ctx.tz.clone())
            .strftime("%Y-%m-%dT%H:%M%:z")
            .to_string(),
        hours: w.hours(),
        allocated: 0,
        final_passed: 0,
        final_failed: 0,
        failed_units: 0,
        scrapped: 0,
        first_pass_yield: None,
        failures_by_step: Vec::new(),
        failures_by_station: Vec::new(),
        failures: Vec::new(),
        reprints: Vec::new(),
        mismatches: Vec::new(),
        printer_faults: Vec::new(),
        ids_left: 0,
        days_of_stock: None,
        sync: ctx.sync.clone(),
        units: Vec::new(),
    };
    let clock = LocalClock::new(ctx.tz, w);
    query::for_each_event_between(conn, &from, &to, |ev| {
        let local = || clock.text(ev.ts);
        let station = ev.station.unwrap_or("").to_string();
        // Only the kinds a report looks into are parsed.
        let data = || serde_json::from_str::<Value>(ev.data).unwrap_or(Value::Null);
        let unit_line = |units: &mut Vec<UnitLine>,
                         flags: &mut Vec<UnitFlags>,
                         acc: &mut HashMap<String, usize>| {
            let u = ev.unit.unwrap_or("");
            if let Some(&i) = acc.get(u) {
                return i;
            }
            units.push(UnitLine {
                unit: u.to_string(),
                product: ev.product.unwrap_or("").to_string(),
                lot: ev.lot.unwrap_or("").to_string(),
                allocated_at: String::new(),
                final_status: String::new(),
                final_at: String::new(),
                failed_steps: String::new(),
                scrapped: String::new(),
                reprints: 0,
            });
            flags.push(UnitFlags::default());
            acc.insert(u.to_string(), units.len() - 1);
            units.len() - 1
        };
        match ev.kind {
            "ALLOCATED" => {
                r.allocated += 1;
                let i = unit_line(&mut units, &mut flags, &mut acc);
                units[i].allocated_at = local();
            }
            "TEST_RESULT" | "FINAL_PASS" | "FINAL_FAIL" => {
                let i = unit_line(&mut units, &mut flags, &mut acc);
                let failed = ev.kind == "FINAL_FAIL"
                    || (ev.kind == "TEST_RESULT" && ev.data.contains("\"status\":\"FAIL\""));
                let a = &mut flags[i];
                if ev.kind != "TEST_RESULT" {
                    a.verdict = true;
                    units[i].final_status = if failed { "FAIL" } else { "PASS" }.into();
                    units[i].final_at = local();
                }
                if failed {
                    let d = data();
                    let step = str_of(&d, "step").to_string();
                    if !a.any_fail {
                        a.any_fail = true;
                        r.failed_units += 1;
                    }
                    let steps = &mut units[i].failed_steps;
                    if !steps.is_empty() {
                        steps.push(';');
                    }
                    steps.push_str(&step);
                    *by_step.entry(step.clone()).or_default() += 1;
                    *by_station.entry(station.clone()).or_default() += 1;
                    r.failures.push(Failure {
                        ts: local(),
                        unit: ev.unit.unwrap_or("").to_string(),
                        station,
                        step,
                        measurements: measurements(&d),
                    });
                }
            }
            "SCRAPPED" => {
                r.scrapped += 1;
                let i = unit_line(&mut units, &mut flags, &mut acc);
                units[i].scrapped = str_of(&data(), "reason").to_string();
            }
            "LABEL_REPRINTED" => {
                let i = unit_line(&mut units, &mut flags, &mut acc);
                units[i].reprints += 1;
                r.reprints.push(Reprint {
                    ts: local(),
                    unit: ev.unit.unwrap_or("").to_string(),
                    by: ev.actor.to_string(),
                    reason: str_of(&data(), "reason").to_string(),
                });
            }
            "LABEL_MISMATCH" => {
                let d = data();
                r.mismatches.push(Mismatch {
                    ts: local(),
                    unit: ev.unit.unwrap_or("").to_string(),
                    station,
                    problem: str_of(&d, "problem").to_string(),
                });
            }
            "PRINTER_FAULT" => {
                let d = data();
                let printer = str_of(&d, "printer").to_string();
                if str_of(&d, "state") == "cleared" {
                    let lasted_s = d.get("lasted_s").and_then(Value::as_f64).unwrap_or(0.0);
                    match open_faults.remove(&printer) {
                        Some(i) => {
                            let f: &mut PrinterFault = &mut r.printer_faults[i];
                            f.lasted_s = lasted_s;
                            f.open = false;
                        }
                        None => r.printer_faults.push(PrinterFault {
                            began: String::new(),
                            printer,
                            state: "(before the shift)".into(),
                            reason: str_of(&d, "reason").to_string(),
                            lasted_s,
                            open: false,
                        }),
                    }
                } else if !open_faults.contains_key(&printer) {
                    open_faults.insert(printer.clone(), r.printer_faults.len());
                    open_began.insert(printer.clone(), ev.ts.to_string());
                    r.printer_faults.push(PrinterFault {
                        began: local(),
                        printer,
                        state: str_of(&d, "state").to_string(),
                        reason: str_of(&d, "reason").to_string(),
                        lasted_s: 0.0,
                        open: true,
                    });
                }
            }
            _ => {}
        }
    })?;
    for (printer, i) in open_faults {
        let began = open_began
            .get(&printer)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        if let Some(b) = began {
            r.printer_faults[i].lasted_s = w.end.duration_since(b).as_secs_f64().max(0.0);
        }
    }
    let mut verdicts = 0u64;
    let mut first_pass = 0u64;
    for (line, a) in units.iter().zip(&flags) {
        if a.verdict {
            verdicts += 1;
            if line.final_status == "PASS" && !a.any_fail {
                first_pass += 1;
            }
            if line.final_status == "PASS" {
                r.final_passed += 1;
            } else {
                r.final_failed += 1;
            }
        }
    }
    r.first_pass_yield = (verdicts > 0).then(|| first_pass as f64 / verdicts as f64);
    let mut by_step: Vec<_> = by_step.into_iter().collect();
    by_step.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut by_station: Vec<_> = by_station.into_iter().collect();
    by_station.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    r.failures_by_step = by_step;
    r.failures_by_station = by_station;
    r.ids_left = query::ids_left(conn)?;
    let per_day = r.allocated as f64 / r.hours.max(1e-9) * 24.0;
    r.days_of_stock = (r.allocated > 0).then(|| r.ids_left as f64 / per_day);
    r.units = units;
    Ok(r)
}

/// The shift a user asks for: `date` and `shift` as given, the last
/// finished shift when neither is, the latest finished (or, today, the
/// running) occurrence of a named shift without a date.
pub fn resolve_window(
    cfg: &crate::config::Config,
    date: Option<jiff::civil::Date>,
    name: Option<&str>,
    now: jiff::Timestamp,
) -> Result<Window, String> {
    let shifts = shift::shifts_or_day(&cfg.shifts);
    let names = || {
        shifts
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pick = |n: &str| {
        shifts
            .iter()
            .find(|s| s.name == n)
            .ok_or_else(|| format!("no shift named {n:?}; the shifts are: {}", names()))
    };
    let tz = &cfg.timezone;
    match (date, name) {
        (None, None) => shift::last_finished(&shifts, now, tz)
            .ok_or_else(|| "no shift has finished yet".to_string()),
        (Some(d), Some(n)) => shift::window(pick(n)?, d, tz)
            .ok_or_else(|| format!("shift {n} on {d} is not a valid local time")),
        (Some(d), None) if shifts.len() == 1 => shift::window(&shifts[0], d, tz)
            .ok_or_else(|| format!("shift {} on {d} is not a valid local time", shifts[0].name)),
        (Some(_), None) => Err(format!("name the shift with --shift: {}", names())),
        (None, Some(n)) => {
            let s = pick(n)?;
            let today = now.to_zoned(tz.clone()).date();
            let mut best = None;
            for back in 0..3i64 {
                let Ok(d) = today.checked_sub(jiff::Span::new().days(back)) else {
                    continue;
                };
                if let Some(w) = shift::window(s, d, tz) {
                    if w.start <= now && best.as_ref().is_none_or(|b: &Window| w.start > b.start) {
                        best = Some(w);
                    }
                }
            }
            best.ok_or_else(|| format!("shift {n} has not started yet"))
        }
    }
}

/// Sync figures from the state file and the journal.
pub fn sync_lag(cfg: &crate::config::Config, conn: &Reader) -> Result<SyncLag, JournalError> {
    let last_seq = query::last_seq(conn)?;
    let st = crate::sync::current_state(&cfg.data_dir).unwrap_or_default();
    Ok(SyncLag {
        configured: cfg.upstream.is_some(),
        last_seq,
        acked_through: st.acked_through,
        lag_events: (last_seq - st.acked_through).max(0),
        acked_at: st.acked_at,
        halted: st.halt.map(|h| h.reason),
    })
}

/// The whole report for a config's journal.
pub fn for_config(
    cfg: &crate::config::Config,
    conn: &Reader,
    w: &Window,
) -> Result<ShiftReport, JournalError> {
    let ctx = Context {
        line_id: &cfg.line_id,
        facility: &cfg.facility,
        tz: &cfg.timezone,
        tz_name: &cfg.timezone_name,
        sync: sync_lag(cfg, conn)?,
    };
    build(conn, &ctx, w)
}
