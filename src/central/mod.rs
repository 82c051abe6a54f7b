//! `linemark-central` (SPEC section 11), the company's half: the block
//! authority that keeps IDs unique across every line, and the store every
//! line syncs into, on PostgreSQL.
//!
//! Owns: the service's config, ingest rules, block grants, the passport
//! projection, tokens, the PostgreSQL store and the HTTP routes. It shares
//! the line's ID codec, grants, GS1 and canonical JSON/hash chain through
//! this crate (one package, two binaries).
//! Must not: depend on the line daemon's runtime parts (`line`, `station`,
//! `journal` storage, `printer`, `sync`); it reuses only pure pieces and the
//! web server's accept loop.

pub mod access;
pub mod aspects;
pub mod audit;
pub mod blocks;
pub mod cli;
pub mod config;
pub mod content;
pub mod http;
pub mod ingest;
pub mod lifecycle;
pub mod passport;
pub mod product;
pub mod projection;
pub mod resolver;
pub mod sheet;
pub mod store;
pub mod token;
