//! Reading a printed label back: the text of the QR code in a label PNG
//! (1-bit, as the PNG renderer writes it), as a scanner would read it.
//!
//! Owns: decoding the PNG and finding the code. Must not: read files (the
//! caller hands in the bytes).

/// The QR code's text, or `None` when the image has no readable code.
pub fn qr_text(png_bytes: &[u8]) -> Option<String> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let (w, h, stride) = (info.width as usize, info.height as usize, info.line_size);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if buf[y * stride + x / 8] & (0x80 >> (x % 8)) != 0 {
            255
        } else {
            0
        }
    });
    img.detect_grids().first()?.decode().ok().map(|(_, s)| s)
}
