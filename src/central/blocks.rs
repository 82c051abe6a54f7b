//! The block authority's rules (SPEC sections 1 and 11): how many IDs one
//! request may get, and the signed grant for a range the allocator handed
//! out.
//!
//! Owns: the count limits and the grant's fields and signature.
//! Must not: allocate ranges (that is the store's allocator, under a row
//! lock) or do IO.

use ed25519_dalek::SigningKey;

use crate::ids::grant::{Grant, GRANT_VERSION};
use crate::ids::permute::INDEX_SPACE;

/// Why a block request is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    #[error("count must be at least 1")]
    Zero,
    #[error("count {asked} is more than one request may get ({max}, issuer.max_block)")]
    TooMany { asked: u64, max: u64 },
}

/// Checks a requested count against `max_block`.
pub fn check_count(count: u64, max_block: u64) -> Result<u64, CountError> {
    match count {
        0 => Err(CountError::Zero),
        n if n > max_block => Err(CountError::TooMany {
            asked: n,
            max: max_block,
        }),
        n => Ok(n),
    }
}

/// Why the allocator cannot hand out a range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the index space is exhausted: {count} more IDs from index {next} would pass 2^60")]
pub struct Exhausted {
    pub next: u64,
    pub count: u64,
}

/// The range `[start, start+count)` the allocator hands out next, and the
/// index after it. Starts at `first_index` at the lowest.
pub fn next_range(next: u64, first_index: u64, count: u64) -> Result<(u64, u64), Exhausted> {
    let start = next.max(first_index);
    match start.checked_add(count) {
        Some(end) if end <= INDEX_SPACE => Ok((start, end)),
        _ => Err(Exhausted { next: start, count }),
    }
}

/// What a grant is issued under.
pub struct Issuer<'a> {
    pub key: &'a SigningKey,
    pub namespace: &'a str,
    /// First 16 hex characters of sha256(namespace key).
    pub key_id: &'a str,
    pub name: &'a str,
}

/// The signed grant of `[start, start+count)` to `line_id`.
pub fn grant(
    issuer: &Issuer<'_>,
    block_id: uuid::Uuid,
    line_id: &str,
    start: u64,
    count: u64,
    issued_at: jiff::Timestamp,
) -> Grant {
    let mut g = Grant {
        grant_version: GRANT_VERSION,
        block_id: block_id.hyphenated().to_string(),
        namespace: issuer.namespace.to_string(),
        key_id: issuer.key_id.to_string(),
        line_id: line_id.to_string(),
        start,
        count,
        issued_at: issued_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        issuer: issuer.name.to_string(),
        signature: String::new(),
    };
    g.sign(issuer.key);
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::grant::GrantPolicy;

    #[test]
    fn counts_are_at_least_one_and_at_most_max_block() {
        assert_eq!(check_count(0, 10), Err(CountError::Zero));
        assert_eq!(
            check_count(11, 10),
            Err(CountError::TooMany { asked: 11, max: 10 })
        );
        assert_eq!(check_count(10, 10), Ok(10));
    }

    #[test]
    fn ranges_start_at_first_index_and_never_pass_the_index_space() {
        assert_eq!(next_range(0, 1_048_576, 10), Ok((1_048_576, 1_048_586)));
        assert_eq!(
            next_range(2_000_000, 1_048_576, 10),
            Ok((2_000_000, 2_000_010))
        );
        assert_eq!(
            next_range(INDEX_SPACE - 5, 0, 5),
            Ok((INDEX_SPACE - 5, INDEX_SPACE))
        );
        assert!(next_range(INDEX_SPACE - 5, 0, 6).is_err());
        assert!(next_range(u64::MAX, 0, 1).is_err());
    }

    #[test]
    fn a_grant_verifies_under_the_lines_policy_and_not_another_lines() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let issuer = Issuer {
            key: &key,
            namespace: "acme-batteries",
            key_id: "0123456789abcdef",
            name: "central",
        };
        let g = grant(
            &issuer,
            uuid::Uuid::now_v7(),
            "P1-L03",
            1_048_576,
            1000,
            jiff::Timestamp::now(),
        );
        let mut policy = GrantPolicy {
            line_id: "P1-L03".into(),
            key_id: "0123456789abcdef".into(),
            namespace: Some("acme-batteries".into()),
            issuers: vec![key.verifying_key()],
        };
        g.verify(&policy).unwrap();
        policy.line_id = "P1-L04".into();
        assert!(g.verify(&policy).is_err());
    }
}
