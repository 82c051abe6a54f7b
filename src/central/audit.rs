//! The audit log (SPEC section 11): every token-authenticated read or
//! change of a passport, hash-chained like a line's journal so that a
//! removed or altered entry is found by `linemark-central audit verify`.
//!
//! Owns: an entry's canonical text and hash, and the chain check.
//! Must not: do IO (the store appends entries under the chain head's row
//! lock and reads them back for `verify`).

use sha2::{Digest, Sha256};

use crate::journal::event::{canonical_json, GENESIS_HASH};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub seq: i64,
    pub ts: String,
    pub actor: String,
    pub role: String,
    /// `read`, `history`, `update:TYPE`, `audit`.
    pub action: String,
    pub passport: Option<String>,
}

impl Entry {
    /// `sha256(prev_hash + "\n" + canonical JSON of the entry)` in hex.
    pub fn hash(&self, prev_hash: &str) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        let mut text = String::new();
        canonical_json(&v, &mut text);
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(b"\n");
        h.update(text.as_bytes());
        hex::encode(h.finalize())
    }
}

/// The first problem in a chain read in seq order, or `None`.
pub fn first_break(entries: &[(Entry, String)]) -> Option<String> {
    let mut prev = GENESIS_HASH.to_string();
    for (i, (e, stored)) in entries.iter().enumerate() {
        let want = i as i64 + 1;
        if e.seq != want {
            return Some(format!(
                "entry {want} is missing (the next stored is {})",
                e.seq
            ));
        }
        let h = e.hash(&prev);
        if &h != stored {
            return Some(format!(
                "entry {} does not match its hash: it was altered, or an entry before it was",
                e.seq
            ));
        }
        prev = h;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(Entry, String)> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let e = Entry {
                    seq,
                    ts: "2026-12-03T08:00:00Z".into(),
                    actor: "MSA".into(),
                    role: "authority".into(),
                    action: "read".into(),
                    passport: Some("U1".into()),
                };
                let h = e.hash(&prev);
                prev = h.clone();
                (e, h)
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_any_change_is_found() {
        assert_eq!(first_break(&chain(5)), None);
        let mut c = chain(5);
        c[2].0.actor = "someone else".into();
        assert!(first_break(&c).unwrap().contains("entry 3"));
        let mut c = chain(5);
        c.remove(1);
        assert!(first_break(&c).unwrap().contains("entry 2 is missing"));
    }
}
