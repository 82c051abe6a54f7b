//! `linemark plc passwd --name N`: the `[[plc.opcua.user]]` lines for an
//! OPC UA user, its password read from stdin and kept only as an argon2id
//! hash. `linemark plc trust CERT` / `plc rejected`: the client
//! certificates the OPC UA server accepts.

use std::io::BufRead;

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::CliError;

#[derive(Debug, Subcommand)]
pub enum PlcCommand {
    /// Hash a password read from stdin (one line) for [[plc.opcua.user]].
    Passwd {
        /// The user name the PLC signs in with.
        #[arg(long)]
        name: String,
    },
    /// Trust a PLC's certificate (DER or PEM) for the encrypted endpoint.
    Trust {
        /// The certificate file, exported from the PLC or taken from
        /// data_dir/opcua/rejected/ after a refused first connection.
        cert: PathBuf,
    },
    /// List the certificates refused so far (candidates for `plc trust`).
    Rejected,
}

/// Shortest password accepted.
const MIN_PASSWORD: usize = 8;

pub fn run(config: &Path, cmd: PlcCommand) -> Result<(), CliError> {
    match cmd {
        PlcCommand::Passwd { name } => passwd(&name),
        PlcCommand::Trust { cert } => {
            let cfg = super::load_config(config)?;
            let t =
                crate::plc::opcua::trust::trust(&cfg.data_dir, &cert).map_err(CliError::input)?;
            println!("trusted {}", t.subject);
            println!("  sha1 thumbprint {}", t.thumbprint);
            println!("  stored as {}", t.path.display());
            if t.was_rejected {
                println!("  (removed from rejected/, where its first connection put it)");
            }
            println!("the PLC can connect now; no restart is needed");
            Ok(())
        }
        PlcCommand::Rejected => {
            let cfg = super::load_config(config)?;
            let files = crate::plc::opcua::trust::rejected(&cfg.data_dir);
            if files.is_empty() {
                println!("no refused certificates");
            }
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
    }
}

fn passwd(name: &str) -> Result<(), CliError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(CliError::input(format!(
            "--name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        )));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::input(format!("reading the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < MIN_PASSWORD {
        return Err(CliError::input(format!(
            "the password on stdin is shorter than {MIN_PASSWORD} characters (pipe it in: printf '%s\\n' \"$PASSWORD\" | linemark plc passwd --name {name})"
        )));
    }
    let hash = crate::plc::opcua::auth::hash_password(password).map_err(CliError::runtime)?;
    println!("add to the config and restart linemark:");
    println!("[[plc.opcua.user]]");
    println!("name = \"{name}\"");
    println!("password_hash = \"{hash}\"");
    Ok(())
}
