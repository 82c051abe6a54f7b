//! A 1-bit raster at the printer's resolution (1 = a printed dot), and text
//! rasterised from the font shipped in `assets/fonts` (DejaVu Sans Mono,
//! Bitstream Vera licence beside it).

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

/// The label font.
pub const FONT_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

/// Packed rows, most significant bit first, each row padded to whole bytes
/// (the layout ZPL's `^GF` and 1-bit PNG both use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub data: Vec<u8>,
}

impl Bitmap {
    pub fn new(width: u32, height: u32) -> Bitmap {
        let stride = (width as usize).div_ceil(8);
        Bitmap {
            width,
            height,
            stride,
            data: vec![0; stride * height as usize],
        }
    }

    #[inline]
    pub fn set(&mut self, x: u32, y: u32) {
        if x < self.width && y < self.height {
            self.data[y as usize * self.stride + (x / 8) as usize] |= 0x80 >> (x % 8);
        }
    }

    #[inline]
    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.width
            && y < self.height
            && self.data[y as usize * self.stride + (x / 8) as usize] & (0x80 >> (x % 8)) != 0
    }

    /// Fills `[x, x+w) x [y, y+h)`, clipped to the bitmap.
    pub fn fill(&mut self, x: u32, y: u32, w: u32, h: u32) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.set(xx, yy);
            }
        }
    }
}

/// The font, parsed once per call site (parsing is a few microseconds).
pub fn font() -> Option<FontRef<'static>> {
    FontRef::try_from_slice(FONT_TTF).ok()
}

/// Width in dots of `text` at an em size of `height` dots.
pub fn text_width(text: &str, height: u32) -> u32 {
    let Some(f) = font() else { return 0 };
    let sf = f.as_scaled(PxScale::from(height as f32));
    text.chars()
        .map(|c| sf.h_advance(f.glyph_id(c)))
        .sum::<f32>()
        .ceil() as u32
}

/// Draws `text` with its em box's top-left at (x, y); a pixel is set where
/// the glyph covers at least half of it.
pub fn draw_text(bm: &mut Bitmap, x: u32, y: u32, height: u32, text: &str) {
    let Some(f) = font() else { return };
    let scale = PxScale::from(height as f32);
    let sf = f.as_scaled(scale);
    let baseline = y as f32 + sf.ascent();
    let mut pen = x as f32;
    for c in text.chars() {
        let id = f.glyph_id(c);
        let glyph = id.with_scale_and_position(scale, ab_glyph::point(pen, baseline));
        pen += sf.h_advance(id);
        if let Some(outline) = f.outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                if cov >= 0.5 {
                    let px = b.min.x as i64 + i64::from(gx);
                    let py = b.min.y as i64 + i64::from(gy);
                    if px >= 0 && py >= 0 {
                        bm.set(px as u32, py as u32);
                    }
                }
            });
        }
    }
}
