//! `linemark report shift [--date D] [--shift NAME] --format csv|html|pdf
//! [--out FILE]`: a shift's report (default: the last finished shift).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{load_config, CliError};
use crate::journal;
use crate::report::{self, render};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// A shift's report: counts, first-pass yield, failures by step and
    /// station, reprints, mismatches, printer faults, stock, sync lag.
    Shift {
        /// Local date the shift starts on (YYYY-MM-DD).
        #[arg(long)]
        date: Option<String>,
        /// Shift name from the config (`[[shift]] name`).
        #[arg(long)]
        shift: Option<String>,
        /// csv (one row per unit), html (one self-contained page) or pdf.
        #[arg(long, value_enum)]
        format: Format,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Csv,
    Html,
    Pdf,
}

pub fn run(config: &Path, cmd: ReportCommand) -> Result<(), CliError> {
    let ReportCommand::Shift {
        date,
        shift,
        format,
        out,
    } = cmd;
    let cfg = load_config(config)?;
    let date = date
        .map(|d| {
            d.parse::<jiff::civil::Date>()
                .map_err(|_| CliError::input(format!("--date {d:?}: expected YYYY-MM-DD")))
        })
        .transpose()?;
    let w = report::resolve_window(&cfg, date, shift.as_deref(), jiff::Timestamp::now())
        .map_err(CliError::input)?;
    let conn = journal::open_read_only(&cfg.journal_path())?;
    let r = report::for_config(&cfg, &conn, &w)?;
    let bytes = match format {
        Format::Csv => render::csv(&r).map_err(CliError::runtime)?,
        Format::Html => render::html(&r, None).into_bytes(),
        Format::Pdf => render::pdf(&r).map_err(CliError::runtime)?,
    };
    match out {
        Some(p) => {
            std::fs::write(&p, &bytes)
                .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", p.display())))?;
            eprintln!(
                "shift {} on {} ({} to {}): {} units, written to {}",
                r.shift,
                r.date,
                r.start,
                r.end,
                r.units.len(),
                p.display()
            );
        }
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| CliError::runtime(format!("cannot write the report: {e}")))?,
    }
    Ok(())
}
