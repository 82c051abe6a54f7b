//! The validated configuration's types: what the rest of linemark reads.
//!
//! Owns: the shapes of stations, printers, products, upstream, web and
//! shifts after validation. Must not: parse or check anything (that is
//! `validate.rs`), or open files, ports or journals.

use std::net::SocketAddr;
use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;

use super::*;

/// A product (SPEC section 2).
#[derive(Debug, Clone)]
pub struct Product {
    pub key: String,
    pub gtin: Gtin,
    pub level: Level,
    pub template: String,
    pub required_steps: Vec<String>,
}

/// Where a station is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StationPort {
    Serial(PathBuf),
    Tcp(String),
    /// Reached through the PLC gateway (`[plc]`), not a port of its own.
    Plc,
}

impl StationPort {
    /// Whether two stations would fight over this port: the same serial
    /// device, or one TCP port on the same or a wildcard address. Port 0
    /// (pick a free one) never collides.
    pub fn collides(&self, other: &StationPort) -> bool {
        match (self, other) {
            (StationPort::Serial(a), StationPort::Serial(b)) => a == b,
            (StationPort::Tcp(a), StationPort::Tcp(b)) => {
                let split = |s: &str| {
                    s.rsplit_once(':')
                        .map(|(h, p)| (h.trim_matches(['[', ']']).to_string(), p.to_string()))
                };
                let (Some((ha, pa)), Some((hb, pb))) = (split(a), split(b)) else {
                    return false;
                };
                let wildcard = |h: &str| matches!(h, "0.0.0.0" | "::" | "*" | "");
                pa == pb && pa != "0" && (ha == hb || wildcard(&ha) || wildcard(&hb))
            }
            _ => false,
        }
    }
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowControl {
    None,
    Software,
    Hardware,
}

/// Whether frames from a station must carry a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumPolicy {
    Optional,
    Required,
}

/// A test station or PLC.
#[derive(Debug, Clone)]
pub struct Station {
    pub name: String,
    pub port: StationPort,
    pub baud: u32,
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
    pub flow_control: FlowControl,
    pub checksum: ChecksumPolicy,
    /// The verbs this station may use.
    pub allow: Vec<Verb>,
    /// The steps this station records, from `step` and `steps`; the first
    /// is used when a frame names none. A frame's `step=` must be one of
    /// them. Empty: the frame must name the step (FINAL defaults to
    /// `final`).
    pub steps: Vec<String>,
    pub printer: Option<String>,
    /// TCP: seconds of silence after which a connection is closed (0: never).
    pub idle_timeout_s: u64,
    /// `port = "plc"`: its Modbus mailbox slot (registers from 1000 * slot).
    pub modbus_slot: Option<u16>,
}

/// A label printer.
#[derive(Debug, Clone)]
pub struct Printer {
    pub name: String,
    pub url: String,
}

/// When the upstream sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Nightly { hour: u8, minute: u8 },
    Continuous { interval_s: u64 },
    Off,
}

/// Where the bearer token comes from. `Debug` shows the source, never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    Env(String),
}

/// `[upstream]`.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub url: String,
    pub token: TokenSource,
    pub mode: SyncMode,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub connect_timeout_s: u64,
    pub request_timeout_s: u64,
    pub block_count: u64,
    pub retry_initial_ms: u64,
    pub retry_max_s: u64,
    /// Failed attempts in a row after which `linemark sync` gives up.
    pub attempts: u32,
}

/// Roles of the local web actions, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Operator,
    Quality,
    Admin,
}

/// A web bearer token, as its sha256 only.
#[derive(Debug, Clone)]
pub struct WebToken {
    pub role: Role,
    pub name: String,
    pub sha256: [u8; 32],
}

/// `[web]`.
#[derive(Debug, Clone)]
pub struct Web {
    pub listen: SocketAddr,
    pub tokens: Vec<WebToken>,
    /// Open web connections at most.
    pub max_connections: usize,
    /// Seconds to receive a request's header.
    pub header_timeout_s: u64,
    /// Seconds a web connection may stay silent.
    pub idle_timeout_s: u64,
}

/// A shift in local time; `end <= start` crosses midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub name: String,
    pub start: (u8, u8),
    pub end: (u8, u8),
}

/// `[ids]`, validated, with the namespace key loaded.
#[derive(Debug, Clone)]
pub struct Ids {
    pub namespace_key_file: PathBuf,
    pub namespace_key: NamespaceKey,
    pub namespace: Option<String>,
    pub issuer_public_key: VerifyingKey,
    pub low_water: u64,
    pub allow_dev_grants: bool,
    pub reserve_ahead: u64,
}

/// A validated configuration. Paths are absolute or relative to the working
/// directory (already joined to the config file's folder).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from (a path, or "<embedded default>").
    pub origin: String,
    pub line_id: String,
    pub facility: String,
    pub data_dir: PathBuf,
    pub resolver: String,
    pub timezone: jiff::tz::TimeZone,
    pub timezone_name: String,
    pub templates_dir: PathBuf,
    pub ids: Ids,
    pub products: Vec<Product>,
    pub stations: Vec<Station>,
    pub printers: Vec<Printer>,
    pub upstream: Option<Upstream>,
    pub web: Web,
    pub shifts: Vec<Shift>,
    pub plc: Plc,
    /// Every template a product names, loaded and checked.
    pub templates: std::collections::BTreeMap<String, crate::label::Template>,
}

/// `[plc]`: the PLC gateway.
#[derive(Debug, Clone, Default)]
pub struct Plc {
    pub opcua: Option<OpcUa>,
    pub modbus: Option<Modbus>,
}

/// `[plc.modbus]`, checked.
#[derive(Debug, Clone)]
pub struct Modbus {
    pub listen: SocketAddr,
}

/// `[plc.opcua]`, checked.
#[derive(Debug, Clone)]
pub struct OpcUa {
    pub listen: SocketAddr,
    pub allow_anonymous: bool,
    /// Configured certificate (DER) and private key (PEM); `None`: made in
    /// `data_dir/opcua` on first start.
    pub certificate: Option<(PathBuf, PathBuf)>,
    pub users: Vec<OpcUaUser>,
}

/// A user of the secure endpoint.
#[derive(Debug, Clone)]
pub struct OpcUaUser {
    pub name: String,
    /// An argon2id PHC string, checked to parse.
    pub password_hash: String,
}
