//! The Battery Pass aspects (SPEC section 11, "Passport content"): their
//! names, their JSON schemas (Battery Pass data model v1.2.0, compiled in
//! from `assets/batterypass/`), and checking a document against one —
//! partially (every attribute present must be valid; absent ones are
//! allowed) or in full.
//!
//! Owns: which aspects exist and what "valid" means for their documents.
//! Must not: store, merge or filter documents (the store, `content` and
//! `access` do).

use std::sync::OnceLock;

use serde_json::Value;

/// One of the seven aspects of a battery passport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Aspect {
    GeneralProductInformation,
    CarbonFootprintForBatteries,
    Circularity,
    MaterialComposition,
    PerformanceAndDurability,
    Labeling,
    SupplyChainDueDiligence,
}

impl Aspect {
    pub const ALL: [Aspect; 7] = [
        Aspect::GeneralProductInformation,
        Aspect::CarbonFootprintForBatteries,
        Aspect::Circularity,
        Aspect::MaterialComposition,
        Aspect::PerformanceAndDurability,
        Aspect::Labeling,
        Aspect::SupplyChainDueDiligence,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Aspect::GeneralProductInformation => "GeneralProductInformation",
            Aspect::CarbonFootprintForBatteries => "CarbonFootprintForBatteries",
            Aspect::Circularity => "Circularity",
            Aspect::MaterialComposition => "MaterialComposition",
            Aspect::PerformanceAndDurability => "PerformanceAndDurability",
            Aspect::Labeling => "Labeling",
            Aspect::SupplyChainDueDiligence => "SupplyChainDueDiligence",
        }
    }

    /// The aspect named exactly `s` (as in the URL and the file name).
    pub fn parse(s: &str) -> Option<Aspect> {
        Aspect::ALL.into_iter().find(|a| a.name() == s)
    }

    fn schema_text(self) -> &'static str {
        match self {
            Aspect::GeneralProductInformation => {
                include_str!("../../assets/batterypass/GeneralProductInformation-schema.json")
            }
            Aspect::CarbonFootprintForBatteries => {
                include_str!("../../assets/batterypass/CarbonFootprintForBatteries-schema.json")
            }
            Aspect::Circularity => include_str!("../../assets/batterypass/Circularity-schema.json"),
            Aspect::MaterialComposition => {
                include_str!("../../assets/batterypass/MaterialComposition-schema.json")
            }
            Aspect::PerformanceAndDurability => {
                include_str!("../../assets/batterypass/PerformanceAndDurability-schema.json")
            }
            Aspect::Labeling => include_str!("../../assets/batterypass/Labeling-schema.json"),
            Aspect::SupplyChainDueDiligence => {
                include_str!("../../assets/batterypass/SupplyChainDueDiligence-schema.json")
            }
        }
    }

    /// The aspect's schema as published.
    pub fn schema(self) -> Result<Value, SchemaError> {
        serde_json::from_str(self.schema_text())
            .map_err(|e| SchemaError(format!("{} schema: {e}", self.name())))
    }

    fn index(self) -> usize {
        Aspect::ALL.iter().position(|a| *a == self).unwrap_or(0)
    }
}

/// A compiled-in schema that does not compile (a build defect, held by a
/// test; reported, never a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(String);

/// One reason a document is not valid: where (a JSON pointer into the
/// document) and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("{}", problems.iter().map(|p| format!("{}: {}", if p.path.is_empty() { "/" } else { &p.path }, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid { problems: Vec<Problem> },
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// Most problems reported for one document.
const MAX_PROBLEMS: usize = 50;

type Validators = [jsonschema::Validator; 7];

fn compile(partial: bool) -> Result<Validators, SchemaError> {
    let mut out = Vec::with_capacity(7);
    for a in Aspect::ALL {
        let mut schema = a.schema()?;
        if partial {
            drop_required(&mut schema);
        }
        let v = jsonschema::draft4::new(&schema)
            .map_err(|e| SchemaError(format!("{} schema does not compile: {e}", a.name())))?;
        out.push(v);
    }
    out.try_into()
        .map_err(|_| SchemaError("seven aspects, seven schemas".into()))
}

/// The schema with every `required` list removed: a partial document is
/// valid when what it holds is valid.
fn drop_required(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("required").is_some_and(Value::is_array) {
                map.remove("required");
            }
            map.values_mut().for_each(drop_required);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_required),
        _ => {}
    }
}

fn validators(partial: bool) -> Result<&'static Validators, SchemaError> {
    static FULL: OnceLock<Result<Validators, SchemaError>> = OnceLock::new();
    static PARTIAL: OnceLock<Result<Validators, SchemaError>> = OnceLock::new();
    let cell = if partial { &PARTIAL } else { &FULL };
    cell.get_or_init(|| compile(partial))
        .as_ref()
        .map_err(Clone::clone)
}

fn check(aspect: Aspect, doc: &Value, partial: bool) -> Result<(), CheckError> {
    if !doc.is_object() {
        return Err(CheckError::Invalid {
            problems: vec![Problem {
                path: String::new(),
                message: format!("a {} document is a JSON object", aspect.name()),
            }],
        });
    }
    let v = &validators(partial)?[aspect.index()];
    let problems: Vec<Problem> = v
        .iter_errors(doc)
        .take(MAX_PROBLEMS)
        .map(|e| Problem {
            path: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CheckError::Invalid { problems })
    }
}

/// Every attribute `doc` holds is valid for `aspect`; absent ones are fine.
pub fn check_partial(aspect: Aspect, doc: &Value) -> Result<(), CheckError> {
    check(aspect, doc, true)
}

/// `doc` is a whole, valid `aspect` document.
pub fn check_full(aspect: Aspect, doc: &Value) -> Result<(), CheckError> {
    check(aspect, doc, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(a: Aspect) -> Option<Value> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/batterypass")
            .join(format!("{}-payload.json", a.name()));
        std::fs::read_to_string(p)
            .ok()
            .map(|t| serde_json::from_str(&t).expect("payload JSON"))
    }

    #[test]
    fn every_schema_compiles_full_and_partial() {
        validators(false).expect("full");
        validators(true).expect("partial");
        for a in Aspect::ALL {
            assert_eq!(Aspect::parse(a.name()), Some(a));
        }
        assert_eq!(Aspect::parse("generalproductinformation"), None);
    }

    #[test]
    fn the_consortiums_payloads_are_valid_except_the_one_it_published_broken() {
        for a in Aspect::ALL {
            let Some(doc) = payload(a) else { continue };
            let full = check_full(a, &doc);
            if a == Aspect::MaterialComposition {
                // A CAS number with a trailing space, as published.
                assert!(full.is_err(), "{a:?}");
            } else {
                full.unwrap_or_else(|e| panic!("{a:?}: {e}"));
            }
        }
    }

    #[test]
    fn the_example_product_in_the_repository_is_whole_and_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/product-09506000134352");
        for a in Aspect::ALL {
            let text = std::fs::read_to_string(dir.join(format!("{}.json", a.name())))
                .unwrap_or_else(|e| panic!("{a:?}: {e}"));
            let doc: Value = serde_json::from_str(&text).expect("JSON");
            check_full(a, &doc).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        }
    }

    #[test]
    fn a_partial_document_is_valid_when_what_it_holds_is() {
        let a = Aspect::GeneralProductInformation;
        check_partial(a, &json!({})).unwrap();
        check_partial(a, &json!({"batteryMass": 12.5})).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            check_full(a, &json!({})).is_err(),
            "required attributes missing"
        );
        let e = check_partial(a, &json!({"batteryMass": "heavy"})).unwrap_err();
        let CheckError::Invalid { problems } = e else {
            panic!("invalid")
        };
        assert!(
            problems.iter().any(|p| p.path.starts_with("/batteryMass")),
            "{problems:?}"
        );
        assert!(check_partial(a, &json!([1, 2])).is_err());
    }
}
