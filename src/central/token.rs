//! Tokens for lines, people and systems (SPEC section 11): made from 32
//! random bytes, shown once, kept only as their sha256; and the roles.
//!
//! Owns: the token text, its hash, reading one from an `Authorization`
//! header, and the list of roles. Must not: store or look up tokens (the
//! store does).

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A line's sync token (ingest and blocks for that line only).
    Line,
    Admin,
    Manufacturer,
    Authority,
    Service,
    Recycler,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Line,
        Role::Admin,
        Role::Manufacturer,
        Role::Authority,
        Role::Service,
        Role::Recycler,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Line => "line",
            Role::Admin => "admin",
            Role::Manufacturer => "manufacturer",
            Role::Authority => "authority",
            Role::Service => "service",
            Role::Recycler => "recycler",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A new token (256 random bits, as the line's web tokens) and its hash.
pub fn generate() -> Result<(String, String), getrandom::Error> {
    crate::web::auth::new_token()
}

/// What the database keeps of a token: its sha256 in hex.
pub fn hash(token: &str) -> String {
    hex::encode(crate::web::auth::sha256(token))
}

/// The token of an `Authorization: Bearer ...` header value.
pub fn from_header(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let ((a, ha), (b, hb)) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a, b);
        assert!(a.len() >= 43, "256 bits");
        assert_eq!((hash(&a), hash(&b)), (ha, hb));
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn bearer_headers_are_read_and_anything_else_is_not_a_token() {
        assert_eq!(from_header("Bearer lmk_x"), Some("lmk_x"));
        assert_eq!(from_header("bearer  lmk_x "), Some("lmk_x"));
        assert_eq!(from_header("Basic abc"), None);
        assert_eq!(from_header("Bearer "), None);
        assert_eq!(from_header("lmk_x"), None);
    }

    #[test]
    fn every_role_reads_back_from_its_name() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("boss"), None);
    }
}
