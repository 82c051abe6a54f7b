//! The OPC UA server inside `linemark run` (SPEC section 12): endpoint
//! `opc.tcp://HOST:PORT/linemark`, the `Line` object of [`nodes`], users
//! of [`auth`], the server certificate and the trusted client
//! certificates in `data_dir/opcua/`.
//!
//! Owns: the server's set-up (endpoints, certificate store, limits), its
//! listening socket, and keeping the `Line` variables current.
//! Must not: decide anything about a call (the gateway runs it).

pub mod auth;
pub mod nodes;
pub mod trust;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use opcua::server::node_manager::memory::{InMemoryNodeManager, InMemoryNodeManagerBuilder};
use opcua::server::{ServerBuilder, ServerEndpoint, ServerHandle};
use opcua::types::DataValue;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::OpcUa;
use crate::plc::gateway::{Gateway, LineVars};
use nodes::{LineNodes, LineNodesBuilder};

/// The endpoint's path: `opc.tcp://HOST:PORT/linemark`.
pub const ENDPOINT_PATH: &str = "/linemark";
/// How often the variables are compared with the line when no call
/// changed them (printer state, sync state, blocks imported).
const REFRESH: Duration = Duration::from_millis(250);

/// Why the OPC UA server did not start.
#[derive(Debug, thiserror::Error)]
pub enum OpcUaError {
    #[error(
        "[plc.opcua] listen {addr}: {source} (is another program using the port? change listen)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("OPC UA certificate folder {path}: {source}")]
    Pki {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("OPC UA server set-up: {0}")]
    Setup(String),
    #[error("the OPC UA server has no certificate: {0} (check [plc.opcua] certificate and private_key, or remove them to have one made)")]
    Certificate(String),
}

/// Where the certificates live under the data dir.
pub fn pki_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("opcua")
}

/// Starts the server on `cfg.listen`; it runs on `tasks` until `shutdown`.
/// Returns the address it listens on.
pub async fn start(
    gateway: Gateway,
    cfg: &OpcUa,
    data_dir: &Path,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<SocketAddr, OpcUaError> {
    let pki = pki_dir(data_dir);
    prepare_pki(&pki)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| OpcUaError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| OpcUaError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let line_id = gateway.config().line_id.clone();
    let host = if addr.ip().is_unspecified() {
        opcua::crypto::X509Data::computer_hostnames()
            .into_iter()
            .next()
            .unwrap_or_else(|| "localhost".into())
    } else {
        addr.ip().to_string()
    };
    let mut builder = ServerBuilder::new()
        .application_name(format!("linemark {line_id}"))
        .application_uri(format!("urn:linemark:{line_id}:server"))
        .product_uri("urn:linemark")
        .host(host.clone())
        .port(addr.port())
        .pki_dir(&pki)
        .trust_client_certs(false)
        .create_sample_keypair(cfg.certificate.is_none())
        .discovery_urls(vec![ENDPOINT_PATH.to_string()])
        .with_authenticator(Arc::new(auth::Users::new(cfg)))
        .with_node_manager(InMemoryNodeManagerBuilder::new(LineNodesBuilder {
            namespace_uri: format!("urn:linemark:{line_id}"),
            gateway: gateway.clone(),
        }))
        .token(shutdown.child_token());
    builder = match &cfg.certificate {
        Some((cert, key)) => builder.certificate_path(cert).private_key_path(key),
        None => builder
            .certificate_path("own/cert.der")
            .private_key_path("private/private.pem"),
    };
    if cfg.allow_anonymous {
        builder = builder.add_endpoint("none", ServerEndpoint::new_none(ENDPOINT_PATH, &[]));
    }
    if !cfg.users.is_empty() {
        builder = builder.add_endpoint(
            "basic256sha256",
            ServerEndpoint::new_basic256sha256_sign_encrypt(ENDPOINT_PATH, &[]),
        );
    }
    let (server, handle) = builder.build().map_err(OpcUaError::Setup)?;
    if cfg.certificate.is_none() {
        protect_key(&pki.join("private").join("private.pem"))?;
    }
    if handle.info().server_certificate.is_none() || handle.info().server_pkey.is_none() {
        return Err(OpcUaError::Certificate(
            "the certificate or its key could not be read".into(),
        ));
    }
    let nodes = handle
        .node_managers()
        .get_of_type::<InMemoryNodeManager<LineNodes>>()
        .ok_or_else(|| OpcUaError::Setup("the Line node manager is missing".into()))?;
    tasks.spawn(async move {
        if let Err(e) = server.run_with(listener).await {
            tracing::error!(error = %e, "the OPC UA server stopped");
        }
    });
    tasks.spawn(keep_current(gateway, nodes, handle, shutdown));
    tracing::info!(endpoint = %format!("opc.tcp://{host}:{}{ENDPOINT_PATH}", addr.port()), anonymous = cfg.allow_anonymous, users = cfg.users.len(), "OPC UA server");
    Ok(addr)
}

/// `own/`, `private/` (0700), `trusted/` and `rejected/` under `pki`.
fn prepare_pki(pki: &Path) -> Result<(), OpcUaError> {
    use std::os::unix::fs::PermissionsExt;
    for sub in ["own", "private", "trusted", "rejected"] {
        let dir = pki.join(sub);
        std::fs::create_dir_all(&dir).map_err(|source| OpcUaError::Pki {
            path: dir.clone(),
            source,
        })?;
        if sub == "private" {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| OpcUaError::Pki {
                    path: dir.clone(),
                    source,
                },
            )?;
        }
    }
    Ok(())
}

/// The stack writes its new key world-readable: make it the owner's only.
fn protect_key(key: &Path) -> Result<(), OpcUaError> {
    use std::os::unix::fs::PermissionsExt;
    if key.exists() {
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| OpcUaError::Pki {
                path: key.to_path_buf(),
                source,
            },
        )?;
    }
    Ok(())
}

/// Sets the variables whenever a call may have changed them, and every
/// [`REFRESH`] otherwise; only changed values are written, so a
/// subscription sees one notification per change.
async fn keep_current(
    gateway: Gateway,
    nodes: Arc<InMemoryNodeManager<LineNodes>>,
    handle: ServerHandle,
    shutdown: CancellationToken,
) {
    let mut changes = gateway.changes();
    let mut shown: Option<LineVars> = None;
    loop {
        let now = gateway.vars();
        if shown.as_ref() != Some(&now) {
            let before = shown.as_ref().map(|s| nodes.inner().values(s));
            let changed: Vec<_> = nodes
                .inner()
                .values(&now)
                .into_iter()
                .enumerate()
                .filter(|(i, v)| before.as_ref().is_none_or(|b| b[*i] != *v))
                .map(|(_, (id, v))| (id, DataValue::new_now(v)))
                .collect();
            let result = nodes.set_values(
                handle.subscriptions(),
                changed.iter().map(|(id, v)| (id, None, v.clone())),
            );
            if let Err(e) = result {
                tracing::warn!(status = %e, "OPC UA variables could not be updated");
            }
            shown = Some(now);
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = changes.changed() => {}
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
    handle.cancel();
}
