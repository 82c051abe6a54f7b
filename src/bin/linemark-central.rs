//! The `linemark-central` binary: parse the command line, set up logging,
//! run, and map the outcome to an exit code (0 ok, 1 runtime failure, 2 bad
//! input).

use std::process::ExitCode;

use clap::Parser;
use linemark::central::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    linemark::cli::init_tracing(cli.log_format, "info");
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linemark-central: {e}");
            ExitCode::from(e.code)
        }
    }
}
