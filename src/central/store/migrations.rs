//! The central schema's versions: SQL files in `migrations/central/`,
//! compiled in, applied in order by `linemark-central migrate`, each in its
//! own transaction and recorded in `schema_migrations`.
//!
//! Owns: the list of versions and applying the missing ones. Concurrent
//! `migrate` runs (two instances starting at once) serialise on an
//! advisory lock. Must not: change a version once released (add one).

use super::StoreError;

/// `(version, name, SQL)`, in order.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/central/0001_init.sql"),
    ),
    (
        2,
        "lifecycle and audit",
        include_str!("../../../migrations/central/0002_lifecycle_audit.sql"),
    ),
    (
        3,
        "product aspects",
        include_str!("../../../migrations/central/0003_product_aspects.sql"),
    ),
];

/// The schema version this build serves.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// An arbitrary constant naming the migration lock.
const LOCK: i64 = 0x6c69_6e65_6d61_726b; // "linemark"

/// Applies every version not applied yet; answers those applied now.
pub async fn apply(c: &mut deadpool_postgres::Object) -> Result<Vec<i32>, StoreError> {
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    int PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let have = current(&tx).await?;
    if have > latest() {
        return Err(StoreError::SchemaTooNew {
            found: have,
            known: latest(),
        });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    Ok(applied)
}

async fn current(c: &impl deadpool_postgres::GenericClient) -> Result<i32, StoreError> {
    Ok(c.query_one(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        &[],
    )
    .await?
    .get(0))
}

/// The schema must be exactly this build's.
pub async fn check(c: &deadpool_postgres::Object) -> Result<(), StoreError> {
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    let have = if exists { current(c).await? } else { 0 };
    match have.cmp(&latest()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(StoreError::SchemaTooOld {
            found: have,
            needed: latest(),
        }),
        std::cmp::Ordering::Greater => Err(StoreError::SchemaTooNew {
            found: have,
            known: latest(),
        }),
    }
}
