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
    /// The journal as a GS1 EPCIS 2.0 document (JSON-LD).
    Epcis {
        /// First event: a seq number or an RFC 3339 time (default: the first).
        #[arg(long)]
        from: Option<String>,
        /// Last event: a seq number or an RFC 3339 time (default: the last).
        #[arg(long)]
        to: Option<String>,
        /// Output file, e.g. events.jsonld.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(config: &Path, cmd: ExportCommand) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let (shipment, format, out) = match cmd {
        ExportCommand::Shipment {
            shipment,
            format,
            out,
        } => (shipment, format, out),
        ExportCommand::Epcis { from, to, out } => {
            return epcis(&cfg, from.as_deref(), to.as_deref(), &out)
        }
    };
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

fn epcis(
    cfg: &crate::config::Config,
    from: Option<&str>,
    to: Option<&str>,
    out: &Path,
) -> Result<(), CliError> {
    let conn = journal::open_read_only(&cfg.journal_path())?;
    let range = crate::epcis::Range::resolve(&conn, from, to).map_err(CliError::input)?;
    let last = journal::query::last_seq(&conn)?;
    let pb = progress_bar(last.max(0) as u64, "exporting EPCIS");
    let file = std::fs::File::create(out)
        .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", out.display())))?;
    let n = crate::epcis::export(&conn, cfg, range, file, |seq| {
        pb.set_position(seq.max(0) as u64)
    })
    .map_err(CliError::runtime)?;
    pb.finish_and_clear();
    eprintln!("{n} EPCIS events written to {}", out.display());
    Ok(())
}
