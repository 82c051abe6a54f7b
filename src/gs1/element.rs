//! GS1 element strings: the raw form a GS1 DataMatrix carries (FNC1/GS
//! separated), the bracketed form, the human-readable interpretation, and
//! reading whatever a scanner sends.
//!
//! Owns: AI-by-AI splitting with the predefined-length table. Must not:
//! render codes.

use super::{ai, digital_link, Gs1Error, Gtin, Identity};

/// The group separator a scanner sends for FNC1 inside the data.
pub const GS: char = '\u{1d}';

fn pairs(id: &Identity) -> impl Iterator<Item = (&'static str, &str)> {
    std::iter::once(("01", id.gtin.as_str())).chain(
        [("22", &id.cpv), ("10", &id.lot), ("21", &id.serial)]
            .into_iter()
            .filter_map(|(ai, v)| v.as_deref().map(|v| (ai, v))),
    )
}

/// The raw element string for a GS1 DataMatrix: variable-length fields that
/// are not last end with GS (the leading FNC1 is the symbol's business).
pub fn to_element_string(id: &Identity) -> String {
    let mut s = String::new();
    let all: Vec<_> = pairs(id).collect();
    for (i, (ai, v)) in all.iter().enumerate() {
        s.push_str(ai);
        s.push_str(v);
        if i + 1 < all.len() && ai::predefined_length(&ai[..2]).is_none() {
            s.push(GS);
        }
    }
    s
}

/// `(01)09506000134352(10)LOT(21)ID`.
pub fn to_bracketed(id: &Identity) -> String {
    pairs(id).map(|(ai, v)| format!("({ai}){v}")).collect()
}

/// The human-readable interpretation: `(01) 09506000134352 (21) 4Q8ZK1M0T7XCB`.
pub fn hri(id: &Identity) -> String {
    pairs(id)
        .map(|(ai, v)| format!("({ai}) {v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Strips a symbology identifier such as `]d2`, `]Q3`, `]C1`, `]e0`.
fn strip_symbology(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 3 && b[0] == b']' && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphanumeric() {
        &s[3..]
    } else {
        s
    }
}

fn set(id: &mut Identity, ai: &str, value: String, whole: &str) -> Result<(), Gs1Error> {
    let slot = match ai {
        "22" => &mut id.cpv,
        "10" => &mut id.lot,
        "21" => &mut id.serial,
        _ => return Ok(()), // known, valid, but not part of a unit's identity
    };
    if slot.is_some() {
        return Err(Gs1Error::RepeatedAi(ai.to_string()));
    }
    let _ = whole;
    *slot = Some(value);
    Ok(())
}

fn finish(pairs: Vec<(String, String)>, whole: &str) -> Result<Identity, Gs1Error> {
    let mut gtin: Option<Gtin> = None;
    let mut id_rest = Identity {
        gtin: Gtin::parse("00000000000000").map_err(|_| Gs1Error::NoGtin(whole.to_string()))?,
        cpv: None,
        lot: None,
        serial: None,
    };
    for (a, v) in pairs {
        ai::check_value(&a, &v)?;
        if a == "01" {
            if gtin.is_some() {
                return Err(Gs1Error::RepeatedAi(a));
            }
            gtin = Some(Gtin::parse(&v)?);
        } else {
            set(&mut id_rest, &a, v, whole)?;
        }
    }
    id_rest.gtin = gtin.ok_or_else(|| Gs1Error::NoGtin(whole.to_string()))?;
    Ok(id_rest)
}

/// Parses an element string: bracketed (`(01)...(21)...`, spaces allowed
/// between pairs, as in an HRI) or raw (GS-separated, optional symbology
/// identifier and leading FNC1/GS).
pub fn parse_element_string(text: &str) -> Result<Identity, Gs1Error> {
    let whole = text.trim();
    let s = strip_symbology(whole).trim_start_matches(GS);
    let err = |why: &str| Gs1Error::ElementString(whole.to_string(), why.to_string());
    let mut out = Vec::new();
    if s.starts_with('(') {
        let mut rest = s;
        while !rest.is_empty() {
            let inner = rest
                .strip_prefix('(')
                .ok_or_else(|| err("expected '(' before an AI"))?;
            let (a, after) = inner
                .split_once(')')
                .ok_or_else(|| err("an AI is missing its ')'"))?;
            if a.len() < 2 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(&format!("({a}) is not an AI")));
            }
            let end = after.find('(').unwrap_or(after.len());
            let value = after[..end].trim().to_string();
            out.push((a.to_string(), value));
            rest = after[end..].trim_start();
        }
    } else {
        let mut rest = s;
        while !rest.is_empty() {
            let prefix = rest.get(..2).ok_or_else(|| err("ends inside an AI"))?;
            let a = if ai::lookup(prefix).is_some() {
                prefix
            } else {
                rest.get(..3)
                    .filter(|p| ai::lookup(p).is_some())
                    .ok_or_else(|| {
                        err(&format!(
                            "unknown AI at {:?}",
                            rest.chars().take(4).collect::<String>()
                        ))
                    })?
            };
            let body = &rest[a.len()..];
            let (value, next) = match ai::predefined_length(prefix) {
                Some(total) => {
                    let n = total - a.len();
                    let v = body
                        .get(..n)
                        .ok_or_else(|| err(&format!("AI ({a}) value is too short")))?;
                    (v, body[n..].trim_start_matches(GS))
                }
                None => match body.find(GS) {
                    Some(p) => (&body[..p], &body[p + GS.len_utf8()..]),
                    None => (body, ""),
                },
            };
            out.push((a.to_string(), value.to_string()));
            rest = next;
        }
    }
    if out.is_empty() {
        return Err(err("empty"));
    }
    finish(out, whole)
}

/// Reads what a scanner sent: a Digital Link URI, a bracketed or raw element
/// string, or an HRI line, with or without a symbology identifier.
pub fn parse_scanned(text: &str) -> Result<Identity, Gs1Error> {
    let t = strip_symbology(text.trim());
    let lower = t.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return digital_link::parse_uri(t).map(|(_, id)| id);
    }
    parse_element_string(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gs1::Level;

    fn unit() -> Identity {
        Identity::for_unit(
            Gtin::parse("09506000134352").unwrap(),
            Level::Item,
            Some("L2026-11"),
            "4Q8ZK1M0T7XCB",
        )
    }

    #[test]
    fn hri_matches_the_spec_example() {
        let id = Identity::for_unit(
            Gtin::parse("09506000134352").unwrap(),
            Level::Item,
            None,
            "4Q8ZK1M0T7XCB",
        );
        assert_eq!(hri(&id), "(01) 09506000134352 (21) 4Q8ZK1M0T7XCB");
        assert_eq!(
            hri(&unit()),
            "(01) 09506000134352 (10) L2026-11 (21) 4Q8ZK1M0T7XCB"
        );
    }

    #[test]
    fn raw_element_string_separates_only_variable_fields_that_are_not_last() {
        assert_eq!(
            to_element_string(&unit()),
            "010950600013435210L2026-11\u{1d}214Q8ZK1M0T7XCB"
        );
    }

    #[test]
    fn every_written_form_parses_back() {
        let id = unit();
        for s in [
            to_element_string(&id),
            format!("]d2{}", to_element_string(&id)),
            format!("]d2\u{1d}{}", to_element_string(&id)),
            to_bracketed(&id),
            hri(&id),
            "https://id.example.com/01/09506000134352/10/L2026-11/21/4Q8ZK1M0T7XCB".to_string(),
            "]Q1https://id.example.com/01/09506000134352/10/L2026-11/21/4Q8ZK1M0T7XCB".to_string(),
        ] {
            assert_eq!(parse_scanned(&s).unwrap(), id, "{s:?}");
        }
    }

    #[test]
    fn gs1_general_specification_examples() {
        // (01)09506000134352(17)261231(10)ABC123: fixed-length AIs need no separator.
        let id = parse_element_string("]C101095060001343521726123110ABC123").unwrap();
        assert_eq!(id.gtin.as_str(), "09506000134352");
        assert_eq!(id.lot.as_deref(), Some("ABC123"));
        let id = parse_element_string("(01)09506000134352(21)12345(10)X").unwrap();
        assert_eq!(id.serial.as_deref(), Some("12345"));
    }

    #[test]
    fn bad_element_strings_are_refused_with_the_reason() {
        assert!(matches!(
            parse_element_string("0109506000134353"),
            Err(Gs1Error::GtinCheckDigit { .. })
        ));
        assert!(matches!(
            parse_element_string("01095060001343"),
            Err(Gs1Error::ElementString(..))
        ));
        assert!(matches!(
            parse_element_string("(10)ABC"),
            Err(Gs1Error::NoGtin(_))
        ));
        assert!(matches!(
            parse_element_string("(01)09506000134352(01)09506000134352"),
            Err(Gs1Error::RepeatedAi(_))
        ));
        assert!(matches!(
            parse_element_string("(01)09506000134352(21)A B"),
            Err(Gs1Error::Charset { .. })
        ));
        assert!(matches!(
            parse_element_string("9909506000134352"),
            Err(Gs1Error::ElementString(..))
        ));
        assert!(matches!(
            parse_element_string("(01)09506000134352(10)ABCDEFGHIJKLMNOPQRSTU"),
            Err(Gs1Error::AiFormat { .. })
        ));
        assert!(parse_element_string("").is_err());
        assert!(parse_scanned("not a code").is_err());
    }
}
