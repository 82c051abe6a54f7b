//! A PLC's method call as a station-protocol request: which methods there
//! are, their arguments and outputs, and how the arguments become the
//! fields of a section 4 frame (SPEC section 12).
//!
//! Owns: the method table (names, argument names and types, output names)
//! and the mapping of arguments to fields; the frame is then read by the
//! protocol's own parser, so a PLC meets the same limits and errors as a
//! station. Must not: know OPC UA types, the line or the journal.

use crate::line::Refusal;
use crate::protocol::{self, ErrorCode, Request, Verb};

/// The type of one input argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    Str,
    StrArray,
}

/// One input argument as a method declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    pub name: &'static str,
    pub ty: ArgType,
    /// The protocol field it becomes (`None`: the station, the key/value
    /// arrays, or `req`).
    field: Field,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Station,
    Req,
    /// `key=value`, left out when empty.
    Plain(&'static str),
    /// Names of `Pairs`: their values follow in the next argument.
    Keys(&'static str),
    /// Values of the preceding `Keys`.
    Values,
}

/// What a method answers after `Code` and `Message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// `Unit`, `Uri` (strings).
    Unit,
    /// `LabelJob` (UInt64; 0: no label).
    LabelJob,
    None,
}

/// A method of the `Line` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Alloc,
    Bind,
    Result,
    Final,
    Reprint,
    Verify,
    Scrap,
    Ship,
    Replace,
}

const fn s(name: &'static str, field: Field) -> ArgSpec {
    ArgSpec {
        name,
        ty: ArgType::Str,
        field,
    }
}
const fn a(name: &'static str, field: Field) -> ArgSpec {
    ArgSpec {
        name,
        ty: ArgType::StrArray,
        field,
    }
}
const STATION: ArgSpec = s("Station", Field::Station);
const REQ: ArgSpec = s("Req", Field::Req);
const UNIT: ArgSpec = s("Unit", Field::Plain("unit"));
const VALUES: ArgSpec = a("Values", Field::Values);
const ALLOC: &[ArgSpec] = &[
    STATION,
    s("Product", Field::Plain("product")),
    s("Lot", Field::Plain("lot")),
    REQ,
];
const BIND: &[ArgSpec] = &[STATION, UNIT, a("Keys", Field::Keys("")), VALUES, REQ];
const RESULT: &[ArgSpec] = &[
    STATION,
    UNIT,
    s("Step", Field::Plain("step")),
    s("Status", Field::Plain("status")),
    a("Names", Field::Keys("m.")),
    VALUES,
    REQ,
];
const FINAL: &[ArgSpec] = &[
    STATION,
    UNIT,
    s("Status", Field::Plain("status")),
    a("Names", Field::Keys("m.")),
    VALUES,
    REQ,
];
const REPRINT: &[ArgSpec] = &[STATION, UNIT, s("Reason", Field::Plain("reason")), REQ];
const VERIFY: &[ArgSpec] = &[STATION, UNIT, s("Scan", Field::Plain("scan")), REQ];
const SCRAP: &[ArgSpec] = &[STATION, UNIT, s("Reason", Field::Plain("reason")), REQ];
const SHIP: &[ArgSpec] = &[
    STATION,
    UNIT,
    s("Shipment", Field::Plain("shipment")),
    s("To", Field::Plain("to")),
    REQ,
];
const REPLACE: &[ArgSpec] = &[
    STATION,
    UNIT,
    s("Old", Field::Plain("old")),
    s("New", Field::Plain("new")),
    s("Reason", Field::Plain("reason")),
    REQ,
];

impl Method {
    pub const ALL: [Method; 9] = [
        Method::Alloc,
        Method::Bind,
        Method::Result,
        Method::Final,
        Method::Reprint,
        Method::Verify,
        Method::Scrap,
        Method::Ship,
        Method::Replace,
    ];

    /// The browse name (`Line.<name>` is its NodeId).
    pub fn name(self) -> &'static str {
        match self {
            Method::Alloc => "Alloc",
            Method::Bind => "Bind",
            Method::Result => "Result",
            Method::Final => "Final",
            Method::Reprint => "Reprint",
            Method::Verify => "Verify",
            Method::Scrap => "Scrap",
            Method::Ship => "Ship",
            Method::Replace => "Replace",
        }
    }

    pub fn verb(self) -> Verb {
        match self {
            Method::Alloc => Verb::Alloc,
            Method::Bind => Verb::Bind,
            Method::Result => Verb::Result,
            Method::Final => Verb::Final,
            Method::Reprint => Verb::Reprint,
            Method::Verify => Verb::Verify,
            Method::Scrap => Verb::Scrap,
            Method::Ship => Verb::Ship,
            Method::Replace => Verb::Replace,
        }
    }

    /// The input arguments, in order.
    pub fn inputs(self) -> &'static [ArgSpec] {
        match self {
            Method::Alloc => ALLOC,
            Method::Bind => BIND,
            Method::Result => RESULT,
            Method::Final => FINAL,
            Method::Reprint => REPRINT,
            Method::Verify => VERIFY,
            Method::Scrap => SCRAP,
            Method::Ship => SHIP,
            Method::Replace => REPLACE,
        }
    }

    /// What follows `Code` and `Message` in the outputs.
    pub fn extra(self) -> Extra {
        match self {
            Method::Alloc => Extra::Unit,
            Method::Final | Method::Reprint => Extra::LabelJob,
            _ => Extra::None,
        }
    }
}

/// One argument as the PLC sent it (a null string is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Str(String),
    StrArray(Vec<String>),
}

/// A call the method's declaration does not fit: answered with an OPC UA
/// status, not a protocol code, because no request could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("{method} takes {expected} arguments, {got} were sent")]
    Missing {
        method: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{method} takes {expected} arguments, {got} were sent")]
    TooMany {
        method: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{method} argument {index} ({name}) must be {expected}")]
    WrongType {
        method: &'static str,
        index: usize,
        name: &'static str,
        expected: &'static str,
    },
}

/// A call read against its declaration: the station it names and the
/// request it asks for (or why that request is refused, as a station's
/// frame would be).
#[derive(Debug)]
pub struct Call {
    pub station: String,
    pub request: Result<Request, Refusal>,
}

/// Reads `args` as a call of `method`.
pub fn read(method: Method, args: &[Arg]) -> Result<Call, ArgError> {
    let specs = method.inputs();
    let name = method.name();
    if args.len() < specs.len() {
        return Err(ArgError::Missing {
            method: name,
            expected: specs.len(),
            got: args.len(),
        });
    }
    if args.len() > specs.len() {
        return Err(ArgError::TooMany {
            method: name,
            expected: specs.len(),
            got: args.len(),
        });
    }
    for (i, (spec, arg)) in specs.iter().zip(args).enumerate() {
        let fits = matches!(
            (spec.ty, arg),
            (ArgType::Str, Arg::Str(_)) | (ArgType::StrArray, Arg::StrArray(_))
        );
        if !fits {
            return Err(ArgError::WrongType {
                method: name,
                index: i,
                name: spec.name,
                expected: match spec.ty {
                    ArgType::Str => "a String",
                    ArgType::StrArray => "a String array",
                },
            });
        }
    }
    let station = match &args[0] {
        Arg::Str(s) => s.clone(),
        Arg::StrArray(_) => String::new(),
    };
    Ok(Call {
        station,
        request: fields(method, specs, args).and_then(|f| request(method.verb(), &f)),
    })
}

/// The frame fields the arguments stand for, in declaration order.
fn fields(
    method: Method,
    specs: &[ArgSpec],
    args: &[Arg],
) -> Result<Vec<(String, String)>, Refusal> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut req: Option<String> = None;
    let mut keys: Option<(&'static str, &'static str, &[String])> = None;
    for (spec, arg) in specs.iter().zip(args) {
        match (spec.field, arg) {
            (Field::Station, _) => {}
            (Field::Req, Arg::Str(v)) if !v.is_empty() => req = Some(v.clone()),
            (Field::Plain(k), Arg::Str(v)) if !v.is_empty() => out.push((k.into(), v.clone())),
            (Field::Keys(prefix), Arg::StrArray(names)) => keys = Some((spec.name, prefix, names)),
            (Field::Values, Arg::StrArray(values)) => {
                let Some((names_arg, prefix, names)) = keys.take() else {
                    continue;
                };
                if names.len() != values.len() {
                    return Err(Refusal::new(
                        ErrorCode::BadFrame,
                        format!(
                            "{}: {names_arg} has {} entries and {} has {}; they must pair up",
                            method.name(),
                            names.len(),
                            spec.name,
                            values.len()
                        ),
                    ));
                }
                for (n, v) in names.iter().zip(values) {
                    if matches!(n.to_ascii_lowercase().as_str(), "req" | "unit")
                        && prefix.is_empty()
                    {
                        return Err(Refusal::new(
                            ErrorCode::BadFrame,
                            format!(
                                "{}: {names_arg} must not name {n:?} (it has its own argument)",
                                method.name()
                            ),
                        ));
                    }
                    if n.is_empty() {
                        return Err(Refusal::new(
                            ErrorCode::BadFrame,
                            format!("{}: {names_arg} has an empty entry", method.name()),
                        ));
                    }
                    out.push((format!("{prefix}{n}"), v.clone()));
                }
            }
            _ => {}
        }
    }
    if let Some(r) = req {
        out.push(("req".into(), r));
    }
    Ok(out)
}

/// The request these fields make, read by the station protocol's parser.
fn request(verb: Verb, fields: &[(String, String)]) -> Result<Request, Refusal> {
    // The frame encoder would write `?` for these: refuse instead of
    // storing something the PLC did not send.
    for (k, v) in fields {
        if let Some(c) = v.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ')) {
            return Err(Refusal::new(
                ErrorCode::BadValue,
                format!("{k}= contains {c:?}; values are printable ASCII (and spaces) only"),
            ));
        }
    }
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let frame = protocol::encode_request(verb.as_str(), &pairs);
    let line = frame.strip_suffix(b"\r\n").unwrap_or(&frame);
    protocol::parse(line, false).map_err(|e| Refusal::new(e.code(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(v: &str) -> Arg {
        Arg::Str(v.into())
    }
    fn arr(v: &[&str]) -> Arg {
        Arg::StrArray(v.iter().map(|s| s.to_string()).collect())
    }
    fn frame(method: Method, args: &[Arg]) -> String {
        let call = read(method, args).expect("arguments fit");
        call.request.expect("a request").fingerprint()
    }

    #[test]
    fn every_method_is_a_mutating_verb_with_station_first_and_req_last() {
        for m in Method::ALL {
            assert!(m.verb().is_mutating(), "{m:?}");
            let ins = m.inputs();
            assert_eq!(ins[0].name, "Station", "{m:?}");
            assert_eq!(ins[ins.len() - 1].name, "Req", "{m:?}");
            assert_eq!(m.name().to_ascii_uppercase(), m.verb().as_str(), "{m:?}");
        }
    }

    #[test]
    fn alloc_reads_product_and_lot_and_leaves_out_an_empty_lot() {
        let call = read(
            Method::Alloc,
            &[st("plc1"), st("PACK-48V"), st(""), st("7")],
        )
        .unwrap();
        assert_eq!(call.station, "plc1");
        let req = call.request.unwrap();
        assert_eq!(req.verb, Verb::Alloc);
        assert_eq!(req.get("product"), Some("PACK-48V"));
        assert_eq!(req.get("lot"), None);
        assert_eq!(req.req(), Some("7"));
        let call = read(Method::Alloc, &[st("plc1"), st("P"), st("L1"), st("")]).unwrap();
        let req = call.request.unwrap();
        assert_eq!((req.get("lot"), req.req()), (Some("L1"), None));
    }

    #[test]
    fn measurement_names_are_sent_bare_and_become_m_fields() {
        let f = frame(
            Method::Final,
            &[
                st("eol"),
                st("V700QW11S6PJ4"),
                st("PASS"),
                arr(&["voltage", "ir"]),
                arr(&["48.1", "0.8"]),
                st(""),
            ],
        );
        assert_eq!(
            f,
            "FINAL m.ir=0.8 m.voltage=48.1 status=PASS unit=V700QW11S6PJ4"
        );
        let f = frame(
            Method::Result,
            &[
                st("eol"),
                st("U"),
                st("burnin"),
                st("FAIL"),
                arr(&[]),
                arr(&[]),
                st(""),
            ],
        );
        assert_eq!(f, "RESULT status=FAIL step=burnin unit=U");
    }

    #[test]
    fn bind_keys_are_fields_and_values_with_spaces_are_escaped_like_a_frame() {
        let f = frame(
            Method::Bind,
            &[
                st("eol"),
                st("U"),
                arr(&["serial", "mac", "lot.cell"]),
                arr(&["SN 1", "aa:bb:cc:dd:ee:ff", "C7"]),
                st("r1"),
            ],
        );
        assert_eq!(
            f,
            "BIND lot.cell=C7 mac=aa:bb:cc:dd:ee:ff serial=SN%201 unit=U"
        );
    }

    #[test]
    fn every_plain_method_maps_its_arguments_to_the_protocol_fields() {
        let cases: [(Method, Vec<Arg>, &str); 5] = [
            (
                Method::Reprint,
                vec![st("s"), st("U"), st("smudged label"), st("")],
                "REPRINT reason=smudged%20label unit=U",
            ),
            (
                Method::Verify,
                vec![st("s"), st("U"), st("(01)1(21)U"), st("")],
                "VERIFY scan=(01)1(21)U unit=U",
            ),
            (
                Method::Scrap,
                vec![st("s"), st("U"), st("cracked"), st("")],
                "SCRAP reason=cracked unit=U",
            ),
            (
                Method::Ship,
                vec![st("s"), st("U"), st("SH1"), st(""), st("")],
                "SHIP shipment=SH1 unit=U",
            ),
            (
                Method::Replace,
                vec![st("s"), st("U"), st("A"), st("B"), st("rework"), st("")],
                "REPLACE new=B old=A reason=rework unit=U",
            ),
        ];
        for (m, args, want) in cases {
            assert_eq!(frame(m, &args), want, "{m:?}");
        }
    }

    #[test]
    fn a_wrong_number_or_type_of_arguments_is_an_argument_error() {
        assert!(matches!(
            read(Method::Alloc, &[st("s"), st("P")]),
            Err(ArgError::Missing {
                expected: 4,
                got: 2,
                ..
            })
        ));
        assert!(matches!(
            read(Method::Scrap, &[st("s"), st("U"), st("r"), st(""), st("")]),
            Err(ArgError::TooMany { .. })
        ));
        let e = read(
            Method::Bind,
            &[st("s"), st("U"), st("serial"), arr(&["x"]), st("")],
        )
        .unwrap_err();
        assert_eq!(
            e,
            ArgError::WrongType {
                method: "Bind",
                index: 2,
                name: "Keys",
                expected: "a String array"
            }
        );
        assert!(read(Method::Alloc, &[arr(&[]), st("P"), st(""), st("")]).is_err());
    }

    fn refusal(method: Method, args: &[Arg]) -> Refusal {
        read(method, args)
            .expect("arguments fit")
            .request
            .expect_err("refused")
    }

    #[test]
    fn bad_fields_are_refused_with_the_protocol_codes() {
        let r = refusal(
            Method::Bind,
            &[
                st("s"),
                st("U"),
                arr(&["serial", "mac"]),
                arr(&["1"]),
                st(""),
            ],
        );
        assert_eq!(r.code, ErrorCode::BadFrame);
        assert!(
            r.msg.contains("Keys has 2 entries and Values has 1"),
            "{}",
            r.msg
        );
        let r = refusal(
            Method::Bind,
            &[st("s"), st("U"), arr(&["req"]), arr(&["1"]), st("")],
        );
        assert_eq!(r.code, ErrorCode::BadFrame);
        let r = refusal(
            Method::Bind,
            &[st("s"), st("U"), arr(&["bad key"]), arr(&["1"]), st("")],
        );
        assert_eq!(r.code, ErrorCode::BadFrame);
        let long = "x".repeat(1100);
        let r = refusal(Method::Scrap, &[st("s"), st("U"), st(&long), st("")]);
        assert_eq!(r.code, ErrorCode::TooLong);
        let r = refusal(
            Method::Alloc,
            &[st("s"), st("P"), st(""), st(&"r".repeat(65))],
        );
        assert_eq!(r.code, ErrorCode::BadValue);
        let r = refusal(Method::Scrap, &[st("s"), st("U"), st("défaut"), st("")]);
        assert_eq!(r.code, ErrorCode::BadValue);
        assert!(r.msg.starts_with("reason= contains 'é'"), "{}", r.msg);
    }
}
