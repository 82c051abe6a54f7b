//! The GS1 Digital Link resolver's decisions (SPEC section 11; the
//! GS1-Conformant resolver standard): which answer a request for
//! `/01/{gtin}[/10/{lot}][/21/{id}]` gets, given what the store knows.
//!
//! Owns: reading the path, the links offered (a unit's passport as its
//! default link, then the product's configured links), `linkType`
//! selection (CURIE or URI), the language choice by `Accept-Language`,
//! the `Link` header, the RFC 9264 linkset (link relations as full URIs,
//! as GS1's schema requires) and the resolver description file.
//! Must not: do IO; the HTTP side looks the unit up and sends the answer.

use serde_json::{json, Map, Value};

use super::config::{Link, ProductInfo};
use crate::gs1::{self, Gs1Error, Identity};

/// GS1's web vocabulary: `gs1:pip` is `https://gs1.org/voc/pip`.
pub const GS1_VOC: &str = "https://gs1.org/voc/";

/// The link type of a unit's passport page (its default link).
pub const PASSPORT_REL: &str = "gs1:defaultLink";

/// A link type written as a full URI.
pub fn rel_uri(rel: &str) -> String {
    match rel.strip_prefix("gs1:") {
        Some(term) => format!("{GS1_VOC}{term}"),
        None => rel.to_string(),
    }
}

/// What the path asks for.
pub fn parse_path(public_base: &str, path: &str) -> Result<Identity, Gs1Error> {
    let (_, id) = gs1::parse_uri(&format!("{public_base}{path}"))?;
    Ok(id)
}

/// What the store knows about the identity's unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitKnown {
    /// The request names no unit (`/01/{gtin}` or `/01/{gtin}/10/{lot}`).
    NoUnit,
    /// A unit with a passport.
    Known { unit_id: String },
    /// A `/21/` the store has no passport for.
    Unknown,
}

/// The request's options.
#[derive(Debug, Clone, Default)]
pub struct Asked<'a> {
    /// `linkType=` (`linkset`, `all`, a CURIE or a URI).
    pub link_type: Option<&'a str>,
    /// `Accept` includes `application/linkset+json`.
    pub wants_linkset: bool,
    /// `Accept-Language`, as sent.
    pub accept_language: Option<&'a str>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `307` to `location`, with the `Link` header.
    Redirect { location: String, link: String },
    /// `200` with the linkset.
    Linkset { body: Value, link: String },
    /// `404` with a reason (and, for an unknown unit, the counterfeit warning).
    NotFound { reason: String, counterfeit: bool },
}

/// One offered link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub rel: String,
    pub href: String,
    pub title: String,
    pub lang: Option<String>,
}

/// The links offered for an identity: its passport first (its default:
/// the unit's, or for a product the model's, with a lot the batch's), then
/// the product's links in config order.
pub fn offered(
    public_base: &str,
    id: &Identity,
    product: Option<&ProductInfo>,
    unit: &UnitKnown,
) -> Vec<Offered> {
    let mut links = Vec::new();
    match (unit, product, &id.lot) {
        (UnitKnown::Known { unit_id }, _, _) => links.push(Offered {
            rel: PASSPORT_REL.into(),
            href: format!("{public_base}/passports/{unit_id}"),
            title: "Battery passport".into(),
            lang: None,
        }),
        (UnitKnown::NoUnit, Some(p), None) => links.push(Offered {
            rel: PASSPORT_REL.into(),
            href: format!("{public_base}/models/{}", p.gtin.as_str()),
            title: "Battery model passport".into(),
            lang: None,
        }),
        (UnitKnown::NoUnit, Some(p), Some(lot)) => links.push(Offered {
            rel: PASSPORT_REL.into(),
            href: format!("{public_base}/models/{}/batches/{}", p.gtin.as_str(), {
                let mut l = String::new();
                gs1::digital_link::percent_encode_into(&mut l, lot);
                l
            }),
            title: "Battery batch passport".into(),
            lang: None,
        }),
        _ => {}
    }
    for Link {
        rel,
        href,
        title,
        lang,
    } in product.map(|p| p.links.as_slice()).unwrap_or_default()
    {
        links.push(Offered {
            rel: rel.clone(),
            href: href.clone(),
            title: title.clone(),
            lang: lang.clone(),
        });
    }
    links
}

/// Languages by preference from an `Accept-Language` value (`q` order,
/// then the order written), lower case.
pub fn languages(header: Option<&str>) -> Vec<String> {
    let mut langs: Vec<(f32, usize, String)> = header
        .unwrap_or_default()
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut bits = part.split(';');
            let tag = bits.next()?.trim().to_ascii_lowercase();
            if tag.is_empty() || tag == "*" {
                return None;
            }
            let q = bits
                .filter_map(|b| b.trim().strip_prefix("q="))
                .find_map(|v| v.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, i, tag))
        })
        .collect();
    langs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    langs.into_iter().map(|(_, _, t)| t).collect()
}

/// Of several links, the one in the most preferred language (`de-AT`
/// matches `de`), else the first.
fn pick<'a>(links: &[&'a Offered], prefs: &[String]) -> Option<&'a Offered> {
    for want in prefs {
        let primary = want.split('-').next().unwrap_or(want);
        if let Some(l) = links.iter().find(|l| {
            l.lang.as_deref().is_some_and(|have| {
                let have = have.to_ascii_lowercase();
                have == *want || have.split('-').next() == Some(primary)
            })
        }) {
            return Some(l);
        }
    }
    links.first().copied()
}

/// The `Link` header: every offered link, and the linkset itself.
pub fn link_header(anchor: &str, links: &[Offered]) -> String {
    let mut parts: Vec<String> = links
        .iter()
        .map(|l| {
            let mut p = format!("<{}>; rel=\"{}\"", l.href, rel_uri(&l.rel));
            if !l.title.is_empty() {
                p.push_str(&format!("; title=\"{}\"", l.title.replace('"', "'")));
            }
            if let Some(lang) = &l.lang {
                p.push_str(&format!("; hreflang=\"{lang}\""));
            }
            p
        })
        .collect();
    parts.push(format!(
        "<{anchor}?linkType=linkset>; rel=\"linkset\"; type=\"application/linkset+json\""
    ));
    parts.join(", ")
}

/// The RFC 9264 linkset for `anchor`, valid against GS1's schema.
pub fn linkset(anchor: &str, description: Option<&str>, links: &[Offered]) -> Value {
    let mut ctx = Map::new();
    ctx.insert("anchor".into(), json!(anchor));
    if let Some(d) = description {
        ctx.insert("itemDescription".into(), json!(d));
    }
    for l in links {
        let mut target = Map::new();
        target.insert("href".into(), json!(l.href));
        // GS1's schema wants a title on every link.
        let title = if l.title.is_empty() {
            &l.href
        } else {
            &l.title
        };
        target.insert("title".into(), json!(title));
        if let Some(lang) = &l.lang {
            target.insert("hreflang".into(), json!([lang]));
        }
        let entry = ctx.entry(rel_uri(&l.rel)).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            a.push(Value::Object(target));
        }
    }
    json!({ "linkset": [Value::Object(ctx)] })
}

/// The answer to a resolver request for `id` (already parsed).
pub fn decide(
    public_base: &str,
    id: &Identity,
    product: Option<&ProductInfo>,
    unit: &UnitKnown,
    asked: &Asked<'_>,
) -> Answer {
    if *unit == UnitKnown::Unknown {
        return Answer::NotFound {
            reason: format!(
                "unit {} of GTIN {} is unknown: no line of this manufacturer made it. The label may be counterfeit or damaged.",
                id.serial.as_deref().unwrap_or_default(),
                id.gtin.as_str()
            ),
            counterfeit: true,
        };
    }
    if product.is_none() && *unit == UnitKnown::NoUnit {
        return Answer::NotFound {
            reason: format!(
                "GTIN {} is not a product of this resolver",
                id.gtin.as_str()
            ),
            counterfeit: false,
        };
    }
    let anchor = gs1::build_uri(public_base, id);
    let links = offered(public_base, id, product, unit);
    let link = link_header(&anchor, &links);
    let want_set = asked.wants_linkset || matches!(asked.link_type, Some("linkset") | Some("all"));
    if want_set {
        let body = linkset(&anchor, product.map(|p| p.name.as_str()), &links);
        return Answer::Linkset { body, link };
    }
    let prefs = languages(asked.accept_language);
    let chosen = match asked.link_type {
        None => {
            // The default: the first link type offered, in the preferred language.
            let first_rel = links.first().map(|l| rel_uri(&l.rel));
            let same: Vec<&Offered> = links
                .iter()
                .filter(|l| Some(rel_uri(&l.rel)) == first_rel)
                .collect();
            pick(&same, &prefs)
        }
        Some(t) => {
            let want = rel_uri(t);
            let same: Vec<&Offered> = links.iter().filter(|l| rel_uri(&l.rel) == want).collect();
            if same.is_empty() {
                return Answer::NotFound {
                    reason: format!("no link of type {t} is offered for {anchor}"),
                    counterfeit: false,
                };
            }
            pick(&same, &prefs)
        }
    };
    match chosen {
        Some(l) => Answer::Redirect {
            location: l.href.clone(),
            link,
        },
        None => Answer::NotFound {
            reason: format!("no link is offered for {anchor}"),
            counterfeit: false,
        },
    }
}

/// `/.well-known/gs1resolver`: the resolver description file.
pub fn description(public_base: &str) -> Value {
    json!({
        "name": "linemark-central",
        "resolverRoot": public_base,
        "supportedPrimaryKeys": ["gtin"],
        "supportedLinkType": [
            { "namespace": GS1_VOC, "prefix": "gs1:", "profile": format!("{GS1_VOC}?show=linktypes") }
        ],
        "linkTypeDefaultCanBeLinkset": false,
        "supportsMultiAIPaths": true,
        "supportedContextValuesEnumerated": [],
        "validatingResolverAPI": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gs1::Gtin;

    const BASE: &str = "https://id.example.com";

    fn product() -> ProductInfo {
        ProductInfo {
            gtin: Gtin::parse("09506000134352").unwrap(),
            name: "PACK-48V battery pack".into(),
            links: vec![
                Link {
                    rel: "gs1:pip".into(),
                    href: "https://www.example.com/en/packs".into(),
                    title: "Product page".into(),
                    lang: Some("en".into()),
                },
                Link {
                    rel: "gs1:pip".into(),
                    href: "https://www.example.com/de/packs".into(),
                    title: "Produktseite".into(),
                    lang: Some("de".into()),
                },
                Link {
                    rel: "https://gs1.org/voc/instructions".into(),
                    href: "https://www.example.com/manual.pdf".into(),
                    title: "Manual".into(),
                    lang: None,
                },
            ],
        }
    }

    fn id(path: &str) -> Identity {
        parse_path(BASE, path).unwrap()
    }

    fn known() -> UnitKnown {
        UnitKnown::Known {
            unit_id: "V700QW11S6PJ4".into(),
        }
    }

    #[test]
    fn a_known_unit_redirects_to_its_passport_and_lists_every_link() {
        let a = decide(
            BASE,
            &id("/01/09506000134352/21/V700QW11S6PJ4"),
            Some(&product()),
            &known(),
            &Asked::default(),
        );
        let Answer::Redirect { location, link } = a else {
            panic!("{a:?}")
        };
        assert_eq!(location, "https://id.example.com/passports/V700QW11S6PJ4");
        assert!(
            link.contains("<https://www.example.com/de/packs>; rel=\"https://gs1.org/voc/pip\""),
            "{link}"
        );
        assert!(link.contains("rel=\"linkset\""), "{link}");
    }

    #[test]
    fn a_product_leads_to_its_model_passport_and_a_lot_to_its_batch_passport() {
        let p = product();
        let go = |path: &str| match decide(
            BASE,
            &id(path),
            Some(&p),
            &UnitKnown::NoUnit,
            &Asked::default(),
        ) {
            Answer::Redirect { location, .. } => location,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            go("/01/09506000134352"),
            "https://id.example.com/models/09506000134352"
        );
        assert_eq!(
            go("/01/09506000134352/10/L%2F7"),
            "https://id.example.com/models/09506000134352/batches/L%2F7"
        );
    }

    #[test]
    fn a_product_redirects_to_its_first_link_in_the_preferred_language() {
        let p = product();
        let gtin = id("/01/09506000134352");
        let go = |lang: Option<&str>, t: Option<&str>| match decide(
            BASE,
            &gtin,
            Some(&p),
            &UnitKnown::NoUnit,
            &Asked {
                accept_language: lang,
                link_type: t,
                ..Default::default()
            },
        ) {
            Answer::Redirect { location, .. } => location,
            other => panic!("{other:?}"),
        };
        // The default is the model passport; the product page by link type.
        assert_eq!(
            go(None, None),
            "https://id.example.com/models/09506000134352"
        );
        assert_eq!(
            go(None, Some("gs1:pip")),
            "https://www.example.com/en/packs"
        );
        assert_eq!(
            go(Some("de-AT,de;q=0.9,en;q=0.5"), Some("gs1:pip")),
            "https://www.example.com/de/packs"
        );
        assert_eq!(
            go(Some("fr, en;q=0.1"), Some("gs1:pip")),
            "https://www.example.com/en/packs"
        );
        assert_eq!(
            go(Some("de"), Some("gs1:instructions")),
            "https://www.example.com/manual.pdf"
        );
        assert_eq!(
            go(None, Some("https://gs1.org/voc/instructions")),
            "https://www.example.com/manual.pdf"
        );
        let lot = id("/01/09506000134352/10/L7");
        assert!(matches!(
            decide(BASE, &lot, Some(&p), &UnitKnown::NoUnit, &Asked::default()),
            Answer::Redirect { .. }
        ));
    }

    #[test]
    fn unknown_units_gtins_and_link_types_are_404_and_an_unknown_unit_warns() {
        let p = product();
        let a = decide(
            BASE,
            &id("/01/09506000134352/21/FTY8JWEQF4GZ0"),
            Some(&p),
            &UnitKnown::Unknown,
            &Asked::default(),
        );
        assert!(
            matches!(
                a,
                Answer::NotFound {
                    counterfeit: true,
                    ..
                }
            ),
            "{a:?}"
        );
        let a = decide(
            BASE,
            &id("/01/09506000134369"),
            None,
            &UnitKnown::NoUnit,
            &Asked::default(),
        );
        assert!(
            matches!(
                a,
                Answer::NotFound {
                    counterfeit: false,
                    ..
                }
            ),
            "{a:?}"
        );
        let a = decide(
            BASE,
            &id("/01/09506000134352"),
            Some(&p),
            &UnitKnown::NoUnit,
            &Asked {
                link_type: Some("gs1:recipeInfo"),
                ..Default::default()
            },
        );
        assert!(matches!(a, Answer::NotFound { .. }), "{a:?}");
        assert!(
            parse_path(BASE, "/01/09506000134353").is_err(),
            "bad check digit"
        );
    }

    #[test]
    fn the_linkset_uses_full_uris_and_groups_links_by_type() {
        let a = decide(
            BASE,
            &id("/01/09506000134352/10/L7/21/V700QW11S6PJ4"),
            Some(&product()),
            &known(),
            &Asked {
                wants_linkset: true,
                ..Default::default()
            },
        );
        let Answer::Linkset { body, .. } = a else {
            panic!("{a:?}")
        };
        let ctx = &body["linkset"][0];
        assert_eq!(
            ctx["anchor"],
            "https://id.example.com/01/09506000134352/10/L7/21/V700QW11S6PJ4"
        );
        assert_eq!(ctx["https://gs1.org/voc/pip"].as_array().unwrap().len(), 2);
        assert_eq!(
            ctx["https://gs1.org/voc/defaultLink"][0]["href"],
            "https://id.example.com/passports/V700QW11S6PJ4"
        );
        assert_eq!(ctx["https://gs1.org/voc/pip"][1]["hreflang"][0], "de");
    }

    #[test]
    fn accept_language_is_read_by_q_then_order() {
        assert_eq!(languages(Some("en;q=0.5, de-AT, fr;q=0")), ["de-at", "en"]);
        assert!(languages(Some("*")).is_empty());
        assert!(languages(None).is_empty());
    }
}
