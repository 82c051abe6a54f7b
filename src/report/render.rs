//! A shift report as CSV (one row per unit, with a header; formula-looking
//! cells neutralised), one self-contained HTML page (inline CSS and an
//! inline SVG chart, nothing fetched), or a PDF (printpdf: the same tables
//! and a bar chart of failures by step).
//!
//! Owns: layout of the three forms. Must not: compute figures (`build` does).

use std::fmt::Write as _;

use super::ShiftReport;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the report: {0}")]
pub struct RenderError(String);

pub const CSV_HEADER: [&str; 9] = [
    "unit",
    "product",
    "lot",
    "allocated_at",
    "final_status",
    "final_at",
    "failed_steps",
    "scrapped_reason",
    "reprints",
];

/// One row per unit touched in the shift.
pub fn csv(r: &ShiftReport) -> Result<Vec<u8>, RenderError> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(r.units.len() * 96 + 128));
    let err = |e: csv::Error| RenderError(e.to_string());
    w.write_record(CSV_HEADER).map_err(err)?;
    for u in &r.units {
        let reprints = u.reprints.to_string();
        w.write_record([
            u.unit.as_str(),
            &crate::export::cell(&u.product),
            &crate::export::cell(&u.lot),
            &u.allocated_at,
            &u.final_status,
            &u.final_at,
            &crate::export::cell(&u.failed_steps),
            &crate::export::cell(&u.scrapped),
            &reprints,
        ])
        .map_err(err)?;
    }
    w.into_inner().map_err(|e| RenderError(e.to_string()))
}

/// HTML text with `&<>"'` escaped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

pub fn percent(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{:.1} %", v * 100.0))
}

fn days(x: Option<f64>) -> String {
    x.map_or("– (nothing allocated this shift)".into(), |d| {
        format!("{d:.1} days")
    })
}

fn duration(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

fn sync_text(r: &ShiftReport) -> String {
    let s = &r.sync;
    if !s.configured {
        return "no upstream configured".into();
    }
    let mut t = format!(
        "{} events not yet at the store (acknowledged through seq {} of {})",
        s.lag_events, s.acked_through, s.last_seq
    );
    if let Some(a) = &s.acked_at {
        let _ = write!(t, ", last acknowledgement {a}");
    }
    if let Some(h) = &s.halted {
        let _ = write!(t, "; HALTED: {h}");
    }
    t
}

/// A table of the report: its title, column heads and rows.
pub struct Section {
    pub title: &'static str,
    pub head: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

/// The tables the HTML page and the PDF show after the chart.
pub fn sections(r: &ShiftReport) -> Vec<Section> {
    vec![
        Section {
            title: "Failures by station",
            head: &["station", "failures"],
            rows: r
                .failures_by_station
                .iter()
                .map(|(s, n)| vec![s.clone(), n.to_string()])
                .collect(),
        },
        Section {
            title: "Failed results",
            head: &["time", "unit", "station", "step", "measurements"],
            rows: r
                .failures
                .iter()
                .map(|f| {
                    vec![
                        f.ts.clone(),
                        f.unit.clone(),
                        f.station.clone(),
                        f.step.clone(),
                        f.measurements.clone(),
                    ]
                })
                .collect(),
        },
        Section {
            title: "Reprints",
            head: &["time", "unit", "by", "reason"],
            rows: r
                .reprints
                .iter()
                .map(|x| vec![x.ts.clone(), x.unit.clone(), x.by.clone(), x.reason.clone()])
                .collect(),
        },
        Section {
            title: "Verification mismatches",
            head: &["time", "unit", "station", "problem"],
            rows: r
                .mismatches
                .iter()
                .map(|x| {
                    vec![
                        x.ts.clone(),
                        x.unit.clone(),
                        x.station.clone(),
                        x.problem.clone(),
                    ]
                })
                .collect(),
        },
        Section {
            title: "Printer faults",
            head: &["began", "printer", "state", "reason", "lasted"],
            rows: r
                .printer_faults
                .iter()
                .map(|x| {
                    let lasted = if x.open {
                        format!(
                            "{} (still open at the end of the shift)",
                            duration(x.lasted_s)
                        )
                    } else {
                        duration(x.lasted_s)
                    };
                    vec![
                        x.began.clone(),
                        x.printer.clone(),
                        x.state.clone(),
                        x.reason.clone(),
                        lasted,
                    ]
                })
                .collect(),
        },
    ]
}

/// The summary rows every form shows, as (label, value).
pub fn summary(r: &ShiftReport) -> Vec<(&'static str, String)> {
    vec![
        ("Units allocated", r.allocated.to_string()),
        ("Final passed", r.final_passed.to_string()),
        ("Final failed", r.final_failed.to_string()),
        ("Units with a failure", r.failed_units.to_string()),
        ("Scrapped", r.scrapped.to_string()),
        ("First-pass yield", percent(r.first_pass_yield)),
        ("Reprints", r.reprints.len().to_string()),
        ("Verification mismatches", r.mismatches.len().to_string()),
        ("Printer faults", r.printer_faults.len().to_string()),
        ("IDs left", r.ids_left.to_string()),
        ("Days of stock at this shift's rate", days(r.days_of_stock)),
        ("Sync lag", sync_text(r)),
    ]
}

fn table(out: &mut String, caption: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(out, "<h2>{}</h2>", esc(caption));
    if rows.is_empty() {
        out.push_str("<p class=none>None.</p>");
        return;
    }
    out.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// An inline SVG bar chart of failures by step.
fn svg_bars(r: &ShiftReport) -> String {
    if r.failures_by_step.is_empty() {
        return String::new();
    }
    let max = r
        .failures_by_step
        .iter()
        .map(|x| x.1)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let row = 26;
    let h = r.failures_by_step.len() * row + 10;
    let mut s = format!(
        "<svg role=img aria-label='Failures by step' width=620 height={h} viewBox='0 0 620 {h}' xmlns='http://www.w3.org/2000/svg'>"
    );
    for (i, (step, n)) in r.failures_by_step.iter().enumerate() {
        let y = i * row + 5;
        let w = (*n as f64 / max * 400.0).max(2.0);
        let _ = write!(
            s,
            "<text x=150 y={} text-anchor=end font-size=13>{}</text><rect x=160 y={y} width={w:.0} height=18 fill='#c0392b'/><text x={:.0} y={} font-size=13>{n}</text>",
            y + 14,
            esc(step),
            165.0 + w,
            y + 14
        );
    }
    s.push_str("</svg>");
    s
}

/// One self-contained page; `links` adds CSV/PDF download links (the web page).
pub fn html(r: &ShiftReport, links: Option<&str>) -> String {
    let mut o = String::with_capacity(16 * 1024 + r.failures.len() * 200);
    let title = format!("Shift {} on {} — line {}", r.shift, r.date, r.line_id);
    let _ = write!(
        o,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{}</style></head><body>",
        esc(&title),
        STYLE
    );
    let _ = write!(
        o,
        "<h1>{}</h1><p class=sub>{} · {} to {} ({:.1} h, {})</p>",
        esc(&title),
        esc(&r.facility),
        esc(&r.start),
        esc(&r.end),
        r.hours,
        esc(&r.timezone)
    );
    if let Some(q) = links {
        let _ = write!(
            o,
            "<p class=dl><a href='/reports/shift?{q}&format=csv'>Download CSV</a> · <a href='/reports/shift?{q}&format=pdf'>Download PDF</a></p>"
        );
    }
    o.push_str("<table class=summary><tbody>");
    for (k, v) in summary(r) {
        let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    o.push_str("</tbody></table>");
    o.push_str("<h2>Failures by step</h2>");
    if r.failures_by_step.is_empty() {
        o.push_str("<p class=none>None.</p>");
    } else {
        o.push_str(&svg_bars(r));
    }
    for sec in sections(r) {
        table(&mut o, sec.title, sec.head, &sec.rows);
    }
    let _ = write!(
        o,
        "<p class=foot>{} units touched in this shift; one row each in the CSV.</p></body></html>",
        r.units.len()
    );
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}h1{font-size:1.4rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:1.6rem}.sub,.foot{color:#555}table{border-collapse:collapse;margin:.4rem 0}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;font-size:.9rem}thead th{background:#f0f0f0}.summary th{background:#fafafa;font-weight:600}.none{color:#777}a{color:#1a5fb4}";

/// The PDF: title, summary, the failures-by-step chart, then the tables.
pub fn pdf(r: &ShiftReport) -> Result<Vec<u8>, RenderError> {
    use printpdf::path::{PaintMode, WindingOrder};
    use printpdf::{BuiltinFont, Color, Mm, PdfDocument, Point, Polygon, Rgb};
    const W: f32 = 210.0;
    const H: f32 = 297.0;
    const LEFT: f32 = 15.0;
    let (doc, page, layer) = PdfDocument::new(
        format!("linemark shift report {} {}", r.date, r.shift),
        Mm(W),
        Mm(H),
        "report",
    );
    let font = doc
        .add_builtin_font(BuiltinFont::Helvetica)
        .map_err(|e| RenderError(e.to_string()))?;
    let bold = doc
        .add_builtin_font(BuiltinFont::HelveticaBold)
        .map_err(|e| RenderError(e.to_string()))?;
    let mut layer = doc.get_page(page).get_layer(layer);
    let mut y = H - 20.0;
    let black = Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None));
    let red = Color::Rgb(Rgb::new(0.75, 0.22, 0.17, None));
    // Helvetica's built-in encoding has no en dash; keep text to Latin-1.
    let latin = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                '–' | '—' => '-',
                c if (c as u32) < 256 => c,
                _ => '?',
            })
            .collect()
    };
    macro_rules! newline {
        ($dy:expr) => {{
            y -= $dy;
            if y < 15.0 {
                let (p, l) = doc.add_page(Mm(W), Mm(H), "report");
                layer = doc.get_page(p).get_layer(l);
                y = H - 20.0;
            }
        }};
    }
    layer.use_text(
        latin(&format!(
            "Shift {} on {} - line {}",
            r.shift, r.date, r.line_id
        )),
        16.0,
        Mm(LEFT),
        Mm(y),
        &bold,
    );
    newline!(7.0);
    layer.use_text(
        latin(&format!(
            "{} - {} to {} ({:.1} h, {})",
            r.facility, r.start, r.end, r.hours, r.timezone
        )),
        9.0,
        Mm(LEFT),
        Mm(y),
        &font,
    );
    newline!(9.0);
    for (k, v) in summary(r) {
        layer.use_text(latin(k), 10.0, Mm(LEFT), Mm(y), &bold);
        let v = latin(&v);
        // Long values (the sync line) wrap at about 75 characters.
        let mut first = true;
        for chunk in wrap(&v, 75) {
            if !first {
                newline!(4.5);
            }
            layer.use_text(chunk, 10.0, Mm(LEFT + 70.0), Mm(y), &font);
            first = false;
        }
        newline!(5.5);
    }
    newline!(4.0);
    layer.use_text("Failures by step", 12.0, Mm(LEFT), Mm(y), &bold);
    newline!(7.0);
    if r.failures_by_step.is_empty() {
        layer.use_text("None.", 10.0, Mm(LEFT), Mm(y), &font);
        newline!(6.0);
    } else {
        let max = r
            .failures_by_step
            .iter()
            .map(|x| x.1)
            .max()
            .unwrap_or(1)
            .max(1) as f32;
        for (step, n) in &r.failures_by_step {
            layer.set_fill_color(black.clone());
            layer.use_text(latin(step), 9.0, Mm(LEFT), Mm(y), &font);
            let w = (*n as f32 / max * 110.0).max(0.8);
            let (x0, y0) = (LEFT + 45.0, y - 1.0);
            let p = |x: f32, yy: f32| (Point::new(Mm(x), Mm(yy)), false);
            layer.set_fill_color(red.clone());
            layer.add_polygon(Polygon {
                rings: vec![vec![
                    p(x0, y0),
                    p(x0 + w, y0),
                    p(x0 + w, y0 + 4.0),
                    p(x0, y0 + 4.0),
                ]],
                mode: PaintMode::Fill,
                winding_order: WindingOrder::NonZero,
            });
            layer.set_fill_color(black.clone());
            layer.use_text(n.to_string(), 9.0, Mm(x0 + w + 2.0), Mm(y), &font);
            newline!(6.0);
        }
    }
    for Section { title, head, rows } in sections(r) {
        newline!(4.0);
        layer.set_fill_color(black.clone());
        layer.use_text(title, 12.0, Mm(LEFT), Mm(y), &bold);
        newline!(6.5);
        if rows.is_empty() {
            layer.use_text("None.", 9.0, Mm(LEFT), Mm(y), &font);
            newline!(5.0);
            continue;
        }
        let col = (W - 2.0 * LEFT) / head.len() as f32;
        let max_chars = (col / 1.75) as usize;
        for (i, h) in head.iter().enumerate() {
            layer.use_text(*h, 8.5, Mm(LEFT + i as f32 * col), Mm(y), &bold);
        }
        newline!(4.8);
        for row in rows {
            for (i, c) in row.iter().enumerate() {
                let text: String = latin(c).chars().take(max_chars).collect();
                layer.use_text(text, 8.0, Mm(LEFT + i as f32 * col), Mm(y), &font);
            }
            newline!(4.3);
        }
    }
    doc.save_to_bytes().map_err(|e| RenderError(e.to_string()))
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in s.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Failure, SyncLag, UnitLine};

    fn report() -> ShiftReport {
        ShiftReport {
            line_id: "P1-L03".into(),
            facility: "Hall <B>".into(),
            timezone: "Europe/Berlin".into(),
            shift: "A".into(),
            date: "2026-11-23".into(),
            start: "2026-11-23T06:00+01:00".into(),
            end: "2026-11-23T14:00+01:00".into(),
            hours: 8.0,
            allocated: 3,
            final_passed: 2,
            final_failed: 1,
            failed_units: 1,
            scrapped: 0,
            first_pass_yield: Some(2.0 / 3.0),
            failures_by_step: vec![("functional".into(), 1)],
            failures_by_station: vec![("func-1".into(), 1)],
            failures: vec![Failure {
                ts: "2026-11-23 07:00:00".into(),
                unit: "0000000000000".into(),
                station: "func-1".into(),
                step: "functional".into(),
                measurements: "v=47.1".into(),
            }],
            reprints: vec![],
            mismatches: vec![],
            printer_faults: vec![],
            ids_left: 1000,
            days_of_stock: Some(111.1),
            sync: SyncLag {
                configured: false,
                last_seq: 10,
                acked_through: 0,
                lag_events: 10,
                acked_at: None,
                halted: None,
            },
            units: vec![UnitLine {
                unit: "0000000000000".into(),
                product: "=cmd".into(),
                lot: "L1".into(),
                allocated_at: "2026-11-23 06:01:00".into(),
                final_status: "FAIL".into(),
                final_at: "2026-11-23 07:00:00".into(),
                failed_steps: "functional".into(),
                scrapped: String::new(),
                reprints: 0,
            }],
        }
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_unit_with_formulas_neutralised() {
        let text = String::from_utf8(csv(&report()).expect("csv")).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].starts_with("0000000000000,'=cmd,L1,"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let h = html(&report(), Some("date=2026-11-23&shift=A"));
        assert!(h.contains("Hall &lt;B&gt;"));
        assert!(!h.contains("<script") && !h.contains("src=") && !h.contains("<link"));
        assert!(h.contains("66.7 %"), "first-pass yield shown");
        assert!(h.contains("<svg") && h.contains("functional"));
        assert!(h.contains("format=csv") && h.contains("format=pdf"));
    }

    #[test]
    fn pdf_is_a_pdf_with_the_summary() {
        let b = pdf(&report()).expect("pdf");
        assert!(b.starts_with(b"%PDF-"));
        assert!(b.len() > 1000);
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(duration(42.0), "42 s");
        assert_eq!(duration(125.0), "2 min 05 s");
        assert_eq!(duration(3725.0), "1 h 02 min");
    }
}
