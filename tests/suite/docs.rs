//! The station protocol page is what PLC programmers implement from: every
//! transcript line in it must be a valid frame with a correct checksum.

use linemark::protocol::{self, Response};

#[test]
fn every_transcript_in_the_protocol_page_is_a_valid_frame() {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/hardware-notes/station-protocol.md"
    ))
    .unwrap();
    let mut seen = 0;
    for line in page.lines() {
        if let Some(req) = line.strip_prefix("> ") {
            protocol::parse(req.as_bytes(), true).unwrap_or_else(|e| panic!("{req}: {e}"));
            seen += 1;
        } else if let Some(ans) = line.strip_prefix("< ") {
            Response::parse(ans.as_bytes()).unwrap_or_else(|e| panic!("{ans}: {e}"));
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} transcript lines found");
}

#[test]
fn the_modbus_page_lists_every_error_number_the_mailbox_writes() {
    use linemark::plc::mailbox::{error_number, VERBS};
    use linemark::protocol::ErrorCode;
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware-notes/plc-modbus.md"),
    )
    .expect("hardware-notes/plc-modbus.md");
    for code in ErrorCode::ALL {
        if code == ErrorCode::Unknown {
            continue;
        }
        let row = format!("| {} | `{}` |", error_number(Some(code)), code.as_str());
        assert!(page.contains(&row), "the page lacks the row {row:?}");
    }
    for (n, verb) in VERBS {
        let row_left = format!("| {n} | {} |", verb.as_str());
        assert!(
            page.contains(&row_left),
            "the page lacks verb code {n} {verb:?}"
        );
    }
}

#[test]
fn the_opcua_page_names_every_method_with_its_inputs() {
    use linemark::plc::call::Method;
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware-notes/plc-opcua.md"),
    )
    .expect("hardware-notes/plc-opcua.md");
    for m in Method::ALL {
        let inputs: Vec<String> = m
            .inputs()
            .iter()
            .map(|a| match a.ty {
                linemark::plc::call::ArgType::Str => a.name.to_string(),
                linemark::plc::call::ArgType::StrArray => format!("{}: String[]", a.name),
            })
            .collect();
        let row = format!("| `{}` | {} |", m.name(), inputs.join(", "));
        assert!(page.contains(&row), "the page lacks {row:?}");
    }
}
