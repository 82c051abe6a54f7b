//! Block grants: the signed reservation of `[start, start+count)` of the index
//! space for one line (SPEC section 1).
//!
//! Owns: the grant's JSON form, the canonical signed bytes, signature and
//! field checks, the overlap rule, and signing (for development grants).
//! Must not: read files or touch the journal; the caller hands in bytes and
//! the blocks already held.

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::permute::INDEX_SPACE;

/// The only grant format this build understands.
pub const GRANT_VERSION: u32 = 1;

/// A block grant as it arrives (file or upstream answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grant_version: u32,
    pub block_id: String,
    pub namespace: String,
    pub key_id: String,
    pub line_id: String,
    pub start: u64,
    pub count: u64,
    pub issued_at: String,
    pub issuer: String,
    pub signature: String,
}

/// A block this line already holds, as far as overlap checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRange {
    pub block_id: String,
    pub start: u64,
    pub count: u64,
}

/// What this line accepts grants for.
#[derive(Debug, Clone)]
pub struct GrantPolicy {
    pub line_id: String,
    pub key_id: String,
    /// When set, the grant's namespace must be this one.
    pub namespace: Option<String>,
    /// Issuer keys trusted to sign grants (the configured one, plus the
    /// development key when development grants are allowed).
    pub issuers: Vec<VerifyingKey>,
}

/// Why a grant was refused. Every variant leaves the journal unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("the grant file is truncated (JSON ends early at line {line}, column {column}); ask for the grant again")]
    Truncated { line: usize, column: usize },
    #[error("the grant is not valid JSON: {0}")]
    NotJson(String),
    #[error("the grant is missing or has a malformed field: {0}")]
    Fields(String),
    #[error("grant_version {0} is not supported (this build reads version {GRANT_VERSION})")]
    Version(u32),
    #[error("block_id {0:?} is not a UUID (e.g. 018f3a2e-7c4d-7000-8000-000000000001); ask the block authority for a new grant")]
    BlockId(String),
    #[error("block {block_id}: issued_at {issued_at:?} is not an RFC 3339 time (e.g. 2026-11-20T08:00:00Z)")]
    IssuedAt { block_id: String, issued_at: String },
    #[error("block {block_id}: count must be at least 1 and start+count at most 2^60 (start {start}, count {count})")]
    Range {
        block_id: String,
        start: u64,
        count: u64,
    },
    #[error("block {0}: the signature is not base64 of 64 bytes")]
    SignatureEncoding(String),
    #[error("block {0}: the signature does not verify against the configured issuer key (ids.issuer_public_key); the grant was altered or signed by another issuer")]
    BadSignature(String),
    #[error("block {block_id} is for line {grant_line:?}, this line is {our_line:?}")]
    WrongLine {
        block_id: String,
        grant_line: String,
        our_line: String,
    },
    #[error("block {block_id} is for namespace key {grant_key_id}, this line's key (ids.namespace_key_file) is {our_key_id}")]
    WrongKeyId {
        block_id: String,
        grant_key_id: String,
        our_key_id: String,
    },
    #[error("block {block_id} is for namespace {grant_namespace:?}, this line is configured for {our_namespace:?}")]
    WrongNamespace {
        block_id: String,
        grant_namespace: String,
        our_namespace: String,
    },
    #[error("block {block_id} [{start}, {end}) overlaps block {other} [{other_start}, {other_end}) already held")]
    Overlap {
        block_id: String,
        start: u64,
        end: u64,
        other: String,
        other_start: u64,
        other_end: u64,
    },
    #[error("block {block_id} was already imported (event seq {seq})")]
    AlreadyImported { block_id: String, seq: i64 },
}

impl Grant {
    /// The bytes the issuer signs: SPEC section 1, exactly.
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "linemark-grant-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.block_id,
            self.namespace,
            self.key_id,
            self.line_id,
            self.start,
            self.count,
            self.issued_at
        )
        .into_bytes()
    }

    /// Parses a grant from JSON text, telling a truncated file from other damage.
    pub fn from_json(text: &[u8]) -> Result<Self, GrantError> {
        let grant: Grant = serde_json::from_slice(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Eof => GrantError::Truncated {
                line: e.line(),
                column: e.column(),
            },
            serde_json::error::Category::Data => GrantError::Fields(e.to_string()),
            _ => GrantError::NotJson(e.to_string()),
        })?;
        if grant.grant_version != GRANT_VERSION {
            return Err(GrantError::Version(grant.grant_version));
        }
        Ok(grant)
    }

    /// One past the last index of the block.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.count)
    }

    /// Signs the grant's canonical bytes, replacing `signature`.
    pub fn sign(&mut self, key: &SigningKey) {
        let sig = key.sign(&self.signed_bytes());
        self.signature = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
    }

    /// Every check that needs nothing but the grant and this line's policy:
    /// range, signature, line, key id, namespace.
    pub fn verify(&self, policy: &GrantPolicy) -> Result<(), GrantError> {
        // The block ID is printed by `blocks list` and named in every later
        // error, so it is checked first: a canonical hyphenated UUID.
        if self.block_id.len() != 36 || uuid::Uuid::try_parse(&self.block_id).is_err() {
            return Err(GrantError::BlockId(self.block_id.clone()));
        }
        if self.issued_at.parse::<jiff::Timestamp>().is_err()
            || !self.issued_at.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(GrantError::IssuedAt {
                block_id: self.block_id.clone(),
                issued_at: self.issued_at.clone(),
            });
        }
        if self.count == 0 || self.start >= INDEX_SPACE || self.count > INDEX_SPACE - self.start {
            return Err(GrantError::Range {
                block_id: self.block_id.clone(),
                start: self.start,
                count: self.count,
            });
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.signature.trim())
            .map_err(|_| GrantError::SignatureEncoding(self.block_id.clone()))?;
        let sig_bytes: [u8; 64] = raw
            .try_into()
            .map_err(|_| GrantError::SignatureEncoding(self.block_id.clone()))?;
        let sig = Signature::from_bytes(&sig_bytes);
        let msg = self.signed_bytes();
        if !policy.issuers.iter().any(|k| k.verify(&msg, &sig).is_ok()) {
            return Err(GrantError::BadSignature(self.block_id.clone()));
        }
        if self.line_id != policy.line_id {
            return Err(GrantError::WrongLine {
                block_id: self.block_id.clone(),
                grant_line: self.line_id.clone(),
                our_line: policy.line_id.clone(),
            });
        }
        if self.key_id != policy.key_id {
            return Err(GrantError::WrongKeyId {
                block_id: self.block_id.clone(),
                grant_key_id: self.key_id.clone(),
                our_key_id: policy.key_id.clone(),
            });
        }
        if let Some(ns) = &policy.namespace {
            if &self.namespace != ns {
                return Err(GrantError::WrongNamespace {
                    block_id: self.block_id.clone(),
                    grant_namespace: self.namespace.clone(),
                    our_namespace: ns.clone(),
                });
            }
        }
        Ok(())
    }

    /// Refuses a grant whose range intersects any block already held.
    pub fn check_overlap<'a>(
        &self,
        held: impl IntoIterator<Item = &'a HeldRange>,
    ) -> Result<(), GrantError> {
        for h in held {
            let h_end = h.start + h.count;
            if self.start < h_end && h.start < self.end() {
                return Err(GrantError::Overlap {
                    block_id: self.block_id.clone(),
                    start: self.start,
                    end: self.end(),
                    other: h.block_id.clone(),
                    other_start: h.start,
                    other_end: h_end,
                });
            }
        }
        Ok(())
    }
}

/// Parses a 64-hex-character Ed25519 public key.
pub fn parse_public_key(hex_text: &str) -> Result<VerifyingKey, String> {
    let t = hex_text.trim();
    let mut b = [0u8; 32];
    hex::decode_to_slice(t, &mut b)
        .map_err(|_| format!("expected 64 hex characters, found {:?}", t))?;
    VerifyingKey::from_bytes(&b).map_err(|e| format!("not a valid Ed25519 public key: {e}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const VECTOR_GRANT: &str = r#"{"grant_version": 1, "block_id": "018f3a2e-7c4d-7000-8000-000000000001", "namespace": "acme-batteries", "key_id": "630dcd2966c43366", "line_id": "P1-L03", "start": 1048576, "count": 65536, "issued_at": "2026-11-20T08:00:00Z", "issuer": "central", "signature": "eKfMtPmmBOelZlUssGl2nFtabx1SEMCpHxqFmX6xqlcwCwbacKeIEveD9uLjRgpwrLVUjZjhf2387F1BxIfCCA=="}"#;

    pub(crate) fn vector_issuer() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    pub(crate) fn vector_policy() -> GrantPolicy {
        GrantPolicy {
            line_id: "P1-L03".into(),
            key_id: "630dcd2966c43366".into(),
            namespace: Some("acme-batteries".into()),
            issuers: vec![vector_issuer().verifying_key()],
        }
    }

    #[test]
    fn issuer_public_key_matches_test_vector() {
        assert_eq!(
            hex::encode(vector_issuer().verifying_key().to_bytes()),
            "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
        );
        assert!(parse_public_key(
            "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
        )
        .is_ok());
        assert!(parse_public_key("ea4a").is_err());
    }

    #[test]
    fn vector_grant_signed_bytes_and_signature_verify() {
        let g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
        assert_eq!(
            g.signed_bytes(),
            b"linemark-grant-v1\n018f3a2e-7c4d-7000-8000-000000000001\nacme-batteries\n630dcd2966c43366\nP1-L03\n1048576\n65536\n2026-11-20T08:00:00Z"
        );
        g.verify(&vector_policy()).unwrap();
        // Ed25519 is deterministic: re-signing gives the vector's signature.
        let mut again = g.clone();
        again.sign(&vector_issuer());
        assert_eq!(again.signature, g.signature);
    }

    #[test]
    fn an_altered_field_breaks_the_signature() {
        let mut g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
        g.count += 1;
        assert_eq!(
            g.verify(&vector_policy()),
            Err(GrantError::BadSignature(g.block_id.clone()))
        );
    }

    #[test]
    fn another_line_wrong_key_and_namespace_are_refused_by_name() {
        let key = vector_issuer();
        let mut g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
        g.line_id = "P2-L01".into();
        g.sign(&key);
        assert!(matches!(
            g.verify(&vector_policy()),
            Err(GrantError::WrongLine { .. })
        ));

        let mut g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
        g.key_id = "0000000000000000".into();
        g.sign(&key);
        assert!(matches!(
            g.verify(&vector_policy()),
            Err(GrantError::WrongKeyId { .. })
        ));

        let mut g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
        g.namespace = "other".into();
        g.sign(&key);
        assert!(matches!(
            g.verify(&vector_policy()),
            Err(GrantError::WrongNamespace { .. })
        ));
    }

    #[test]
    fn a_signed_grant_with_a_non_uuid_block_id_or_bad_issued_at_is_refused() {
        let key = vector_issuer();
        for bad in [
            "<script>alert(1)</script>",
            "b1",
            "018f3a2e7c4d70008000000000000001",
            "018f3a2e-7c4d-7000-8000-00000000000\n",
            "",
        ] {
            let mut g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
            g.block_id = bad.to_string();
            g.sign(&key);
            assert_eq!(
                g.verify(&vector_policy()),
                Err(GrantError::BlockId(bad.to_string())),
                "{bad:?}"
            );
        }
        for bad in [
            "yesterday",
            "2026-11-20T08:00:00Z\nforged: yes",
            "2026-13-01T00:00:00Z",
            "",
        ] {
            let mut g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
            g.issued_at = bad.to_string();
            g.sign(&key);
            assert!(
                matches!(g.verify(&vector_policy()), Err(GrantError::IssuedAt { .. })),
                "{bad:?}"
            );
        }
        let mut g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
        g.issued_at = "2026-11-20T09:00:00+01:00".into();
        g.sign(&key);
        assert_eq!(g.verify(&vector_policy()), Ok(()));
    }

    #[test]
    fn ranges_outside_the_index_space_are_refused() {
        let key = vector_issuer();
        for (start, count) in [
            (0, 0),
            (INDEX_SPACE - 1, 2),
            (INDEX_SPACE, 1),
            (u64::MAX, 1),
        ] {
            let mut g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
            g.start = start;
            g.count = count;
            g.sign(&key);
            assert!(
                matches!(g.verify(&vector_policy()), Err(GrantError::Range { .. })),
                "{start} {count}"
            );
        }
    }

    #[test]
    fn truncated_non_json_and_missing_fields_are_told_apart() {
        let cut = &VECTOR_GRANT[..VECTOR_GRANT.len() / 2];
        assert!(matches!(
            Grant::from_json(cut.as_bytes()),
            Err(GrantError::Truncated { .. })
        ));
        assert!(matches!(
            Grant::from_json(b"hello"),
            Err(GrantError::NotJson(_))
        ));
        assert!(matches!(
            Grant::from_json(b"{\"grant_version\":1}"),
            Err(GrantError::Fields(_))
        ));
        let v2 = VECTOR_GRANT.replace("\"grant_version\": 1", "\"grant_version\": 2");
        assert_eq!(Grant::from_json(v2.as_bytes()), Err(GrantError::Version(2)));
        let bad_sig = VECTOR_GRANT.replace("eKfM", "!!!!");
        let g = Grant::from_json(bad_sig.as_bytes()).unwrap();
        assert!(matches!(
            g.verify(&vector_policy()),
            Err(GrantError::SignatureEncoding(_))
        ));
    }

    #[test]
    fn overlap_is_detected_at_both_edges_and_adjacent_blocks_are_fine() {
        let g = Grant::from_json(VECTOR_GRANT.as_bytes()).unwrap();
        let held = |start, count| HeldRange {
            block_id: "b".into(),
            start,
            count,
        };
        assert!(g.check_overlap(&[held(0, 1048576)]).is_ok());
        assert!(g.check_overlap(&[held(1048576 + 65536, 10)]).is_ok());
        assert!(g.check_overlap(&[held(0, 1048577)]).is_err());
        assert!(g.check_overlap(&[held(1048576 + 65535, 10)]).is_err());
        assert!(g.check_overlap(&[held(1050000, 1)]).is_err());
        assert!(g.check_overlap(&[held(0, INDEX_SPACE)]).is_err());
    }
}
