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

/// The QR code of `data`.
pub fn qr(data: &str, ec: Ec) -> Result<Matrix, LabelError> {
    let level = match ec {
        Ec::L => qrcode::EcLevel::L,
        Ec::M => qrcode::EcLevel::M,
        Ec::Q => qrcode::EcLevel::Q,
        Ec::H => qrcode::EcLevel::H,
    };
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), level)
        .map_err(|e| LabelError::Encode(format!("QR code of {} bytes: {e}", data.len())))?;
    let width = code.width();
    let bits = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
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
