//! Label templates (`label-templates/*.toml`): the file format and every
//! check made when a template is loaded.
//!
//! Owns: sizes in mm, dpi, elements, placeholders, and the geometry rules
//! (inside the label, quiet zone, module size). Must not: read files (the
//! caller hands in the text) or render.

use serde::Deserialize;

use super::LabelError;

/// Printer resolutions linemark lays out for.
pub const DPIS: [u32; 3] = [203, 300, 600];
/// Placeholders a text element may use.
pub const PLACEHOLDERS: [&str; 7] = ["unit", "gtin", "lot", "hri", "product", "line", "date"];
/// Smallest module (QR / DataMatrix cell) a scanner reads reliably.
pub const MIN_MODULE_MM: f64 = 0.25;
/// Quiet zone around a QR code, in modules (ISO/IEC 18004).
pub const QR_QUIET: usize = 4;
/// Quiet zone around a DataMatrix, in modules (ISO/IEC 16022 asks for 1).
pub const DM_QUIET: usize = 2;

/// QR error correction level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Ec {
    L,
    M,
    Q,
    H,
}

/// Horizontal alignment of text in its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    #[default]
    Left,
    Center,
    Right,
}

/// One element of a label, as written in the template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Element {
    /// The Digital Link URI as a QR code; the square `size_mm` holds the
    /// symbol and its quiet zone.
    Qr {
        x_mm: f64,
        y_mm: f64,
        size_mm: f64,
        ec: Ec,
    },
    /// The GS1 element string as a GS1 DataMatrix.
    Datamatrix { x_mm: f64, y_mm: f64, size_mm: f64 },
    /// One line of text with `{placeholders}`; `height_mm` is the font size,
    /// `width_mm` the box it is aligned in (default: to the label's edge).
    Text {
        x_mm: f64,
        y_mm: f64,
        height_mm: f64,
        text: String,
        #[serde(default)]
        align: Align,
        width_mm: Option<f64>,
    },
    /// A horizontal or vertical line.
    Line {
        x1_mm: f64,
        y1_mm: f64,
        x2_mm: f64,
        y2_mm: f64,
        thickness_mm: f64,
    },
    /// A rectangle outline.
    Box {
        x_mm: f64,
        y_mm: f64,
        width_mm: f64,
        height_mm: f64,
        thickness_mm: f64,
    },
}

impl Element {
    fn kind(&self) -> &'static str {
        match self {
            Element::Qr { .. } => "qr",
            Element::Datamatrix { .. } => "datamatrix",
            Element::Text { .. } => "text",
            Element::Line { .. } => "line",
            Element::Box { .. } => "box",
        }
    }
}

/// A template as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    /// What the label is for, free text.
    #[serde(default)]
    pub description: String,
    pub width_mm: f64,
    pub height_mm: f64,
    pub dpi: u32,
    #[serde(rename = "element")]
    pub elements: Vec<Element>,
}

impl Template {
    /// Dots per mm at this template's resolution.
    pub fn dots_per_mm(&self) -> f64 {
        f64::from(self.dpi) / 25.4
    }

    /// mm -> whole printer dots (rounded down, so nothing grows past a
    /// checked edge).
    pub fn dots(&self, mm: f64) -> u32 {
        (mm * self.dots_per_mm() + 1e-9).floor().max(0.0) as u32
    }

    pub fn width_dots(&self) -> u32 {
        self.dots(self.width_mm)
    }

    pub fn height_dots(&self) -> u32 {
        self.dots(self.height_mm)
    }

    /// Parses and checks a template. `source` names the file in errors.
    pub fn parse(text: &str, source: &str) -> Result<Template, LabelError> {
        let t: Template = toml::from_str(text).map_err(|e| LabelError::Template {
            file: source.to_string(),
            element: None,
            problem: e.message().trim().to_string(),
        })?;
        t.check_geometry(source)?;
        Ok(t)
    }

    fn fail(source: &str, i: Option<usize>, kind: &str, problem: String) -> LabelError {
        LabelError::Template {
            file: source.to_string(),
            element: i.map(|i| format!("element[{i}] ({kind})")),
            problem,
        }
    }

    /// Sizes, resolution, elements inside the label, placeholders known.
    fn check_geometry(&self, source: &str) -> Result<(), LabelError> {
        if !DPIS.contains(&self.dpi) {
            return Err(Self::fail(
                source,
                None,
                "",
                format!("dpi = {} must be 203, 300 or 600", self.dpi),
            ));
        }
        if !(5.0..=300.0).contains(&self.width_mm) || !(5.0..=300.0).contains(&self.height_mm) {
            return Err(Self::fail(
                source,
                None,
                "",
                "width_mm and height_mm must be between 5 and 300".into(),
            ));
        }
        if self.elements.is_empty() {
            return Err(Self::fail(
                source,
                None,
                "",
                "a label needs at least one element".into(),
            ));
        }
        let inside = |x: f64, y: f64, w: f64, h: f64| {
            x >= 0.0
                && y >= 0.0
                && w > 0.0
                && h > 0.0
                && x + w <= self.width_mm + 1e-9
                && y + h <= self.height_mm + 1e-9
        };
        for (i, e) in self.elements.iter().enumerate() {
            let fail = |p: String| Self::fail(source, Some(i), e.kind(), p);
            let (x, y, w, h) = match e {
                Element::Qr {
                    x_mm,
                    y_mm,
                    size_mm,
                    ..
                }
                | Element::Datamatrix {
                    x_mm,
                    y_mm,
                    size_mm,
                } => (*x_mm, *y_mm, *size_mm, *size_mm),
                Element::Text {
                    x_mm,
                    y_mm,
                    height_mm,
                    text,
                    width_mm,
                    ..
                } => {
                    check_placeholders(text).map_err(fail)?;
                    if *height_mm < 1.0 {
                        return Err(fail(format!(
                            "height_mm = {height_mm} is too small to read (at least 1 mm)"
                        )));
                    }
                    let w = width_mm.unwrap_or(self.width_mm - x_mm);
                    (*x_mm, *y_mm, w, *height_mm)
                }
                Element::Line {
                    x1_mm,
                    y1_mm,
                    x2_mm,
                    y2_mm,
                    thickness_mm,
                } => {
                    if x1_mm != x2_mm && y1_mm != y2_mm {
                        return Err(fail("a line must be horizontal or vertical".into()));
                    }
                    let t = *thickness_mm;
                    (
                        x1_mm.min(*x2_mm),
                        y1_mm.min(*y2_mm),
                        (x2_mm - x1_mm).abs().max(t),
                        (y2_mm - y1_mm).abs().max(t),
                    )
                }
                Element::Box {
                    x_mm,
                    y_mm,
                    width_mm,
                    height_mm,
                    thickness_mm,
                } => {
                    if *thickness_mm <= 0.0 || thickness_mm * 2.0 > width_mm.min(*height_mm) {
                        return Err(fail("thickness_mm must be positive and fit the box".into()));
                    }
                    (*x_mm, *y_mm, *width_mm, *height_mm)
                }
            };
            if !inside(x, y, w, h) {
                return Err(fail(format!(
                    "[{x:.2}, {y:.2}] to [{:.2}, {:.2}] mm is outside the {} x {} mm label",
                    x + w,
                    y + h,
                    self.width_mm,
                    self.height_mm
                )));
            }
        }
        Ok(())
    }

    /// Checks every 2D code against the longest data it can carry on this
    /// line: module size a whole number of dots of at least 0.25 mm, and
    /// the symbol with its quiet zone inside the element (so inside the label).
    pub fn check_codes(&self, source: &str, resolver: &str) -> Result<(), LabelError> {
        let worst = super::LabelData::worst_case(resolver);
        for (i, e) in self.elements.iter().enumerate() {
            let fail = |p: String| Self::fail(source, Some(i), e.kind(), p);
            let (size_mm, modules, quiet) = match e {
                Element::Qr { size_mm, ec, .. } => {
                    let m = super::codes::qr(&worst.uri(), *ec).map_err(|x| fail(x.to_string()))?;
                    (*size_mm, m.width, QR_QUIET)
                }
                Element::Datamatrix { size_mm, .. } => {
                    let m = super::codes::datamatrix(&worst.element_string())
                        .map_err(|x| fail(x.to_string()))?;
                    (*size_mm, m.width.max(m.height), DM_QUIET)
                }
                _ => continue,
            };
            let module = module_dots(self.dots(size_mm), modules, quiet);
            let module_mm = f64::from(module) / self.dots_per_mm();
            if module == 0 || module_mm + 1e-9 < MIN_MODULE_MM {
                return Err(fail(format!(
                    "{modules} modules + {quiet}-module quiet zones in {size_mm} mm at {} dpi gives {module_mm:.3} mm modules; at least {MIN_MODULE_MM} mm is needed (make it larger)",
                    self.dpi
                )));
            }
        }
        Ok(())
    }
}

/// Whole dots per module so that `modules` plus a quiet zone on each side
/// fit `size_dots`.
pub fn module_dots(size_dots: u32, modules: usize, quiet: usize) -> u32 {
    size_dots / (modules + 2 * quiet) as u32
}

/// Refuses unknown `{placeholders}` and unbalanced braces.
pub fn check_placeholders(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{text:?}: '{{' without '}}'"))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}}; known: {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
            ));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("{text:?}: '}}' without '{{'"));
    }
    Ok(())
}
