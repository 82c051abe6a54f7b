//! A unit's passport content per aspect (SPEC section 11, "Passport
//! content"): the product's model data merged with what the line and the
//! lifecycle know about this one battery, and a product's completeness.
//!
//! Owns: which attributes the line fills (`productIdentifier`,
//! `batteryPassportIdentifier`, `manufacturingDate`, `manufacturingPlace`),
//! which the lifecycle fills (`batteryStatus`, the state of health), and
//! which required attributes a product still lacks. Must not: do IO or
//! decide who sees what (that is `access`).

use serde_json::{json, Map, Value};

use super::aspects::{Aspect, SchemaError};
use super::config::LineSite;
use super::projection::Passport;

/// What the central knows about one unit besides its product's data.
#[derive(Debug, Clone, Copy)]
pub struct UnitFacts<'a> {
    pub passport: &'a Passport,
    /// Its GS1 Digital Link URI.
    pub uri: &'a str,
    pub site: Option<&'a LineSite>,
    /// Its lifecycle versions, oldest first (`type`, `ts`, `delta`).
    pub lifecycle: &'a [Value],
}

/// The battery status a lifecycle leads to (`Original` until repurposed,
/// remanufactured, reused or recycled).
pub fn battery_status(lifecycle: &[Value]) -> &'static str {
    let mut status = "Original";
    for v in lifecycle {
        status = match v.get("type").and_then(Value::as_str) {
            Some("repurposed") => "Repurposed",
            Some("remanufactured") => "Remanufactured",
            Some("reused") => "Reused",
            Some("recycled") => "Waste",
            _ => status,
        };
    }
    status
}

/// The last state of health recorded (a percentage) and when.
pub fn state_of_health(lifecycle: &[Value]) -> Option<(f64, String)> {
    lifecycle.iter().rev().find_map(|v| {
        let soh = v.get("delta")?.get("state_of_health")?.as_f64()?;
        let ts = v.get("ts").and_then(Value::as_str).unwrap_or_default();
        Some((soh, ts.to_string()))
    })
}

/// `aspect` of one unit: the product's document (`None`: no data yet),
/// with what the line and the lifecycle know written over it.
pub fn unit_aspect(aspect: Aspect, product: Option<&Value>, unit: &UnitFacts<'_>) -> Value {
    let mut doc = match product {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    match aspect {
        Aspect::GeneralProductInformation => {
            let p = unit.passport;
            doc.insert("productIdentifier".into(), json!(unit.uri));
            doc.insert(
                "batteryPassportIdentifier".into(),
                json!(format!("urn:linemark:{}", p.unit_id.to_ascii_lowercase())),
            );
            if let Some(at) = &p.manufactured_at {
                doc.insert("manufacturingDate".into(), json!(at));
            }
            if let Some(s) = unit.site {
                doc.insert(
                    "manufacturingPlace".into(),
                    json!({
                        "streetAddress": s.street,
                        "postalCode": s.postal_code,
                        "addressCountry": s.country,
                    }),
                );
            }
            doc.insert(
                "batteryStatus".into(),
                json!(battery_status(unit.lifecycle)),
            );
        }
        Aspect::PerformanceAndDurability => {
            if let Some((soh, ts)) = state_of_health(unit.lifecycle) {
                let condition = doc.entry("batteryCondition").or_insert_with(|| json!({}));
                if let Some(c) = condition.as_object_mut() {
                    c.insert(
                        "stateOfCertifiedEnergy".into(),
                        json!({ "stateOfCertifiedEnergyValue": soh, "lastUpdate": ts }),
                    );
                }
            }
        }
        _ => {}
    }
    Value::Object(doc)
}

/// The attributes the line or the lifecycle fills for every unit: a
/// product does not supply them.
pub fn filled_per_unit(aspect: Aspect) -> &'static [&'static str] {
    match aspect {
        Aspect::GeneralProductInformation => &[
            "productIdentifier",
            "batteryPassportIdentifier",
            "manufacturingDate",
            "manufacturingPlace",
            "batteryStatus",
        ],
        _ => &[],
    }
}

/// The required attributes (the schema's top-level `required`) a
/// product's document still lacks, leaving out what each unit fills.
pub fn missing(aspect: Aspect, schema: &Value, product: Option<&Value>) -> Vec<String> {
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    required
        .iter()
        .filter_map(Value::as_str)
        .filter(|k| !filled_per_unit(aspect).contains(k))
        .filter(|k| product.and_then(|p| p.get(*k)).is_none_or(Value::is_null))
        .map(str::to_string)
        .collect()
}

/// The completeness report of a product: per aspect the version on file
/// (`stored(aspect)` gives the version and document, if any) and the
/// required attributes still missing, with the product's battery category.
pub fn completeness<'a>(
    gtin: &str,
    stored: impl Fn(Aspect) -> Option<(i32, &'a Value)>,
) -> Result<Value, SchemaError> {
    let mut out = Map::new();
    let mut complete = true;
    let category = stored(Aspect::GeneralProductInformation)
        .and_then(|(_, d)| d.get("batteryCategory"))
        .and_then(Value::as_str);
    for a in Aspect::ALL {
        let found = stored(a);
        let missing = missing(a, &a.schema()?, found.map(|(_, d)| d));
        complete &= missing.is_empty();
        out.insert(
            a.name().into(),
            json!({ "version": found.map(|(v, _)| v), "missing": missing }),
        );
    }
    Ok(json!({
        "gtin": gtin,
        "battery_category": category,
        "complete": complete,
        "aspects": out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::central::aspects;

    fn passport() -> Passport {
        serde_json::from_value(json!({
            "unit_id": "V700QW11S6PJ4", "line_id": "P1-L03", "product": "PACK-48V",
            "gtin": "09506000134352", "level": "item", "status": "passed",
            "allocated_at": "2026-12-01T08:00:00.000Z",
            "manufactured_at": "2026-12-01T08:05:00.000Z", "last_seq": 7
        }))
        .expect("a passport")
    }

    fn payload(a: Aspect) -> Value {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/batterypass")
            .join(format!("{}-payload.json", a.name()));
        serde_json::from_str(&std::fs::read_to_string(p).expect("payload")).expect("JSON")
    }

    #[test]
    fn the_line_and_the_lifecycle_fill_the_unit_attributes_and_the_result_validates() {
        let p = passport();
        let site = LineSite {
            id: "P1-L03".into(),
            street: "Werkstr. 1".into(),
            postal_code: "70173".into(),
            country: "DE".into(),
        };
        let lifecycle = vec![
            json!({"type": "state_of_health", "ts": "2027-01-01T00:00:00.000Z", "delta": {"state_of_health": 91.5}}),
            json!({"type": "repurposed", "ts": "2028-01-01T00:00:00.000Z", "delta": {}}),
            json!({"type": "state_of_health", "ts": "2029-01-01T00:00:00.000Z", "delta": {"state_of_health": 83.7}}),
        ];
        let uri = "https://id.example.com/01/09506000134352/21/V700QW11S6PJ4";
        let facts = UnitFacts {
            passport: &p,
            uri,
            site: Some(&site),
            lifecycle: &lifecycle,
        };
        let gpi = payload(Aspect::GeneralProductInformation);
        let doc = unit_aspect(Aspect::GeneralProductInformation, Some(&gpi), &facts);
        assert_eq!(doc["productIdentifier"], uri);
        assert_eq!(
            doc["batteryPassportIdentifier"],
            "urn:linemark:v700qw11s6pj4"
        );
        assert_eq!(doc["manufacturingDate"], "2026-12-01T08:05:00.000Z");
        assert_eq!(doc["manufacturingPlace"]["postalCode"], "70173");
        assert_eq!(doc["batteryStatus"], "Repurposed");
        assert_eq!(doc["batteryMass"], gpi["batteryMass"], "model data kept");
        aspects::check_full(Aspect::GeneralProductInformation, &doc)
            .unwrap_or_else(|e| panic!("{e}"));
        let pd = payload(Aspect::PerformanceAndDurability);
        let doc = unit_aspect(Aspect::PerformanceAndDurability, Some(&pd), &facts);
        assert_eq!(
            doc["batteryCondition"]["stateOfCertifiedEnergy"]["stateOfCertifiedEnergyValue"],
            83.7
        );
        aspects::check_full(Aspect::PerformanceAndDurability, &doc)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn status_follows_the_lifecycle() {
        assert_eq!(battery_status(&[]), "Original");
        let t = |k: &str| json!({"type": k});
        assert_eq!(battery_status(&[t("serviced")]), "Original");
        assert_eq!(battery_status(&[t("remanufactured")]), "Remanufactured");
        assert_eq!(battery_status(&[t("reused")]), "Reused");
        assert_eq!(battery_status(&[t("repurposed"), t("recycled")]), "Waste");
    }

    #[test]
    fn a_product_lacks_what_its_schema_requires_except_what_each_unit_fills() {
        let a = Aspect::GeneralProductInformation;
        let schema = a.schema().unwrap();
        let none = missing(a, &schema, None);
        assert!(none.contains(&"batteryMass".to_string()));
        assert!(!none.contains(&"productIdentifier".to_string()));
        assert!(missing(a, &schema, Some(&payload(a))).is_empty());
        let partial = json!({"batteryMass": 12.0, "batteryCategory": "ev"});
        let m = missing(a, &schema, Some(&partial));
        assert!(!m.contains(&"batteryMass".to_string()));
        assert!(m.contains(&"manufacturerInformation".to_string()));
    }
}
