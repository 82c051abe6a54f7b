//! Who may open a session: anonymous on the None endpoint only when
//! `allow_anonymous = true`, the configured users (argon2id password
//! hashes) on the Basic256Sha256 SignAndEncrypt endpoint. Refusals are
//! logged with the user name and never say which part was wrong.
//!
//! Owns: the user token policies per endpoint and password checks.
//! Must not: keep or log a password.

use std::collections::BTreeMap;

use argon2::{PasswordHash, PasswordVerifier};
use async_trait::async_trait;
use opcua::crypto::SecurityPolicy;
use opcua::server::authenticator::{
    user_pass_security_policy_id, user_pass_security_policy_uri, AuthManager, Password, UserToken,
};
use opcua::server::ServerEndpoint;
use opcua::types::{Error, StatusCode, UAString, UserTokenPolicy, UserTokenType};

use crate::config::OpcUa;

/// The users of the secure endpoint and whether anonymous is allowed.
pub struct Users {
    anonymous: bool,
    hashes: BTreeMap<String, String>,
}

impl Users {
    pub fn new(cfg: &OpcUa) -> Self {
        Self {
            anonymous: cfg.allow_anonymous,
            hashes: cfg
                .users
                .iter()
                .map(|u| (u.name.clone(), u.password_hash.clone()))
                .collect(),
        }
    }
}

/// Whether the endpoint encrypts (a known policy other than None).
fn secure(endpoint: &ServerEndpoint) -> bool {
    endpoint
        .security_policy
        .parse::<SecurityPolicy>()
        .is_ok_and(|p| p != SecurityPolicy::None)
}

fn refused(why: String) -> Error {
    Error::new(StatusCode::BadIdentityTokenRejected, why)
}

#[async_trait]
impl AuthManager for Users {
    async fn authenticate_anonymous_token(&self, endpoint: &ServerEndpoint) -> Result<(), Error> {
        if self.anonymous && !secure(endpoint) {
            return Ok(());
        }
        tracing::warn!(endpoint = %endpoint.security_policy, "OPC UA: anonymous session refused (allow_anonymous is false, or this is the secure endpoint)");
        Err(refused("anonymous access is not allowed here".into()))
    }

    async fn authenticate_username_identity_token(
        &self,
        endpoint: &ServerEndpoint,
        username: &str,
        password: &Password,
    ) -> Result<UserToken, Error> {
        let name: String = username.chars().take(64).collect();
        if !secure(endpoint) {
            tracing::warn!(user = %name, "OPC UA: user sign-in refused on the unencrypted endpoint; use Basic256Sha256 SignAndEncrypt");
            return Err(refused(
                "users sign in on the encrypted endpoint only".into(),
            ));
        }
        let Some(hash) = self.hashes.get(username).cloned() else {
            tracing::warn!(user = %name, "OPC UA: sign-in refused: unknown user");
            return Err(refused(format!("cannot sign in {name:?}")));
        };
        // argon2 takes tens of milliseconds of CPU: off the async threads.
        let pw = password.get().to_string();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|h| {
                argon2::Argon2::default()
                    .verify_password(pw.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        if ok {
            tracing::info!(user = %name, "OPC UA: user signed in");
            Ok(UserToken(username.to_string()))
        } else {
            tracing::warn!(user = %name, "OPC UA: sign-in refused: wrong password");
            Err(refused(format!("cannot sign in {name:?}")))
        }
    }

    fn user_token_policies(&self, endpoint: &ServerEndpoint) -> Vec<UserTokenPolicy> {
        if secure(endpoint) {
            vec![UserTokenPolicy {
                policy_id: user_pass_security_policy_id(endpoint),
                token_type: UserTokenType::UserName,
                issued_token_type: UAString::null(),
                issuer_endpoint_url: UAString::null(),
                security_policy_uri: user_pass_security_policy_uri(endpoint),
            }]
        } else if self.anonymous {
            vec![UserTokenPolicy {
                policy_id: UAString::from("anonymous"),
                token_type: UserTokenType::Anonymous,
                issued_token_type: UAString::null(),
                issuer_endpoint_url: UAString::null(),
                security_policy_uri: UAString::null(),
            }]
        } else {
            Vec::new()
        }
    }
}

/// A new argon2id PHC string for `password` (`linemark plc passwd`).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let h = hash_password("s3cret pass").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        let parsed = PasswordHash::new(&h).unwrap();
        let a = argon2::Argon2::default();
        assert!(a.verify_password(b"s3cret pass", &parsed).is_ok());
        assert!(a.verify_password(b"s3cret pas", &parsed).is_err());
        assert_ne!(h, hash_password("s3cret pass").unwrap(), "salted");
    }
}
