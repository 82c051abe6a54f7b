//! The central store on PostgreSQL (SPEC section 11): the connection pool,
//! the versioned migrations, and every query of the service.
//!
//! Owns: all SQL of `linemark-central`. Each write is one transaction:
//! a batch's events, its passport projection and the line's new chain head
//! commit together (the line's row is locked first, so two instances never
//! interleave one line's batches); a block's range is taken under the
//! allocator's row lock, and the database's exclusion constraint refuses
//! any two grants that share an index.
//! Must not: decide what a batch, a grant or a passport is (that is
//! `ingest`, `blocks` and `projection`, pure); speak HTTP.

pub mod migrations;
mod products;

pub use products::AspectVersion;

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

use super::audit::Entry;
use super::blocks::{self, Issuer};
use super::ingest::{self, Batch, CheckedEvent, Refused, Stored};
use super::lifecycle;
use super::projection::{self, EventView, Passport};
use super::token::Role;
use crate::ids::grant::Grant;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database refused the connection settings: {0}")]
    Config(String),
    #[error("no database connection: {0}")]
    Pool(String),
    #[error("database error: {}", db_message(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("the stored data is damaged: {0}")]
    Corrupt(String),
    #[error("line {0:?} is not registered (linemark-central line add {0})")]
    UnknownLine(String),
    #[error("line {0:?} is already registered")]
    LineExists(String),
    #[error("the allocator is not set up; run linemark-central migrate")]
    NoAllocator,
    #[error(transparent)]
    Batch(#[from] Refused),
    #[error(transparent)]
    Count(#[from] blocks::CountError),
    #[error(transparent)]
    Exhausted(#[from] blocks::Exhausted),
    #[error("the database schema is version {found}, this build knows up to {known}; upgrade linemark-central")]
    SchemaTooNew { found: i32, known: i32 },
    #[error("the database schema is not set up (version {found}, needs {needed}); run linemark-central migrate")]
    SchemaTooOld { found: i32, needed: i32 },
}

/// The server's own message and SQLSTATE, which `Display` of a driver
/// error leaves out ("db error").
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Pool(e.to_string())
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub role: Role,
    pub name: String,
    /// For a line token: its line.
    pub line_id: Option<String>,
}

/// What an ingested batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub acked_through: i64,
    /// Events stored by this request (0 for a batch sent again).
    pub stored: usize,
    /// Events stored but not projected, with why (logged by the caller).
    pub unprojected: Vec<String>,
}

/// The pool of connections to the central database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// A pool of up to `size` connections to `url` (connections are made
    /// when first needed).
    pub fn connect(url: &str, size: usize) -> Result<Store, StoreError> {
        let pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
        let mgr = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(size)
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Store { pool })
    }

    /// Creates or upgrades the schema (idempotent; concurrent runs wait for
    /// each other) and makes sure the allocator starts at `first_index`.
    /// Answers the versions applied now.
    pub async fn migrate(&self, first_index: u64) -> Result<Vec<i32>, StoreError> {
        let mut c = self.pool.get().await?;
        let applied = migrations::apply(&mut c).await?;
        c.execute(
            "INSERT INTO allocator (id, next_index) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            &[&(first_index as i64)],
        )
        .await?;
        Ok(applied)
    }

    /// Refuses to serve a schema that is older or newer than this build's.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        migrations::check(&c).await
    }

    /// `SELECT 1`: does the database answer?
    pub async fn ping(&self) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    /// Registers a line and its sync token (given by its hash).
    pub async fn add_line(&self, line_id: &str, token_sha256: &str) -> Result<(), StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO lines (line_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&line_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::LineExists(line_id.to_string()));
        }
        tx.execute(
            "INSERT INTO tokens (token_sha256, role, name, line_id) VALUES ($1, 'line', $2, $2)",
            &[&token_sha256, &line_id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a token for a person or system.
    pub async fn add_token(
        &self,
        token_sha256: &str,
        role: Role,
        name: &str,
    ) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO tokens (token_sha256, role, name) VALUES ($1, $2, $3)",
            &[&token_sha256, &role.as_str(), &name],
        )
        .await?;
        Ok(())
    }

    /// The owner of a token (by its hash), if it is known.
    pub async fn token_owner(&self, token_sha256: &str) -> Result<Option<TokenOwner>, StoreError> {
        let c = self.pool.get().await?;
        let stmt = c
            .prepare_cached("SELECT role, name, line_id FROM tokens WHERE token_sha256 = $1")
            .await?;
        let row = c.query_opt(&stmt, &[&token_sha256]).await?;
        Ok(row.and_then(|r| {
            Some(TokenOwner {
                role: Role::parse(r.get::<_, &str>(0))?,
                name: r.get(1),
                line_id: r.get(2),
            })
        }))
    }

    /// Stores the new events of a batch with their passports and the line's
    /// new chain head, in one transaction; a refused batch stores nothing.
    pub async fn ingest(&self, batch: &Batch) -> Result<Ingested, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let head = tx
            .query_opt(
                "SELECT head_seq, head_hash FROM lines WHERE line_id = $1 FOR UPDATE",
                &[&batch.line_id],
            )
            .await?
            .ok_or_else(|| StoreError::UnknownLine(batch.line_id.clone()))?;
        let mut stored = Stored {
            head_seq: head.get(0),
            head_hash: head.get(1),
            hashes: Vec::new(),
        };
        // The stored hashes the batch overlaps, and the one before it.
        let (lo, hi) = (
            (batch.first_seq - 1).max(1),
            batch.last_seq.min(stored.head_seq),
        );
        if lo <= hi {
            for r in tx
                .query(
                    "SELECT seq, hash FROM events WHERE line_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
                    &[&batch.line_id, &lo, &hi],
                )
                .await?
            {
                stored.hashes.push((r.get(0), r.get(1)));
            }
        }
        let fresh = ingest::new_events(batch, &stored)?;
        let acked_through = batch.last_seq.max(stored.head_seq);
        if fresh.is_empty() {
            return Ok(Ingested {
                acked_through,
                stored: 0,
                unprojected: Vec::new(),
            });
        }
        insert_events(&tx, &batch.line_id, &fresh).await?;
        let unprojected = project(&tx, &batch.line_id, &fresh).await?;
        let last = fresh.last().map(|e| (e.seq, e.hash.clone()));
        if let Some((seq, hash)) = last {
            tx.execute(
                "UPDATE lines SET head_seq = $2, head_hash = $3 WHERE line_id = $1",
                &[&batch.line_id, &seq, &hash],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Ingested {
            acked_through,
            stored: fresh.len(),
            unprojected,
        })
    }

    /// Takes the next `count` indices under the allocator's row lock, signs
    /// the grant for `line_id` and records it, in one transaction.
    pub async fn grant_block(
        &self,
        issuer: &Issuer<'_>,
        first_index: u64,
        max_block: u64,
        line_id: &str,
        count: u64,
        requested_by: &str,
    ) -> Result<Grant, StoreError> {
        let count = blocks::check_count(count, max_block)?;
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        if tx
            .query_opt("SELECT 1 FROM lines WHERE line_id = $1", &[&line_id])
            .await?
            .is_none()
        {
            return Err(StoreError::UnknownLine(line_id.to_string()));
        }
        let next: i64 = tx
            .query_opt(
                "SELECT next_index FROM allocator WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await?
            .ok_or(StoreError::NoAllocator)?
            .get(0);
        let (start, end) = blocks::next_range(next as u64, first_index, count)?;
        tx.execute(
            "UPDATE allocator SET next_index = $1 WHERE id = 1",
            &[&(end as i64)],
        )
        .await?;
        let block_id = uuid::Uuid::now_v7();
        let grant = blocks::grant(
            issuer,
            block_id,
            line_id,
            start,
            count,
            jiff::Timestamp::now(),
        );
        let json = serde_json::to_string(&grant).unwrap_or_default();
        tx.execute(
            "INSERT INTO grants (block_id, line_id, start_index, count, issued_at, grant_json, requested_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &block_id,
                &line_id,
                &(start as i64),
                &(count as i64),
                &grant.issued_at,
                &json,
                &requested_by,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(grant)
    }

    /// A unit's passport projection and its version.
    pub async fn passport(&self, unit_id: &str) -> Result<Option<(Passport, i32)>, StoreError> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "SELECT doc, version FROM passports WHERE unit_id = $1",
                &[&unit_id],
            )
            .await?;
        Ok(row.and_then(|r| {
            let p: Passport = serde_json::from_value(r.get::<_, Value>(0)).ok()?;
            Some((p, r.get(1)))
        }))
    }

    /// A unit's identity (GTIN and lot), which never changes once it is
    /// allocated: what the resolver needs.
    pub async fn identity(
        &self,
        unit_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let c = self.pool.get().await?;
        let stmt = c
            .prepare_cached("SELECT gtin, lot FROM passports WHERE unit_id = $1")
            .await?;
        Ok(c.query_opt(&stmt, &[&unit_id])
            .await?
            .map(|r| (r.get(0), r.get(1))))
    }

    /// Appends one audit entry (under the chain head's row lock).
    pub async fn audit(
        &self,
        owner: &TokenOwner,
        action: &str,
        passport: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        audit_in(&tx, owner, action, passport).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a lifecycle update as the unit's next passport version, with
    /// its audit entry, in one transaction. Answers the new version.
    pub async fn lifecycle_update(
        &self,
        unit_id: &str,
        body: &[u8],
        owner: &TokenOwner,
    ) -> Result<Option<i32>, LifecycleError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await.map_err(StoreError::from)?;
        let Some(row) = tx
            .query_opt(
                "SELECT doc, version FROM passports WHERE unit_id = $1 FOR UPDATE",
                &[&unit_id],
            )
            .await
            .map_err(StoreError::from)?
        else {
            return Ok(None);
        };
        let mut p: Passport = serde_json::from_value(row.get::<_, Value>(0)).map_err(|e| {
            StoreError::Corrupt(format!("passport {unit_id} does not read back: {e}"))
        })?;
        let version: i32 = row.get::<_, i32>(1) + 1;
        let u = lifecycle::check(body, owner.role, unit_id, p.status)?;
        p.status = lifecycle::status_after(&u.kind, p.status);
        let ts = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        tx.execute(
            "INSERT INTO passport_versions (unit_id, version, ts, actor, role, type, reason, evidence, delta)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&unit_id, &version, &ts, &owner.name, &owner.role.as_str(), &u.kind, &u.reason, &u.evidence, &u.delta],
        )
        .await
        .map_err(StoreError::from)?;
        let doc = serde_json::to_value(&p).unwrap_or(Value::Null);
        tx.execute(
            "UPDATE passports SET version = $2, status = $3, doc = $4 WHERE unit_id = $1",
            &[&unit_id, &version, &p.status.as_str(), &doc],
        )
        .await
        .map_err(StoreError::from)?;
        audit_in(&tx, owner, &format!("update:{}", u.kind), Some(unit_id)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(version))
    }

    /// Every lifecycle version of a unit (version 2 on), oldest first.
    pub async fn versions(&self, unit_id: &str) -> Result<Vec<Value>, StoreError> {
        let c = self.pool.get().await?;
        Ok(c.query(
            "SELECT version, ts, actor, role, type, reason, evidence, delta FROM passport_versions
                 WHERE unit_id = $1 ORDER BY version",
            &[&unit_id],
        )
        .await?
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "version": r.get::<_, i32>(0), "ts": r.get::<_, String>(1),
                "actor": r.get::<_, String>(2), "role": r.get::<_, String>(3),
                "type": r.get::<_, String>(4), "reason": r.get::<_, String>(5),
                "evidence": r.get::<_, Option<String>>(6), "delta": r.get::<_, Value>(7),
            })
        })
        .collect())
    }

    /// The audit entries (of one passport, or all), oldest first, with
    /// their stored hashes.
    pub async fn audit_entries(
        &self,
        passport: Option<&str>,
    ) -> Result<Vec<(Entry, String)>, StoreError> {
        let c = self.pool.get().await?;
        let rows = match passport {
            Some(p) => {
                c.query(
                    "SELECT seq, ts, actor, role, action, passport, hash FROM audit_log WHERE passport = $1 ORDER BY seq",
                    &[&p],
                )
                .await?
            }
            None => {
                c.query("SELECT seq, ts, actor, role, action, passport, hash FROM audit_log ORDER BY seq", &[])
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    Entry {
                        seq: r.get(0),
                        ts: r.get(1),
                        actor: r.get(2),
                        role: r.get(3),
                        action: r.get(4),
                        passport: r.get(5),
                    },
                    r.get(6),
                )
            })
            .collect())
    }

    /// The audit chain's head: `(seq, hash)`.
    pub async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        let c = self.pool.get().await?;
        let r = c
            .query_one("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
            .await?;
        Ok((r.get(0), r.get(1)))
    }

    /// `(line_id, head_seq)` of every line, for metrics and tests.
    pub async fn line_heads(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let c = self.pool.get().await?;
        Ok(
            c.query("SELECT line_id, head_seq FROM lines ORDER BY line_id", &[])
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        )
    }
}

/// All new events of a batch in one binary COPY (inside the batch's
/// transaction: the fastest way PostgreSQL takes rows).
async fn insert_events(
    tx: &deadpool_postgres::Transaction<'_>,
    line_id: &str,
    events: &[CheckedEvent],
) -> Result<(), StoreError> {
    let sink = tx
        .copy_in(
            "COPY events (line_id, seq, event_id, ts, station, actor, type, unit, data, hash) FROM STDIN BINARY",
        )
        .await?;
    let t = Type::TEXT;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            t.clone(),
            Type::INT8,
            t.clone(),
            t.clone(),
            t.clone(),
            t.clone(),
            t.clone(),
            t.clone(),
            t.clone(),
            t,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    for e in events {
        writer
            .as_mut()
            .write(&[
                &line_id,
                &e.seq,
                &e.event_id,
                &e.ts,
                &e.station,
                &e.actor,
                &e.kind,
                &e.unit,
                &e.data,
                &e.hash,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Updates the passports the new events touch; answers the events that
/// could not be projected.
async fn project(
    tx: &deadpool_postgres::Transaction<'_>,
    line_id: &str,
    events: &[CheckedEvent],
) -> Result<Vec<String>, StoreError> {
    let parsed: Vec<(&CheckedEvent, &Value)> = events
        .iter()
        .filter(|e| e.unit.is_some() && projection::concerns_passports(&e.kind))
        .map(|e| (e, &e.value))
        .collect();
    if parsed.is_empty() {
        return Ok(Vec::new());
    }
    // A unit whose first event here is its ALLOCATED has no passport yet
    // (IDs are never issued twice; the COPY below would refuse a second
    // one): only the others are looked up and locked.
    let mut first_seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (e, _) in &parsed {
        if let Some(u) = e.unit.as_deref() {
            first_seen.entry(u).or_insert(e.kind.as_str());
        }
    }
    let units: Vec<&str> = first_seen
        .iter()
        .filter(|(_, kind)| **kind != "ALLOCATED")
        .map(|(u, _)| *u)
        .collect();
    let mut docs: BTreeMap<String, Option<Passport>> = BTreeMap::new();
    let mut existing: BTreeSet<String> = BTreeSet::new();
    let rows = if units.is_empty() {
        Vec::new()
    } else {
        tx.query(
            "SELECT unit_id, doc FROM passports WHERE unit_id = ANY($1) FOR UPDATE",
            &[&units],
        )
        .await?
    };
    for r in rows {
        existing.insert(r.get(0));
        docs.insert(r.get(0), serde_json::from_value(r.get::<_, Value>(1)).ok());
    }
    let mut problems = Vec::new();
    for (e, data) in &parsed {
        let unit = e.unit.as_deref().unwrap_or_default();
        let view = EventView {
            line_id,
            seq: e.seq,
            ts: &e.ts,
            station: e.station.as_deref(),
            kind: &e.kind,
            unit: Some(unit),
            data,
        };
        let slot = docs.entry(unit.to_string()).or_insert(None);
        match projection::apply(slot.take(), &view) {
            Ok(p) => *slot = p,
            Err(err) => problems.push(err.to_string()),
        }
    }
    let (fresh, known): (Vec<&Passport>, Vec<&Passport>) = docs
        .values()
        .flatten()
        .partition(|p| !existing.contains(p.unit_id.as_str()));
    copy_passports(tx, &fresh).await?;
    upsert_passports(tx, &known).await?;
    Ok(problems)
}

/// Passports of units the store had none for: one binary COPY.
async fn copy_passports(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[&Passport],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in(
            "COPY passports (unit_id, line_id, gtin, lot, status, doc, last_seq) FROM STDIN BINARY",
        )
        .await?;
    let t = Type::TEXT;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            t.clone(),
            t.clone(),
            t.clone(),
            t.clone(),
            t,
            Type::JSON,
            Type::INT8,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    for p in rows {
        let doc = serde_json::to_value(p).unwrap_or(Value::Null);
        writer
            .as_mut()
            .write(&[
                &p.unit_id,
                &p.line_id,
                &p.gtin,
                &p.lot,
                &p.status.as_str(),
                &doc,
                &p.last_seq,
            ])
            .await?;
    }
    writer.finish().await.map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            StoreError::Batch(Refused::Chain(
                "a unit this batch allocates already has a passport: a unit ID was issued twice (check the lines' namespace keys and blocks)".into(),
            ))
        } else {
            StoreError::Db(e)
        }
    })?;
    Ok(())
}

/// Passports that changed: one multi-row UPDATE.
async fn upsert_passports(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[&Passport],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = rows.iter().map(|p| p.unit_id.as_str()).collect();
    let gtins: Vec<&str> = rows.iter().map(|p| p.gtin.as_str()).collect();
    let lots: Vec<Option<&str>> = rows.iter().map(|p| p.lot.as_deref()).collect();
    let statuses: Vec<&str> = rows.iter().map(|p| p.status.as_str()).collect();
    let docs: Vec<Value> = rows
        .iter()
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect();
    let seqs: Vec<i64> = rows.iter().map(|p| p.last_seq).collect();
    tx.execute(
        "UPDATE passports AS p SET gtin = u.gtin, lot = u.lot, status = u.status, doc = u.doc, last_seq = u.last_seq
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::json[], $6::bigint[])
              AS u(unit_id, gtin, lot, status, doc, last_seq)
         WHERE p.unit_id = u.unit_id",
        &[&ids, &gtins, &lots, &statuses, &docs, &seqs],
    )
    .await?;
    Ok(())
}

/// Why a lifecycle update was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Update(#[from] lifecycle::UpdateError),
}

impl From<deadpool_postgres::PoolError> for LifecycleError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        LifecycleError::Store(e.into())
    }
}

/// Appends an audit entry inside `tx`, chained to the locked head.
async fn audit_in(
    tx: &deadpool_postgres::Transaction<'_>,
    owner: &TokenOwner,
    action: &str,
    passport: Option<&str>,
) -> Result<(), StoreError> {
    let head = tx
        .query_one(
            "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
    let (seq, prev): (i64, String) = (head.get::<_, i64>(0) + 1, head.get(1));
    let entry = Entry {
        seq,
        ts: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        actor: owner.name.clone(),
        role: owner.role.as_str().to_string(),
        action: action.to_string(),
        passport: passport.map(str::to_string),
    };
    let hash = entry.hash(&prev);
    tx.execute(
        "INSERT INTO audit_log (seq, ts, actor, role, action, passport, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&entry.seq, &entry.ts, &entry.actor, &entry.role, &entry.action, &entry.passport, &hash],
    )
    .await?;
    tx.execute(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        &[&seq, &hash],
    )
    .await?;
    Ok(())
}
