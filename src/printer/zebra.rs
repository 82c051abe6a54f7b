//! Zebra `~HS` (host status) answers, pure.
//!
//! The printer answers three strings, each `STX ... ETX CR LF`:
//! 1. `aaa,b,c,dddd,eee,f,g,h,iii,j,k,l`: b = paper out, c = paused.
//! 2. `mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www`: o = head up (open), p = ribbon out.
//! 3. `xxxx,y`.

/// What the printer said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostStatus {
    pub paper_out: bool,
    pub paused: bool,
    pub head_open: bool,
    pub ribbon_out: bool,
}

impl HostStatus {
    /// Why the printer cannot print now, if it cannot.
    pub fn hold_reason(&self) -> Option<&'static str> {
        if self.head_open {
            Some("head open")
        } else if self.paper_out {
            Some("paper out")
        } else if self.ribbon_out {
            Some("ribbon out")
        } else if self.paused {
            Some("paused")
        } else {
            None
        }
    }
}

/// Whether `buf` holds three complete strings (three ETX).
pub fn complete(buf: &[u8]) -> bool {
    buf.iter().filter(|b| **b == 0x03).count() >= 3
}

/// Parses the three strings.
pub fn parse(buf: &[u8]) -> Result<HostStatus, String> {
    let text = String::from_utf8_lossy(buf);
    let strings: Vec<&str> = text
        .split('\x03')
        .map(|s| s.trim_matches(|c: char| c == '\x02' || c.is_whitespace()))
        .filter(|s| !s.is_empty())
        .collect();
    if strings.len() < 2 {
        return Err(format!(
            "~HS answer has {} strings, expected 3",
            strings.len()
        ));
    }
    let one: Vec<&str> = strings[0].split(',').collect();
    let two: Vec<&str> = strings[1].split(',').collect();
    if one.len() < 3 || two.len() < 4 {
        return Err(format!("~HS answer is malformed: {:?}", strings));
    }
    let flag = |v: &str| -> Result<bool, String> {
        match v.trim() {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(format!("~HS flag {other:?} is not 0 or 1")),
        }
    };
    Ok(HostStatus {
        paper_out: flag(one[1])?,
        paused: flag(one[2])?,
        head_open: flag(two[2])?,
        ribbon_out: flag(two[3])?,
    })
}

/// A `~HS` answer with the given flags (used by the fake printer in tests
/// and documented as an example in the hardware notes).
pub fn answer(s: HostStatus) -> Vec<u8> {
    let b = |x: bool| if x { '1' } else { '0' };
    format!(
        "\x02030,{},{},1225,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,{},{},1,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n",
        b(s.paper_out),
        b(s.paused),
        b(s.head_open),
        b(s.ribbon_out)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_printer_holds_nothing() {
        let raw = b"\x02030,0,0,1225,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,6,0,00000100,1,000\x03\r\n\x021234,0\x03\r\n";
        assert!(complete(raw));
        let s = parse(raw).unwrap();
        assert_eq!(s, HostStatus::default());
        assert_eq!(s.hold_reason(), None);
    }

    #[test]
    fn each_fault_flag_is_read_from_its_field() {
        for (st, why) in [
            (
                HostStatus {
                    paper_out: true,
                    ..Default::default()
                },
                "paper out",
            ),
            (
                HostStatus {
                    paused: true,
                    ..Default::default()
                },
                "paused",
            ),
            (
                HostStatus {
                    head_open: true,
                    ..Default::default()
                },
                "head open",
            ),
            (
                HostStatus {
                    ribbon_out: true,
                    ..Default::default()
                },
                "ribbon out",
            ),
        ] {
            let parsed = parse(&answer(st)).unwrap();
            assert_eq!(parsed, st);
            assert_eq!(parsed.hold_reason(), Some(why));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_ready_printer() {
        assert!(parse(b"").is_err());
        assert!(parse(b"\x02hello\x03").is_err());
        assert!(parse(b"\x02030,x,0\x03\x02001,0,0,0\x03\x021234,0\x03").is_err());
        assert!(!complete(b"\x02030,0,0\x03"));
    }
}
