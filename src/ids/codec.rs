//! The written form of a unit ID: 12 Crockford base32 characters and one Luhn
//! mod 32 check character (SPEC section 1).
//!
//! Owns: text <-> 60-bit opaque value. Must not: know the permutation or the
//! key (an ID is checked for typos here, for origin elsewhere).

use std::fmt;
use std::str::FromStr;

/// The Crockford base32 alphabet, value order.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Data characters in an ID.
pub const DATA_CHARS: usize = 12;
/// Characters in a written ID, check character included.
pub const ID_LEN: usize = DATA_CHARS + 1;

/// A unit ID: the opaque 60-bit value, written as 13 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitId(u64);

/// Why a text is not a valid unit ID. Each message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a unit ID has 13 characters, {0:?} has {1}")]
    Length(String, usize),
    #[error("{id:?}: character {pos} ({ch:?}) is not in the Crockford base32 alphabet")]
    BadChar { id: String, pos: usize, ch: char },
    #[error(
        "{id:?}: wrong check character {found:?} (expected {expected:?}): the ID was mistyped or misread"
    )]
    Check {
        id: String,
        found: char,
        expected: char,
    },
}

/// Value of one character, accepting lower case and the Crockford aliases.
#[inline]
fn char_value(c: u8) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    let c = match c {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        other => other,
    };
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'H' => Some(c - b'A' + 10),
        b'J' | b'K' => Some(c - b'J' + 18),
        b'M' | b'N' => Some(c - b'M' + 20),
        b'P'..=b'T' => Some(c - b'P' + 22),
        b'V'..=b'Z' => Some(c - b'V' + 27),
        _ => None,
    }
}

/// Luhn mod 32 check value over data character values, most significant first.
#[inline]
pub fn check_value(data: &[u8]) -> u8 {
    let mut sum: u32 = 0;
    let mut factor = 2u32;
    for &v in data.iter().rev() {
        let addend = factor * u32::from(v);
        sum += addend / 32 + addend % 32;
        factor = if factor == 2 { 1 } else { 2 };
    }
    ((32 - sum % 32) % 32) as u8
}

impl UnitId {
    /// Wraps an opaque value; `None` when it does not fit 60 bits.
    pub fn from_value(value: u64) -> Option<Self> {
        (value < (1u64 << 60)).then_some(Self(value))
    }

    pub fn value(self) -> u64 {
        self.0
    }

    /// The 13 ASCII characters, without allocating.
    #[inline]
    pub fn encode(self) -> [u8; ID_LEN] {
        let mut digits = [0u8; DATA_CHARS];
        for (i, d) in digits.iter_mut().enumerate() {
            *d = ((self.0 >> (5 * (DATA_CHARS - 1 - i))) & 31) as u8;
        }
        let mut out = [0u8; ID_LEN];
        for (o, d) in out.iter_mut().zip(digits.iter()) {
            *o = ALPHABET[*d as usize];
        }
        out[DATA_CHARS] = ALPHABET[check_value(&digits) as usize];
        out
    }

    /// Parses a written ID: lower case and the aliases O, I, L accepted,
    /// surrounding white space ignored, the check character verified.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let t = text.trim();
        let bytes = t.as_bytes();
        if bytes.len() != ID_LEN {
            return Err(IdError::Length(t.to_string(), t.chars().count()));
        }
        let mut digits = [0u8; ID_LEN];
        for (pos, (&b, d)) in bytes.iter().zip(digits.iter_mut()).enumerate() {
            *d = char_value(b).ok_or_else(|| IdError::BadChar {
                id: t.to_string(),
                pos: pos + 1,
                ch: t[pos..].chars().next().unwrap_or('?'),
            })?;
        }
        let expected = check_value(&digits[..DATA_CHARS]);
        if digits[DATA_CHARS] != expected {
            return Err(IdError::Check {
                id: t.to_string(),
                found: bytes[DATA_CHARS] as char,
                expected: ALPHABET[expected as usize] as char,
            });
        }
        let value = digits[..DATA_CHARS]
            .iter()
            .fold(0u64, |acc, &d| (acc << 5) | u64::from(d));
        Ok(Self(value))
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.encode();
        // The alphabet is ASCII, so this cannot fail.
        f.write_str(std::str::from_utf8(&e).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnitId({self})")
    }
}

impl FromStr for UnitId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alphabet_values_round_trip() {
        for (v, c) in ALPHABET.iter().enumerate() {
            assert_eq!(char_value(*c), Some(v as u8));
            assert_eq!(char_value(c.to_ascii_lowercase()), Some(v as u8));
        }
        assert_eq!(char_value(b'U'), None);
        assert_eq!(char_value(b'u'), None);
        assert_eq!(char_value(b'o'), Some(0));
        assert_eq!(char_value(b'i'), Some(1));
        assert_eq!(char_value(b'L'), Some(1));
    }

    #[test]
    fn check_character_reports_expected_and_found() {
        let err = UnitId::parse("V700QW11S6PJ5").unwrap_err();
        assert_eq!(
            err,
            IdError::Check {
                id: "V700QW11S6PJ5".into(),
                found: '5',
                expected: '4'
            }
        );
        assert!(err.to_string().contains("wrong check character"));
    }

    #[test]
    fn lower_case_and_aliases_parse_to_the_same_id() {
        let a = UnitId::parse("V700QW11S6PJ4").unwrap();
        assert_eq!(UnitId::parse("v700qw11s6pj4").unwrap(), a);
        assert_eq!(UnitId::parse("V7OOQWIlS6PJ4").unwrap(), a);
        assert_eq!(UnitId::parse(" V700QW11S6PJ4\r\n").unwrap(), a);
    }

    #[test]
    fn wrong_length_and_bad_characters_are_named() {
        assert!(matches!(
            UnitId::parse("V700QW11S6PJ"),
            Err(IdError::Length(_, 12))
        ));
        assert!(matches!(UnitId::parse(""), Err(IdError::Length(_, 0))));
        let e = UnitId::parse("V700QW11S6PU4").unwrap_err();
        assert!(
            matches!(
                e,
                IdError::BadChar {
                    pos: 12,
                    ch: 'U',
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(matches!(
            UnitId::parse("V700QW11S6P\u{e9}"),
            Err(IdError::BadChar { .. }) | Err(IdError::Length(..))
        ));
    }

    #[test]
    fn values_outside_60_bits_are_not_ids() {
        assert!(UnitId::from_value(1 << 60).is_none());
        assert!(UnitId::from_value((1 << 60) - 1).is_some());
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(v in 0u64..(1u64 << 60)) {
            let id = UnitId::from_value(v).unwrap();
            let text = id.to_string();
            prop_assert_eq!(text.len(), ID_LEN);
            prop_assert_eq!(UnitId::parse(&text).unwrap(), id);
            prop_assert_eq!(UnitId::parse(&text.to_lowercase()).unwrap(), id);
        }

        #[test]
        fn every_single_character_substitution_is_rejected(v in 0u64..(1u64 << 60)) {
            let text = UnitId::from_value(v).unwrap().encode();
            for pos in 0..ID_LEN {
                for &c in ALPHABET.iter() {
                    if c == text[pos] {
                        continue;
                    }
                    let mut bad = text;
                    bad[pos] = c;
                    let s = std::str::from_utf8(&bad).unwrap();
                    prop_assert!(UnitId::parse(s).is_err(), "{} accepted", s);
                }
            }
        }
    }
}
