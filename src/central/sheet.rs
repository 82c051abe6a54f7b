//! Passport content as a page a person reads on a phone (SPEC section 11):
//! each aspect a section, attribute names in words, numbers with the
//! longlist's units (`12.5 kg`, `8 %`), web addresses as links, lists as
//! lists.
//!
//! Owns: the HTML of aspect documents. Must not: decide what is shown
//! (the documents arrive already cut down by `access`) or do IO.

use serde_json::Value;

use super::access::Classification;
use super::aspects::Aspect;
use crate::report::render::esc;

/// `batteryCarbonFootprint` → `Battery carbon footprint`.
pub fn words(key: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else if c == '_' {
            out.push(' ');
        } else {
            out.push(c);
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    let mut chars = out.chars();
    match chars.next() {
        Some(f) => f.to_uppercase().chain(chars).collect(),
        None => out,
    }
}

/// One aspect's section.
pub fn section(c: &Classification, aspect: Aspect, doc: &Value) -> String {
    let mut out = format!(
        "<section class=\"aspect\"><h2>{}</h2>",
        esc(&words(aspect.name()))
    );
    node(c, aspect, &mut Vec::new(), doc, &mut out);
    out.push_str("</section>");
    out
}

fn node(c: &Classification, aspect: Aspect, path: &mut Vec<String>, v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            out.push_str("<dl>");
            for (k, x) in map {
                path.push(k.clone());
                out.push_str(&format!("<dt>{}</dt><dd>", esc(&words(k))));
                node(c, aspect, path, x, out);
                out.push_str("</dd>");
                path.pop();
            }
            out.push_str("</dl>");
        }
        Value::Array(items) => {
            out.push_str("<ul>");
            path.push("*".into());
            for x in items {
                out.push_str("<li>");
                node(c, aspect, path, x, out);
                out.push_str("</li>");
            }
            path.pop();
            out.push_str("</ul>");
        }
        Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => {
            out.push_str(&format!("<a href=\"{0}\">{0}</a>", esc(s)));
        }
        Value::String(s) => out.push_str(&esc(s)),
        Value::Number(n) => {
            let unit = c.rule(aspect, path).map(|r| r.unit.as_str()).unwrap_or("");
            let unit = unit.trim_matches(|ch| ch == '[' || ch == ']');
            if unit.is_empty() {
                out.push_str(&n.to_string());
            } else {
                out.push_str(&format!("{n} {}", esc(unit)));
            }
        }
        Value::Bool(b) => out.push_str(if *b { "yes" } else { "no" }),
        Value::Null => out.push('—'),
    }
}

/// The completeness report as a page: per aspect, the version on file and
/// what is still missing.
pub fn completeness_html(report: &Value) -> String {
    let gtin = esc(report["gtin"].as_str().unwrap_or_default());
    let category = report["battery_category"]
        .as_str()
        .map_or_else(|| "not given yet".to_string(), esc);
    let mut rows = String::new();
    for a in Aspect::ALL {
        let r = &report["aspects"][a.name()];
        let version = r["version"]
            .as_i64()
            .map_or_else(|| "no data".to_string(), |v| format!("version {v}"));
        let missing: Vec<String> = r["missing"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|m| esc(&words(m)))
            .collect();
        let state = if missing.is_empty() {
            "complete".to_string()
        } else {
            format!("missing: {}", missing.join(", "))
        };
        rows.push_str(&format!(
            "<tr><th>{}</th><td>{version}</td><td>{state}</td></tr>",
            esc(&words(a.name()))
        ));
    }
    let verdict = if report["complete"].as_bool() == Some(true) {
        "Every required attribute is supplied."
    } else {
        "Supply the missing attributes before shipping."
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Completeness {gtin}</title>\
<style>body{{font-family:system-ui,sans-serif;padding:1rem;max-width:50rem}}th,td{{text-align:left;padding:.3rem .6rem;vertical-align:top}}</style></head>\
<body><h1>Passport data for GTIN {gtin}</h1><p>Battery category: {category}</p><table>{rows}</table><p>{verdict}</p></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::central::access::classification;
    use serde_json::json;

    #[test]
    fn names_read_as_words_and_numbers_carry_their_units() {
        assert_eq!(words("batteryCarbonFootprint"), "Battery carbon footprint");
        assert_eq!(words("state_of_health"), "State of health");
        let c = classification().unwrap();
        let html = section(
            c,
            Aspect::GeneralProductInformation,
            &json!({"batteryMass": 12.5, "manufacturerInformation": {"webAddress": "https://acme.example/<x>"}}),
        );
        assert!(
            html.contains("<dt>Battery mass</dt><dd>12.5 kg</dd>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://acme.example/&lt;x&gt;\">"),
            "{html}"
        );
        let html = section(
            c,
            Aspect::Circularity,
            &json!({"recycledContent": [{"recycledMaterial": "Cobalt", "postConsumerShare": 12}]}),
        );
        assert!(html.contains("12 %"), "{html}");
        assert!(html.contains("<li>"), "{html}");
    }
}
