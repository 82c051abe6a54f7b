//! An OPC UA client for the tests: the stack's own client over TCP, as a
//! PLC uses the server (discovery, a session, method calls, reads and a
//! subscription).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opcua::client::{ClientBuilder, IdentityToken, Session};
use opcua::crypto::SecurityPolicy;
use opcua::types::{CallMethodRequest, MessageSecurityMode, NodeId, StatusCode, UAString, Variant};

/// How the client signs in.
pub enum Auth<'a> {
    /// Security policy None, anonymous.
    Anonymous,
    /// Basic256Sha256 SignAndEncrypt, anonymous.
    AnonymousEncrypted,
    /// Basic256Sha256 SignAndEncrypt with a user name and password.
    User(&'a str, &'a str),
}

/// A connected session and the line's namespace index.
pub struct Plc {
    pub session: Arc<Session>,
    pub ns: u16,
    event_loop: tokio::task::JoinHandle<StatusCode>,
}

impl Drop for Plc {
    fn drop(&mut self) {
        self.event_loop.abort();
    }
}

/// The outputs of a method call.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: String,
    pub message: String,
    pub rest: Vec<Variant>,
}

impl Out {
    /// The string output at `i` after Code and Message.
    pub fn text(&self, i: usize) -> String {
        match self.rest.get(i) {
            Some(Variant::String(s)) => s.value().clone().unwrap_or_default(),
            other => panic!("output {i} is not a string: {other:?} in {self:?}"),
        }
    }

    pub fn label_job(&self) -> u64 {
        match self.rest.first() {
            Some(Variant::UInt64(j)) => *j,
            other => panic!("LabelJob is not a UInt64: {other:?}"),
        }
    }

    pub fn assert_ok(&self, what: &str) {
        assert_eq!(self.code, "OK", "{what}: {self:?}");
        assert_eq!(self.message, "", "{what}");
    }
}

pub fn s(v: &str) -> Variant {
    Variant::String(UAString::from(v))
}

pub fn arr(v: &[&str]) -> Variant {
    let values: Vec<Variant> = v.iter().map(|x| s(x)).collect();
    Variant::from((opcua::types::VariantScalarTypeId::String, values))
}

/// Connects to `url` (discovery first, as a PLC does), with the client's
/// own certificate in `pki`; errors if the session is not activated.
pub async fn connect(url: &str, pki: &Path, auth: Auth<'_>) -> Result<Plc, String> {
    let mut client = ClientBuilder::new()
        .application_name("linemark test PLC")
        .application_uri("urn:linemark:test-plc")
        .product_uri("urn:linemark:test-plc")
        .pki_dir(pki)
        .create_sample_keypair(true)
        .trust_server_certs(true)
        .session_retry_limit(0)
        .session_timeout(60_000)
        .request_timeout(Duration::from_secs(10))
        .client()
        .map_err(|e| e.join(", "))?;
    let (policy, mode, identity) = match auth {
        Auth::Anonymous => (
            SecurityPolicy::None,
            MessageSecurityMode::None,
            IdentityToken::Anonymous,
        ),
        Auth::AnonymousEncrypted => (
            SecurityPolicy::Basic256Sha256,
            MessageSecurityMode::SignAndEncrypt,
            IdentityToken::Anonymous,
        ),
        Auth::User(u, p) => (
            SecurityPolicy::Basic256Sha256,
            MessageSecurityMode::SignAndEncrypt,
            IdentityToken::UserName(u.to_string(), p.to_string().into()),
        ),
    };
    let (session, event_loop) = client
        .connect_to_matching_endpoint((url, policy.to_str(), mode), identity)
        .await
        .map_err(|e| e.to_string())?;
    let mut event_loop = event_loop.spawn();
    // A refused activation ends the event loop (no retries): do not wait
    // for a connection that will not come.
    let connected = tokio::select! {
        c = tokio::time::timeout(Duration::from_secs(20), session.wait_for_connection()) => c.unwrap_or(false),
        ended = &mut event_loop => return Err(format!("the session ended: {ended:?}")),
    };
    if !connected {
        event_loop.abort();
        return Err("the session was not activated".into());
    }
    let ns = session
        .get_namespace_index("urn:linemark:P1-L03")
        .await
        .map_err(|e| e.to_string())?;
    Ok(Plc {
        session,
        ns,
        event_loop,
    })
}

impl Plc {
    pub fn node(&self, name: &str) -> NodeId {
        if name.is_empty() {
            NodeId::new(self.ns, "Line")
        } else {
            NodeId::new(self.ns, format!("Line.{name}"))
        }
    }

    /// Calls `Line.<method>`: the status and the raw outputs.
    pub async fn call_raw(&self, method: &str, args: Vec<Variant>) -> (StatusCode, Vec<Variant>) {
        let r = self
            .session
            .call_one(CallMethodRequest {
                object_id: self.node(""),
                method_id: self.node(method),
                input_arguments: Some(args),
            })
            .await
            .expect("the call is answered");
        (r.status_code, r.output_arguments.unwrap_or_default())
    }

    /// Calls `Line.<method>`, which must be answered Good.
    pub async fn call(&self, method: &str, args: Vec<Variant>) -> Out {
        let (status, out) = self.call_raw(method, args).await;
        assert_eq!(status, StatusCode::Good, "{method}: {out:?}");
        let text = |v: Option<&Variant>| match v {
            Some(Variant::String(s)) => s.value().clone().unwrap_or_default(),
            other => panic!("{method}: not a string output: {other:?}"),
        };
        Out {
            code: text(out.first()),
            message: text(out.get(1)),
            rest: out.into_iter().skip(2).collect(),
        }
    }

    pub async fn alloc(&self, station: &str, req: &str) -> Out {
        self.call("Alloc", vec![s(station), s("PACK-48V"), s("L1"), s(req)])
            .await
    }

    /// Reads `Line.<name>`.
    pub async fn read(&self, name: &str) -> Variant {
        use opcua::types::{ReadValueId, TimestampsToReturn};
        let r = self
            .session
            .read(
                &[ReadValueId::from(self.node(name))],
                TimestampsToReturn::Neither,
                0.0,
            )
            .await
            .expect("read");
        r.into_iter().next().and_then(|d| d.value).expect("a value")
    }
}
