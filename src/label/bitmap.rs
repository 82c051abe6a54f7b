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

    /// Fills `[x, x+w) x [y, y+h)`, clipped to the bitmap, a byte at a time.
    pub fn fill(&mut self, x: u32, y: u32, w: u32, h: u32) {
        let (x0, x1) = (x.min(self.width) as usize, (x + w).min(self.width) as usize);
        if x0 >= x1 {
            return;
        }
        let (b0, b1) = (x0 / 8, (x1 - 1) / 8);
        let first = 0xffu8 >> (x0 % 8);
        let last = 0xffu8 << (7 - (x1 - 1) % 8);
        for yy in y..(y + h).min(self.height) {
            let row = &mut self.data[yy as usize * self.stride..(yy as usize + 1) * self.stride];
            if b0 == b1 {
                row[b0] |= first & last;
            } else {
                row[b0] |= first;
                for b in &mut row[b0 + 1..b1] {
                    *b = 0xff;
                }
                row[b1] |= last;
            }
        }
    }
}

/// The font, parsed once.
pub fn font() -> Option<&'static FontRef<'static>> {
    static FONT: std::sync::OnceLock<Option<FontRef<'static>>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_TTF).ok())
        .as_ref()
}

/// A rasterised glyph: advance and the dots it sets, relative to the pen
/// position on the baseline.
struct Glyph {
    advance: f32,
    dots: Vec<(i32, i32)>,
}

thread_local! {
    /// Glyphs by (character, em size in dots): labels repeat the same few.
    static GLYPHS: std::cell::RefCell<std::collections::HashMap<(char, u32), std::rc::Rc<Glyph>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn glyph(f: &FontRef<'static>, c: char, height: u32) -> std::rc::Rc<Glyph> {
    GLYPHS.with(|cache| {
        if let Some(g) = cache.borrow().get(&(c, height)) {
            return g.clone();
        }
        let scale = PxScale::from(height as f32);
        let id = f.glyph_id(c);
        let advance = f.as_scaled(scale).h_advance(id);
        let mut dots = Vec::new();
        // Rasterise at the origin; a pixel is set where coverage >= 1/2.
        if let Some(outline) =
            f.outline_glyph(id.with_scale_and_position(scale, ab_glyph::point(0.0, 0.0)))
        {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                if cov >= 0.5 {
                    dots.push((b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32));
                }
            });
        }
        let g = std::rc::Rc::new(Glyph { advance, dots });
        let mut c_ = cache.borrow_mut();
        if c_.len() > 4096 {
            c_.clear();
        }
        c_.insert((c, height), g.clone());
        g
    })
}

/// Width in dots of `text` at an em size of `height` dots.
pub fn text_width(text: &str, height: u32) -> u32 {
    let Some(f) = font() else { return 0 };
    text.chars()
        .map(|c| glyph(f, c, height).advance)
        .sum::<f32>()
        .ceil() as u32
}

/// Draws `text` with its em box's top-left at (x, y).
pub fn draw_text(bm: &mut Bitmap, x: u32, y: u32, height: u32, text: &str) {
    let Some(f) = font() else { return };
    let baseline = (y as f32 + f.as_scaled(PxScale::from(height as f32)).ascent()).round() as i64;
    let mut pen = x as f32;
    for c in text.chars() {
        let g = glyph(f, c, height);
        let px = pen.round() as i64;
        for (dx, dy) in &g.dots {
            let (gx, gy) = (px + i64::from(*dx), baseline + i64::from(*dy));
            if gx >= 0 && gy >= 0 {
                bm.set(gx as u32, gy as u32);
            }
        }
        pen += g.advance;
    }
}
