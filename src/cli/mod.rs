//! The command line (SPEC section 8): one file per subcommand, clap derive
//! with help from doc comments.
//!
//! Owns: turning arguments into calls, printing results, and classifying
//! every failure as bad input (exit 2) or a runtime failure (exit 1) with a
//! one-line reason. Must not: hold business logic; it calls the library.

mod backup;
mod blocks;
mod check_config;
mod demo;
mod export;
mod journal;
mod label;
mod plc;
mod report;
mod restore;
mod run;
mod sync;
mod token;
mod unit;

use std::fmt;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// linemark: unit IDs, station capture, GS1 Digital Link labels and a
/// hash-chained journal for one production line.
#[derive(Debug, Parser)]
#[command(name = "linemark", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        default_value = "config/linemark.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,
    /// Log format on stderr: text or json.
    #[arg(long, global = true, default_value = "text", value_name = "FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: serve the configured stations until SIGTERM/SIGINT.
    Run,
    /// Run a whole simulated shift on the built-in default config.
    Demo {
        /// Units to build.
        #[arg(long, default_value_t = 200)]
        units: u64,
        /// Folder for the demo's config, journal and labels.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
    },
    /// Exports: what a buyer receives per shipment.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Labels: preview a template.
    #[command(subcommand)]
    Label(label::LabelCommand),
    /// Validate the configuration file and print a summary.
    CheckConfig,
    /// Block grants: import, list, make a development grant.
    #[command(subcommand)]
    Blocks(blocks::BlocksCommand),
    /// Units: show one unit's state and history.
    #[command(subcommand)]
    Unit(unit::UnitCommand),
    /// The journal: verify the hash chain and invariants.
    #[command(subcommand)]
    Journal(journal::JournalCommand),
    /// Online backup of the journal to DEST (a new file, or a folder).
    Backup {
        /// Destination file, or an existing folder to put a dated file in.
        dest: PathBuf,
    },
    /// Bearer tokens for the web page's actions.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Reports for quality engineers.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// The PLC gateway: OPC UA users and trusted client certificates.
    #[command(subcommand)]
    Plc(plc::PlcCommand),
    /// Send the journal to the central store now (what the systemd timer runs).
    Sync {
        /// Clear a halt (after a 409 from the store) first.
        #[arg(long)]
        resume: bool,
    },
    /// Put a backup in place of the journal (linemark must be stopped).
    Restore {
        /// The backup file (from `linemark backup`).
        backup: PathBuf,
    },
}

/// A failed command: its exit code and a one-line reason.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    /// Bad input or usage: exit 2.
    pub fn input(message: impl fmt::Display) -> Self {
        Self {
            code: 2,
            message: one_line(message),
        }
    }

    /// A runtime failure: exit 1.
    pub fn runtime(message: impl fmt::Display) -> Self {
        Self {
            code: 1,
            message: one_line(message),
        }
    }
}

fn one_line(m: impl fmt::Display) -> String {
    m.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::journal::JournalError> for CliError {
    fn from(e: crate::journal::JournalError) -> Self {
        CliError::runtime(e)
    }
}

/// Loads the config, reporting a problem as bad input.
pub fn load_config(path: &std::path::Path) -> Result<Config, CliError> {
    Config::load(path).map_err(CliError::input)
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style.progress_chars("=> "));
    pb.set_message(what.to_string());
    pb
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Run => run::run(&cli.config),
        Command::Demo { units, out } => demo::run(units, &out),
        Command::Label(c) => label::run(&cli.config, c),
        Command::Export(c) => export::run(&cli.config, c),
        Command::CheckConfig => check_config::run(&cli.config),
        Command::Blocks(c) => blocks::run(&cli.config, c),
        Command::Unit(c) => unit::run(&cli.config, c),
        Command::Journal(c) => journal::run(&cli.config, c),
        Command::Backup { dest } => backup::run(&cli.config, &dest),
        Command::Restore { backup } => restore::run(&cli.config, &backup),
        Command::Sync { resume } => sync::run(&cli.config, resume),
        Command::Report(c) => report::run(&cli.config, c),
        Command::Token(c) => token::run(c),
        Command::Plc(c) => plc::run(&cli.config, c),
    }
}

/// Logs to stderr at `LINEMARK_LOG` (default `default_level`): plain text
/// without colours when stderr is not a terminal, or JSON lines (both
/// binaries use it).
pub fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LINEMARK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Plain text without colours when stderr is not a terminal (journald,
    // files); journald adds its own timestamps.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.without_time().with_target(false).init(),
    }
}

/// Parses the command line of either binary. Help and version go to
/// stdout (exit 0); a usage error to stderr (exit 2).
pub fn parse_args<C: clap::Parser>() -> Result<C, std::process::ExitCode> {
    C::try_parse().map_err(|e| {
        let _ = e.print();
        std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
}
