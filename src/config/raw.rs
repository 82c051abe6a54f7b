//! The TOML file as written (SPEC section 9): serde structs with a doc
//! comment on every key. Unknown keys are refused so a typo cannot silently
//! fall back to a default.

use serde::Deserialize;

fn default_data_dir() -> String {
    "var".into()
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_templates_dir() -> String {
    "../label-templates".into()
}

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// This line's identifier; grants must name it.
    pub line_id: String,
    /// Free text naming the site; goes into events and reports.
    #[serde(default)]
    pub facility: String,
    /// Journal, high-water file, queue and keys live here.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// Digital Link base URL, `https://...`, no trailing slash.
    pub resolver: String,
    /// IANA time zone of the line (shifts, nightly sync).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Folder of label templates.
    #[serde(default = "default_templates_dir")]
    pub templates_dir: String,
    pub ids: RawIds,
    #[serde(default, rename = "product")]
    pub products: Vec<RawProduct>,
    #[serde(default, rename = "station")]
    pub stations: Vec<RawStation>,
    #[serde(default, rename = "printer")]
    pub printers: Vec<RawPrinter>,
    pub upstream: Option<RawUpstream>,
    #[serde(default)]
    pub web: RawWeb,
    #[serde(default, rename = "shift")]
    pub shifts: Vec<RawShift>,
    /// The PLC gateway (OPC UA); absent: none.
    #[serde(default)]
    pub plc: RawPlc,
}

/// `[plc]`: how PLCs reach the `port = "plc"` stations (SPEC section 12).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlc {
    pub opcua: Option<RawOpcUa>,
    pub modbus: Option<RawModbus>,
}

/// `[plc.modbus]`: the Modbus TCP server of the stations' mailboxes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModbus {
    /// `ADDRESS:PORT` (any unit id is answered).
    #[serde(default = "default_modbus_listen")]
    pub listen: String,
}
fn default_modbus_listen() -> String {
    "127.0.0.1:5020".into()
}

/// `[plc.opcua]`: the OPC UA server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpcUa {
    /// `ADDRESS:PORT`; the endpoint is `opc.tcp://ADDRESS:PORT/linemark`.
    #[serde(default = "default_opcua_listen")]
    pub listen: String,
    /// Offer security policy None with anonymous access (a test bench or
    /// an isolated cell network only).
    #[serde(default)]
    pub allow_anonymous: bool,
    /// The server's certificate (DER) and private key (PEM). Absent: made
    /// on first start in `data_dir/opcua/own/` and `data_dir/opcua/private/`.
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    /// Users of the Basic256Sha256 SignAndEncrypt endpoint.
    #[serde(default, rename = "user")]
    pub users: Vec<RawOpcUaUser>,
}
fn default_opcua_listen() -> String {
    "127.0.0.1:4840".into()
}

/// `[[plc.opcua.user]]`: a user name and its argon2id password hash.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpcUaUser {
    pub name: String,
    /// A PHC string `$argon2id$...` (`linemark plc passwd` prints one).
    pub password_hash: String,
}

/// `[ids]`: where IDs come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIds {
    /// File holding the 32-byte namespace key as 64 hex characters.
    pub namespace_key_file: String,
    /// Namespace name grants must carry; unchecked when absent.
    pub namespace: Option<String>,
    /// Ed25519 public key (64 hex characters) of the central grant issuer.
    pub issuer_public_key: String,
    /// Warn (and ask upstream for a block) when fewer IDs than this remain.
    #[serde(default = "default_low_water")]
    pub low_water: u64,
    /// Allow `linemark blocks dev-grant` (never on a production line).
    #[serde(default)]
    pub allow_dev_grants: bool,
    /// How far ahead of use the high-water mark moves (IDs skipped after a crash).
    #[serde(default = "default_reserve_ahead")]
    pub reserve_ahead: u64,
}
fn default_low_water() -> u64 {
    5000
}
fn default_reserve_ahead() -> u64 {
    1000
}

/// `[[product]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProduct {
    /// What stations send in `ALLOC product=`.
    pub key: String,
    /// GTIN-8/12/13/14; stored as 14 digits.
    pub gtin: String,
    /// `item`, `batch` or `model`.
    pub level: String,
    /// A file in the templates folder, without `.toml`.
    pub template: String,
    /// Steps that must have passed before `FINAL status=PASS`.
    #[serde(default)]
    pub required_steps: Vec<String>,
}

/// `[[station]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStation {
    pub name: String,
    /// A serial device path, `tcp://ADDR:PORT`, or `plc` (reached through
    /// the PLC gateway of `[plc]`).
    pub port: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// `none`, `even` or `odd`.
    #[serde(default = "default_parity")]
    pub parity: String,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// `none`, `software` or `hardware`.
    #[serde(default = "default_flow")]
    pub flow_control: String,
    /// `optional` or `required`.
    #[serde(default = "default_checksum")]
    pub checksum: String,
    /// Verbs this station may use.
    pub allow: Vec<String>,
    /// Step name its RESULT/FINAL records.
    pub step: Option<String>,
    /// Several step names, for a station that serves more than one step
    /// (its frames then name the step with `step=`).
    #[serde(default)]
    pub steps: Vec<String>,
    /// Printer its labels go to.
    pub printer: Option<String>,
    /// `port = "plc"` only: the Modbus mailbox at registers 1000 * slot
    /// (0 to 65) of `[plc.modbus]`.
    pub modbus_slot: Option<u16>,
    /// TCP only: seconds a connection may stay silent before it is closed
    /// (0: never). Keepalive finds dead peers sooner.
    #[serde(default = "default_station_idle")]
    pub idle_timeout_s: u64,
}
fn default_station_idle() -> u64 {
    900
}
fn default_baud() -> u32 {
    115200
}
fn default_data_bits() -> u8 {
    8
}
fn default_parity() -> String {
    "none".into()
}
fn default_stop_bits() -> u8 {
    1
}
fn default_flow() -> String {
    "none".into()
}
fn default_checksum() -> String {
    "optional".into()
}

/// `[[printer]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrinter {
    pub name: String,
    /// `zpl+tcp://host:9100`, `zpl+serial:///dev/ttyUSB1?baud=9600`, `cups://QUEUE`, `dir:///path`.
    pub url: String,
}

/// `[upstream]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub url: String,
    /// File holding the bearer token.
    pub token_file: Option<String>,
    /// Environment variable holding the bearer token (instead of a file).
    pub token_env: Option<String>,
    /// `nightly`, `continuous` or `off`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Nightly: local time `HH:MM`.
    #[serde(default = "default_at")]
    pub at: String,
    /// Continuous: seconds between syncs.
    #[serde(default = "default_interval")]
    pub interval_s: u64,
    /// Extra CA certificate (PEM) to trust.
    pub ca_file: Option<String>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_s: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_s: u64,
    /// IDs to ask for when a block is requested.
    #[serde(default = "default_block_count")]
    pub block_count: u64,
    /// First back-off after a failed batch, in milliseconds (doubles, with jitter).
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest back-off between attempts, in seconds.
    #[serde(default = "default_retry_max_s")]
    pub retry_max_s: u64,
    /// `linemark sync` gives up after this many failed attempts in a row.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
}
fn default_retry_initial_ms() -> u64 {
    1000
}
fn default_retry_max_s() -> u64 {
    300
}
fn default_attempts() -> u32 {
    8
}
fn default_mode() -> String {
    "nightly".into()
}
fn default_at() -> String {
    "02:00".into()
}
fn default_interval() -> u64 {
    60
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_request_timeout() -> u64 {
    60
}
fn default_block_count() -> u64 {
    65536
}

/// `[web]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Must be `true` to listen on an address other than loopback: the unit
    /// pages show MACs, UIDs and certificates to anyone who can reach them.
    #[serde(default)]
    pub expose: bool,
    /// Open web connections at most; more are closed at once. Keep it well
    /// below the daemon's file limit, which stations, the journal and
    /// printers share.
    #[serde(default = "default_web_connections")]
    pub max_connections: usize,
    /// Seconds a client has to send a request's header (also the longest
    /// wait for the next request on a kept-alive connection).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_s: u64,
    /// Seconds a connection may move no byte before it is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
    #[serde(default, rename = "token")]
    pub tokens: Vec<RawToken>,
}
fn default_web_connections() -> usize {
    256
}
fn default_header_timeout() -> u64 {
    10
}
fn default_idle_timeout() -> u64 {
    60
}
impl Default for RawWeb {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            expose: false,
            max_connections: default_web_connections(),
            header_timeout_s: default_header_timeout(),
            idle_timeout_s: default_idle_timeout(),
            tokens: Vec::new(),
        }
    }
}
fn default_listen() -> String {
    "127.0.0.1:8470".into()
}

/// `[[web.token]]`: a bearer token, stored only as its sha256.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// `operator`, `quality` or `admin`.
    pub role: String,
    /// Who holds it; journaled as the actor.
    #[serde(default)]
    pub name: String,
    /// Hex sha256 of the token.
    pub sha256: String,
}

/// `[[shift]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShift {
    pub name: String,
    /// Local `HH:MM`.
    pub start: String,
    /// Local `HH:MM`; before the start means the shift crosses midnight.
    pub end: String,
}
