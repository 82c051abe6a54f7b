//! `linemark label preview`: render a template for a product to a file.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{load_config, CliError};
use crate::config::load_template;
use crate::gs1::Gtin;
use crate::ids::{IdCodec, UnitId};
use crate::label::render::{self, Format};
use crate::label::{self, LabelData};

#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Render a label to PNG, PDF or ZPL (by the output file's extension).
    Preview {
        /// Template name (a file in the templates folder, without .toml).
        #[arg(long)]
        template: String,
        /// Product key from the config.
        #[arg(long)]
        product: String,
        /// Unit ID to print (default: a sample ID of this line's namespace).
        #[arg(long)]
        unit: Option<String>,
        /// Lot to print.
        #[arg(long)]
        lot: Option<String>,
        /// Output file: .png, .pdf or .zpl.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(config: &Path, cmd: LabelCommand) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let LabelCommand::Preview {
        template,
        product,
        unit,
        lot,
        out,
    } = cmd;
    let format = Format::from_path(&out).ok_or_else(|| {
        CliError::input(format!(
            "{}: the output must end in .png, .pdf or .zpl",
            out.display()
        ))
    })?;
    let p = cfg
        .product(&product)
        .ok_or_else(|| CliError::input(format!("no product {product:?} in {}", cfg.origin)))?;
    let t = load_template(&cfg.templates_dir, &template, &cfg.resolver)
        .map_err(|e| CliError::input(e.to_string()))?;
    let unit = match unit {
        Some(u) => UnitId::parse(&u).map_err(CliError::input)?.to_string(),
        None => IdCodec::new(&cfg.ids.namespace_key).id_of(0).to_string(),
    };
    if let Some(l) = &lot {
        crate::gs1::ai::check_value("10", l).map_err(|e| CliError::input(format!("--lot: {e}")))?;
    }
    let data = LabelData {
        resolver: cfg.resolver.clone(),
        gtin: Gtin::parse(p.gtin.as_str()).map_err(CliError::input)?,
        level: p.level,
        lot,
        unit,
        product: p.key.clone(),
        line: cfg.line_id.clone(),
        date: jiff::Zoned::now()
            .with_time_zone(cfg.timezone.clone())
            .date()
            .to_string(),
    };
    let layout = label::layout(&t, &data).map_err(CliError::runtime)?;
    let bytes = render::render(&layout, format).map_err(CliError::runtime)?;
    std::fs::write(&out, bytes)
        .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", out.display())))?;
    println!(
        "{} ({} x {} mm, {} dpi) written to {}\nQR: {}",
        t.name,
        t.width_mm,
        t.height_mm,
        t.dpi,
        out.display(),
        data.uri()
    );
    Ok(())
}
