//! The three backends of one [`Layout`]: PNG (1-bit at the printer's
//! resolution, modules pixel-exact), ZPL (2D codes as `^GF` bitmaps that
//! are dot-for-dot the PNG, text in printer fonts) and PDF (page = label
//! size, codes as vector rectangles, text in a PDF base font).

use std::fmt::Write as _;

use super::bitmap::{draw_text, text_width, Bitmap};
use super::{Align, Item, LabelError, Layout};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Pdf,
    Zpl,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Pdf => "pdf",
            Format::Zpl => "zpl",
        }
    }

    /// From a file name's extension.
    pub fn from_path(p: &std::path::Path) -> Option<Format> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "png" => Some(Format::Png),
            "pdf" => Some(Format::Pdf),
            "zpl" => Some(Format::Zpl),
            _ => None,
        }
    }
}

pub fn render(l: &Layout, f: Format) -> Result<Vec<u8>, LabelError> {
    match f {
        Format::Png => png(l),
        Format::Pdf => pdf(l),
        Format::Zpl => Ok(zpl(l)),
    }
}

/// Where aligned text starts.
fn text_x(x: u32, width: u32, align: Align, text_w: u32) -> u32 {
    match align {
        Align::Left => x,
        Align::Center => x + width.saturating_sub(text_w) / 2,
        Align::Right => x + width.saturating_sub(text_w),
    }
}

/// A symbol as its own bitmap: each module `module` x `module` dots.
pub fn code_bitmap(m: &super::codes::Matrix, module: u32) -> Bitmap {
    let mut bm = Bitmap::new(m.width as u32 * module, m.height as u32 * module);
    for y in 0..m.height {
        for x in 0..m.width {
            if m.get(x, y) {
                bm.fill(x as u32 * module, y as u32 * module, module, module);
            }
        }
    }
    bm
}

/// The whole label as a 1-bit raster.
pub fn raster(l: &Layout) -> Bitmap {
    let mut bm = Bitmap::new(l.width, l.height);
    for item in &l.items {
        match item {
            Item::Rect { x, y, w, h } => bm.fill(*x, *y, *w, *h),
            Item::Code {
                x,
                y,
                module,
                matrix,
                ..
            } => {
                for my in 0..matrix.height {
                    for mx in 0..matrix.width {
                        if matrix.get(mx, my) {
                            bm.fill(
                                x + mx as u32 * module,
                                y + my as u32 * module,
                                *module,
                                *module,
                            );
                        }
                    }
                }
            }
            Item::Text {
                x,
                y,
                width,
                height,
                align,
                text,
            } => {
                let tx = text_x(*x, *width, *align, text_width(text, *height));
                draw_text(&mut bm, tx, *y, *height, text);
            }
        }
    }
    bm
}

/// 1-bit greyscale PNG (0 = black) with the resolution in `pHYs`.
pub fn png(l: &Layout) -> Result<Vec<u8>, LabelError> {
    let bm = raster(l);
    let mut out = Vec::with_capacity(bm.data.len() / 4 + 256);
    {
        let mut enc = png::Encoder::new(&mut out, bm.width, bm.height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::Fast);
        let ppm = (f64::from(l.dpi) / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
        let mut w = enc
            .write_header()
            .map_err(|e| LabelError::Output(e.to_string()))?;
        // PNG greyscale: 1 = white, so invert our 1 = printed dot.
        let inverted: Vec<u8> = bm.data.iter().map(|b| !b).collect();
        w.write_image_data(&inverted)
            .map_err(|e| LabelError::Output(e.to_string()))?;
        w.finish().map_err(|e| LabelError::Output(e.to_string()))?;
    }
    Ok(out)
}

/// Field data for `^FD` after `^FH_`: `^`, `~`, `_` and anything outside
/// printable ASCII are written as `_HH` (UTF-8 bytes), per the ZPL II manual.
pub fn zpl_field(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for b in text.bytes() {
        if b == b'^' || b == b'~' || b == b'_' || !(0x20..0x7f).contains(&b) {
            let _ = write!(s, "_{b:02X}");
        } else {
            s.push(b as char);
        }
    }
    s
}

/// ZPL II: `^PW`/`^LL` from the size, codes as `^GFA` bitmaps, text in
/// font 0 inside a `^FB` block for alignment, lines and boxes as `^GB`.
pub fn zpl(l: &Layout) -> Vec<u8> {
    let mut s = String::with_capacity(4096);
    let _ = write!(s, "^XA\n^CI28\n^PW{}\n^LL{}\n^LH0,0\n", l.width, l.height);
    for item in &l.items {
        match item {
            Item::Code {
                x,
                y,
                module,
                matrix,
                ..
            } => {
                let bm = code_bitmap(matrix, *module);
                let total = bm.data.len();
                let _ = write!(s, "^FO{x},{y}^GFA,{total},{total},{},", bm.stride);
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                s.reserve(total * 2);
                for b in &bm.data {
                    s.push(HEX[(b >> 4) as usize] as char);
                    s.push(HEX[(b & 15) as usize] as char);
                }
                s.push_str("^FS\n");
            }
            Item::Text {
                x,
                y,
                width,
                height,
                align,
                text,
            } => {
                let j = match align {
                    Align::Left => 'L',
                    Align::Center => 'C',
                    Align::Right => 'R',
                };
                let _ = writeln!(
                    s,
                    "^FO{x},{y}^A0N,{height},{height}^FB{width},1,0,{j},0^FH_^FD{}^FS",
                    zpl_field(text)
                );
            }
            Item::Rect { x, y, w, h } => {
                let _ = writeln!(s, "^FO{x},{y}^GB{w},{h},{},B,0^FS", (*w).min(*h));
            }
        }
    }
    s.push_str("^PQ1\n^XZ\n");
    s.into_bytes()
}

/// PDF: one page the size of the label; dark modules merged into runs per
/// row and drawn as one filled path per symbol; text in Courier.
pub fn pdf(l: &Layout) -> Result<Vec<u8>, LabelError> {
    use printpdf::path::{PaintMode, WindingOrder};
    use printpdf::{BuiltinFont, Color, Mm, PdfDocument, Point, Polygon, Rgb};
    let dpmm = f64::from(l.dpi) / 25.4;
    let mm = |dots: f64| Mm((dots / dpmm) as f32);
    let h = f64::from(l.height);
    let ring = |x: f64, y: f64, w: f64, hh: f64| -> Vec<(Point, bool)> {
        let p = |px: f64, py: f64| (Point::new(mm(px), mm(h - py)), false);
        vec![p(x, y), p(x + w, y), p(x + w, y + hh), p(x, y + hh)]
    };
    let fill = |rings: Vec<Vec<(Point, bool)>>| Polygon {
        rings,
        mode: PaintMode::Fill,
        winding_order: WindingOrder::NonZero,
    };
    let (doc, page, layer) = PdfDocument::new(
        "linemark label",
        Mm(l.width_mm as f32),
        Mm(l.height_mm as f32),
        "label",
    );
    let layer = doc.get_page(page).get_layer(layer);
    let font = doc
        .add_builtin_font(BuiltinFont::Courier)
        .map_err(|e| LabelError::Output(e.to_string()))?;
    layer.set_fill_color(Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)));
    for item in &l.items {
        match item {
            Item::Rect { x, y, w, h } => layer.add_polygon(fill(vec![ring(
                f64::from(*x),
                f64::from(*y),
                f64::from(*w),
                f64::from(*h),
            )])),
            Item::Code {
                x,
                y,
                module,
                matrix,
                ..
            } => {
                // One path of many rectangles: one fill for the whole symbol.
                let m = f64::from(*module);
                let mut rings = Vec::new();
                for my in 0..matrix.height {
                    let mut mx = 0;
                    while mx < matrix.width {
                        if !matrix.get(mx, my) {
                            mx += 1;
                            continue;
                        }
                        let start = mx;
                        while mx < matrix.width && matrix.get(mx, my) {
                            mx += 1;
                        }
                        rings.push(ring(
                            f64::from(*x) + start as f64 * m,
                            f64::from(*y) + my as f64 * m,
                            (mx - start) as f64 * m,
                            m,
                        ));
                    }
                }
                layer.add_polygon(fill(rings));
            }
            Item::Text {
                x,
                y,
                width,
                height,
                align,
                text,
            } => {
                // Courier advances 0.6 em per character.
                let tw = (0.6 * f64::from(*height) * text.chars().count() as f64) as u32;
                let tx = text_x(*x, *width, *align, tw);
                let size_pt = (f64::from(*height) / dpmm * 72.0 / 25.4) as f32;
                let baseline = h - f64::from(*y) - 0.78 * f64::from(*height);
                layer.use_text(
                    text.clone(),
                    size_pt,
                    mm(f64::from(tx)),
                    mm(baseline),
                    &font,
                );
            }
        }
    }
    doc.save_to_bytes()
        .map_err(|e| LabelError::Output(e.to_string()))
}
