//! Labels: one layout model from a template and a unit's data, rendered by
//! three backends (`render::png`, `render::pdf`, `render::zpl`).
//!
//! Owns: templates and their checks, what goes into the 2D codes (only the
//! Digital Link URI in a QR, only the element string in a DataMatrix),
//! placeholder text, and the layout in whole printer dots. Pure: no IO, no
//! tokio; renderers return bytes.

pub mod bitmap;
pub mod codes;
pub mod render;
pub mod scan;
pub mod template;

use crate::gs1::{self, Gtin, Identity, Level};
pub use template::{Align, Ec, Element, Template};

/// Why a template or label could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("template {file}{}: {problem}", element.as_ref().map(|e| format!(", {e}")).unwrap_or_default())]
    Template {
        file: String,
        element: Option<String>,
        problem: String,
    },
    #[error("cannot encode the label's code: {0}")]
    Encode(String),
    #[error("cannot write the label: {0}")]
    Output(String),
}

/// What a label says about one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelData {
    pub resolver: String,
    pub gtin: Gtin,
    pub level: Level,
    pub lot: Option<String>,
    pub unit: String,
    pub product: String,
    pub line: String,
    /// Manufacturing date, `YYYY-MM-DD` (line time zone).
    pub date: String,
}

impl LabelData {
    /// The longest data a code on this line can carry: a 20-character lot
    /// that percent-encodes to 60 characters, at item level.
    pub fn worst_case(resolver: &str) -> LabelData {
        LabelData {
            resolver: resolver.to_string(),
            gtin: Gtin::parse("09506000134352").unwrap_or_else(|_| unreachable!("valid GTIN")),
            level: Level::Item,
            lot: Some("////////////////////".into()),
            unit: "DDN4WV4T955C0".into(),
            product: String::new(),
            line: String::new(),
            date: String::new(),
        }
    }

    pub fn identity(&self) -> Identity {
        Identity::for_unit(
            self.gtin.clone(),
            self.level,
            self.lot.as_deref(),
            &self.unit,
        )
    }

    /// The Digital Link URI: the only content of the QR code.
    pub fn uri(&self) -> String {
        gs1::build_uri(&self.resolver, &self.identity())
    }

    /// The GS1 element string: the only content of the DataMatrix.
    pub fn element_string(&self) -> String {
        gs1::to_element_string(&self.identity())
    }

    pub fn hri(&self) -> String {
        gs1::hri(&self.identity())
    }

    /// Replaces `{placeholders}` (checked when the template was loaded).
    pub fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            match &after[..close] {
                "unit" => out.push_str(&self.unit),
                "gtin" => out.push_str(self.gtin.as_str()),
                "lot" => out.push_str(self.lot.as_deref().unwrap_or("")),
                "hri" => out.push_str(&self.hri()),
                "product" => out.push_str(&self.product),
                "line" => out.push_str(&self.line),
                "date" => out.push_str(&self.date),
                other => {
                    out.push('{');
                    out.push_str(other);
                    out.push('}');
                }
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// Which symbol a code item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    Qr,
    DataMatrix,
}

/// One thing on the label, in printer dots from the top-left corner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A 2D symbol; (x, y) is its first module, the quiet zone is around it.
    Code {
        kind: CodeKind,
        x: u32,
        y: u32,
        module: u32,
        matrix: codes::Matrix,
        /// What the symbol encodes.
        data: String,
    },
    /// A line of text; `height` is the em size, aligned in `width`.
    Text {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        align: Align,
        text: String,
    },
    /// A filled rectangle (lines and box edges).
    Rect { x: u32, y: u32, w: u32, h: u32 },
}

/// A label laid out for one printer resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub dpi: u32,
    pub width_mm: f64,
    pub height_mm: f64,
    pub items: Vec<Item>,
}

/// Lays out a template for one unit.
pub fn layout(t: &Template, d: &LabelData) -> Result<Layout, LabelError> {
    let mut items = Vec::with_capacity(t.elements.len() + 4);
    for e in &t.elements {
        match e {
            Element::Qr {
                x_mm,
                y_mm,
                size_mm,
                ec,
            } => {
                let data = d.uri();
                let m = codes::qr(&data, *ec)?;
                items.push(code(
                    t,
                    CodeKind::Qr,
                    *x_mm,
                    *y_mm,
                    *size_mm,
                    m,
                    data,
                    template::QR_QUIET,
                )?);
            }
            Element::Datamatrix {
                x_mm,
                y_mm,
                size_mm,
            } => {
                let data = d.element_string();
                let m = codes::datamatrix(&data)?;
                items.push(code(
                    t,
                    CodeKind::DataMatrix,
                    *x_mm,
                    *y_mm,
                    *size_mm,
                    m,
                    data,
                    template::DM_QUIET,
                )?);
            }
            Element::Text {
                x_mm,
                y_mm,
                height_mm,
                text,
                align,
                width_mm,
            } => items.push(Item::Text {
                x: t.dots(*x_mm),
                y: t.dots(*y_mm),
                width: t.dots(width_mm.unwrap_or(t.width_mm - x_mm)),
                height: t.dots(*height_mm).max(1),
                align: *align,
                text: d.fill(text),
            }),
            Element::Line {
                x1_mm,
                y1_mm,
                x2_mm,
                y2_mm,
                thickness_mm,
            } => {
                let th = t.dots(*thickness_mm).max(1);
                let (x, y) = (t.dots(x1_mm.min(*x2_mm)), t.dots(y1_mm.min(*y2_mm)));
                let (w, h) = (
                    t.dots((x2_mm - x1_mm).abs()).max(th),
                    t.dots((y2_mm - y1_mm).abs()).max(th),
                );
                items.push(Item::Rect { x, y, w, h });
            }
            Element::Box {
                x_mm,
                y_mm,
                width_mm,
                height_mm,
                thickness_mm,
            } => {
                let th = t.dots(*thickness_mm).max(1);
                let (x, y, w, h) = (
                    t.dots(*x_mm),
                    t.dots(*y_mm),
                    t.dots(*width_mm),
                    t.dots(*height_mm),
                );
                items.push(Item::Rect { x, y, w, h: th });
                items.push(Item::Rect {
                    x,
                    y: y + h - th,
                    w,
                    h: th,
                });
                items.push(Item::Rect { x, y, w: th, h });
                items.push(Item::Rect {
                    x: x + w - th,
                    y,
                    w: th,
                    h,
                });
            }
        }
    }
    Ok(Layout {
        width: t.width_dots(),
        height: t.height_dots(),
        dpi: t.dpi,
        width_mm: t.width_mm,
        height_mm: t.height_mm,
        items,
    })
}

#[allow(clippy::too_many_arguments)]
fn code(
    t: &Template,
    kind: CodeKind,
    x_mm: f64,
    y_mm: f64,
    size_mm: f64,
    m: codes::Matrix,
    data: String,
    quiet: usize,
) -> Result<Item, LabelError> {
    let module = template::module_dots(t.dots(size_mm), m.width.max(m.height), quiet);
    if module == 0 {
        return Err(LabelError::Encode(format!(
            "{} modules do not fit {size_mm} mm at {} dpi",
            m.width, t.dpi
        )));
    }
    let q = quiet as u32 * module;
    Ok(Item::Code {
        kind,
        x: t.dots(x_mm) + q,
        y: t.dots(y_mm) + q,
        module,
        matrix: m,
        data,
    })
}

#[cfg(test)]
mod tests;
