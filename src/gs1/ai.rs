//! GS1 Application Identifiers: the ones linemark writes or reads, their
//! formats, and the AI encodable character set 82.
//!
//! Owns: value checks per AI. Must not: build URIs or element strings.

use super::{Gs1Error, Gtin};

/// How long an AI's value may be, and which characters it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Exactly `n` digits.
    Numeric(usize),
    /// 1 to `n` characters of set 82.
    Alnum(usize),
}

/// An AI linemark knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AiDef {
    pub ai: &'static str,
    pub title: &'static str,
    pub format: Format,
}

/// The AIs understood in Digital Link URIs and element strings.
pub const KNOWN: &[AiDef] = &[
    AiDef {
        ai: "00",
        title: "SSCC",
        format: Format::Numeric(18),
    },
    AiDef {
        ai: "01",
        title: "GTIN",
        format: Format::Numeric(14),
    },
    AiDef {
        ai: "02",
        title: "CONTENT",
        format: Format::Numeric(14),
    },
    AiDef {
        ai: "10",
        title: "BATCH/LOT",
        format: Format::Alnum(20),
    },
    AiDef {
        ai: "11",
        title: "PROD DATE",
        format: Format::Numeric(6),
    },
    AiDef {
        ai: "13",
        title: "PACK DATE",
        format: Format::Numeric(6),
    },
    AiDef {
        ai: "15",
        title: "BEST BEFORE",
        format: Format::Numeric(6),
    },
    AiDef {
        ai: "17",
        title: "USE BY",
        format: Format::Numeric(6),
    },
    AiDef {
        ai: "21",
        title: "SERIAL",
        format: Format::Alnum(20),
    },
    AiDef {
        ai: "22",
        title: "CPV",
        format: Format::Alnum(20),
    },
    AiDef {
        ai: "240",
        title: "ADDITIONAL ID",
        format: Format::Alnum(30),
    },
    AiDef {
        ai: "241",
        title: "CUST. PART No.",
        format: Format::Alnum(30),
    },
];

/// AIs whose element-string length is fixed by their first two digits
/// (GS1 General Specifications, figure 7.8.5-2): no FNC1 follows them.
pub fn predefined_length(ai_prefix: &str) -> Option<usize> {
    Some(match ai_prefix {
        "00" => 20,
        "01" | "02" => 16,
        "03" => 16,
        "04" => 18,
        "11" | "12" | "13" | "14" | "15" | "16" | "17" | "18" | "19" => 8,
        "20" => 4,
        "31" | "32" | "33" | "34" | "35" | "36" => 10,
        "41" => 16,
        _ => return None,
    })
}

pub fn lookup(ai: &str) -> Option<&'static AiDef> {
    KNOWN.iter().find(|d| d.ai == ai)
}

/// Is this byte in GS1 AI encodable character set 82?
pub fn is_charset82(b: u8) -> bool {
    matches!(b,
        b'!' | b'"' | b'%' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'-' | b'.' | b'/'
        | b'0'..=b'9' | b':' | b';' | b'<' | b'=' | b'>' | b'?' | b'_' | b'A'..=b'Z' | b'a'..=b'z')
}

/// Checks a value for an AI; GTINs are also check-digit verified.
pub fn check_value(ai: &str, value: &str) -> Result<(), Gs1Error> {
    let def = lookup(ai).ok_or_else(|| Gs1Error::UnknownAi(ai.to_string()))?;
    match def.format {
        Format::Numeric(n) => {
            if value.len() != n || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Gs1Error::AiFormat {
                    ai: ai.to_string(),
                    value: value.to_string(),
                    rule: format!("exactly {n} digits"),
                });
            }
            if ai == "01" || ai == "02" {
                Gtin::parse(value)?;
            }
        }
        Format::Alnum(max) => check_charset82(ai, value, max)?,
    }
    Ok(())
}

/// Set 82 and length 1..=max, naming the first offending character.
pub fn check_charset82(ai: &str, value: &str, max: usize) -> Result<(), Gs1Error> {
    if value.is_empty() || value.len() > max {
        return Err(Gs1Error::AiFormat {
            ai: ai.to_string(),
            value: value.to_string(),
            rule: format!("1 to {max} characters"),
        });
    }
    if let Some((pos, ch)) = value
        .char_indices()
        .find(|(_, c)| !c.is_ascii() || !is_charset82(*c as u8))
    {
        return Err(Gs1Error::Charset {
            ai: ai.to_string(),
            value: value.to_string(),
            pos: pos + 1,
            ch,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_82_is_exactly_the_82_characters() {
        let n = (0u8..=127).filter(|b| is_charset82(*b)).count();
        assert_eq!(n, 82);
        for b in [
            b' ', b'#', b'$', b'@', b'[', b'\\', b']', b'^', b'`', b'{', b'|', b'}', b'~',
        ] {
            assert!(!is_charset82(b), "{}", b as char);
        }
    }

    #[test]
    fn lots_are_checked_for_characters_and_length() {
        assert!(check_value("10", "AB/7%").is_ok());
        assert!(check_value("10", "ABCDEFGHIJ0123456789").is_ok());
        let long = check_value("10", "ABCDEFGHIJ0123456789X").unwrap_err();
        assert!(long.to_string().contains("1 to 20"), "{long}");
        let space = check_value("10", "AB 7").unwrap_err();
        assert!(
            matches!(
                space,
                Gs1Error::Charset {
                    pos: 3,
                    ch: ' ',
                    ..
                }
            ),
            "{space:?}"
        );
        assert!(matches!(
            check_value("10", "L\u{e4}"),
            Err(Gs1Error::Charset { .. })
        ));
        assert!(check_value("10", "").is_err());
    }

    #[test]
    fn numeric_ais_need_exact_digits_and_gtins_their_check_digit() {
        assert!(check_value("17", "261231").is_ok());
        assert!(check_value("17", "26123").is_err());
        assert!(check_value("01", "09506000134352").is_ok());
        assert!(matches!(
            check_value("01", "09506000134353"),
            Err(Gs1Error::GtinCheckDigit { .. })
        ));
        assert!(matches!(
            check_value("99", "x"),
            Err(Gs1Error::UnknownAi(_))
        ));
    }
}
