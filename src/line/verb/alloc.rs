//! ALLOC: a new unit ID from the line's blocks, with its Digital Link URI.
//!
//! Must not: write SQL; the ID comes from `WriteTx::allocate`.

use crate::config::Product;
use crate::gs1::{self, ai, Gtin, Identity, Level};
use crate::journal::{AllocError, AllocRequest, WriteTx};
use crate::line::rules::{bad, no_unknown_fields, required, Refusal};
use crate::protocol::{ErrorCode, Request};

use super::{refuse, Ctx, LineError, Outcome};

/// `ALLOC product= [lot=]`, with the product looked up in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alloc {
    pub product: String,
    pub gtin: Gtin,
    pub level: Level,
    pub lot: Option<String>,
}

impl Alloc {
    /// Reads the product key (which must be configured) and the lot (which
    /// a batch-level product requires).
    pub fn parse(req: &Request, products: &[Product]) -> Result<Self, Refusal> {
        no_unknown_fields(req, &["product", "lot"], &[])?;
        Self::for_product(required(req, "product")?, req.get("lot"), products)
    }

    /// The same checks for a caller that has the values already (the PLC
    /// gateway).
    pub fn for_product(
        key: &str,
        lot: Option<&str>,
        products: &[Product],
    ) -> Result<Self, Refusal> {
        let p = products.iter().find(|p| p.key == key).ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnknownProduct,
                format!("no product {key:?} in the config"),
            )
        })?;
        if let Some(l) = lot {
            ai::check_value("10", l).map_err(|e| bad(e.to_string()))?;
        }
        if p.level == Level::Batch && lot.is_none() {
            return Err(bad(format!(
                "product {key} has batch-level passports: lot= is required"
            )));
        }
        Ok(Alloc {
            product: p.key.clone(),
            gtin: p.gtin.clone(),
            level: p.level,
            lot: lot.map(str::to_string),
        })
    }

    pub fn apply(self, tx: &mut WriteTx<'_>, ctx: &Ctx<'_>) -> Result<Outcome, LineError> {
        let gtin = self.gtin.to_string();
        let a = tx
            .allocate(&AllocRequest {
                product: &self.product,
                gtin: &gtin,
                level: self.level.as_str(),
                lot: self.lot.as_deref(),
                station: ctx.station,
                actor: &ctx.actor,
            })
            .map_err(|e| match e {
                AllocError::NoIds => refuse(
                    ErrorCode::NoIds,
                    "no IDs left: the line needs a new block grant",
                ),
                AllocError::Journal(j) => LineError::Journal(j),
            })?;
        let uri = gs1::build_uri(
            &ctx.config.resolver,
            &Identity::for_unit(self.gtin, self.level, self.lot.as_deref(), &a.unit),
        );
        Ok(Outcome::Allocated { unit: a.unit, uri })
    }
}
