//! The `E_...` codes of SPEC section 4 and what a station should do on each
//! (documented in hardware-notes/station-protocol.md).

/// An error code in an `ERR` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    NotAllowed,
    NoIds,
    DupMac,
    DupUid,
    Conflict,
    Route,
    Scrapped,
    AlreadyFinal,
    AlreadyShipped,
    UnknownUnit,
    UnknownProduct,
    BadFrame,
    BadValue,
    Storage,
    TooLong,
    Checksum,
    Mismatch,
    /// An answer carried a code this build does not know (station side only).
    Unknown,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::NotAllowed,
        ErrorCode::NoIds,
        ErrorCode::DupMac,
        ErrorCode::DupUid,
        ErrorCode::Conflict,
        ErrorCode::Route,
        ErrorCode::Scrapped,
        ErrorCode::AlreadyFinal,
        ErrorCode::AlreadyShipped,
        ErrorCode::UnknownUnit,
        ErrorCode::UnknownProduct,
        ErrorCode::BadFrame,
        ErrorCode::BadValue,
        ErrorCode::Storage,
        ErrorCode::TooLong,
        ErrorCode::Checksum,
        ErrorCode::Mismatch,
        ErrorCode::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotAllowed => "E_NOT_ALLOWED",
            ErrorCode::NoIds => "E_NO_IDS",
            ErrorCode::DupMac => "E_DUP_MAC",
            ErrorCode::DupUid => "E_DUP_UID",
            ErrorCode::Conflict => "E_CONFLICT",
            ErrorCode::Route => "E_ROUTE",
            ErrorCode::Scrapped => "E_SCRAPPED",
            ErrorCode::AlreadyFinal => "E_ALREADY_FINAL",
            ErrorCode::AlreadyShipped => "E_ALREADY_SHIPPED",
            ErrorCode::UnknownUnit => "E_UNKNOWN_UNIT",
            ErrorCode::UnknownProduct => "E_UNKNOWN_PRODUCT",
            ErrorCode::BadFrame => "E_BAD_FRAME",
            ErrorCode::BadValue => "E_BAD_VALUE",
            ErrorCode::Storage => "E_STORAGE",
            ErrorCode::TooLong => "E_TOO_LONG",
            ErrorCode::Checksum => "E_CHECKSUM",
            ErrorCode::Mismatch => "E_MISMATCH",
            ErrorCode::Unknown => "E_UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> ErrorCode {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(ErrorCode::Unknown)
    }
}
