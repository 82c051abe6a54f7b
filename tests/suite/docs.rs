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
