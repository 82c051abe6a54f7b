//! A fake central passport store: HTTP/1.1 on loopback, plain std threads.
//!
//! It keeps the line's chain by seq (hashes only, so a million events stay
//! small), checks every event's hash itself (canonical JSON + sha256, the
//! way SPEC section 5 defines it), de-duplicates by seq, answers
//! `{"acked_through": N}`, and misbehaves on command: 500s, answers slower
//! than the client's time-out, the connection cut in the middle of the
//! request body, a wrong `acked_through`, 409.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// One misbehaviour, used by the next journal upload.
#[derive(Debug, Clone)]
pub enum Fault {
    /// `500 Internal Server Error`, nothing stored.
    Status500,
    /// Store the batch, but answer only after this long.
    Slow(Duration),
    /// Read half of the body, then close the connection.
    CutMidBody,
    /// Store the batch, answer this `acked_through` instead of the right one.
    WrongAck(i64),
    /// `409` with this reason, nothing stored.
    Conflict(String),
}

#[derive(Default)]
pub struct StoreState {
    /// `hashes[i]` is the hash of seq `i + 1`.
    pub hashes: Vec<String>,
    /// The type of every stored event, by seq.
    pub types: Vec<String>,
    pub faults: VecDeque<Fault>,
    /// `(first_seq, last_seq)` of every upload the store read completely.
    pub batches: Vec<(i64, i64)>,
    /// Events received in all, duplicates included.
    pub received: u64,
    /// Uploads refused for a missing or wrong token.
    pub unauthorized: u64,
    /// Answers to `POST .../blocks`, oldest first: (status, body).
    pub block_answers: VecDeque<(u16, Vec<u8>)>,
    /// `count` of every block request.
    pub block_requests: Vec<u64>,
}

pub struct FakeStore {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<StoreState>>,
    stop: Arc<AtomicBool>,
    scheme: &'static str,
}

pub const TOKEN: &str = "test-token-5f2b9c";

impl FakeStore {
    /// A store speaking plain HTTP.
    pub fn start(line_id: &str) -> FakeStore {
        Self::start_with(line_id, None)
    }

    /// A store speaking HTTPS with a certificate from a fresh test CA, and
    /// asking for a client certificate from that CA (mutual TLS).
    pub fn start_tls(line_id: &str) -> (FakeStore, TestPki) {
        let pki = TestPki::new();
        let store = Self::start_with(line_id, Some(pki.server_config()));
        (store, pki)
    }

    fn start_with(line_id: &str, tls: Option<Arc<rustls::ServerConfig>>) -> FakeStore {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(StoreState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp, line) = (state.clone(), stop.clone(), line_id.to_string());
        let scheme = if tls.is_some() { "https" } else { "http" };
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stp.load(Ordering::Acquire) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_nodelay(true);
                let (st, line, tls) = (st.clone(), line.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(conn, &st, &line),
                    Some(cfg) => {
                        let Ok(server) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(server, conn), &st, &line);
                    }
                });
            }
        });
        FakeStore {
            addr,
            state,
            stop,
            scheme,
        }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push_back(f);
    }

    pub fn acked(&self) -> i64 {
        self.state.lock().unwrap().hashes.len() as i64
    }

    /// Every stored hash, by seq.
    pub fn hashes(&self) -> Vec<String> {
        self.state.lock().unwrap().hashes.clone()
    }
}

impl Drop for FakeStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr);
    }
}

struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_head<S: Read>(r: &mut BufReader<S>) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Some(Req {
        method,
        path,
        headers,
    })
}

fn respond<S: Write>(w: &mut S, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        _ => "Other",
    };
    // One write: several small ones would meet Nagle and delayed ACKs.
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    w.write_all(text.as_bytes())?;
    w.flush()
}

fn serve<S: Read + Write>(conn: S, st: &Mutex<StoreState>, line: &str) {
    let mut r = BufReader::new(conn);
    while let Some(req) = read_head(&mut r) {
        let len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let journal_path = format!("/v1/lines/{line}/journal");
        let blocks_path = format!("/v1/lines/{line}/blocks");
        let authorized = req.header("authorization") == Some(&format!("Bearer {TOKEN}"));
        let fault = if req.path == journal_path && authorized {
            st.lock().unwrap().faults.pop_front()
        } else {
            None
        };
        if let Some(Fault::CutMidBody) = fault {
            let mut half = vec![0u8; len / 2];
            let _ = r.read_exact(&mut half);
            return; // dropping the stream closes the connection
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (status, answer) = if req.method != "POST" {
            (404, r#"{"error":"not found"}"#.to_string())
        } else if !authorized {
            st.lock().unwrap().unauthorized += 1;
            (
                401,
                r#"{"error":"missing or unknown bearer token"}"#.to_string(),
            )
        } else if req.path == journal_path {
            upload(st, line, &req, &body, fault)
        } else if req.path == blocks_path {
            let count = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["count"].as_u64())
                .unwrap_or(0);
            let mut s = st.lock().unwrap();
            s.block_requests.push(count);
            match s.block_answers.pop_front() {
                Some((code, b)) => (code, String::from_utf8_lossy(&b).into_owned()),
                None => (500, r#"{"error":"no block scripted"}"#.to_string()),
            }
        } else {
            (404, r#"{"error":"no such path"}"#.to_string())
        };
        if respond(r.get_mut(), status, &answer).is_err() {
            return;
        }
    }
}

fn sha256_hex(prev: &str, canon: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(canon.as_bytes());
    hex::encode(h.finalize())
}

fn upload(
    st: &Mutex<StoreState>,
    line: &str,
    req: &Req,
    body: &[u8],
    fault: Option<Fault>,
) -> (u16, String) {
    let json = if req.header("content-encoding") == Some("gzip") {
        let mut s = Vec::new();
        if flate2::read::GzDecoder::new(body)
            .read_to_end(&mut s)
            .is_err()
        {
            return (400, r#"{"error":"bad gzip"}"#.into());
        }
        s
    } else {
        body.to_vec()
    };
    let mut v: serde_json::Value = match serde_json::from_slice(&json) {
        Ok(v) => v,
        Err(e) => return (400, format!(r#"{{"error":"bad json: {e}"}}"#)),
    };
    match fault {
        Some(Fault::Status500) => return (500, r#"{"error":"try later"}"#.into()),
        Some(Fault::Conflict(why)) => {
            return (409, serde_json::json!({ "error": why }).to_string())
        }
        _ => {}
    }
    if v["line_id"] != line {
        return (400, r#"{"error":"wrong line_id"}"#.into());
    }
    let serde_json::Value::Array(events) = v["events"].take() else {
        return (400, r#"{"error":"missing events"}"#.into());
    };
    let (Some(first), Some(last), Some(prev)) = (
        v["first_seq"].as_i64(),
        v["last_seq"].as_i64(),
        v["prev_hash"].as_str(),
    ) else {
        return (400, r#"{"error":"missing fields"}"#.into());
    };
    let mut s = st.lock().unwrap();
    s.received += events.len() as u64;
    s.batches.push((first, last));
    let have = s.hashes.len() as i64;
    if first > have + 1 {
        return (
            409,
            format!(
                r#"{{"error":"gap: the store has seq 1..={have}, the batch starts at {first}"}}"#
            ),
        );
    }
    let expect_prev = if first == 1 {
        "0".repeat(64)
    } else {
        s.hashes[(first - 2) as usize].clone()
    };
    if prev != expect_prev {
        return (
            409,
            format!(r#"{{"error":"chain mismatch: prev_hash of seq {first} is not the store's"}}"#),
        );
    }
    let mut prev = prev.to_string();
    let mut canon = String::new();
    let mut new = Vec::new();
    let count = events.len() as i64;
    for (i, mut e) in events.into_iter().enumerate() {
        let seq = first + i as i64;
        let kind = e["type"].as_str().unwrap_or("").to_string();
        let Some(obj) = e.as_object_mut() else {
            return (400, r#"{"error":"an event is not an object"}"#.into());
        };
        let hash = obj
            .remove("hash")
            .and_then(|h| h.as_str().map(str::to_string));
        if obj.get("seq").and_then(|x| x.as_i64()) != Some(seq) {
            return (400, format!(r#"{{"error":"event {i} is not seq {seq}"}}"#));
        }
        canon.clear();
        linemark::journal::event::canonical_json(&e, &mut canon);
        let h = sha256_hex(&prev, &canon);
        if hash.as_deref() != Some(h.as_str()) {
            return (
                409,
                format!(r#"{{"error":"the hash of seq {seq} does not verify"}}"#),
            );
        }
        if seq <= have && s.hashes[(seq - 1) as usize] != h {
            return (409, format!(r#"{{"error":"chain mismatch at seq {seq}"}}"#));
        }
        if seq > have {
            new.push((h.clone(), kind));
        }
        prev = h;
    }
    if last != first + count - 1 {
        return (
            400,
            r#"{"error":"last_seq does not match the events"}"#.into(),
        );
    }
    for (h, t) in new {
        s.hashes.push(h);
        s.types.push(t);
    }
    let acked = s.hashes.len().min(last as usize) as i64;
    drop(s);
    match fault {
        Some(Fault::Slow(d)) => {
            std::thread::sleep(d);
            (200, format!(r#"{{"acked_through":{acked}}}"#))
        }
        Some(Fault::WrongAck(n)) => (200, format!(r#"{{"acked_through":{n}}}"#)),
        _ => (200, format!(r#"{{"acked_through":{acked}}}"#)),
    }
}

/// A test CA, the store's certificate (for 127.0.0.1 and localhost) and a
/// client certificate for the line, all made fresh per test.
pub struct TestPki {
    pub ca_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

impl TestPki {
    fn new() -> TestPki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "linemark test CA");
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
        let server_key = KeyPair::generate().expect("key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params")
            .signed_by(&server_key, &ca)
            .expect("server cert");
        let client_key = KeyPair::generate().expect("key");
        let client = CertificateParams::new(vec!["line-p1-l03.example".to_string()])
            .expect("params")
            .signed_by(&client_key, &ca)
            .expect("client cert");
        TestPki {
            ca_pem: ca.pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
            ca_der: ca.der().clone(),
            server_der: server.der().clone(),
            server_key_der: server_key.serialize_der(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("CA root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("client verifier");
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![self.server_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .expect("server config");
        Arc::new(cfg)
    }
}
