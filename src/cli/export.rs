//! `linemark export shipment ID`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{load_config, progress_bar, CliError};
use crate::export::{self, ExportError};
use crate::journal;

/// Export formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ShipmentFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// What the buyer needs per unit of a shipment, in shipping order.
    Shipment {
        /// The shipment id stations sent with SHIP.
        shipment: String,
        /// csv (a header row, one row per unit) or json (one document).
        #[arg(long, value_enum, default_value = "csv")]
        format: ShipmentFormat,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(config: &Path, cmd: ExportCommand) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let ExportCommand::Shipment {
        shipment,
        format,
        out,
    } = cmd;
    let conn = journal::open_read_only(&cfg.journal_path())?;
    let total = export::count(&conn, &shipment).map_err(CliError::runtime)?;
    if total == 0 {
        return Err(CliError::input(format!(
            "no unit was shipped under {shipment:?}"
        )));
    }
    let pb = progress_bar(total, "exporting");
    let progress = |n| pb.set_position(n);
    let writer: Box<dyn std::io::Write> = match &out {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", p.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let r = match format {
        ShipmentFormat::Csv => export::csv(&conn, &cfg.resolver, &shipment, writer, progress),
        ShipmentFormat::Json => export::json(
            &conn,
            &cfg.resolver,
            &shipment,
            &cfg.line_id,
            writer,
            progress,
        ),
    };
    pb.finish_and_clear();
    let n = r.map_err(|e| match e {
        ExportError::Empty(_) => CliError::input(e),
        other => CliError::runtime(other),
    })?;
    if let Some(p) = out {
        eprintln!(
            "{n} units of shipment {shipment} written to {}",
            p.display()
        );
    }
    Ok(())
}
