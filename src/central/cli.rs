//! `linemark-central`'s command line (SPEC section 11): `migrate`, `run`,
//! `line add`, `token new`, `grant`, `product import|check`; a global `--config` (default
//! `config/central.toml`); exit 0, 1 on a runtime failure, 2 on bad input.
//!
//! Owns: parsing arguments and running each command against the store.
//! Must not: hold rules of its own (they are in `ingest`, `blocks`,
//! `projection`) or SQL (that is `store`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use super::blocks::Issuer;
use super::config::CentralConfig;
use super::http::{self, App};
use super::store::{Store, StoreError};
use super::token::{self, Role};
use crate::cli::CliError;

/// linemark-central: the company's block authority and passport store.
#[derive(Debug, Parser)]
#[command(name = "linemark-central", version)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, default_value = "config/central.toml")]
    pub config: PathBuf,
    /// Log format on stderr: text or json.
    #[arg(long, global = true, default_value = "text", value_name = "FORMAT")]
    pub log_format: crate::cli::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the database schema (idempotent).
    Migrate,
    /// Serve HTTP until SIGTERM/SIGINT.
    Run,
    /// Lines: `line add LINE_ID` registers one and prints its sync token.
    Line {
        #[command(subcommand)]
        command: LineCommand,
    },
    /// Tokens: `token new --role ROLE --name NAME` prints a new token.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit log: `audit verify` recomputes its hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Battery Pass product data: `product import GTIN DIR`, `product check GTIN`.
    Product {
        #[command(subcommand)]
        command: super::product::ProductCommand,
    },
    /// Issue a block grant for a line without a network.
    Grant {
        #[arg(long)]
        line: String,
        #[arg(long)]
        count: u64,
        /// Write the grant here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LineCommand {
    /// Register a line; its sync token is printed once, alone on the last line.
    Add { line_id: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit log's hash chain; exit 1 naming the first break.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// A token for a person or system (roles: admin, manufacturer,
    /// authority, service, recycler).
    New {
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
    },
}

fn runtime(e: StoreError) -> CliError {
    match e {
        e @ (StoreError::UnknownLine(_)
        | StoreError::LineExists(_)
        | StoreError::Count(_)
        | StoreError::SchemaTooNew { .. }
        | StoreError::SchemaTooOld { .. }
        | StoreError::NoAllocator) => CliError::input(e),
        e => CliError::runtime(e),
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let config = CentralConfig::load(&cli.config).map_err(CliError::input)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let store = Store::connect(&config.database_url, config.pool_size)
            .map_err(|e| CliError::input(format!("{}: database.url: {e}", config.origin)))?;
        match cli.command {
            Command::Migrate => {
                let applied = store.migrate(config.issuer.first_index).await.map_err(runtime)?;
                match applied.as_slice() {
                    [] => println!("the schema is up to date"),
                    v => println!("applied schema versions {v:?}"),
                }
                Ok(())
            }
            Command::Run => serve(store, config).await,
            Command::Product { command } => {
                store.check_schema().await.map_err(runtime)?;
                let gtins: Vec<String> = config
                    .products
                    .iter()
                    .map(|p| p.gtin.as_str().to_string())
                    .collect();
                super::product::run(&store, &gtins, command).await
            }
            Command::Line {
                command: LineCommand::Add { line_id },
            } => {
                check_line_id(&line_id)?;
                let (t, hash) = new_token()?;
                store.add_line(&line_id, &hash).await.map_err(runtime)?;
                eprintln!("line {line_id} registered; its sync token (shown once; put it in the line's upstream.token_file):");
                println!("{t}");
                Ok(())
            }
            Command::Token {
                command: TokenCommand::New { role, name },
            } => {
                let role = Role::parse(&role).filter(|r| *r != Role::Line).ok_or_else(|| {
                    CliError::input(format!(
                        "--role {role:?}: must be admin, manufacturer, authority, service or recycler (a line's token comes from line add)"
                    ))
                })?;
                if name.trim().is_empty() {
                    return Err(CliError::input("--name must not be empty"));
                }
                let (t, hash) = new_token()?;
                store.add_token(&hash, role, &name).await.map_err(runtime)?;
                eprintln!("token for {name} ({}) (shown once):", role.as_str());
                println!("{t}");
                Ok(())
            }
            Command::Audit {
                command: AuditCommand::Verify,
            } => {
                let entries = store.audit_entries(None).await.map_err(runtime)?;
                let (head_seq, head_hash) = store.audit_head().await.map_err(runtime)?;
                if let Some(problem) = super::audit::first_break(&entries) {
                    return Err(CliError::runtime(format!("the audit log is broken: {problem}")));
                }
                let last = entries.last().map(|(e, h)| (e.seq, h.clone())).unwrap_or((0, crate::journal::event::GENESIS_HASH.to_string()));
                if last != (head_seq, head_hash) {
                    return Err(CliError::runtime(format!(
                        "the audit log is broken: it ends at entry {} but its head says {head_seq}: entries were removed",
                        last.0
                    )));
                }
                println!("audit log: {} entries, hash chain intact", entries.len());
                Ok(())
            }
            Command::Grant { line, count, out } => {
                let iss = &config.issuer;
                let issuer = Issuer {
                    key: &iss.key,
                    namespace: &iss.namespace,
                    key_id: &iss.key_id,
                    name: &iss.name,
                };
                let g = store
                    .grant_block(&issuer, iss.first_index, iss.max_block, &line, count, "cli:grant")
                    .await
                    .map_err(runtime)?;
                let json = serde_json::to_string_pretty(&g)
                    .map_err(|e| CliError::runtime(format!("cannot write the grant: {e}")))?;
                match out {
                    Some(path) => {
                        std::fs::write(&path, json + "\n").map_err(|e| {
                            CliError::runtime(format!("cannot write {}: {e}", path.display()))
                        })?;
                        eprintln!(
                            "block {} [{}, {}) for line {line} written to {}",
                            g.block_id,
                            g.start,
                            g.end(),
                            path.display()
                        );
                    }
                    None => println!("{json}"),
                }
                Ok(())
            }
        }
    })
}

fn new_token() -> Result<(String, String), CliError> {
    token::generate().map_err(|e| CliError::runtime(format!("no randomness for a token: {e}")))
}

/// A line ID as the line's config allows it.
fn check_line_id(id: &str) -> Result<(), CliError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CliError::input(format!(
            "line ID {id:?} must be 1 to 64 characters of A-Z a-z 0-9 - _ ."
        )))
    }
}

async fn serve(store: Store, config: CentralConfig) -> Result<(), CliError> {
    store.check_schema().await.map_err(runtime)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            CliError::runtime(format!(
                "cannot listen on {} (http.listen): {e}",
                config.listen
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::runtime(e.to_string()))?;
    let app = Arc::new(App {
        store,
        config,
        metrics: http::Metrics::default(),
        identities: http::IdentityCache::default(),
    });
    let shutdown = CancellationToken::new();
    let notifier = crate::daemon::notify::Notifier::from_env();
    tracing::info!(%addr, "linemark-central serving");
    notifier.send(&format!("READY=1\nSTATUS=serving on {addr}"));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        stop.cancel();
    });
    crate::web::server::serve(
        listener,
        http::router(app),
        crate::web::server::Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        },
        shutdown,
    )
    .await;
    notifier.send("STOPPING=1");
    tracing::info!("linemark-central stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
