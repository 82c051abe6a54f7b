//! The keyed Feistel permutation of SPEC section 1 and the namespace key.
//!
//! Owns: turning an index `0 <= i < 2^60` into the opaque 60-bit value that is
//! written as a unit ID, and back. Must not: know about blocks, storage or
//! text encoding (that is `codec`).
//!
//! The round function is `F(r, x) = first 4 bytes of sha256(key || [r] || x as
//! 4 bytes BE)`, masked to the half width. The message is always 37 bytes, so
//! it fits one SHA-256 block; we build that padded block once per key and run
//! the compression function directly, which gives the same digest as the
//! `Digest` API without its buffering (the tests check both agree).

use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};
use std::fmt;

/// Number of rounds fixed by the SPEC.
pub const ROUNDS: u8 = 6;
/// Bits of one half of the production permutation.
pub const HALF_BITS: u32 = 30;
/// Size of the index space: `2^60`.
pub const INDEX_SPACE: u64 = 1 << (2 * HALF_BITS);

const SHA256_H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The 32-byte namespace key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct NamespaceKey([u8; 32]);

impl fmt::Debug for NamespaceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamespaceKey(key_id={}, bytes redacted)", self.key_id())
    }
}

/// Why a namespace key could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the namespace key must be 64 hex characters (32 bytes), found {0} characters")]
    Length(usize),
    #[error("the namespace key is not hexadecimal: {0}")]
    NotHex(String),
}

impl NamespaceKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the key file's content: 64 hex characters, surrounding white space ignored.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        if t.len() != 64 {
            return Err(KeyError::Length(t.chars().count()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(t, &mut out).map_err(|e| KeyError::NotHex(e.to_string()))?;
        Ok(Self(out))
    }

    /// First 16 hex characters of sha256(key bytes): names the key without revealing it.
    pub fn key_id(&self) -> String {
        let d = Sha256::digest(self.0);
        hex::encode(&d[..8])
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A Feistel permutation keyed by a namespace key, over `2 * half_bits` bits.
///
/// Production uses `half_bits = 30`; tests use small widths of the very same
/// construction to check bijectivity exhaustively.
#[derive(Clone)]
pub struct Permutation {
    block: [u8; 64],
    half_bits: u32,
    mask: u32,
}

impl fmt::Debug for Permutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permutation")
            .field("half_bits", &self.half_bits)
            .finish_non_exhaustive()
    }
}

impl Permutation {
    /// The production permutation: 60 bits.
    pub fn new(key: &NamespaceKey) -> Self {
        Self::with_half_bits(key, HALF_BITS)
    }

    /// The same construction over `2 * half_bits` bits (1..=30).
    pub fn with_half_bits(key: &NamespaceKey, half_bits: u32) -> Self {
        assert!((1..=30).contains(&half_bits), "half width must be 1..=30");
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(key.bytes());
        // 32 key bytes + 1 round byte + 4 value bytes = 37 bytes = 296 bits.
        block[37] = 0x80;
        block[56..].copy_from_slice(&(37u64 * 8).to_be_bytes());
        Self {
            block,
            half_bits,
            mask: ((1u64 << half_bits) - 1) as u32,
        }
    }

    /// Size of the domain, `2^(2 * half_bits)`.
    pub fn domain(&self) -> u64 {
        1u64 << (2 * self.half_bits)
    }

    #[inline]
    fn round(&self, r: u8, x: u32) -> u32 {
        let mut block = self.block;
        block[32] = r;
        block[33..37].copy_from_slice(&x.to_be_bytes());
        let mut state = SHA256_H0;
        sha2::compress256(&mut state, &[GenericArray::from(block)]);
        state[0] & self.mask
    }

    /// Index to opaque value. `index` must be inside the domain.
    #[inline]
    pub fn permute(&self, index: u64) -> u64 {
        debug_assert!(index < self.domain());
        let mut l = (index >> self.half_bits) as u32 & self.mask;
        let mut r = index as u32 & self.mask;
        for round in 0..ROUNDS {
            let next = l ^ self.round(round, r);
            l = r;
            r = next;
        }
        (u64::from(l) << self.half_bits) | u64::from(r)
    }

    /// Opaque value back to its index.
    #[inline]
    pub fn unpermute(&self, value: u64) -> u64 {
        debug_assert!(value < self.domain());
        let mut l = (value >> self.half_bits) as u32 & self.mask;
        let mut r = value as u32 & self.mask;
        for round in (0..ROUNDS).rev() {
            let prev = r ^ self.round(round, l);
            r = l;
            l = prev;
        }
        (u64::from(l) << self.half_bits) | u64::from(r)
    }

    /// The round function through the plain `Digest` API, for cross-checking.
    #[cfg(test)]
    fn round_reference(&self, key: &NamespaceKey, r: u8, x: u32) -> u32 {
        let mut h = Sha256::new();
        h.update(key.bytes());
        h.update([r]);
        h.update(x.to_be_bytes());
        let d = h.finalize();
        u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & self.mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn vector_key() -> NamespaceKey {
        let mut b = [0u8; 32];
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        NamespaceKey::from_bytes(b)
    }

    #[test]
    fn key_id_matches_test_vector() {
        assert_eq!(vector_key().key_id(), "630dcd2966c43366");
    }

    #[test]
    fn key_from_hex_ignores_surrounding_whitespace_and_rejects_bad_lengths() {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        assert_eq!(
            NamespaceKey::from_hex(&format!("  {hex}\n")).unwrap(),
            vector_key()
        );
        assert_eq!(NamespaceKey::from_hex("abcd"), Err(KeyError::Length(4)));
        let bad = format!("{}zz", &hex[..62]);
        assert!(matches!(
            NamespaceKey::from_hex(&bad),
            Err(KeyError::NotHex(_))
        ));
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let s = format!("{:?}", vector_key());
        assert!(!s.contains("0001020304"), "{s}");
        assert!(s.contains("630dcd2966c43366"));
    }

    #[test]
    fn compression_shortcut_equals_sha256_digest() {
        let key = vector_key();
        let p = Permutation::new(&key);
        for r in 0..ROUNDS {
            for x in [0u32, 1, 0x3fff_ffff, 0x1234_5678 & 0x3fff_ffff] {
                assert_eq!(p.round(r, x), p.round_reference(&key, r, x));
            }
        }
    }

    #[test]
    fn small_width_permutation_is_a_bijection_exhaustively() {
        // 2 x 8 bits = 65,536 values: every output hit exactly once.
        let p = Permutation::with_half_bits(&vector_key(), 8);
        let mut seen = vec![false; p.domain() as usize];
        for i in 0..p.domain() {
            let v = p.permute(i);
            assert!(!seen[v as usize], "value {v} produced twice");
            seen[v as usize] = true;
            assert_eq!(p.unpermute(v), i);
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn odd_small_widths_are_bijections_too() {
        for half in [1u32, 3, 5] {
            let p = Permutation::with_half_bits(&vector_key(), half);
            let mut out: Vec<u64> = (0..p.domain()).map(|i| p.permute(i)).collect();
            out.sort_unstable();
            assert_eq!(
                out,
                (0..p.domain()).collect::<Vec<_>>(),
                "half width {half}"
            );
        }
    }

    proptest! {
        #[test]
        fn unpermute_inverts_permute_on_60_bits(i in 0u64..INDEX_SPACE) {
            let p = Permutation::new(&vector_key());
            let v = p.permute(i);
            prop_assert!(v < INDEX_SPACE);
            prop_assert_eq!(p.unpermute(v), i);
        }

        #[test]
        fn distinct_indices_give_distinct_values(a in 0u64..INDEX_SPACE, b in 0u64..INDEX_SPACE) {
            prop_assume!(a != b);
            let p = Permutation::new(&vector_key());
            prop_assert_ne!(p.permute(a), p.permute(b));
        }
    }
}
