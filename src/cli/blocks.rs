//! `linemark blocks import|list|dev-grant`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{load_config, CliError};
use crate::config::{read_dev_issuer, Config};
use crate::ids::{Grant, INDEX_SPACE};
use crate::journal::{self, ImportError, Journal, JournalOptions};

/// Development grants come from the upper half of the index space, far from
/// where a central authority hands out blocks.
const DEV_BASE: u64 = INDEX_SPACE / 2;

#[derive(Debug, Subcommand)]
pub enum BlocksCommand {
    /// Verify a block grant (JSON file) and import it.
    Import {
        /// The grant file.
        file: PathBuf,
    },
    /// List held blocks: range, used, left.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sign and import a development grant (needs ids.allow_dev_grants = true).
    DevGrant {
        /// IDs in the block.
        #[arg(long)]
        count: u64,
        /// Also keep the signed grant here (default: DATA_DIR/grants/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(config: &Path, cmd: BlocksCommand) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    match cmd {
        BlocksCommand::Import { file } => {
            let bytes = std::fs::read(&file).map_err(|e| {
                CliError::input(format!("cannot read grant file {}: {e}", file.display()))
            })?;
            let grant = Grant::from_json(&bytes)
                .map_err(|e| CliError::input(format!("{}: {e}", file.display())))?;
            import(&cfg, grant, &file.display().to_string())
        }
        BlocksCommand::List { json } => list(&cfg, json),
        BlocksCommand::DevGrant { count, out } => dev_grant(&cfg, count, out),
    }
}

pub(crate) fn import(cfg: &Config, grant: Grant, source: &str) -> Result<(), CliError> {
    let policy = cfg.grant_policy().map_err(CliError::input)?;
    // Check what needs no journal first, so a bad file never opens it.
    grant
        .verify(&policy)
        .map_err(|e| CliError::input(format!("{source}: refused: {e}")))?;
    let journal = Journal::open(JournalOptions::from_config(cfg))?;
    let ev = journal
        .import_grant_blocking(grant.clone(), &policy, "cli")
        .map_err(|e| match e {
            ImportError::Grant(g) => CliError::input(format!("{source}: refused: {g}")),
            ImportError::Journal(j) => CliError::runtime(j),
        })?;
    let left = journal
        .shared()
        .ids_left
        .load(std::sync::atomic::Ordering::Acquire);
    println!(
        "imported block {} [{}, {}): {} IDs (event seq {}); {} IDs left in all blocks",
        grant.block_id,
        grant.start,
        grant.end(),
        grant.count,
        ev.seq,
        left
    );
    Ok(())
}

fn list(cfg: &Config, json: bool) -> Result<(), CliError> {
    let path = cfg.journal_path();
    let rows = if path.exists() {
        journal::query::blocks(&journal::open_read_only(&path)?)?
    } else {
        Vec::new()
    };
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| serde_json::json!({"block_id": r.block_id, "start": r.start, "end": r.start + r.count,
                "count": r.count, "used": r.used, "left": r.left(), "issuer": r.issuer, "issued_at": r.issued_at}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no blocks held: import a grant with `linemark blocks import FILE`");
        return Ok(());
    }
    println!(
        "{:<38} {:>21} {:>21} {:>10} {:>10}",
        "block", "start", "end", "used", "left"
    );
    for r in &rows {
        println!(
            "{:<38} {:>21} {:>21} {:>10} {:>10}",
            r.block_id,
            r.start,
            r.start + r.count,
            r.used,
            r.left()
        );
    }
    let left: u64 = rows.iter().map(|r| r.left()).sum();
    println!(
        "{} blocks, {} IDs left (low water {})",
        rows.len(),
        left,
        cfg.ids.low_water
    );
    Ok(())
}

fn dev_grant(cfg: &Config, count: u64, out: Option<PathBuf>) -> Result<(), CliError> {
    let grant = sign_dev_grant(cfg, count)?;
    let out = out.unwrap_or_else(|| {
        cfg.data_dir
            .join("grants")
            .join(format!("dev-{}.json", grant.block_id))
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", dir.display())))?;
    }
    let text = serde_json::to_string_pretty(&grant).map_err(CliError::runtime)?;
    std::fs::write(&out, text + "\n")
        .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", out.display())))?;
    println!("development grant written to {}", out.display());
    import(cfg, grant, &out.display().to_string())
}

/// Makes (once) the development issuer key under the data dir and signs a
/// grant of `count` IDs for this line, after every block already held.
pub(crate) fn sign_dev_grant(cfg: &Config, count: u64) -> Result<Grant, CliError> {
    if !cfg.ids.allow_dev_grants {
        return Err(CliError::input(format!(
            "refused: development grants are off (ids.allow_dev_grants = false in {}); a production line imports grants from the central authority",
            cfg.origin
        )));
    }
    if count == 0 || count > 1 << 32 {
        return Err(CliError::input("--count must be between 1 and 4294967296"));
    }
    let key_path = cfg.dev_issuer_key_path();
    let key = match read_dev_issuer(&key_path).map_err(CliError::runtime)? {
        Some(k) => k,
        None => make_dev_key(&key_path)?,
    };
    let path = cfg.journal_path();
    let held = if path.exists() {
        journal::query::blocks(&journal::open_read_only(&path)?)?
    } else {
        Vec::new()
    };
    let start = held
        .iter()
        .map(|b| b.start + b.count)
        .max()
        .unwrap_or(0)
        .max(DEV_BASE);
    if start >= INDEX_SPACE || count > INDEX_SPACE - start {
        return Err(CliError::input(
            "no room left in the development part of the index space",
        ));
    }
    let mut grant = Grant {
        grant_version: 1,
        block_id: uuid::Uuid::now_v7().to_string(),
        namespace: cfg.ids.namespace.clone().unwrap_or_else(|| "dev".into()),
        key_id: cfg.ids.namespace_key.key_id(),
        line_id: cfg.line_id.clone(),
        start,
        count,
        issued_at: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        issuer: "linemark-dev".into(),
        signature: String::new(),
    };
    grant.sign(&key);
    Ok(grant)
}

fn make_dev_key(path: &Path) -> Result<ed25519_dalek::SigningKey, CliError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| CliError::runtime(format!("no randomness for a key: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", dir.display())))?;
    }
    write_secret(path, &hex::encode(seed))
        .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("made a development issuer key at {}", path.display());
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// Writes a secret readable by the owner only.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
