//! GTIN-8/12/13/14: check digit and normalisation to 14 digits.
//!
//! Owns: the GS1 mod-10 check digit. Must not: know about URIs or labels.

use std::fmt;

use super::Gs1Error;

/// A GTIN normalised to 14 digits, check digit verified.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin([u8; 14]);

/// The GS1 check digit of the digits before it (weights 3,1,3,... from the right).
pub fn check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl Gtin {
    /// Parses GTIN-8, -12, -13 or -14 and pads it to 14 digits.
    pub fn parse(text: &str) -> Result<Self, Gs1Error> {
        let t = text.trim();
        if !t.bytes().all(|b| b.is_ascii_digit()) || t.is_empty() {
            return Err(Gs1Error::GtinNotDigits(t.to_string()));
        }
        if ![8, 12, 13, 14].contains(&t.len()) {
            return Err(Gs1Error::GtinLength(t.to_string(), t.len()));
        }
        let mut d = [b'0'; 14];
        d[14 - t.len()..].copy_from_slice(t.as_bytes());
        let expected = check_digit(&d[..13]);
        let found = d[13] - b'0';
        if expected != found {
            return Err(Gs1Error::GtinCheckDigit {
                gtin: t.to_string(),
                found,
                expected,
            });
        }
        Ok(Self(d))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gtin({})", self.as_str())
    }
}

impl serde::Serialize for Gtin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs1_published_examples_parse() {
        // GS1 General Specifications / Digital Link examples.
        assert_eq!(
            Gtin::parse("09506000134352").unwrap().as_str(),
            "09506000134352"
        );
        assert_eq!(
            Gtin::parse("9506000134352").unwrap().as_str(),
            "09506000134352"
        );
        assert_eq!(
            Gtin::parse("614141123452").unwrap().as_str(),
            "00614141123452"
        );
        assert_eq!(Gtin::parse("95012346").unwrap().as_str(), "00000095012346");
        assert_eq!(
            Gtin::parse("10614141000415").unwrap().as_str(),
            "10614141000415"
        );
    }

    #[test]
    fn wrong_check_digit_names_the_expected_digit() {
        let e = Gtin::parse("09506000134353").unwrap_err();
        assert_eq!(
            e,
            Gs1Error::GtinCheckDigit {
                gtin: "09506000134353".into(),
                found: 3,
                expected: 2
            }
        );
        assert!(e.to_string().contains("check digit"));
    }

    #[test]
    fn bad_lengths_and_characters_are_refused() {
        assert!(matches!(
            Gtin::parse("0950600013435"),
            Err(Gs1Error::GtinCheckDigit { .. })
        ));
        assert!(matches!(
            Gtin::parse("123456789"),
            Err(Gs1Error::GtinLength(_, 9))
        ));
        assert!(matches!(
            Gtin::parse("095060001343520"),
            Err(Gs1Error::GtinLength(_, 15))
        ));
        assert!(matches!(
            Gtin::parse("0950600013435A"),
            Err(Gs1Error::GtinNotDigits(_))
        ));
        assert!(matches!(Gtin::parse(""), Err(Gs1Error::GtinNotDigits(_))));
    }
}
