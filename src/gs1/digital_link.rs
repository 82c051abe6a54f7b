//! GS1 Digital Link URIs (SPEC section 3): building the URI a QR code
//! carries and parsing one a scanner read.
//!
//! Owns: path order `01, 22, 10, 21`, percent-encoding, resolver handling.
//! Must not: decide the passport level (the caller gives the identity).

use super::{ai, Gs1Error, Gtin, Identity};

/// Bytes that stay literal in a path segment; every other byte is `%HH`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `value` percent-encoded with upper-case hex.
pub fn percent_encode_into(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Decodes `%HH` escapes (either case); anything else malformed is an error.
pub fn percent_decode(seg: &str) -> Result<String, Gs1Error> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Gs1Error::PercentEncoding(seg.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Gs1Error::PercentEncoding(seg.to_string()))
}

/// `{resolver}/01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]`.
///
/// The resolver is used as given (config validation strips nothing: it
/// refuses a trailing slash). Qualifier values must already be valid (see
/// [`Identity::validate`]); they are percent-encoded here.
pub fn build_uri(resolver: &str, id: &Identity) -> String {
    let mut s = String::with_capacity(resolver.len() + 64);
    s.push_str(resolver);
    s.push_str("/01/");
    s.push_str(id.gtin.as_str());
    for (ai, v) in [("22", &id.cpv), ("10", &id.lot), ("21", &id.serial)] {
        if let Some(v) = v {
            s.push('/');
            s.push_str(ai);
            s.push('/');
            percent_encode_into(&mut s, v);
        }
    }
    s
}

/// Parses a Digital Link URI into its resolver and identity.
///
/// Accepts `http` and `https`, any resolver path prefix, GTIN-8/12/13/14
/// (normalised), qualifiers in the fixed order only, and ignores a query
/// string or fragment (they carry data attributes, not identity).
pub fn parse_uri(uri: &str) -> Result<(String, Identity), Gs1Error> {
    let uri = uri.trim();
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .or_else(|| uri.strip_prefix("HTTPS://"))
        .or_else(|| uri.strip_prefix("HTTP://"))
        .ok_or_else(|| {
            Gs1Error::NotDigitalLink(format!("{uri:?} does not start with http:// or https://"))
        })?;
    let scheme_len = uri.len() - rest.len();
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(Gs1Error::NotDigitalLink(format!("{uri:?} has no host")));
    }
    let segs: Vec<&str> = path.split('/').collect();
    let pos = segs
        .iter()
        .position(|s| *s == "01")
        .ok_or_else(|| Gs1Error::NoGtin(uri.to_string()))?;
    let prefix_len: usize = segs[..pos].iter().map(|s| s.len() + 1).sum();
    let resolver = uri[..scheme_len + authority.len() + prefix_len].to_string();

    let gtin_seg = segs
        .get(pos + 1)
        .ok_or_else(|| Gs1Error::NoGtin(uri.to_string()))?;
    let gtin = Gtin::parse(&percent_decode(gtin_seg)?)?;
    let mut id = Identity {
        gtin,
        cpv: None,
        lot: None,
        serial: None,
    };
    let order = ["22", "10", "21"];
    let mut next_allowed = 0;
    let mut i = pos + 2;
    while i < segs.len() {
        let key = segs[i];
        if key.is_empty() && i == segs.len() - 1 {
            break; // a trailing slash written by someone else's printer
        }
        let rank = order.iter().position(|k| *k == key).ok_or_else(|| {
            Gs1Error::NotDigitalLink(format!("unexpected path segment {key:?} in {uri:?}"))
        })?;
        if rank < next_allowed {
            return Err(Gs1Error::QualifierOrder(uri.to_string()));
        }
        next_allowed = rank + 1;
        let raw = segs.get(i + 1).filter(|v| !v.is_empty()).ok_or_else(|| {
            Gs1Error::NotDigitalLink(format!("AI ({key}) without a value in {uri:?}"))
        })?;
        let value = percent_decode(raw)?;
        ai::check_value(key, &value)?;
        match key {
            "22" => id.cpv = Some(value),
            "10" => id.lot = Some(value),
            _ => id.serial = Some(value),
        }
        i += 2;
    }
    Ok((resolver, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gs1::Level;
    use proptest::prelude::*;

    fn gtin() -> Gtin {
        Gtin::parse("09506000134352").unwrap()
    }

    #[test]
    fn item_level_uri_has_lot_then_serial() {
        let id = Identity::for_unit(gtin(), Level::Item, Some("L2026-11"), "4Q8ZK1M0T7XCB");
        assert_eq!(
            build_uri("https://id.example.com", &id),
            "https://id.example.com/01/09506000134352/10/L2026-11/21/4Q8ZK1M0T7XCB"
        );
    }

    #[test]
    fn batch_and_model_levels_leave_out_the_serial() {
        let b = Identity::for_unit(gtin(), Level::Batch, Some("L1"), "4Q8ZK1M0T7XCB");
        assert_eq!(
            build_uri("https://r.example", &b),
            "https://r.example/01/09506000134352/10/L1"
        );
        let m = Identity::for_unit(gtin(), Level::Model, None, "4Q8ZK1M0T7XCB");
        assert_eq!(
            build_uri("https://r.example", &m),
            "https://r.example/01/09506000134352"
        );
    }

    #[test]
    fn lot_with_reserved_characters_is_percent_encoded_as_the_spec_says() {
        let id = Identity::for_unit(gtin(), Level::Item, Some("AB/7%"), "4Q8ZK1M0T7XCB");
        let uri = build_uri("https://id.example.com", &id);
        assert_eq!(
            uri,
            "https://id.example.com/01/09506000134352/10/AB%2F7%25/21/4Q8ZK1M0T7XCB"
        );
        let (resolver, back) = parse_uri(&uri).unwrap();
        assert_eq!(resolver, "https://id.example.com");
        assert_eq!(back, id);
    }

    #[test]
    fn gs1_published_digital_link_examples_parse() {
        // From the GS1 Digital Link standard and GS1's EPCIS examples.
        let (r, id) = parse_uri("https://id.gs1.org/01/09506000134352/10/ABC123/21/12345").unwrap();
        assert_eq!(r, "https://id.gs1.org");
        assert_eq!(id.gtin.as_str(), "09506000134352");
        assert_eq!(id.lot.as_deref(), Some("ABC123"));
        assert_eq!(id.serial.as_deref(), Some("12345"));
        let (_, id) = parse_uri("https://example.com/01/9506000134352").unwrap();
        assert_eq!(id.gtin.as_str(), "09506000134352");
        let (r, id) =
            parse_uri("https://example.com/some/prefix/01/09506000134352/22/2A/21/X?17=261231")
                .unwrap();
        assert_eq!(r, "https://example.com/some/prefix");
        assert_eq!(id.cpv.as_deref(), Some("2A"));
    }

    #[test]
    fn malformed_uris_are_refused_with_the_reason() {
        assert!(matches!(
            parse_uri("ftp://x/01/09506000134352"),
            Err(Gs1Error::NotDigitalLink(_))
        ));
        assert!(matches!(
            parse_uri("https://x/02/09506000134352"),
            Err(Gs1Error::NoGtin(_))
        ));
        assert!(matches!(
            parse_uri("https://x/01/09506000134353"),
            Err(Gs1Error::GtinCheckDigit { .. })
        ));
        assert!(matches!(
            parse_uri("https://x/01/09506000134352/21/A/10/B"),
            Err(Gs1Error::QualifierOrder(_))
        ));
        assert!(matches!(
            parse_uri("https://x/01/09506000134352/10/AB%2"),
            Err(Gs1Error::PercentEncoding(_))
        ));
        assert!(matches!(
            parse_uri("https://x/01/09506000134352/10/A%20B"),
            Err(Gs1Error::Charset { .. })
        ));
        assert!(matches!(
            parse_uri("https://x/01/09506000134352/10"),
            Err(Gs1Error::NotDigitalLink(_))
        ));
        assert!(matches!(
            parse_uri("https://x/01/09506000134352/99/1"),
            Err(Gs1Error::NotDigitalLink(_))
        ));
    }

    proptest! {
        #[test]
        fn any_valid_lot_round_trips_through_the_uri(lot in "[!\"%&'()*+,\\-./0-9:;<=>?_A-Za-z]{1,20}") {
            let id = Identity::for_unit(gtin(), Level::Item, Some(&lot), "4Q8ZK1M0T7XCB");
            id.validate().unwrap();
            let uri = build_uri("https://id.example.com", &id);
            prop_assert!(uri.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(!uri.ends_with('/'));
            let (_, back) = parse_uri(&uri).unwrap();
            prop_assert_eq!(back, id);
        }
    }
}
