//! Bearer tokens with roles (SPEC sections 9 and 10).
//!
//! Owns: checking an `Authorization` header against the config's tokens,
//! which are kept only as sha256 hashes, and making new tokens
//! (`linemark token new`). Pure but for the randomness of a new token.
//! Must not: log a token.

use sha2::{Digest, Sha256};

use crate::config::{Role, WebToken};

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Operator => "operator",
        Role::Quality => "quality",
        Role::Admin => "admin",
    }
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub role: Role,
    pub name: String,
}

impl Who {
    /// The actor journaled with an accepted action.
    pub fn actor(&self) -> String {
        format!("web:{}:{}", role_name(self.role), self.name)
    }
}

/// Why an action was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header: 401.
    Missing,
    /// A token that is not in the config: 401.
    Unknown,
    /// A known token whose role is too low: 403.
    Role { who: Who, needed: Role },
}

impl Denied {
    pub fn status(&self) -> u16 {
        match self {
            Denied::Missing | Denied::Unknown => 401,
            Denied::Role { .. } => 403,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Denied::Missing => "sign in: send Authorization: Bearer TOKEN".into(),
            Denied::Unknown => "unknown token".into(),
            Denied::Role { who, needed } => format!(
                "{} has role {}; this action needs {} or higher",
                who.name,
                role_name(who.role),
                role_name(*needed)
            ),
        }
    }
}

pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Checks an `Authorization` header value for a role of at least `needed`.
pub fn authorize(tokens: &[WebToken], header: Option<&str>, needed: Role) -> Result<Who, Denied> {
    let token = header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Denied::Missing)?;
    let hash = sha256(token);
    // Compare against every token, without an early exit.
    let mut found: Option<&WebToken> = None;
    for t in tokens {
        let same = t
            .sha256
            .iter()
            .zip(hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same && found.is_none() {
            found = Some(t);
        }
    }
    let t = found.ok_or(Denied::Unknown)?;
    let who = Who {
        role: t.role,
        name: t.name.clone(),
    };
    if t.role < needed {
        return Err(Denied::Role { who, needed });
    }
    Ok(who)
}

/// A new random token (32 bytes, URL-safe base64) and its sha256 in hex.
pub fn new_token() -> Result<(String, String), getrandom::Error> {
    use base64::Engine as _;
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let hash = hex::encode(sha256(&token));
    Ok((token, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<WebToken> {
        vec![
            WebToken {
                role: Role::Operator,
                name: "op".into(),
                sha256: sha256("op-token"),
            },
            WebToken {
                role: Role::Quality,
                name: "qe".into(),
                sha256: sha256("qe-token"),
            },
        ]
    }

    #[test]
    fn a_known_token_with_enough_role_passes() {
        let who = authorize(&tokens(), Some("Bearer qe-token"), Role::Operator).expect("ok");
        assert_eq!(who.actor(), "web:quality:qe");
    }

    #[test]
    fn missing_and_unknown_tokens_are_401_and_a_low_role_is_403() {
        let t = tokens();
        assert_eq!(authorize(&t, None, Role::Operator), Err(Denied::Missing));
        assert_eq!(
            authorize(&t, Some("Basic abc"), Role::Operator),
            Err(Denied::Missing)
        );
        assert_eq!(
            authorize(&t, Some("Bearer "), Role::Operator),
            Err(Denied::Missing)
        );
        let e = authorize(&t, Some("Bearer nope"), Role::Operator).expect_err("unknown");
        assert_eq!((e.clone(), e.status()), (Denied::Unknown, 401));
        let e = authorize(&t, Some("Bearer op-token"), Role::Quality).expect_err("low");
        assert_eq!(e.status(), 403);
        assert!(e.message().contains("needs quality"), "{}", e.message());
        assert!(!e.message().contains("op-token"));
    }

    #[test]
    fn new_tokens_are_random_and_hash_to_what_is_printed() {
        let (a, ha) = new_token().expect("token");
        let (b, _) = new_token().expect("token");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(ha, hex::encode(sha256(&a)));
    }
}
