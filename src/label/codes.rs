//! 2D symbols as module grids: QR (the Digital Link URI, byte mode, not
//! GS1 mode) and GS1 DataMatrix (the element string with FNC1 first).

use super::template::Ec;
use super::LabelError;

/// A symbol's modules, row-major, `true` = dark, without quiet zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub width: usize,
    pub height: usize,
    pub bits: Vec<bool>,
}

impl Matrix {
    pub fn get(&self, x: usize, y: usize) -> bool {
        self.bits[y * self.width + x]
    }
}

/// The QR code of `data` (byte mode for a URI; fast_qr, chosen by the
/// benchmark in BENCHMARKS.md).
pub fn qr(data: &str, ec: Ec) -> Result<Matrix, LabelError> {
    let level = match ec {
        Ec::L => fast_qr::ECL::L,
        Ec::M => fast_qr::ECL::M,
        Ec::Q => fast_qr::ECL::Q,
        Ec::H => fast_qr::ECL::H,
    };
    let code = fast_qr::QRBuilder::new(data.as_bytes())
        .ecl(level)
        .build()
        .map_err(|e| LabelError::Encode(format!("QR code of {} bytes: {e:?}", data.len())))?;
    let width = code.size;
    let bits = code.data[..width * width]
        .iter()
        .map(|m| m.value())
        .collect();
    Ok(Matrix {
        width,
        height: width,
        bits,
    })
}

/// The GS1 DataMatrix of a raw element string (GS separators inside).
pub fn datamatrix(element_string: &str) -> Result<Matrix, LabelError> {
    let dm = datamatrix::DataMatrix::encode_gs1(
        element_string.as_bytes(),
        datamatrix::SymbolList::default(),
    )
    .map_err(|e| LabelError::Encode(format!("GS1 DataMatrix: {e:?}")))?;
    let bm = dm.bitmap();
    Ok(Matrix {
        width: bm.width(),
        height: bm.height(),
        bits: bm.bits().to_vec(),
    })
}
