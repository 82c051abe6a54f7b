//! What the benches share: the namespace key, a development issuer, a
//! journal holding one huge signed block, a fresh data folder, the disk's
//! fsync probe and percentiles.
#![allow(dead_code)] // each bench uses a part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use linemark::ids::{Grant, GrantPolicy, IdCodec, NamespaceKey};
use linemark::journal::{AllocRequest, Journal, JournalOptions};

pub const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub fn key() -> NamespaceKey {
    NamespaceKey::from_hex(KEY_HEX).expect("key")
}

pub fn issuer() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// Imports a block of 2^40 IDs signed by [`issuer`].
pub fn grant_into(j: &Journal) {
    let mut g = Grant {
        grant_version: 1,
        block_id: "018f3a2e-7c4d-7000-8000-0000000be0c4".into(),
        namespace: "acme-batteries".into(),
        key_id: key().key_id(),
        line_id: "P1-L03".into(),
        start: 0,
        count: 1 << 40,
        issued_at: "2026-11-20T08:00:00Z".into(),
        issuer: "central".into(),
        signature: String::new(),
    };
    g.sign(&issuer());
    let policy = GrantPolicy {
        line_id: "P1-L03".into(),
        key_id: key().key_id(),
        namespace: None,
        issuers: vec![issuer().verifying_key()],
    };
    j.import_grant_blocking(g, &policy, "bench").expect("grant");
}

/// Opens (creating) a journal at `db` for line P1-L03, with the big block.
pub fn open_with_block(db: &Path, reserve_ahead: u64) -> Journal {
    let j = Journal::open(JournalOptions {
        db_path: db.to_path_buf(),
        line_id: "P1-L03".into(),
        codec: IdCodec::new(&key()),
        reserve_ahead,
        low_water: 0,
    })
    .expect("journal");
    grant_into(&j);
    j
}

/// One unit of the pack product, from the provisioning station.
pub fn pack() -> AllocRequest<'static> {
    AllocRequest {
        product: "PACK-48V",
        gtin: "09506000134352",
        level: "item",
        lot: Some("L2026-11"),
        station: Some("provision-1"),
        actor: "station:provision-1",
    }
}

/// Writes `DIR/config/linemark.toml` for line P1-L03 (data in `DIR/var`,
/// the namespace key, the pack product, [`issuer`] as the grant issuer)
/// followed by `extra`; answers its path.
pub fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("config");
    std::fs::create_dir_all(cfg.join("keys")).expect("dir");
    std::fs::write(cfg.join("keys/namespace.key"), KEY_HEX).expect("key");
    let text = format!(
        r#"line_id = "P1-L03"
facility = "Bench hall"
data_dir = "../var"
resolver = "https://id.example.com"
timezone = "Europe/Berlin"

[ids]
namespace_key_file = "keys/namespace.key"
issuer_public_key = "{}"
low_water = 0

[[product]]
key = "PACK-48V"
gtin = "09506000134352"
level = "item"
template = "pack-50x30"
required_steps = ["provision", "functional"]
{extra}"#,
        hex::encode(issuer().verifying_key().to_bytes())
    );
    let p = cfg.join("linemark.toml");
    std::fs::write(&p, text).expect("config");
    p
}

/// A fresh folder `target/bench-data/NAME` (with `keys/`).
pub fn bench_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("keys")).expect("bench dir");
    d
}

/// `n` timings of a 4 KiB append and `fdatasync` in `dir`: the disk the
/// journal commits on, measured in the same run.
pub fn fsync_probe(dir: &Path, n: usize) -> Vec<Duration> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("probe"))
        .expect("probe");
    let page = [0x5au8; 4096];
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&page).expect("write");
            f.sync_data().expect("fdatasync");
            t.elapsed()
        })
        .collect()
}

/// The `p` quantile (0 to 1) of `v`, sorting it.
pub fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}
