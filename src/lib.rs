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
//! - [`cli`]: one function per subcommand; the only place that uses `anyhow`.

pub mod cli;
pub mod config;
pub mod gs1;
pub mod ids;
pub mod journal;
