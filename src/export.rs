//! What a buyer receives per shipment (`linemark export shipment`): every
//! shipped unit with its identity, streamed in shipping order as CSV or as
//! one JSON document.
//!
//! Owns: the export's columns and both formats. Must not: write to the
//! journal (it reads through its own connection) or hold a whole shipment
//! in memory.

use std::io::Write;

use serde::Serialize;

use crate::gs1::{self, Gtin, Identity, Level};
use crate::journal::query::{self, ShippedRow};
use crate::journal::{JournalError, Reader};

/// The JSON document's schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// One shipped unit, as the buyer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ShippedUnit {
    pub unit: String,
    pub uri: String,
    pub gtin: String,
    pub lot: Option<String>,
    pub serial: Option<String>,
    pub mac: Option<String>,
    pub uid: Option<String>,
    pub firmware: Option<String>,
    pub firmware_hash: Option<String>,
    pub certificate: Option<String>,
    pub final_pass_at: Option<String>,
    pub shipment: String,
    pub shipped_at: String,
    pub buyer: Option<String>,
    pub children: Vec<String>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no unit was shipped under {0:?}")]
    Empty(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write the export: {0}")]
    Write(String),
}

/// Units in a shipment.
pub fn count(conn: &Reader, shipment: &str) -> Result<u64, ExportError> {
    Ok(query::shipped_count(conn, shipment)?)
}

/// Calls `each` for every unit of the shipment, in shipping order.
pub fn for_each(
    conn: &Reader,
    resolver: &str,
    shipment: &str,
    mut each: impl FnMut(ShippedUnit) -> Result<(), ExportError>,
) -> Result<u64, ExportError> {
    let n = query::shipped_units(conn, shipment, |r: ShippedRow| {
        let g = Gtin::parse(&r.gtin)
            .map_err(|e| ExportError::Journal(JournalError::Corrupt(e.to_string())))?;
        let id = Identity::for_unit(
            g,
            Level::parse(&r.level).unwrap_or(Level::Item),
            r.lot.as_deref(),
            &r.unit,
        );
        each(ShippedUnit {
            uri: gs1::build_uri(resolver, &id),
            unit: r.unit,
            gtin: r.gtin,
            lot: r.lot,
            final_pass_at: r.final_at,
            shipment: r.shipment,
            shipped_at: r.shipped_at,
            buyer: r.buyer,
            serial: r.serial,
            mac: r.mac,
            uid: r.uid,
            firmware: r.fw,
            firmware_hash: r.fwhash,
            certificate: r.cert,
            children: r
                .children
                .map(|c| c.split(' ').map(str::to_string).collect())
                .unwrap_or_default(),
        })
    })?;
    if n == 0 {
        return Err(ExportError::Empty(shipment.to_string()));
    }
    Ok(n)
}

/// A cell a spreadsheet would take for a formula gets a leading `'`.
pub(crate) fn cell(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

const HEADER: [&str; 15] = [
    "unit",
    "uri",
    "gtin",
    "lot",
    "serial",
    "mac",
    "uid",
    "firmware",
    "firmware_hash",
    "certificate",
    "final_pass_at",
    "shipment",
    "shipped_at",
    "buyer",
    "children",
];

/// CSV with a header row, one row per unit; children separated by spaces.
pub fn csv<W: Write>(
    conn: &Reader,
    resolver: &str,
    shipment: &str,
    out: W,
    mut progress: impl FnMut(u64),
) -> Result<u64, ExportError> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(HEADER)
        .map_err(|e| ExportError::Write(e.to_string()))?;
    let mut n = 0u64;
    let total = for_each(conn, resolver, shipment, |u| {
        let o = |v: &Option<String>| cell(v.as_deref().unwrap_or(""));
        w.write_record([
            cell(&u.unit),
            cell(&u.uri),
            cell(&u.gtin),
            o(&u.lot),
            o(&u.serial),
            o(&u.mac),
            o(&u.uid),
            o(&u.firmware),
            o(&u.firmware_hash),
            o(&u.certificate),
            o(&u.final_pass_at),
            cell(&u.shipment),
            cell(&u.shipped_at),
            o(&u.buyer),
            cell(&u.children.join(" ")),
        ])
        .map_err(|e| ExportError::Write(e.to_string()))?;
        n += 1;
        if n.is_multiple_of(4096) {
            progress(n);
        }
        Ok(())
    })?;
    w.flush().map_err(|e| ExportError::Write(e.to_string()))?;
    Ok(total)
}

/// One JSON document: `{"schema_version":1,"shipment":...,"units":[...]}`,
/// written unit by unit.
pub fn json<W: Write>(
    conn: &Reader,
    resolver: &str,
    shipment: &str,
    line_id: &str,
    out: W,
    mut progress: impl FnMut(u64),
) -> Result<u64, ExportError> {
    let mut w = std::io::BufWriter::new(out);
    let werr = |e: std::io::Error| ExportError::Write(e.to_string());
    let head = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "linemark.shipment",
        "shipment": shipment,
        "line_id": line_id,
        "exported_at": crate::journal::event::format_ts(jiff::Timestamp::now()),
    })
    .to_string();
    // Open the object, leave it open for "units".
    write!(w, "{},\"units\":[", &head[..head.len() - 1]).map_err(werr)?;
    let mut n = 0u64;
    let total = for_each(conn, resolver, shipment, |u| {
        if n > 0 {
            w.write_all(b",").map_err(werr)?;
        }
        serde_json::to_writer(&mut w, &u).map_err(|e| ExportError::Write(e.to_string()))?;
        n += 1;
        if n.is_multiple_of(4096) {
            progress(n);
        }
        Ok(())
    })?;
    writeln!(w, "],\"count\":{total}}}").map_err(werr)?;
    w.flush().map_err(werr)?;
    Ok(total)
}
