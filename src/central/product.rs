//! `linemark-central product import GTIN DIR` and `product check GTIN`:
//! a manufacturer's model data from files, and what is still missing.
//!
//! Owns: reading `DIR/{Aspect}.json` (every file checked before any is
//! stored: one bad file stores nothing) and printing the report. Must not:
//! check documents itself (that is `aspects`) or write SQL.

use std::path::Path;

use clap::Subcommand;
use serde_json::Value;

use super::aspects::{self, Aspect, CheckError};
use super::store::{Store, TokenOwner};
use super::token::Role;
use crate::cli::CliError;

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// Store DIR/{Aspect}.json (any of the seven) as new versions of the
    /// product's Battery Pass data.
    Import {
        gtin: String,
        dir: std::path::PathBuf,
    },
    /// Which required attributes the product's data still lacks.
    Check {
        gtin: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `product` command against `store` for the configured `gtins`.
pub async fn run(store: &Store, gtins: &[String], cmd: ProductCommand) -> Result<(), CliError> {
    match cmd {
        ProductCommand::Import { gtin, dir } => {
            known(gtins, &gtin)?;
            import(store, &gtin, &dir).await
        }
        ProductCommand::Check { gtin, json } => {
            known(gtins, &gtin)?;
            let data = store.aspects(&gtin).await.map_err(CliError::runtime)?;
            let report =
                super::content::completeness(&gtin, |a| data.get(&a).map(|v| (v.version, &v.doc)))
                    .map_err(CliError::runtime)?;
            if json {
                println!("{report:#}");
            } else {
                print!("{}", text_report(&report));
            }
            Ok(())
        }
    }
}

fn known(gtins: &[String], gtin: &str) -> Result<(), CliError> {
    if gtins.iter().any(|g| g == gtin) {
        Ok(())
    } else {
        Err(CliError::input(format!(
            "GTIN {gtin} is not a product in the config; add a [[product]] with gtin = \"{gtin}\""
        )))
    }
}

async fn import(store: &Store, gtin: &str, dir: &Path) -> Result<(), CliError> {
    let mut docs: Vec<(Aspect, Value)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for a in Aspect::ALL {
        let path = dir.join(format!("{}.json", a.name()));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CliError::input(format!("{}: {e}", path.display()))),
        };
        let doc: Value = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{}: not JSON: {e}", path.display()));
                continue;
            }
        };
        match aspects::check_partial(a, &doc) {
            Ok(()) => docs.push((a, doc)),
            Err(CheckError::Invalid { problems: p }) => {
                for q in p {
                    let at = if q.path.is_empty() {
                        "/".into()
                    } else {
                        q.path
                    };
                    problems.push(format!("{}: {at}: {}", path.display(), q.message));
                }
            }
            Err(e) => return Err(CliError::runtime(e)),
        }
    }
    if !problems.is_empty() {
        return Err(CliError::input(format!(
            "nothing was stored; fix these first: {}",
            problems.join("; ")
        )));
    }
    if docs.is_empty() {
        let names: Vec<String> = Aspect::ALL
            .iter()
            .map(|a| format!("{}.json", a.name()))
            .collect();
        return Err(CliError::input(format!(
            "{} holds none of {}",
            dir.display(),
            names.join(", ")
        )));
    }
    let owner = TokenOwner {
        role: Role::Admin,
        name: "cli:product-import".into(),
        line_id: None,
    };
    for (a, doc) in docs {
        let v = store
            .put_aspect(gtin, a, &doc, &owner)
            .await
            .map_err(CliError::runtime)?;
        println!("{gtin} {}: version {v}", a.name());
    }
    Ok(())
}

/// The report as lines a person reads.
fn text_report(report: &Value) -> String {
    let mut out = String::new();
    let gtin = report["gtin"].as_str().unwrap_or_default();
    for a in Aspect::ALL {
        let r = &report["aspects"][a.name()];
        let version = r["version"]
            .as_i64()
            .map_or("no data".to_string(), |v| format!("version {v}"));
        let missing: Vec<&str> = r["missing"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if missing.is_empty() {
            out += &format!("{:<28} {version:<11} complete\n", a.name());
        } else {
            out += &format!(
                "{:<28} {version:<11} missing: {}\n",
                a.name(),
                missing.join(", ")
            );
        }
    }
    if report["complete"].as_bool() == Some(true) {
        out += &format!("{gtin}: every required attribute is supplied\n");
    } else {
        out += &format!(
            "{gtin}: supply the missing attributes before shipping (linemark-central product import {gtin} DIR)\n"
        );
    }
    out
}
