//! The Modbus mailbox of a PLC station (SPEC section 12): the register map,
//! the handshake, ASCII string packing, and the error numbers.
//!
//! Owns: which registers exist (`B+0 .. B+129` written by the PLC,
//! `B+200 .. B+329` written by the line, `B = 1000 * slot`), when a request
//! runs (once per new sequence number in `B+0`), how fields are read out of
//! registers and an answer written into them (answer registers before the
//! sequence number in `B+200`), and the fixed number of every `E_...` code.
//! Must not: do IO or run a request (the Modbus server does, through the
//! line).

use crate::line::Refusal;
use crate::protocol::{self, ErrorCode, Request, Response, Verb};

/// Registers from a mailbox's base to its last answer register.
pub const SPAN: u16 = 330;
/// `B+0`: the PLC's sequence number, written last.
pub const SEQ: u16 = 0;
/// `B+1`: the verb code.
pub const VERB: u16 = 1;
/// `B+2 .. B+129`: the request's fields, two characters per register.
pub const FIELDS: u16 = 2;
/// Registers of request fields and of answer fields (256 characters).
pub const TEXT_REGS: u16 = 128;
/// `B+200`: the sequence number answered, written after the answer.
pub const ANSWERED: u16 = 200;
/// `B+201`: 0 for OK, else the error number of the code.
pub const RESULT: u16 = 201;
/// `B+202 .. B+329`: the answer's fields.
pub const ANSWER: u16 = 202;
/// Characters of an answer kept in the mailbox.
pub const ANSWER_CHARS: usize = 2 * TEXT_REGS as usize;

/// The verb of each code in `B+1`.
pub const VERBS: [(u16, Verb); 11] = [
    (1, Verb::Alloc),
    (2, Verb::Bind),
    (3, Verb::Result),
    (4, Verb::Final),
    (5, Verb::Reprint),
    (6, Verb::Verify),
    (7, Verb::Scrap),
    (8, Verb::Ship),
    (9, Verb::Replace),
    (10, Verb::Status),
    (11, Verb::Ping),
];

/// The fixed error number of each code in `B+201` (0 is OK). Never
/// renumber: PLC programs compare against these.
pub const ERROR_NUMBERS: [(ErrorCode, u16); 18] = [
    (ErrorCode::NotAllowed, 1),
    (ErrorCode::NoIds, 2),
    (ErrorCode::DupMac, 3),
    (ErrorCode::DupUid, 4),
    (ErrorCode::Conflict, 5),
    (ErrorCode::Route, 6),
    (ErrorCode::Scrapped, 7),
    (ErrorCode::AlreadyFinal, 8),
    (ErrorCode::AlreadyShipped, 9),
    (ErrorCode::UnknownUnit, 10),
    (ErrorCode::UnknownProduct, 11),
    (ErrorCode::BadFrame, 12),
    (ErrorCode::BadValue, 13),
    (ErrorCode::Storage, 14),
    (ErrorCode::TooLong, 15),
    (ErrorCode::Checksum, 16),
    (ErrorCode::Mismatch, 17),
    (ErrorCode::Unknown, 99),
];

/// The number written to `B+201` for an answer.
pub fn error_number(code: Option<ErrorCode>) -> u16 {
    match code {
        None => 0,
        Some(c) => ERROR_NUMBERS
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(99, |(_, n)| *n),
    }
}

/// The first register of slot `slot`'s mailbox.
pub fn base(slot: u16) -> u32 {
    1000 * u32::from(slot)
}

/// Where a register access falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Index into the configured slots.
    pub mailbox: usize,
    /// Offset from the mailbox's base.
    pub offset: u16,
}

/// Why an access is refused (Modbus exception *illegal data address*).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("registers {0}..{1} are not in a configured mailbox")]
    Unmapped(u32, u32),
    #[error("registers {0}..{1} are answer registers; the line writes them")]
    ReadOnly(u32, u32),
}

/// Locates `count` registers from `addr` in one mailbox block: the
/// request block (`B+0 .. B+129`) or, for reads, the answer block
/// (`B+200 .. B+329`).
pub fn locate(slots: &[u16], addr: u16, count: u16, write: bool) -> Result<Place, MapError> {
    let (first, end) = (u32::from(addr), u32::from(addr) + u32::from(count));
    let unmapped = MapError::Unmapped(first, end);
    if count == 0 {
        return Err(unmapped);
    }
    for (i, &slot) in slots.iter().enumerate() {
        let b = base(slot);
        let inside = |lo: u32, hi: u32| first >= b + lo && end <= b + hi;
        let offset = u16::try_from(first - b.min(first)).unwrap_or(u16::MAX);
        if inside(0, u32::from(FIELDS + TEXT_REGS)) {
            return Ok(Place { mailbox: i, offset });
        }
        if inside(u32::from(ANSWERED), u32::from(SPAN)) {
            if write {
                return Err(MapError::ReadOnly(first, end));
            }
            return Ok(Place { mailbox: i, offset });
        }
    }
    Err(unmapped)
}

/// A request to run: what the registers held when `B+0` took `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub seq: u16,
    pub verb: u16,
    pub fields: [u16; TEXT_REGS as usize],
}

/// One mailbox's registers and the last sequence number run.
#[derive(Debug, Clone)]
pub struct Mailbox {
    regs: [u16; SPAN as usize],
    last_run: u16,
}

impl Default for Mailbox {
    fn default() -> Self {
        Self {
            regs: [0; SPAN as usize],
            last_run: 0,
        }
    }
}

impl Mailbox {
    /// Registers from `offset` (checked by [`locate`]).
    pub fn read(&self, offset: u16, count: u16) -> Vec<u16> {
        let (a, b) = (
            usize::from(offset),
            usize::from(offset) + usize::from(count),
        );
        self.regs.get(a..b).map(<[u16]>::to_vec).unwrap_or_default()
    }

    /// Writes the PLC's registers; a new nonzero sequence number in `B+0`
    /// (checked last, so one write may carry fields and sequence) gives
    /// the job to run.
    pub fn write(&mut self, offset: u16, values: &[u16]) -> Option<Job> {
        let start = usize::from(offset);
        for (i, v) in values.iter().enumerate() {
            if let Some(r) = self.regs.get_mut(start + i) {
                *r = *v;
            }
        }
        let seq = self.regs[usize::from(SEQ)];
        let touched_seq = start == usize::from(SEQ);
        if !touched_seq || seq == 0 || seq == self.last_run {
            return None;
        }
        self.last_run = seq;
        let mut fields = [0u16; TEXT_REGS as usize];
        let f = usize::from(FIELDS);
        fields.copy_from_slice(&self.regs[f..f + usize::from(TEXT_REGS)]);
        Some(Job {
            seq,
            verb: self.regs[usize::from(VERB)],
            fields,
        })
    }

    /// Writes an answer: the result and its fields first, then `B+200`.
    pub fn answer(&mut self, seq: u16, response: &Response) {
        let (code, body) = answer_text(response);
        self.regs[usize::from(RESULT)] = error_number(code);
        let packed = pack(&body, TEXT_REGS);
        let a = usize::from(ANSWER);
        self.regs[a..a + packed.len()].copy_from_slice(&packed);
        self.regs[usize::from(ANSWERED)] = seq;
    }
}

/// The code and the fields of an answer after `OK`/`ERR`, cut at 256
/// characters.
pub fn answer_text(response: &Response) -> (Option<ErrorCode>, String) {
    let body = response.body();
    let rest = body
        .strip_prefix("OK")
        .or_else(|| body.strip_prefix("ERR"))
        .unwrap_or(&body)
        .trim_start();
    let code = match response {
        Response::Ok(_) => None,
        Response::Err { code, .. } => Some(*code),
    };
    (code, rest.chars().take(ANSWER_CHARS).collect())
}

/// ASCII into `regs` registers, two characters each (the first in the high
/// byte), NUL-padded.
pub fn pack(text: &str, regs: u16) -> Vec<u16> {
    let bytes = text.as_bytes();
    (0..usize::from(regs))
        .map(|i| {
            let hi = bytes.get(2 * i).copied().unwrap_or(0);
            let lo = bytes.get(2 * i + 1).copied().unwrap_or(0);
            u16::from_be_bytes([hi, lo])
        })
        .collect()
}

/// The characters in `regs` up to the first NUL.
pub fn unpack(regs: &[u16]) -> Vec<u8> {
    regs.iter()
        .flat_map(|r| r.to_be_bytes())
        .take_while(|b| *b != 0)
        .collect()
}

/// The request a job stands for, read by the station protocol's parser
/// (same limits, same errors).
pub fn request(job: &Job) -> Result<Request, Refusal> {
    let Some((_, verb)) = VERBS.iter().find(|(c, _)| *c == job.verb) else {
        return Err(Refusal::new(
            ErrorCode::BadFrame,
            format!(
                "verb code {} in B+1 is not one of 1 (ALLOC) .. 11 (PING)",
                job.verb
            ),
        ));
    };
    let fields = unpack(&job.fields);
    let mut frame = verb.as_str().as_bytes().to_vec();
    if !fields.is_empty() {
        frame.push(b' ');
        frame.extend_from_slice(&fields);
    }
    protocol::parse(&frame, false).map_err(|e| Refusal::new(e.code(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(mb: &mut Mailbox, verb: u16, fields: &str, seq: u16) -> Option<Job> {
        mb.write(VERB, &[verb]);
        mb.write(FIELDS, &pack(fields, TEXT_REGS));
        mb.write(SEQ, &[seq])
    }

    #[test]
    fn strings_pack_two_characters_per_register_high_byte_first() {
        let r = pack("product=PACK-48V lot=L1", 4);
        assert_eq!(r, vec![0x7072, 0x6F64, 0x7563, 0x743D]);
        assert_eq!(unpack(&pack("abc", 3)), b"abc");
        assert_eq!(pack("abc", 3), vec![0x6162, 0x6300, 0]);
        assert_eq!(unpack(&[0x4100, 0x4242]), b"A", "stops at the first NUL");
    }

    #[test]
    fn a_request_runs_once_per_new_sequence_number_and_never_for_zero() {
        let mut mb = Mailbox::default();
        let j = job(&mut mb, 1, "product=PACK-48V lot=L1 req=7", 1).expect("runs");
        assert_eq!((j.seq, j.verb), (1, 1));
        let req = request(&j).unwrap();
        assert_eq!(req.verb, Verb::Alloc);
        assert_eq!(req.get("lot"), Some("L1"));
        assert_eq!(
            mb.write(SEQ, &[1]),
            None,
            "the same number again runs nothing"
        );
        assert_eq!(mb.write(VERB, &[1]), None, "only a write of B+0 runs");
        assert_eq!(mb.write(SEQ, &[0]), None, "0 never runs");
        assert_eq!(mb.write(SEQ, &[1]), None, "new means: not the last one run");
        assert!(mb.write(SEQ, &[2]).is_some());
        assert!(
            mb.write(SEQ, &[1]).is_some(),
            "a restarted PLC starts at 1 again"
        );
        assert!(mb.write(SEQ, &[2]).is_some());
        // One write with fields and sequence together runs with the new fields.
        let mut all = vec![3, 11];
        all.extend(pack("", TEXT_REGS));
        let j = mb.write(SEQ, &all).expect("runs");
        assert_eq!(request(&j).unwrap().verb, Verb::Ping);
    }

    #[test]
    fn the_answer_is_written_before_the_sequence_number() {
        let mut mb = Mailbox::default();
        mb.answer(
            5,
            &Response::ok_with([("unit", "V700QW11S6PJ4"), ("uri", "https://x/1 2")]),
        );
        let regs = mb.read(ANSWERED, 130);
        assert_eq!(regs[0], 5);
        assert_eq!(regs[1], 0);
        assert_eq!(
            unpack(&regs[2..]),
            b"unit=V700QW11S6PJ4 uri=https://x/1%202"
        );
        let err = Response::err(ErrorCode::Route, "required steps have not passed");
        mb.answer(6, &err);
        let regs = mb.read(ANSWERED, 130);
        assert_eq!((regs[0], regs[1]), (6, 6));
        assert_eq!(
            unpack(&regs[2..]),
            b"code=E_ROUTE msg=required%20steps%20have%20not%20passed"
        );
        // A long answer is cut at 256 characters; a short one after it
        // leaves no tail of the old one.
        mb.answer(7, &Response::err(ErrorCode::BadValue, "x".repeat(400)));
        assert_eq!(unpack(&mb.read(ANSWER, TEXT_REGS)).len(), 256);
        mb.answer(8, &Response::ok());
        assert_eq!(unpack(&mb.read(ANSWER, TEXT_REGS)), b"");
    }

    #[test]
    fn registers_outside_a_mailbox_and_answer_writes_are_illegal_addresses() {
        let slots = [1, 3];
        assert_eq!(
            locate(&slots, 1000, 130, true),
            Ok(Place {
                mailbox: 0,
                offset: 0
            })
        );
        assert_eq!(
            locate(&slots, 3200, 130, false),
            Ok(Place {
                mailbox: 1,
                offset: 200
            })
        );
        assert!(matches!(
            locate(&slots, 3200, 1, true),
            Err(MapError::ReadOnly(..))
        ));
        for (addr, count) in [
            (0, 1),
            (999, 2),
            (1129, 2),
            (1130, 1),
            (1199, 1),
            (1329, 2),
            (2000, 1),
            (65535, 1),
            (1000, 0),
        ] {
            assert!(
                matches!(
                    locate(&slots, addr, count, false),
                    Err(MapError::Unmapped(..))
                ),
                "{addr}+{count}"
            );
        }
    }

    #[test]
    fn bad_verb_codes_and_fields_are_refused_with_protocol_codes() {
        let mut mb = Mailbox::default();
        for (verb, fields, code) in [
            (0, "", ErrorCode::BadFrame),
            (12, "", ErrorCode::BadFrame),
            (1, "product", ErrorCode::BadFrame),
            (1, "product=P req=", ErrorCode::BadValue),
            (7, "unit=U reason=\u{1}", ErrorCode::BadFrame),
        ] {
            let seq = mb.last_run + 1;
            let j = job(&mut mb, verb, fields, seq).expect("runs");
            assert_eq!(request(&j).unwrap_err().code, code, "{verb} {fields:?}");
        }
    }

    #[test]
    fn every_code_has_its_own_fixed_number() {
        for c in ErrorCode::ALL {
            let n = error_number(Some(c));
            assert!(n > 0, "{c:?}");
            let same: Vec<_> = ErrorCode::ALL
                .iter()
                .filter(|d| error_number(Some(**d)) == n)
                .collect();
            assert_eq!(same.len(), 1, "{c:?} shares {n}");
        }
        assert_eq!(error_number(None), 0);
        assert_eq!(error_number(Some(ErrorCode::Route)), 6);
        assert_eq!(error_number(Some(ErrorCode::Storage)), 14);
    }
}
