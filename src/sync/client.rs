//! The HTTP client of the central passport store (SPEC section 7).
//!
//! Owns: TLS (rustls, an optional extra CA, an optional client certificate
//! for mTLS), time-outs, the bearer token (read from a file or the
//! environment, never logged: its `Debug` is redacted and the header is
//! marked sensitive), and classifying every answer as acknowledged,
//! worth retrying, a conflict, or refused.
//! Must not: decide what to send next or touch the journal.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;

use super::batch::Batch;
use super::SyncError;
use crate::config::{TokenSource, Upstream};

/// The bearer token. Shown nowhere: `Debug` and `Display` print `<redacted>`.
#[derive(Clone)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Token {
    /// Reads the token now (so a rotated token file is picked up by the next sync).
    pub fn read(src: &TokenSource) -> Result<Token, SyncError> {
        let (text, origin) = match src {
            TokenSource::File(p) => (
                std::fs::read_to_string(p).map_err(|e| {
                    SyncError::Token(format!("upstream.token_file {}: {e}", p.display()))
                })?,
                format!("upstream.token_file {}", p.display()),
            ),
            TokenSource::Env(v) => (
                std::env::var(v).map_err(|_| {
                    SyncError::Token(format!(
                        "upstream.token_env: the environment variable {v} is not set"
                    ))
                })?,
                format!("upstream.token_env {v}"),
            ),
        };
        let t = text.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SyncError::Token(format!(
                "{origin}: the token must be one line of printable ASCII without spaces"
            )));
        }
        Ok(Token(t.to_string()))
    }

    fn header(&self) -> Result<HeaderValue, Failure> {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.0))
            .map_err(|_| Failure::Refused("the token is not a valid header value".into()))?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// Why an upload or a block request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying unchanged: 5xx, time-outs, cut connections, an answer
    /// that makes no sense.
    Transient(String),
    /// `409`: the store's chain does not continue with ours; its reason.
    Conflict(String),
    /// Refused in a way retrying will not fix without an operator (401,
    /// 403, 404, other 4xx); retried only slowly by the daemon.
    Refused(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Transient(m) | Failure::Conflict(m) | Failure::Refused(m) => f.write_str(m),
        }
    }
}

/// A client for one line's endpoints on the store.
#[derive(Clone)]
pub struct StoreClient {
    http: reqwest::Client,
    journal_url: String,
    blocks_url: String,
    request_timeout: Duration,
}

impl StoreClient {
    pub fn new(up: &Upstream, line_id: &str) -> Result<StoreClient, SyncError> {
        let request_timeout = Duration::from_secs(up.request_timeout_s);
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("linemark/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(up.connect_timeout_s))
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(ca) = &up.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| SyncError::Tls(format!("upstream.ca_file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                SyncError::Tls(format!(
                    "upstream.ca_file {}: not PEM certificates: {e}",
                    ca.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(SyncError::Tls(format!(
                    "upstream.ca_file {}: holds no certificate",
                    ca.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some((cert, key)) = &up.client_cert {
            let mut pem = std::fs::read(cert).map_err(|e| {
                SyncError::Tls(format!("upstream.client_cert {}: {e}", cert.display()))
            })?;
            pem.push(b'\n');
            pem.extend(std::fs::read(key).map_err(|e| {
                SyncError::Tls(format!("upstream.client_key {}: {e}", key.display()))
            })?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                SyncError::Tls(format!(
                    "upstream.client_cert/client_key {} + {}: not a PEM certificate and private key: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            b = b.identity(id);
        }
        let http = b
            .build()
            .map_err(|e| SyncError::Tls(format!("cannot set up the HTTP client: {e}")))?;
        Ok(StoreClient {
            http,
            journal_url: format!("{}/v1/lines/{}/journal", up.url, line_id),
            blocks_url: format!("{}/v1/lines/{}/blocks", up.url, line_id),
            request_timeout,
        })
    }

    pub fn journal_url(&self) -> &str {
        &self.journal_url
    }

    /// Uploads one batch; answers the store's `acked_through` as sent
    /// (the caller checks it against the batch).
    pub async fn post_batch(&self, token: &Token, batch: &Batch) -> Result<i64, Failure> {
        let resp = self
            .http
            .post(&self.journal_url)
            .header(AUTHORIZATION, token.header()?)
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "gzip")
            .body(batch.body.clone())
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        match status {
            StatusCode::OK => {
                #[derive(serde::Deserialize)]
                struct Ack {
                    acked_through: i64,
                }
                serde_json::from_slice::<Ack>(&body)
                    .map(|a| a.acked_through)
                    .map_err(|e| {
                        Failure::Transient(format!(
                            "the store answered 200 without {{\"acked_through\": N}} ({e}): {}",
                            excerpt(&body)
                        ))
                    })
            }
            s => Err(classify(s, &body)),
        }
    }

    /// Asks for a block of `count` IDs; answers the grant's bytes, unchecked.
    pub async fn request_block(&self, token: &Token, count: u64) -> Result<Vec<u8>, Failure> {
        let resp = self
            .http
            .post(&self.blocks_url)
            .header(AUTHORIZATION, token.header()?)
            .header(CONTENT_TYPE, "application/json")
            .body(format!("{{\"count\":{count}}}"))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if status == StatusCode::OK {
            Ok(body.to_vec())
        } else {
            Err(classify(status, &body))
        }
    }

    fn transport(&self, e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            Failure::Transient(format!(
                "no answer from the store within {} s (upstream.request_timeout_s)",
                self.request_timeout.as_secs()
            ))
        } else if e.is_connect() {
            Failure::Transient(format!("cannot connect to the store: {}", chain(&e)))
        } else {
            Failure::Transient(format!("the connection to the store failed: {}", chain(&e)))
        }
    }
}

fn classify(status: StatusCode, body: &[u8]) -> Failure {
    let why = excerpt(body);
    match status {
        StatusCode::CONFLICT => Failure::Conflict(format!("the store answered 409: {why}")),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            Failure::Transient(format!("the store answered {s}: {why}"))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Failure::Refused(format!(
            "the store refused the token ({status}): check upstream.token_file / token_env: {why}"
        )),
        s => Failure::Refused(format!("the store answered {s}: {why}")),
    }
}

/// An error with its causes, e.g. "error sending request: connection reset".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The start of a body, for messages: the store's `error` field when the
/// body is JSON with one, else the text; never more than 300 characters.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("reason"))
                .and_then(|e| e.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.trim().to_string());
    if text.is_empty() {
        return "(empty body)".into();
    }
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_shows_in_debug_or_display() {
        let t = Token("s3cret-token".into());
        assert!(!format!("{t:?} {t}").contains("s3cret"));
    }

    #[test]
    fn a_token_file_is_trimmed_and_checked() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("t");
        std::fs::write(&p, "abc.DEF-123\n").expect("write");
        let t = Token::read(&TokenSource::File(p.clone())).expect("token");
        assert_eq!(t.0, "abc.DEF-123");
        std::fs::write(&p, "two words\n").expect("write");
        let e = Token::read(&TokenSource::File(p))
            .expect_err("space")
            .to_string();
        assert!(e.contains("token_file") && !e.contains("two words"), "{e}");
        let e = Token::read(&TokenSource::Env("LINEMARK_NO_SUCH_VAR_X".into()))
            .expect_err("unset")
            .to_string();
        assert!(e.contains("LINEMARK_NO_SUCH_VAR_X"), "{e}");
    }

    #[test]
    fn answers_are_classified_by_status() {
        assert!(matches!(
            classify(StatusCode::CONFLICT, br#"{"error":"chain mismatch at seq 7"}"#),
            Failure::Conflict(m) if m.contains("chain mismatch at seq 7")
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, b""),
            Failure::Transient(m) if m.contains("503") && m.contains("empty body")
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, b"no"),
            Failure::Refused(m) if m.contains("token")
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, b"no such line"),
            Failure::Refused(m) if m.contains("404") && m.contains("no such line")
        ));
    }
}
