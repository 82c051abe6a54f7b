//! `linemark unit show ID`.

use std::path::Path;

use clap::Subcommand;

use super::{load_config, CliError};
use crate::gs1::{self, Gtin, Identity, Level};
use crate::ids::UnitId;
use crate::journal::{self, query::UnitView};

#[derive(Debug, Subcommand)]
pub enum UnitCommand {
    /// Show a unit's current state and its whole event history.
    Show {
        /// The unit ID (13 characters; lower case and O/I/L accepted).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Path, cmd: UnitCommand) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let UnitCommand::Show { id, json } = cmd;
    let unit = UnitId::parse(&id).map_err(CliError::input)?;
    let conn = journal::open_read_only(&cfg.journal_path())?;
    let codec = crate::ids::IdCodec::new(&cfg.ids.namespace_key);
    let view = journal::query::unit(&conn, &codec, unit)?.ok_or_else(|| {
        CliError::input(format!(
            "unit {unit} is not in this line's journal ({})",
            cfg.journal_path().display()
        ))
    })?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&view).map_err(CliError::runtime)?
        );
        return Ok(());
    }
    print_view(&view, &cfg.resolver);
    Ok(())
}

fn print_view(v: &UnitView, resolver: &str) {
    println!("unit      {}", v.unit);
    println!("state     {}", v.state);
    println!(
        "product   {} (GTIN {}, {} level)",
        v.product, v.gtin, v.level
    );
    if let Some(lot) = &v.lot {
        println!("lot       {lot}");
    }
    let level = Level::parse(&v.level).unwrap_or(Level::Item);
    if let Ok(gtin) = Gtin::parse(&v.gtin) {
        let id = Identity::for_unit(gtin, level, v.lot.as_deref(), &v.unit);
        println!("uri       {}", gs1::build_uri(resolver, &id));
        println!("hri       {}", gs1::hri(&id));
    }
    println!(
        "allocated {} by {}",
        v.allocated_at,
        v.allocated_by.as_deref().unwrap_or("-")
    );
    if let Some(f) = &v.final_at {
        println!("final     {f}");
    }
    if let Some(r) = &v.scrap_reason {
        println!("scrapped  {r}");
    }
    if let Some(s) = &v.shipment {
        println!("shipment  {s}");
    }
    for (field, value) in &v.bindings {
        println!("{field:<9} {value}");
    }
    for (part, lot) in &v.component_lots {
        println!("lot.{part:<5} {lot}");
    }
    for (child, linked, unlinked) in &v.children {
        match unlinked {
            Some(u) => println!("child     {child} (linked at seq {linked}, removed at seq {u})"),
            None => println!("child     {child} (linked at seq {linked})"),
        }
    }
    if !v.results.is_empty() {
        println!("results:");
        for r in &v.results {
            println!(
                "  {} {:<12} {:<4} {} {}",
                r.ts,
                r.step,
                r.status,
                r.station.as_deref().unwrap_or("-"),
                if r.measurements.as_object().is_some_and(|m| !m.is_empty()) {
                    r.measurements.to_string()
                } else {
                    String::new()
                }
            );
        }
    }
    println!("history:");
    for e in &v.events {
        println!(
            "  #{:<8} {} {:<16} {:<20} {}",
            e.event.seq, e.event.ts, e.event.kind, e.event.actor, e.event.data
        );
    }
}
