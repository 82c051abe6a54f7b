use super::decoder::Decoded;
use super::*;
use proptest::prelude::*;

/// Owned form of what the decoder yields, for comparisons.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Frame(Vec<u8>),
    TooLong,
}

fn frames(input: &[u8]) -> Vec<Out> {
    let mut d = FrameDecoder::new();
    d.push(input);
    let mut out = Vec::new();
    while let Some(x) = d.next() {
        out.push(match x {
            Decoded::Frame(f) => Out::Frame(f.to_vec()),
            Decoded::TooLong => Out::TooLong,
        });
    }
    out
}

#[test]
fn checksum_worked_example() {
    // The example of hardware-notes/station-protocol.md.
    assert_eq!(checksum(b"PING"), 0x50 ^ 0x49 ^ 0x4E ^ 0x47);
    assert_eq!(format!("{:02X}", checksum(b"PING")), "10");
    assert_eq!(encode_request("PING", &[]), b"PING*10\r\n");
    assert_eq!(Response::ok().to_bytes(), b"OK*04\r\n");
}

#[test]
fn cr_lf_and_bare_lf_both_end_frames() {
    assert_eq!(
        frames(b"PING\r\nHELLO\nSTATUS"),
        vec![Out::Frame(b"PING".to_vec()), Out::Frame(b"HELLO".to_vec())]
    );
}

#[test]
fn frames_split_across_many_pushes_are_reassembled() {
    let mut d = FrameDecoder::new();
    let frame = encode_request("ALLOC", &[("product", "PACK-48V"), ("lot", "L 1")]);
    for b in &frame[..frame.len() - 2] {
        d.push(&[*b]);
        assert_eq!(d.next(), None);
    }
    d.push(b"\r");
    let Some(Decoded::Frame(f)) = d.next() else {
        panic!("no frame")
    };
    let r = parse(f, true).unwrap();
    assert_eq!(r.get("lot"), Some("L 1"));
    // The LF of that CR LF, arriving alone, is not an empty frame.
    d.push(b"\n");
    assert_eq!(d.next(), None);
    d.push(b"PING\n");
    assert_eq!(d.next(), Some(Decoded::Frame(b"PING")));
}

#[test]
fn a_lone_cr_ends_a_frame_like_lf_and_cr_lf() {
    assert_eq!(
        frames(b"PING\rHELLO\r\nSTATUS\nPING\r\rPING"),
        vec![
            Out::Frame(b"PING".to_vec()),
            Out::Frame(b"HELLO".to_vec()),
            Out::Frame(b"STATUS".to_vec()),
            Out::Frame(b"PING".to_vec()),
            Out::Frame(b"".to_vec()),
        ]
    );
}

#[test]
fn over_long_frames_are_reported_once_and_the_next_frame_is_read() {
    let mut input = vec![b'A'; 5000];
    input.extend_from_slice(b"\r\nPING\r\n");
    assert_eq!(
        frames(&input),
        vec![Out::TooLong, Out::Frame(b"PING".to_vec())]
    );
    // Exactly 1024 bytes with CR LF is fine; 1025 is not.
    let mut ok = vec![b'X'; 1022];
    ok.extend_from_slice(b"\r\n");
    assert!(matches!(frames(&ok)[0], Out::Frame(_)));
    let mut long = vec![b'X'; 1023];
    long.extend_from_slice(b"\r\n");
    assert_eq!(frames(&long), vec![Out::TooLong]);
}

#[test]
fn decoder_memory_stays_bounded_under_a_flood_without_line_ends() {
    let mut d = FrameDecoder::new();
    let mut errors = 0;
    for _ in 0..1000 {
        d.push(&[0xAA; 4096]);
        while let Some(x) = d.next() {
            assert_eq!(x, Decoded::TooLong);
            errors += 1;
        }
        assert!(d.pending() <= MAX_FRAME);
    }
    assert_eq!(errors, 1, "one report per over-long frame");
}

#[test]
fn verbs_are_case_insensitive_and_keys_lower_cased() {
    let r = parse(b"alloc Product=PACK-48V", false).unwrap();
    assert_eq!(r.verb, Verb::Alloc);
    assert_eq!(r.get("product"), Some("PACK-48V"));
    assert!(!r.checksummed);
}

#[test]
fn escapes_are_undone_and_redone() {
    let r = parse(b"SCRAP unit=X reason=cell%20swelling%2A%25", false).unwrap();
    assert_eq!(r.get("reason"), Some("cell swelling*%"));
    let mut s = String::new();
    escape_into(&mut s, "cell swelling*%");
    assert_eq!(s, "cell%20swelling%2A%25");
    assert!(matches!(
        parse(b"SCRAP reason=a%41", false),
        Err(FrameError::BadValue(_))
    ));
    assert!(matches!(
        parse(b"SCRAP reason=a%2", false),
        Err(FrameError::BadValue(_))
    ));
}

#[test]
fn checksum_rules() {
    let good = encode_request("PING", &[]);
    let body = &good[..good.len() - 2];
    assert!(parse(body, true).unwrap().checksummed);
    assert_eq!(
        parse(b"PING*00", false).unwrap_err().code(),
        ErrorCode::Checksum
    );
    assert_eq!(
        parse(b"PING*1", false).unwrap_err().code(),
        ErrorCode::Checksum
    );
    assert_eq!(
        parse(b"PING*ZZ", false).unwrap_err().code(),
        ErrorCode::Checksum
    );
    assert_eq!(
        parse(b"PING", true).unwrap_err().code(),
        ErrorCode::Checksum
    );
    assert!(parse(b"PING", false).is_ok());
    assert!(
        parse(b"ALLOC product=P*6b", true).is_ok(),
        "lower-case hex is accepted"
    );
}

#[test]
fn malformed_frames_map_to_their_codes() {
    let cases: &[(&[u8], ErrorCode)] = &[
        (b"", ErrorCode::BadFrame),
        (b"   ", ErrorCode::BadFrame),
        (b"FLY unit=1", ErrorCode::BadFrame),
        (b"PING\x00", ErrorCode::BadFrame),
        (b"PING \xff", ErrorCode::BadFrame),
        (b"BIND unit", ErrorCode::BadFrame),
        (b"BIND un!t=1", ErrorCode::BadFrame),
        (b"BIND unit=", ErrorCode::BadValue),
        (b"BIND unit=1 unit=2", ErrorCode::BadFrame),
        (b"BIND\tunit=1", ErrorCode::BadFrame),
    ];
    for (input, code) in cases {
        let e = parse(input, false).unwrap_err();
        assert_eq!(e.code(), *code, "{:?}: {e}", String::from_utf8_lossy(input));
        let answer = e.to_response().to_bytes();
        assert!(answer.starts_with(format!("ERR code={}", code.as_str()).as_bytes()));
    }
    let long_req = format!("ALLOC product=P req={}", "r".repeat(65));
    assert_eq!(
        parse(long_req.as_bytes(), false).unwrap_err().code(),
        ErrorCode::BadValue
    );
}

#[test]
fn repeatable_keys_and_prefixes() {
    let r = parse(b"BIND unit=U child=A child=B lot.cell=L1 m.v=3.7", false).unwrap();
    assert_eq!(r.all("child").collect::<Vec<_>>(), vec!["A", "B"]);
    assert_eq!(r.prefixed("lot.").collect::<Vec<_>>(), vec![("cell", "L1")]);
    assert_eq!(r.prefixed("m.").collect::<Vec<_>>(), vec![("v", "3.7")]);
}

#[test]
fn fingerprint_ignores_req_and_field_order() {
    let a = parse(b"BIND unit=U mac=1 req=r1", false).unwrap();
    let b = parse(b"bind mac=1 unit=U req=r2", false).unwrap();
    let c = parse(b"BIND unit=U mac=2 req=r1", false).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn responses_round_trip_and_always_carry_a_checksum() {
    let ok = Response::ok_with([
        ("unit", "V700QW11S6PJ4"),
        ("uri", "https://x/01/1/10/A%2FB"),
    ]);
    let bytes = ok.to_bytes();
    assert!(bytes.ends_with(b"\r\n"));
    assert!(bytes.windows(1).any(|w| w == b"*"));
    assert_eq!(Response::parse(&bytes).unwrap(), ok);
    let err = Response::Err {
        code: ErrorCode::Route,
        extra: vec![("missing".into(), "functional,provision".into())],
        msg: "required steps not passed".into(),
    };
    assert!(err
        .to_bytes()
        .starts_with(b"ERR code=E_ROUTE missing=functional,provision msg=required%20steps"));
    assert_eq!(Response::parse(&err.to_bytes()).unwrap(), err);
    assert_eq!(err.get("missing"), Some("functional,provision"));
    let spaced = Response::err(ErrorCode::BadValue, "two words");
    assert!(String::from_utf8(spaced.to_bytes())
        .unwrap()
        .contains("msg=two%20words*"));
    assert!(Response::parse(b"OK*00\r\n").is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder_or_parser(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20), required in any::<bool>()) {
        let mut d = FrameDecoder::new();
        for c in &chunks {
            d.push(c);
            while let Some(x) = d.next() {
                if let Decoded::Frame(f) = x {
                    prop_assert!(f.len() < MAX_FRAME);
                    match parse(f, required) {
                        Ok(r) => { let _ = r.fingerprint(); }
                        Err(e) => { let _ = e.to_response().to_bytes(); }
                    }
                }
            }
            prop_assert!(d.pending() <= MAX_FRAME);
        }
        for c in &chunks {
            let _ = Response::parse(c);
        }
    }

    #[test]
    fn any_printable_value_survives_escape_and_parse(v in "[ -~]{1,200}") {
        let frame = encode_request("SCRAP", &[("unit", "U"), ("reason", &v)]);
        let r = parse(&frame[..frame.len() - 2], true).unwrap();
        prop_assert_eq!(r.get("reason"), Some(v.as_str()));
    }
}
