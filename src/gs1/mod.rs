//! GS1 (SPEC sections 2 and 3): GTINs, AI values, the Digital Link URI the QR
//! code carries, GS1 element strings (DataMatrix, scanners) and the
//! human-readable interpretation printed under a code.
//!
//! Pure: no IO, no tokio. Everything a label or a scanner says about a unit
//! passes through here, so every parser refuses what it does not fully
//! understand instead of guessing.

pub mod ai;
pub mod digital_link;
pub mod element;
pub mod gtin;

pub use digital_link::{build_uri, parse_uri};
pub use element::{hri, parse_element_string, parse_scanned, to_bracketed, to_element_string};
pub use gtin::Gtin;

use serde::{Deserialize, Serialize};

/// Passport level of a product (SPEC section 2): what the Digital Link names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// One passport per unit: GTIN, lot if set, and the unit ID as serial.
    Item,
    /// One passport per lot: GTIN and lot.
    Batch,
    /// One passport per model: GTIN only (and lot if set).
    Model,
}

impl Level {
    /// `item`, `batch` or `model`.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "item" => Some(Level::Item),
            "batch" => Some(Level::Batch),
            "model" => Some(Level::Model),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Item => "item",
            Level::Batch => "batch",
            Level::Model => "model",
        }
    }
}

/// What a GS1 code says about a unit: the GTIN and its qualifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub gtin: Gtin,
    /// AI 22, consumer product variant.
    pub cpv: Option<String>,
    /// AI 10, batch or lot.
    pub lot: Option<String>,
    /// AI 21, serial: the unit ID at item level.
    pub serial: Option<String>,
}

impl Identity {
    /// The identity a label carries for a unit of a product at `level`.
    pub fn for_unit(gtin: Gtin, level: Level, lot: Option<&str>, unit: &str) -> Self {
        Self {
            gtin,
            cpv: None,
            lot: lot.map(str::to_string),
            serial: (level == Level::Item).then(|| unit.to_string()),
        }
    }

    /// Checks every qualifier against its AI's rules.
    pub fn validate(&self) -> Result<(), Gs1Error> {
        for (ai, v) in [("22", &self.cpv), ("10", &self.lot), ("21", &self.serial)] {
            if let Some(v) = v {
                ai::check_value(ai, v)?;
            }
        }
        Ok(())
    }
}

/// Why a GS1 value, URI or element string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("GTIN {0:?} must be digits only")]
    GtinNotDigits(String),
    #[error("GTIN {0:?} has {1} digits; a GTIN has 8, 12, 13 or 14")]
    GtinLength(String, usize),
    #[error("GTIN {gtin:?} has check digit {found}, expected {expected}")]
    GtinCheckDigit {
        gtin: String,
        found: u8,
        expected: u8,
    },
    #[error("AI ({ai}) value {value:?} must be {rule}")]
    AiFormat {
        ai: String,
        value: String,
        rule: String,
    },
    #[error("AI ({ai}) value {value:?}: character {pos} ({ch:?}) is not in GS1 character set 82")]
    Charset {
        ai: String,
        value: String,
        pos: usize,
        ch: char,
    },
    #[error("AI ({0}) is not one linemark reads")]
    UnknownAi(String),
    #[error("AI ({0}) appears twice")]
    RepeatedAi(String),
    #[error("no GTIN, AI (01), in {0:?}")]
    NoGtin(String),
    #[error("not a GS1 Digital Link URI: {0}")]
    NotDigitalLink(String),
    #[error("bad percent-encoding in {0:?}")]
    PercentEncoding(String),
    #[error("Digital Link qualifiers out of order in {0:?}: the path order is 01, 22, 10, 21")]
    QualifierOrder(String),
    #[error("malformed element string {0:?}: {1}")]
    ElementString(String, String),
}
