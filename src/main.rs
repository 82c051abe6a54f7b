//! The `linemark` binary: parse the command line, set up logging, run, and
//! map the outcome to an exit code (0 ok, 1 runtime failure, 2 bad input).

use std::process::ExitCode;

use linemark::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match cli::parse_args::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The demo prints a progress bar and a summary; only problems are logged.
    let default_level = if matches!(cli.command, cli::Command::Demo { .. }) {
        "warn"
    } else {
        // The OPC UA stack narrates every connection at info; its warnings
        // (an untrusted certificate, a failed handshake) still show.
        "info,opcua_server=warn,opcua_core=warn"
    };
    cli::init_tracing(cli.log_format, default_level);
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linemark: {e}");
            ExitCode::from(e.code)
        }
    }
}
