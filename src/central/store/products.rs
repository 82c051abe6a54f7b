//! Product (model-level) passport content: each upload of a Battery Pass
//! aspect for a GTIN is a new version, kept with actor and time, written
//! with its audit entry in one transaction.
//!
//! Owns: the SQL of `product_aspects`. Must not: check documents (that is
//! `central::aspects`).

use serde_json::Value;

use super::{audit_in, Store, StoreError, TokenOwner};
use crate::central::aspects::Aspect;

/// One stored version of a product's aspect.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AspectVersion {
    pub version: i32,
    pub ts: String,
    pub actor: String,
    pub role: String,
    #[serde(skip)]
    pub doc: Value,
}

impl Store {
    /// Stores `doc` (already checked) as the next version of the
    /// product's aspect; answers the version.
    pub async fn put_aspect(
        &self,
        gtin: &str,
        aspect: Aspect,
        doc: &Value,
        owner: &TokenOwner,
    ) -> Result<i32, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // One writer per product at a time: the versions stay gapless.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("product:{gtin}")],
        )
        .await?;
        let version: i32 = tx
            .query_one(
                "SELECT COALESCE(max(version), 0) + 1 FROM product_aspects WHERE gtin = $1 AND aspect = $2",
                &[&gtin, &aspect.name()],
            )
            .await?
            .get(0);
        let ts = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        tx.execute(
            "INSERT INTO product_aspects (gtin, aspect, version, ts, actor, role, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &gtin,
                &aspect.name(),
                &version,
                &ts,
                &owner.name,
                &owner.role.as_str(),
                doc,
            ],
        )
        .await?;
        audit_in(
            &tx,
            owner,
            &format!("product:{gtin}:{}:v{version}", aspect.name()),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// The latest version of a product's aspect.
    pub async fn aspect(
        &self,
        gtin: &str,
        aspect: Aspect,
    ) -> Result<Option<AspectVersion>, StoreError> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "SELECT version, ts, actor, role, doc FROM product_aspects
                 WHERE gtin = $1 AND aspect = $2 ORDER BY version DESC LIMIT 1",
                &[&gtin, &aspect.name()],
            )
            .await?;
        Ok(row.map(|r| AspectVersion {
            version: r.get(0),
            ts: r.get(1),
            actor: r.get(2),
            role: r.get(3),
            doc: r.get(4),
        }))
    }

    /// Every version of a product's aspect, oldest first (without documents).
    pub async fn aspect_versions(
        &self,
        gtin: &str,
        aspect: Aspect,
    ) -> Result<Vec<AspectVersion>, StoreError> {
        let c = self.pool.get().await?;
        Ok(c.query(
            "SELECT version, ts, actor, role FROM product_aspects
             WHERE gtin = $1 AND aspect = $2 ORDER BY version",
            &[&gtin, &aspect.name()],
        )
        .await?
        .into_iter()
        .map(|r| AspectVersion {
            version: r.get(0),
            ts: r.get(1),
            actor: r.get(2),
            role: r.get(3),
            doc: Value::Null,
        })
        .collect())
    }
}

impl Store {
    /// The latest version of every aspect a product has data for, in one
    /// query (a passport page needs all seven).
    pub async fn aspects(
        &self,
        gtin: &str,
    ) -> Result<std::collections::BTreeMap<Aspect, AspectVersion>, StoreError> {
        let c = self.pool.get().await?;
        let stmt = c
            .prepare_cached(
                "SELECT DISTINCT ON (aspect) aspect, version, ts, actor, role, doc FROM product_aspects
                 WHERE gtin = $1 ORDER BY aspect, version DESC",
            )
            .await?;
        let mut out = std::collections::BTreeMap::new();
        for r in c.query(&stmt, &[&gtin]).await? {
            let name: String = r.get(0);
            let Some(a) = Aspect::parse(&name) else {
                return Err(StoreError::Corrupt(format!(
                    "product {gtin} has data for an unknown aspect {name:?}"
                )));
            };
            out.insert(
                a,
                AspectVersion {
                    version: r.get(1),
                    ts: r.get(2),
                    actor: r.get(3),
                    role: r.get(4),
                    doc: r.get(5),
                },
            );
        }
        Ok(out)
    }
}
