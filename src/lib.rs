//! linemark: a line-side daemon that gives every unit an opaque, never-reused
//! ID from signed blocks, records what test stations learn about it, prints a
//! GS1 Digital Link label only after final test, and keeps an append-only,
//! hash-chained journal.
//!
//! Module map (see ARCHITECTURE.md):
//! - [`ids`]: index space, permutation, ID codec, grants, allocator arithmetic (pure).
//! - [`gs1`]: GTINs, AI character set 82, Digital Link build/parse, HRI (pure).
//! - [`journal`]: SQLite schema, append-only events, hash chain, group-commit writer.
//! - [`config`]: TOML -> validated `Config`, errors with file, line and key.
//! - [`protocol`]: the station frame codec (pure).
//! - [`line`]: the rules of every station verb, idempotency, routing.
//! - [`station`]: serial/TCP IO, one task per station, reconnects.
//! - [`daemon`]: `linemark run` as a library function.
//! - [`client`]: a station client over any byte stream.
//! - [`sync`]: the journal to the central store; block requests.
//! - [`report`]: shifts and the per-shift report (CSV, HTML, PDF).
//! - [`web`]: the local web page, metrics and token-gated actions.
//! - [`cli`]: one function per subcommand.

pub mod central;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod epcis;
pub mod export;
pub mod gs1;
pub mod ids;
pub mod journal;
pub mod label;
pub mod line;
pub mod plc;
pub mod printer;
pub mod protocol;
pub mod report;
pub mod station;
pub mod sync;
pub mod web;
