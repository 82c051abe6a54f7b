//! Who sees which passport attribute (SPEC section 11): the Battery Pass
//! longlist's access right and granularity of every attribute, where each
//! attribute lives in the aspect documents (`assets/batterypass/access.csv`,
//! data kept in the repository), and a document cut down to what a viewer
//! may see.
//!
//! Owns: the levels (`public`, `legitimate_interest`, `authority`), the
//! role → level rule, the attribute → pointer classification, and
//! filtering. Must not: read the store or decide anything else about a
//! passport.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::aspects::Aspect;
use super::token::Role;

/// An access level, from the most open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Public,
    /// Persons with a legitimate interest (and the Commission).
    LegitimateInterest,
    /// Notified bodies, market surveillance authorities, the Commission.
    Authority,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Public => "public",
            Level::LegitimateInterest => "legitimate_interest",
            Level::Authority => "authority",
        }
    }

    /// The longlist's "access rights" column.
    fn from_longlist(s: &str) -> Option<Level> {
        let s = s.trim().to_ascii_lowercase();
        if s == "public" {
            Some(Level::Public)
        } else if s.starts_with("persons with a legitimate interest") {
            Some(Level::LegitimateInterest)
        } else if s.starts_with("notified bodies") {
            Some(Level::Authority)
        } else {
            None
        }
    }
}

/// What a caller sees: no token is public; service and recycling actors
/// have a legitimate interest; authorities, the manufacturer and admins
/// see everything. A line's token reads nothing beyond the public.
pub fn viewer(role: Option<Role>) -> Level {
    match role {
        None | Some(Role::Line) => Level::Public,
        Some(Role::Service | Role::Recycler) => Level::LegitimateInterest,
        Some(Role::Authority | Role::Manufacturer | Role::Admin) => Level::Authority,
    }
}

/// Which passport an attribute belongs to (SPEC section 2 levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Model,
    Batch,
    Item,
}

impl Granularity {
    fn from_longlist(s: &str) -> Option<Granularity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "battery model" => Some(Granularity::Model),
            "batch" | "battery batch" => Some(Granularity::Batch),
            "individual battery" => Some(Granularity::Item),
            _ => None,
        }
    }
}

/// One longlist attribute at one place in an aspect document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub number: u16,
    pub attribute: String,
    pub aspect: Aspect,
    /// Pointer segments; `*` stands for every array element.
    pub pointer: Vec<String>,
    pub level: Level,
    pub granularity: Granularity,
    /// The longlist's unit (`kg`, `%`, `kWh`, ...; empty when none).
    pub unit: String,
}

impl Rule {
    pub fn pointer_text(&self) -> String {
        self.pointer.iter().map(|s| format!("/{s}")).collect()
    }

    fn covers(&self, path: &[String]) -> bool {
        self.pointer.len() <= path.len() && self.pointer.iter().zip(path).all(|(r, p)| r == p)
    }

    fn extends(&self, path: &[String]) -> bool {
        self.pointer.len() > path.len() && self.pointer.iter().zip(path).all(|(r, p)| r == p)
    }
}

/// The classification data is malformed (a build defect, held by a test).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("passport access data: {0}")]
pub struct AccessError(String);

/// Every rule, from the compiled-in longlist and pointer table.
#[derive(Debug)]
pub struct Classification {
    rules: Vec<Rule>,
}

const LONGLIST: &str = include_str!("../../assets/batterypass/data-attributes-v1.2.csv");
const POINTERS: &str = include_str!("../../assets/batterypass/access.csv");

/// The classification, read once.
pub fn classification() -> Result<&'static Classification, AccessError> {
    static C: OnceLock<Result<Classification, AccessError>> = OnceLock::new();
    C.get_or_init(|| Classification::parse(LONGLIST, POINTERS))
        .as_ref()
        .map_err(Clone::clone)
}

impl Classification {
    fn parse(longlist: &str, pointers: &str) -> Result<Classification, AccessError> {
        let bad = |m: String| AccessError(m);
        let mut attrs = std::collections::BTreeMap::new();
        let mut rdr = csv::Reader::from_reader(longlist.as_bytes());
        for rec in rdr.records() {
            let rec = rec.map_err(|e| bad(format!("longlist: {e}")))?;
            let field = |i: usize| rec.get(i).unwrap_or_default().to_string();
            let number: u16 = field(0)
                .parse()
                .map_err(|_| bad(format!("longlist number {:?}", field(0))))?;
            let level = Level::from_longlist(&field(7))
                .ok_or_else(|| bad(format!("attribute {number}: access {:?}", field(7))))?;
            let gran = Granularity::from_longlist(&field(10))
                .ok_or_else(|| bad(format!("attribute {number}: granularity {:?}", field(10))))?;
            let unit = field(5);
            let unit = if unit.trim().eq_ignore_ascii_case("n.a.") {
                String::new()
            } else {
                unit.trim().to_string()
            };
            attrs.insert(number, (field(4), level, gran, unit));
        }
        let body: String = pointers
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let mut rdr = csv::Reader::from_reader(body.as_bytes());
        let mut rules = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| bad(format!("access.csv: {e}")))?;
            let (n, a, p) = (
                rec.get(0).unwrap_or_default(),
                rec.get(1).unwrap_or_default(),
                rec.get(2).unwrap_or_default(),
            );
            let number: u16 = n
                .parse()
                .map_err(|_| bad(format!("access.csv number {n:?}")))?;
            let (attribute, level, granularity, unit) = attrs
                .get(&number)
                .cloned()
                .ok_or_else(|| bad(format!("access.csv: no longlist attribute {number}")))?;
            let aspect =
                Aspect::parse(a).ok_or_else(|| bad(format!("access.csv: aspect {a:?}")))?;
            let pointer: Vec<String> = p
                .strip_prefix('/')
                .ok_or_else(|| bad(format!("access.csv: pointer {p:?}")))?
                .split('/')
                .map(str::to_string)
                .collect();
            rules.push(Rule {
                number,
                attribute,
                aspect,
                pointer,
                level,
                granularity,
                unit,
            });
        }
        Ok(Classification { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The most specific rule covering `path` (ties: the most restrictive).
    pub fn rule(&self, aspect: Aspect, path: &[String]) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| r.aspect == aspect && r.covers(path))
            .max_by_key(|r| (r.pointer.len(), r.level))
    }

    /// The level of the attribute at `path`; an unclassified place is
    /// `authority` (never shown by mistake).
    pub fn level(&self, aspect: Aspect, path: &[String]) -> Level {
        self.rule(aspect, path)
            .map_or(Level::Authority, |r| r.level)
    }

    fn deeper(&self, aspect: Aspect, path: &[String]) -> bool {
        self.rules
            .iter()
            .any(|r| r.aspect == aspect && r.extends(path))
    }

    /// `doc` with only what `viewer` may see; `None` when that is nothing.
    pub fn filter(&self, aspect: Aspect, doc: &Value, viewer: Level) -> Option<Value> {
        self.filter_for(aspect, doc, viewer, Granularity::Item)
    }

    /// [`Classification::filter`] for a passport of `granularity`: a
    /// model's passport holds the model attributes, a batch's the model's
    /// and the batch's, a unit's all.
    pub fn filter_for(
        &self,
        aspect: Aspect,
        doc: &Value,
        viewer: Level,
        granularity: Granularity,
    ) -> Option<Value> {
        self.filter_at(aspect, &mut Vec::new(), doc, (viewer, granularity))
    }

    /// Whether the attribute at `path` is shown; an unclassified place only
    /// to those who see everything, on a unit's passport.
    fn shown(&self, aspect: Aspect, path: &[String], (viewer, g): (Level, Granularity)) -> bool {
        match self.rule(aspect, path) {
            Some(r) => r.level <= viewer && r.granularity <= g,
            None => viewer == Level::Authority && g == Granularity::Item,
        }
    }

    fn filter_at(
        &self,
        aspect: Aspect,
        path: &mut Vec<String>,
        node: &Value,
        viewer: (Level, Granularity),
    ) -> Option<Value> {
        if !self.deeper(aspect, path) {
            return self.shown(aspect, path, viewer).then(|| node.clone());
        }
        match node {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    path.push(k.clone());
                    if let Some(kept) = self.filter_at(aspect, path, v, viewer) {
                        out.insert(k.clone(), kept);
                    }
                    path.pop();
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Value::Array(items) => {
                path.push("*".into());
                let out: Vec<Value> = items
                    .iter()
                    .filter_map(|v| self.filter_at(aspect, path, v, viewer))
                    .collect();
                path.pop();
                (!out.is_empty()).then_some(Value::Array(out))
            }
            leaf => self.shown(aspect, path, viewer).then(|| leaf.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> &'static Classification {
        classification().expect("the access data parses")
    }

    fn payload(a: Aspect) -> Option<Value> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/batterypass")
            .join(format!("{}-payload.json", a.name()));
        let text = std::fs::read_to_string(p).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(r) = node.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let mut n = root;
            for seg in r.trim_start_matches("#/").split('/') {
                n = &n[seg];
            }
            node = n;
        }
        node
    }

    /// Every property path of a schema (arrays as `*`), to `depth`.
    fn schema_paths(root: &Value, node: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        let node = resolve(root, node);
        if path.len() > 6 {
            return;
        }
        if let Some(items) = node.get("items") {
            let mut p = path.clone();
            p.push("*".into());
            schema_paths(root, items, p, out);
        }
        for part in node
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            schema_paths(root, part, path.clone(), out);
        }
        for (k, v) in node
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let mut p = path.clone();
            p.push(k.clone());
            out.push(p.clone());
            schema_paths(root, v, p, out);
        }
    }

    #[test]
    fn every_longlist_attribute_has_a_place_and_every_schema_property_a_level() {
        let mapped: std::collections::BTreeSet<u16> =
            c().rules().iter().map(|r| r.number).collect();
        for n in 1..=93u16 {
            assert!(n == 26 || mapped.contains(&n), "attribute {n} has no place");
        }
        for a in Aspect::ALL {
            let schema = a.schema().unwrap();
            let mut paths = Vec::new();
            schema_paths(&schema, &schema, Vec::new(), &mut paths);
            assert!(!paths.is_empty(), "{a:?}");
            for p in &paths {
                assert!(
                    c().rule(a, p).is_some() || c().deeper(a, p),
                    "{a:?} /{} is not classified",
                    p.join("/")
                );
            }
            for r in c().rules().iter().filter(|r| r.aspect == a) {
                assert!(
                    paths.contains(&r.pointer),
                    "attribute {} points at {} which {a:?}'s schema does not have",
                    r.number,
                    r.pointer_text()
                );
            }
        }
    }

    #[test]
    fn the_longlists_levels_are_kept() {
        let at = |a, p: &str| {
            let path: Vec<String> = p.split('/').skip(1).map(str::to_string).collect();
            c().level(a, &path)
        };
        use Aspect::*;
        assert_eq!(at(GeneralProductInformation, "/batteryMass"), Level::Public);
        assert_eq!(
            at(GeneralProductInformation, "/batteryStatus"),
            Level::LegitimateInterest
        );
        assert_eq!(
            at(GeneralProductInformation, "/puttingIntoService/x"),
            Level::LegitimateInterest
        );
        assert_eq!(at(Labeling, "/resultOfTestReport"), Level::Authority);
        assert_eq!(
            at(
                MaterialComposition,
                "/batteryMaterials/*/batteryMaterialMass"
            ),
            Level::LegitimateInterest
        );
        assert_eq!(
            at(
                MaterialComposition,
                "/batteryMaterials/*/isCriticalRawMaterial"
            ),
            Level::Public
        );
        assert_eq!(
            at(PerformanceAndDurability, "/batteryCondition/stateOfCharge"),
            Level::LegitimateInterest
        );
        assert_eq!(
            at(
                PerformanceAndDurability,
                "/batteryTechicalProperties/ratedCapacity"
            ),
            Level::Public
        );
        assert_eq!(
            at(Circularity, "/nothing"),
            Level::Authority,
            "unclassified: most restrictive"
        );
        assert_eq!(viewer(None), Level::Public);
        assert_eq!(viewer(Some(Role::Recycler)), Level::LegitimateInterest);
        assert_eq!(viewer(Some(Role::Authority)), Level::Authority);
        assert_eq!(viewer(Some(Role::Line)), Level::Public);
    }

    /// Every leaf left in `doc` is visible to `viewer`.
    fn assert_visible(a: Aspect, doc: &Value, viewer: Level, path: &mut Vec<String>) {
        match doc {
            Value::Object(m) => m.iter().for_each(|(k, v)| {
                path.push(k.clone());
                assert_visible(a, v, viewer, path);
                path.pop();
            }),
            Value::Array(items) => {
                path.push("*".into());
                items
                    .iter()
                    .for_each(|v| assert_visible(a, v, viewer, path));
                path.pop();
            }
            _ => assert!(
                c().level(a, path) <= viewer,
                "{a:?} /{} ({:?}) shown to {viewer:?}",
                path.join("/"),
                c().level(a, path)
            ),
        }
    }

    #[test]
    fn each_viewer_sees_exactly_its_attributes_of_every_aspect() {
        for a in Aspect::ALL {
            let Some(doc) = payload(a) else { continue };
            assert_eq!(
                c().filter(a, &doc, Level::Authority),
                Some(doc.clone()),
                "{a:?}"
            );
            for v in [Level::Public, Level::LegitimateInterest] {
                if let Some(seen) = c().filter(a, &doc, v) {
                    assert_visible(a, &seen, v, &mut Vec::new());
                }
            }
        }
        let gpi = payload(Aspect::GeneralProductInformation).unwrap();
        let public = c()
            .filter(Aspect::GeneralProductInformation, &gpi, Level::Public)
            .unwrap();
        assert!(public.get("batteryStatus").is_none());
        assert!(public.get("batteryMass").is_some());
        let li = c()
            .filter(
                Aspect::GeneralProductInformation,
                &gpi,
                Level::LegitimateInterest,
            )
            .unwrap();
        assert!(li.get("batteryStatus").is_some());
        let model = c()
            .filter_for(
                Aspect::GeneralProductInformation,
                &gpi,
                Level::Authority,
                Granularity::Model,
            )
            .unwrap();
        assert!(model.get("batteryMass").is_some(), "a model attribute");
        for unit_only in [
            "manufacturingDate",
            "batteryPassportIdentifier",
            "batteryStatus",
        ] {
            assert!(model.get(unit_only).is_none(), "{unit_only} is per battery");
        }
        let lab = payload(Aspect::Labeling).unwrap();
        let public = c().filter(Aspect::Labeling, &lab, Level::Public).unwrap();
        assert!(public.get("resultOfTestReport").is_none());
        assert!(public.get("labels").is_some());
    }
}
