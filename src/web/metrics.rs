//! `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Owns: metric names, help texts and the rendering of a [`Snapshot`]
//! (pure). Must not: read counters itself (the caller takes the snapshot).

use std::fmt::Write as _;

use crate::journal::LATENCY_BUCKETS;

/// One station's counters.
#[derive(Debug, Clone, Default)]
pub struct StationFigures {
    pub name: String,
    pub connected: bool,
    pub frames: u64,
    /// (code, count), only codes seen.
    pub errors: Vec<(&'static str, u64)>,
}

/// Everything `/metrics` shows, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub stations: Vec<StationFigures>,
    pub commits: u64,
    /// Cumulative bucket counts (last is +Inf) and the sum in seconds.
    pub commit_latency: (Vec<u64>, f64),
    pub last_seq: i64,
    pub labels_printed: u64,
    pub printer_faults: u64,
    /// (printer, state, queued)
    pub printers: Vec<(String, String, u64)>,
    pub ids_left: u64,
    pub sync_configured: bool,
    pub sync_lag: i64,
    pub sync_halted: bool,
    /// Failed durable writes since start.
    pub storage_errors: u64,
    /// Whether the last durable write succeeded.
    pub storage_ok: bool,
    /// (action, outcome, count)
    pub web_actions: Vec<(String, String, u64)>,
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

pub fn render(s: &Snapshot) -> String {
    let mut o = String::with_capacity(4096);
    head(
        &mut o,
        "linemark_station_frames_total",
        "counter",
        "Frames answered, per station.",
    );
    for st in &s.stations {
        let _ = writeln!(
            o,
            "linemark_station_frames_total{{station=\"{}\"}} {}",
            label(&st.name),
            st.frames
        );
    }
    head(
        &mut o,
        "linemark_station_errors_total",
        "counter",
        "Error answers, per station and code.",
    );
    for st in &s.stations {
        for (code, n) in &st.errors {
            let _ = writeln!(
                o,
                "linemark_station_errors_total{{station=\"{}\",code=\"{}\"}} {n}",
                label(&st.name),
                code
            );
        }
    }
    head(
        &mut o,
        "linemark_station_connected",
        "gauge",
        "1 while the station's port is open.",
    );
    for st in &s.stations {
        let _ = writeln!(
            o,
            "linemark_station_connected{{station=\"{}\"}} {}",
            label(&st.name),
            u8::from(st.connected)
        );
    }
    head(
        &mut o,
        "linemark_journal_commits_total",
        "counter",
        "Journal transactions committed (one fsync each).",
    );
    let _ = writeln!(o, "linemark_journal_commits_total {}", s.commits);
    head(
        &mut o,
        "linemark_journal_commit_seconds",
        "histogram",
        "Time of each COMMIT: the WAL write and its fsync.",
    );
    let (buckets, sum) = &s.commit_latency;
    for (i, n) in buckets.iter().enumerate() {
        let le = LATENCY_BUCKETS
            .get(i)
            .map_or("+Inf".to_string(), |b| b.to_string());
        let _ = writeln!(
            o,
            "linemark_journal_commit_seconds_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(o, "linemark_journal_commit_seconds_sum {sum}");
    let _ = writeln!(
        o,
        "linemark_journal_commit_seconds_count {}",
        buckets.last().copied().unwrap_or(0)
    );
    head(
        &mut o,
        "linemark_journal_last_seq",
        "gauge",
        "Seq of the last journaled event.",
    );
    let _ = writeln!(o, "linemark_journal_last_seq {}", s.last_seq);
    head(
        &mut o,
        "linemark_labels_printed_total",
        "counter",
        "Labels the printers took since start.",
    );
    let _ = writeln!(o, "linemark_labels_printed_total {}", s.labels_printed);
    head(
        &mut o,
        "linemark_printer_faults_total",
        "counter",
        "Printer faults that began since start.",
    );
    let _ = writeln!(o, "linemark_printer_faults_total {}", s.printer_faults);
    head(
        &mut o,
        "linemark_printer_queued",
        "gauge",
        "Labels waiting, per printer.",
    );
    for (p, _, q) in &s.printers {
        let _ = writeln!(o, "linemark_printer_queued{{printer=\"{}\"}} {q}", label(p));
    }
    head(
        &mut o,
        "linemark_printer_ready",
        "gauge",
        "1 while the printer is ready.",
    );
    for (p, st, _) in &s.printers {
        let _ = writeln!(
            o,
            "linemark_printer_ready{{printer=\"{}\"}} {}",
            label(p),
            u8::from(st == "ready")
        );
    }
    head(
        &mut o,
        "linemark_ids_left",
        "gauge",
        "IDs left in held blocks.",
    );
    let _ = writeln!(o, "linemark_ids_left {}", s.ids_left);
    head(
        &mut o,
        "linemark_storage_errors_total",
        "counter",
        "Failed durable writes (commits, the high-water file, storage probes).",
    );
    let _ = writeln!(o, "linemark_storage_errors_total {}", s.storage_errors);
    head(
        &mut o,
        "linemark_storage_ok",
        "gauge",
        "1 while the last durable write succeeded.",
    );
    let _ = writeln!(o, "linemark_storage_ok {}", u8::from(s.storage_ok));
    if s.sync_configured {
        head(
            &mut o,
            "linemark_sync_lag_events",
            "gauge",
            "Journal events the central store has not acknowledged.",
        );
        let _ = writeln!(o, "linemark_sync_lag_events {}", s.sync_lag);
        head(
            &mut o,
            "linemark_sync_halted",
            "gauge",
            "1 while sync is halted (after a 409).",
        );
        let _ = writeln!(o, "linemark_sync_halted {}", u8::from(s.sync_halted));
    }
    head(
        &mut o,
        "linemark_web_actions_total",
        "counter",
        "Web actions by outcome (accepted, or why refused).",
    );
    for (a, outcome, n) in &s.web_actions {
        let _ = writeln!(
            o,
            "linemark_web_actions_total{{action=\"{}\",outcome=\"{}\"}} {n}",
            label(a),
            label(outcome)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_histogram_ends_with_inf_equal_to_count() {
        let s = Snapshot {
            commit_latency: (vec![1; LATENCY_BUCKETS.len() + 1], 0.5),
            ..Snapshot::default()
        };
        let t = render(&s);
        assert!(t.contains("linemark_journal_commit_seconds_bucket{le=\"+Inf\"} 1"));
        assert!(t.contains("linemark_journal_commit_seconds_count 1"));
        assert!(t.contains("linemark_journal_commit_seconds_bucket{le=\"0.0001\"} 1"));
    }
}
