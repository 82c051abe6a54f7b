//! The `linemark-central` binary: parse the command line, set up logging,
//! run, and map the outcome to an exit code (0 ok, 1 runtime failure, 2 bad
//! input).

use std::process::ExitCode;

use linemark::central::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match linemark::cli::parse_args::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
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
