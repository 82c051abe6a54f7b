//! `linemark token new --role R --name N`: a bearer token for the web
//! page's actions, printed once, with the config lines that admit it (the
//! config keeps only its sha256).

use clap::Subcommand;

use super::CliError;
use crate::web::auth;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a new token; it is shown once and stored nowhere.
    New {
        /// operator (reprint), quality (also scrap) or admin (also import blocks).
        #[arg(long)]
        role: String,
        /// Who holds it; journaled with every action it is used for.
        #[arg(long)]
        name: String,
    },
}

pub fn run(cmd: TokenCommand) -> Result<(), CliError> {
    let TokenCommand::New { role, name } = cmd;
    if !["operator", "quality", "admin"].contains(&role.as_str()) {
        return Err(CliError::input(format!(
            "--role {role:?}: expected operator, quality or admin"
        )));
    }
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(CliError::input(format!(
            "--name {name:?}: use 1 to 64 letters, digits, '-', '_', '.' or '@'"
        )));
    }
    let (token, hash) = auth::new_token()
        .map_err(|e| CliError::runtime(format!("no randomness from the OS: {e}")))?;
    println!("token (shown once; give it to {name} and keep no copy):");
    println!("  {token}");
    println!();
    println!("add to the config and restart linemark:");
    println!("[[web.token]]");
    println!("role = \"{role}\"");
    println!("name = \"{name}\"");
    println!("sha256 = \"{hash}\"");
    Ok(())
}
