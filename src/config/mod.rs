//! Configuration (SPEC section 9): TOML -> [`Config`], validated in full
//! before anything opens a file, a port or a socket.
//!
//! Owns: key names, defaults, value checks, resolving relative paths against
//! the config file's folder, and errors that name the file, line and key.
//! Must not: open the journal, ports or printers (callers build IO objects
//! from a validated `Config`).

mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use crate::gs1::{Gtin, Level};
use crate::ids::grant::parse_public_key;
use crate::ids::GrantPolicy;
use crate::ids::NamespaceKey;
use crate::protocol::Verb;
pub use raw::RawConfig;

/// The commented example config, also the built-in default of `linemark demo`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/linemark.toml");

/// A configuration problem: where, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}: {}", self.file, l, self.key, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

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

/// Longest free-text config value (a site name).
const MAX_TEXT: usize = 128;
/// Longest URL or device path in the config.
const MAX_URL: usize = 512;

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
    /// Every template a product names, loaded and checked.
    pub templates: std::collections::BTreeMap<String, crate::label::Template>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: origin.clone(),
            line: None,
            key: "(file)".into(),
            message: format!("cannot read the config file: {e}"),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &origin, &base)
    }

    /// Validates config text; relative paths are joined to `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|span| span.start);
            ConfigError {
                file: origin.to_string(),
                line: at.map(|o| line_of(text, o)),
                key: at
                    .and_then(|o| key_path_at(text, o))
                    .unwrap_or_else(|| "(syntax)".into()),
                message: e.message().trim().to_string(),
            }
        })?;
        Validator { text, origin, base }.validate(raw)
    }

    pub fn product(&self, key: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.key == key)
    }

    pub fn station(&self, name: &str) -> Option<&Station> {
        self.stations.iter().find(|s| s.name == name)
    }

    /// The line's local date (`YYYY-MM-DD`) of a journal timestamp; empty
    /// when the timestamp does not parse.
    pub fn local_date(&self, ts: &str) -> String {
        ts.parse::<jiff::Timestamp>()
            .map(|t| t.to_zoned(self.timezone.clone()).date().to_string())
            .unwrap_or_default()
    }

    /// The journal database file.
    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join("journal.db")
    }

    /// Where `blocks dev-grant` keeps its signing key.
    pub fn dev_issuer_key_path(&self) -> PathBuf {
        self.data_dir.join("keys").join("dev-issuer.key")
    }

    /// What grants this line accepts: the configured issuer, plus the
    /// development issuer when `ids.allow_dev_grants` is on and its key exists.
    pub fn grant_policy(&self) -> Result<GrantPolicy, ConfigError> {
        let mut issuers = vec![self.ids.issuer_public_key];
        if self.ids.allow_dev_grants {
            if let Some(key) =
                read_dev_issuer(&self.dev_issuer_key_path()).map_err(|m| ConfigError {
                    file: self.origin.clone(),
                    line: None,
                    key: "ids.allow_dev_grants".into(),
                    message: m,
                })?
            {
                issuers.push(key.verifying_key());
            }
        }
        Ok(GrantPolicy {
            line_id: self.line_id.clone(),
            key_id: self.ids.namespace_key.key_id(),
            namespace: self.ids.namespace.clone(),
            issuers,
        })
    }
}

/// Templates shipped inside the binary, used when the templates folder
/// does not have the file (a fresh install, or `linemark demo`).
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    (
        "pack-50x30",
        include_str!("../../label-templates/pack-50x30.toml"),
    ),
    (
        "device-25x15",
        include_str!("../../label-templates/device-25x15.toml"),
    ),
];

/// Loads and checks `dir/name.toml` (or the built-in template of that name
/// when the file does not exist).
pub fn load_template(
    dir: &Path,
    name: &str,
    resolver: &str,
) -> Result<crate::label::Template, String> {
    let path = dir.join(format!("{name}.toml"));
    let (text, source) = match std::fs::read_to_string(&path) {
        Ok(t) => (t, path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match BUILTIN_TEMPLATES.iter().find(|(n, _)| *n == name) {
                Some((_, t)) => (t.to_string(), format!("<built-in {name}>")),
                None => {
                    return Err(format!(
                        "no template {} (and no built-in template {name:?})",
                        path.display()
                    ))
                }
            }
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let t = crate::label::Template::parse(&text, &source).map_err(|e| e.to_string())?;
    if t.name != name {
        return Err(format!(
            "{source} says name = {:?}, but products refer to it as {name:?}",
            t.name
        ));
    }
    t.check_codes(&source, resolver)
        .map_err(|e| e.to_string())?;
    Ok(t)
}

/// Reads the development issuer's signing key (64 hex characters), if present.
pub fn read_dev_issuer(path: &Path) -> Result<Option<ed25519_dalek::SigningKey>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed)
        .map_err(|_| format!("{} must hold 64 hex characters", path.display()))?;
    Ok(Some(ed25519_dalek::SigningKey::from_bytes(&seed)))
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted key path (`product[1].gtin`) whose key or value covers a byte
/// offset, through toml's spanned parse.
fn key_path_at(text: &str, offset: usize) -> Option<String> {
    /// Visits every key, recursing into tables and arrays of tables; keeps
    /// the path whose key or scalar value covers `offset`.
    fn walk(t: &toml::de::DeTable<'_>, offset: usize, prefix: &str, found: &mut Option<String>) {
        for (k, v) in t.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            let vs = v.span();
            let hit = k.span().contains(&offset) || (vs.start..=vs.end).contains(&offset);
            match v.get_ref() {
                toml::de::DeValue::Table(inner) => walk(inner, offset, &path, found),
                toml::de::DeValue::Array(items) => {
                    let mut deeper = false;
                    for (i, item) in items.iter().enumerate() {
                        if let toml::de::DeValue::Table(inner) = item.get_ref() {
                            walk(inner, offset, &format!("{path}[{i}]"), found);
                            deeper = true;
                        } else {
                            let s = item.span();
                            if (s.start..=s.end).contains(&offset) {
                                *found = Some(format!("{path}[{i}]"));
                            }
                        }
                    }
                    if hit && !deeper && found.is_none() {
                        *found = Some(path);
                    }
                }
                _ if hit => *found = Some(path),
                _ => {}
            }
        }
    }
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut found = None;
    walk(doc.get_ref(), offset, "", &mut found);
    found
}

/// One step of a key path: a table key or an array index.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
    base: &'a Path,
}

fn display_path(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl Validator<'_> {
    /// Finds the line of a key path in the source, through toml's spanned parse.
    fn locate(&self, path: &[Seg<'_>]) -> Option<usize> {
        let doc = toml::de::DeTable::parse(self.text).ok()?;
        let mut span = doc.span();
        let mut table = doc.get_ref();
        let mut value: Option<&toml::de::DeValue<'_>> = None;
        for seg in path {
            let next = match (seg, value) {
                (Seg::Key(k), None) => table.get(*k)?,
                (Seg::Key(k), Some(v)) => v.as_table()?.get(*k)?,
                (Seg::Index(i), Some(v)) => v.as_array()?.get(*i)?,
                (Seg::Index(_), None) => return None,
            };
            span = next.span();
            value = Some(next.get_ref());
            if let Some(t) = value.and_then(|v| v.as_table()) {
                table = t;
            }
        }
        Some(line_of(self.text, span.start))
    }

    fn err(&self, path: &[Seg<'_>], message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.origin.to_string(),
            line: self.locate(path),
            key: display_path(path),
            message: message.into(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn hhmm(&self, path: &[Seg<'_>], s: &str) -> Result<(u8, u8), ConfigError> {
        let bad = || {
            self.err(
                path,
                format!("{s:?} is not a local time HH:MM (00:00 to 23:59)"),
            )
        };
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u8 = h.parse().map_err(|_| bad())?;
        let m: u8 = m.parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok((h, m))
    }

    fn name(&self, path: &[Seg<'_>], s: &str) -> Result<(), ConfigError> {
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(self.err(
                path,
                format!("{s:?} must be 1 to 64 characters of A-Z a-z 0-9 - _ ."),
            ));
        }
        Ok(())
    }

    /// Free text (a site name, a URL, a token's owner): at most `max`
    /// bytes and no control characters, so it cannot forge log or report
    /// lines.
    fn text(&self, path: &[Seg<'_>], s: &str, max: usize) -> Result<(), ConfigError> {
        if s.len() > max {
            return Err(self.err(
                path,
                format!("is {} bytes long; at most {max} are allowed", s.len()),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(self.err(path, format!("{s:?} must not contain control characters")));
        }
        Ok(())
    }

    fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        use Seg::{Index as I, Key as K};
        self.name(&[K("line_id")], &raw.line_id)?;
        self.text(&[K("facility")], &raw.facility, MAX_TEXT)?;
        self.text(&[K("resolver")], &raw.resolver, MAX_URL)?;

        let r = raw.resolver.as_str();
        if !(r.starts_with("https://") || r.starts_with("http://")) {
            return Err(self.err(
                &[K("resolver")],
                format!("{r:?} must start with https:// (or http://)"),
            ));
        }
        if r.ends_with('/') {
            return Err(self.err(
                &[K("resolver")],
                format!("{r:?} must not end with '/': the Digital Link path is appended to it"),
            ));
        }
        if r.contains(['?', '#', ' ']) || r.split("://").nth(1).is_none_or(|h| h.is_empty()) {
            return Err(self.err(
                &[K("resolver")],
                format!("{r:?} must be a plain base URL with a host and no query"),
            ));
        }

        let timezone = jiff::tz::TimeZone::get(&raw.timezone).map_err(|_| {
            self.err(
                &[K("timezone")],
                format!(
                    "{:?} is not an IANA time zone (e.g. \"Europe/Berlin\")",
                    raw.timezone
                ),
            )
        })?;

        let ids = self.ids(&raw.ids)?;

        let templates_dir = self.path(&raw.templates_dir);
        let mut templates = std::collections::BTreeMap::new();
        let mut products: Vec<Product> = Vec::new();
        for (i, p) in raw.products.iter().enumerate() {
            let at = |k| [K("product"), I(i), K(k)];
            self.name(&at("key"), &p.key)?;
            if products.iter().any(|q| q.key == p.key) {
                return Err(self.err(&at("key"), format!("product {:?} is defined twice", p.key)));
            }
            let gtin = Gtin::parse(&p.gtin).map_err(|e| self.err(&at("gtin"), e.to_string()))?;
            let level = Level::parse(&p.level).ok_or_else(|| {
                self.err(
                    &at("level"),
                    format!("{:?} must be item, batch or model", p.level),
                )
            })?;
            self.name(&at("template"), &p.template)?;
            if !templates.contains_key(&p.template) {
                let t = load_template(&templates_dir, &p.template, &raw.resolver)
                    .map_err(|m| self.err(&at("template"), m))?;
                templates.insert(p.template.clone(), t);
            }
            for (j, s) in p.required_steps.iter().enumerate() {
                self.name(&[K("product"), I(i), K("required_steps"), I(j)], s)?;
            }
            products.push(Product {
                key: p.key.clone(),
                gtin,
                level,
                template: p.template.clone(),
                required_steps: p.required_steps.clone(),
            });
        }

        let mut printers: Vec<Printer> = Vec::new();
        for (i, p) in raw.printers.iter().enumerate() {
            let at = |k| [K("printer"), I(i), K(k)];
            self.name(&at("name"), &p.name)?;
            if printers.iter().any(|q| q.name == p.name) {
                return Err(self.err(
                    &at("name"),
                    format!("printer {:?} is defined twice", p.name),
                ));
            }
            self.text(&at("url"), &p.url, MAX_URL)?;
            let ok = ["zpl+tcp://", "zpl+serial://", "cups://", "dir://"]
                .iter()
                .any(|s| p.url.starts_with(s) && p.url.len() > s.len());
            if !ok {
                return Err(self.err(&at("url"), format!(
                    "{:?} must be zpl+tcp://HOST:PORT, zpl+serial:///dev/PORT?baud=N, cups://QUEUE or dir:///PATH", p.url)));
            }
            printers.push(Printer {
                name: p.name.clone(),
                url: p.url.clone(),
            });
        }

        let mut stations: Vec<Station> = Vec::new();
        for (i, s) in raw.stations.iter().enumerate() {
            stations.push(self.station(i, s, &printers, &stations)?);
        }

        let upstream = raw
            .upstream
            .as_ref()
            .map(|u| self.upstream(u))
            .transpose()?;
        let web = self.web(&raw.web)?;

        let mut shifts: Vec<Shift> = Vec::new();
        for (i, s) in raw.shifts.iter().enumerate() {
            let at = |k| [K("shift"), I(i), K(k)];
            self.name(&at("name"), &s.name)?;
            if shifts.iter().any(|q| q.name == s.name) {
                return Err(self.err(&at("name"), format!("shift {:?} is defined twice", s.name)));
            }
            let start = self.hhmm(&at("start"), &s.start)?;
            let end = self.hhmm(&at("end"), &s.end)?;
            if start == end {
                return Err(self.err(&at("end"), "a shift's end must differ from its start"));
            }
            shifts.push(Shift {
                name: s.name.clone(),
                start,
                end,
            });
        }

        Ok(Config {
            origin: self.origin.to_string(),
            line_id: raw.line_id,
            facility: raw.facility,
            data_dir: self.path(&raw.data_dir),
            resolver: raw.resolver,
            timezone,
            timezone_name: raw.timezone,
            templates_dir,
            ids,
            products,
            stations,
            printers,
            upstream,
            web,
            shifts,
            templates,
        })
    }

    fn ids(&self, raw: &raw::RawIds) -> Result<Ids, ConfigError> {
        use Seg::Key as K;
        let key_path = self.path(&raw.namespace_key_file);
        let at = [K("ids"), K("namespace_key_file")];
        let text = std::fs::read_to_string(&key_path)
            .map_err(|e| self.err(&at, format!("cannot read {}: {e}", key_path.display())))?;
        let namespace_key = NamespaceKey::from_hex(&text)
            .map_err(|e| self.err(&at, format!("{}: {e}", key_path.display())))?;
        let issuer_public_key = parse_public_key(&raw.issuer_public_key)
            .map_err(|e| self.err(&[K("ids"), K("issuer_public_key")], e))?;
        if raw.reserve_ahead == 0 || raw.reserve_ahead > 1_000_000 {
            return Err(self.err(
                &[K("ids"), K("reserve_ahead")],
                "must be between 1 and 1000000",
            ));
        }
        Ok(Ids {
            namespace_key_file: key_path,
            namespace_key,
            namespace: raw.namespace.clone(),
            issuer_public_key,
            low_water: raw.low_water,
            allow_dev_grants: raw.allow_dev_grants,
            reserve_ahead: raw.reserve_ahead,
        })
    }

    fn station(
        &self,
        i: usize,
        s: &raw::RawStation,
        printers: &[Printer],
        before: &[Station],
    ) -> Result<Station, ConfigError> {
        use Seg::{Index as I, Key as K};
        let at = |k| [K("station"), I(i), K(k)];
        self.name(&at("name"), &s.name)?;
        if before.iter().any(|q| q.name == s.name) {
            return Err(self.err(
                &at("name"),
                format!("station {:?} is defined twice", s.name),
            ));
        }
        self.text(&at("port"), &s.port, MAX_URL)?;
        let port = if let Some(addr) = s.port.strip_prefix("tcp://") {
            let ok = addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(self.err(&at("port"), format!("{:?} must be tcp://HOST:PORT", s.port)));
            }
            StationPort::Tcp(addr.to_string())
        } else if s.port.is_empty() || s.port.contains("://") {
            return Err(self.err(
                &at("port"),
                format!(
                    "{:?} must be a serial device path or tcp://HOST:PORT",
                    s.port
                ),
            ));
        } else {
            StationPort::Serial(PathBuf::from(&s.port))
        };
        if !(50..=4_000_000).contains(&s.baud) {
            return Err(self.err(
                &at("baud"),
                format!("{} is not a baud rate (50 to 4000000)", s.baud),
            ));
        }
        if !(5..=8).contains(&s.data_bits) {
            return Err(self.err(&at("data_bits"), "must be 5, 6, 7 or 8"));
        }
        let parity = match s.parity.as_str() {
            "none" => Parity::None,
            "even" => Parity::Even,
            "odd" => Parity::Odd,
            o => return Err(self.err(&at("parity"), format!("{o:?} must be none, even or odd"))),
        };
        if !(1..=2).contains(&s.stop_bits) {
            return Err(self.err(&at("stop_bits"), "must be 1 or 2"));
        }
        let flow_control = match s.flow_control.as_str() {
            "none" => FlowControl::None,
            "software" => FlowControl::Software,
            "hardware" => FlowControl::Hardware,
            o => {
                return Err(self.err(
                    &at("flow_control"),
                    format!("{o:?} must be none, software or hardware"),
                ))
            }
        };
        let checksum = match s.checksum.as_str() {
            "optional" => ChecksumPolicy::Optional,
            "required" => ChecksumPolicy::Required,
            o => {
                return Err(self.err(
                    &at("checksum"),
                    format!("{o:?} must be optional or required"),
                ))
            }
        };
        let mut allow = Vec::new();
        for (j, v) in s.allow.iter().enumerate() {
            let Some(verb) = Verb::parse(v) else {
                let known: Vec<&str> = Verb::ALL.iter().map(|v| v.as_str()).collect();
                return Err(self.err(
                    &[K("station"), I(i), K("allow"), I(j)],
                    format!("{v:?} is not a verb; known verbs: {}", known.join(", ")),
                ));
            };
            allow.push(verb);
        }
        let mut steps = Vec::new();
        if let Some(step) = &s.step {
            self.name(&at("step"), step)?;
            steps.push(step.clone());
        }
        for (j, step) in s.steps.iter().enumerate() {
            let at = [K("station"), I(i), K("steps"), I(j)];
            self.name(&at, step)?;
            if steps.contains(step) {
                return Err(self.err(&at, format!("step {step:?} is listed twice")));
            }
            steps.push(step.clone());
        }
        if let Some(other) = before.iter().find(|q| q.port.collides(&port)) {
            return Err(self.err(
                &at("port"),
                format!(
                    "{:?} is already the port of station {:?}; each station needs its own port (the second would never be served)",
                    s.port, other.name
                ),
            ));
        }
        if let Some(p) = &s.printer {
            if !printers.iter().any(|q| &q.name == p) {
                return Err(self.err(&at("printer"), format!("no [[printer]] is named {p:?}")));
            }
        }
        Ok(Station {
            name: s.name.clone(),
            port,
            baud: s.baud,
            data_bits: s.data_bits,
            parity,
            stop_bits: s.stop_bits,
            flow_control,
            checksum,
            allow,
            steps,
            printer: s.printer.clone(),
            idle_timeout_s: s.idle_timeout_s,
        })
    }

    fn upstream(&self, u: &raw::RawUpstream) -> Result<Upstream, ConfigError> {
        use Seg::Key as K;
        let at = |k| [K("upstream"), K(k)];
        self.text(&at("url"), &u.url, MAX_URL)?;
        if !(u.url.starts_with("https://") || u.url.starts_with("http://")) || u.url.ends_with('/')
        {
            return Err(self.err(
                &at("url"),
                format!(
                    "{:?} must be an http(s) base URL without a trailing '/'",
                    u.url
                ),
            ));
        }
        let token = match (&u.token_file, &u.token_env) {
            (Some(f), None) => TokenSource::File(self.path(f)),
            (None, Some(e)) if !e.is_empty() => TokenSource::Env(e.clone()),
            _ => {
                return Err(self.err(
                    &at("token_file"),
                    "set exactly one of token_file or token_env",
                ))
            }
        };
        let mode = match u.mode.as_str() {
            "nightly" => {
                let (hour, minute) = self.hhmm(&at("at"), &u.at)?;
                SyncMode::Nightly { hour, minute }
            }
            "continuous" => {
                if u.interval_s == 0 {
                    return Err(self.err(&at("interval_s"), "must be at least 1"));
                }
                SyncMode::Continuous {
                    interval_s: u.interval_s,
                }
            }
            "off" => SyncMode::Off,
            o => {
                return Err(self.err(
                    &at("mode"),
                    format!("{o:?} must be nightly, continuous or off"),
                ))
            }
        };
        let client_cert = match (&u.client_cert, &u.client_key) {
            (Some(c), Some(k)) => Some((self.path(c), self.path(k))),
            (None, None) => None,
            _ => return Err(self.err(&at("client_cert"), "client_cert and client_key go together")),
        };
        for (k, v) in [
            ("connect_timeout_s", u.connect_timeout_s),
            ("request_timeout_s", u.request_timeout_s),
            ("block_count", u.block_count),
            ("retry_initial_ms", u.retry_initial_ms),
            ("retry_max_s", u.retry_max_s),
            ("attempts", u64::from(u.attempts)),
        ] {
            if v == 0 {
                return Err(self.err(&at(k), "must be at least 1"));
            }
        }
        Ok(Upstream {
            url: u.url.clone(),
            token,
            mode,
            ca_file: u.ca_file.as_deref().map(|p| self.path(p)),
            client_cert,
            connect_timeout_s: u.connect_timeout_s,
            request_timeout_s: u.request_timeout_s,
            block_count: u.block_count,
            retry_initial_ms: u.retry_initial_ms,
            retry_max_s: u.retry_max_s,
            attempts: u.attempts,
        })
    }

    fn web(&self, w: &raw::RawWeb) -> Result<Web, ConfigError> {
        use Seg::{Index as I, Key as K};
        let listen: SocketAddr = w.listen.parse().map_err(|_| {
            self.err(
                &[K("web"), K("listen")],
                format!("{:?} must be ADDRESS:PORT, e.g. 127.0.0.1:8470", w.listen),
            )
        })?;
        if !listen.ip().is_loopback() && !w.expose {
            return Err(self.err(
                &[K("web"), K("listen")],
                format!(
                    "{listen} is reachable from other machines, and unit pages show MACs, UIDs and certificates without a token; set [web] expose = true to mean it, or listen on 127.0.0.1"
                ),
            ));
        }
        let mut tokens: Vec<WebToken> = Vec::new();
        for (i, t) in w.tokens.iter().enumerate() {
            let at = |k| [K("web"), K("token"), I(i), K(k)];
            self.text(&at("name"), &t.name, 64)?;
            let role = match t.role.as_str() {
                "operator" => Role::Operator,
                "quality" => Role::Quality,
                "admin" => Role::Admin,
                o => {
                    return Err(self.err(
                        &at("role"),
                        format!("{o:?} must be operator, quality or admin"),
                    ))
                }
            };
            let mut sha256 = [0u8; 32];
            hex::decode_to_slice(t.sha256.trim(), &mut sha256).map_err(|_| {
                self.err(&at("sha256"), "must be the 64-hex-character sha256 of the token (linemark token new prints it)")
            })?;
            if let Some(j) = tokens.iter().position(|q| q.sha256 == sha256) {
                return Err(self.err(
                    &at("sha256"),
                    format!("is the same token as web.token[{j}]; give each person their own token (linemark token new)"),
                ));
            }
            tokens.push(WebToken {
                role,
                name: t.name.clone(),
                sha256,
            });
        }
        let limit = |key: &'static str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err(self.err(
                    &[K("web"), K(key)],
                    format!("{v} must be from {lo} to {hi}"),
                ))
            } else {
                Ok(())
            }
        };
        limit("max_connections", w.max_connections as u64, 1, 4096)?;
        limit("header_timeout_s", w.header_timeout_s, 1, 600)?;
        limit("idle_timeout_s", w.idle_timeout_s, 1, 3600)?;
        Ok(Web {
            listen,
            tokens,
            max_connections: w.max_connections,
            header_timeout_s: w.header_timeout_s,
            idle_timeout_s: w.idle_timeout_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::write(
            dir.path().join("keys/namespace.key"),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
        )
        .unwrap();
        let base = dir.path().to_path_buf();
        (dir, base)
    }

    const MINIMAL: &str = r#"
line_id = "P1-L03"
resolver = "https://id.example.com"
timezone = "Europe/Berlin"

[ids]
namespace_key_file = "keys/namespace.key"
issuer_public_key = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"

[[product]]
key = "PACK-48V"
gtin = "09506000134352"
level = "item"
template = "pack-50x30"
required_steps = ["provision", "functional"]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let (_d, base) = fixture();
        Config::parse(text, "test.toml", &base)
    }

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.line_id, "P1-L03");
        assert_eq!(c.ids.low_water, 5000);
        assert_eq!(c.ids.namespace_key.key_id(), "630dcd2966c43366");
        assert_eq!(c.products[0].gtin.as_str(), "09506000134352");
        assert_eq!(c.web.listen.to_string(), "127.0.0.1:8470");
        assert!(c.data_dir.ends_with("var"));
    }

    #[test]
    fn debug_of_config_never_shows_the_namespace_key() {
        let c = parse(MINIMAL).unwrap();
        assert!(!format!("{c:?}").contains("0001020304050607"));
    }

    #[test]
    fn a_bad_gtin_points_at_its_line_and_key() {
        let text = MINIMAL.replace("09506000134352", "09506000134353");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "product[0].gtin");
        assert_eq!(e.line, Some(12), "{e}");
        assert!(
            e.to_string().starts_with("test.toml:12: product[0].gtin: "),
            "{e}"
        );
        assert!(e.message.contains("check digit"));
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = MINIMAL.replace("timezone =", "time_zone =");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.key.contains("time_zone"), "{e}");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn wrong_types_and_syntax_errors_have_lines() {
        let e = parse(&MINIMAL.replace("level = \"item\"", "level = 3")).unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        let e = parse(&MINIMAL.replace("[ids]", "[ids")).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
    }

    #[test]
    fn each_section_reports_its_own_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "https://id.example.com\"",
                "https://id.example.com/\"",
                "resolver",
            ),
            ("Europe/Berlin", "Europe/Nowhere", "timezone"),
            ("level = \"item\"", "level = \"pallet\"", "product[0].level"),
            ("ea4a6c63e29c", "zz4a6c63e29c", "ids.issuer_public_key"),
            (
                "keys/namespace.key",
                "keys/missing.key",
                "ids.namespace_key_file",
            ),
        ];
        for (from, to, key) in cases {
            let e = parse(&MINIMAL.replace(from, to)).unwrap_err();
            assert_eq!(&e.key, key, "{e}");
            assert!(e.line.is_some(), "{e}");
        }
    }

    #[test]
    fn stations_printers_upstream_web_and_shifts_are_validated() {
        let extra = r#"
[[printer]]
name = "line-end"
url = "dir:///tmp/labels"

[[station]]
name = "final-1"
port = "tcp://127.0.0.1:7003"
allow = ["final", "STATUS"]
step = "final"
printer = "line-end"

[upstream]
url = "https://passport.example.com"
token_env = "LINEMARK_TOKEN"
mode = "continuous"
interval_s = 30

[[web.token]]
role = "quality"
name = "qe"
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

[[shift]]
name = "N"
start = "22:00"
end = "06:00"
"#;
        let c = parse(&format!("{MINIMAL}{extra}")).unwrap();
        assert_eq!(c.stations[0].allow, vec![Verb::Final, Verb::Status]);
        assert_eq!(
            c.stations[0].port,
            StationPort::Tcp("127.0.0.1:7003".into())
        );
        assert_eq!(
            c.upstream.as_ref().unwrap().mode,
            SyncMode::Continuous { interval_s: 30 }
        );
        assert_eq!(c.web.tokens[0].role, Role::Quality);
        assert_eq!(c.shifts[0].start, (22, 0));

        let bad: &[(&str, &str, &str)] = &[
            (
                "printer = \"line-end\"",
                "printer = \"nope\"",
                "station[0].printer",
            ),
            ("\"final\", \"STATUS\"", "\"FLY\"", "station[0].allow[0]"),
            ("tcp://127.0.0.1:7003", "tcp://nohost", "station[0].port"),
            ("dir:///tmp/labels", "ftp://x", "printer[0].url"),
            (
                "mode = \"continuous\"",
                "mode = \"hourly\"",
                "upstream.mode",
            ),
            ("role = \"quality\"", "role = \"boss\"", "web.token[0].role"),
            ("end = \"06:00\"", "end = \"25:00\"", "shift[0].end"),
        ];
        for (from, to, key) in bad {
            let e = parse(&format!("{MINIMAL}{extra}").replace(from, to)).unwrap_err();
            assert_eq!(&e.key, key, "{e}");
            assert!(e.line.is_some(), "{e}");
        }
    }

    #[test]
    fn duplicate_products_are_refused() {
        let text = format!(
            "{MINIMAL}\n[[product]]\nkey = \"PACK-48V\"\ngtin = \"09506000134352\"\nlevel = \"batch\"\ntemplate = \"t\"\n"
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "product[1].key");
        assert_eq!(e.line, Some(18), "{e}");
    }

    fn one_station(name: &str, port: &str) -> String {
        format!("\n[[station]]\nname = \"{name}\"\nport = \"{port}\"\nallow = [\"PING\"]\n")
    }

    #[test]
    fn two_stations_on_one_port_are_refused_naming_the_first() {
        for (a, b) in [
            ("tcp://127.0.0.1:7003", "tcp://127.0.0.1:7003"),
            ("tcp://0.0.0.0:7003", "tcp://127.0.0.1:7003"),
            ("tcp://127.0.0.1:7003", "tcp://[::]:7003"),
            ("/dev/ttyUSB0", "/dev/ttyUSB0"),
        ] {
            let text = format!("{MINIMAL}{}{}", one_station("a", a), one_station("b", b));
            let e = parse(&text).unwrap_err();
            assert_eq!(e.key, "station[1].port", "{a} {b}: {e}");
            assert!(e.to_string().contains("\"a\""), "{e}");
        }
        for (a, b) in [
            ("tcp://127.0.0.1:0", "tcp://127.0.0.1:0"),
            ("tcp://127.0.0.1:7003", "tcp://127.0.0.1:7004"),
            ("tcp://127.0.0.1:7003", "tcp://127.0.0.2:7003"),
            ("/dev/ttyUSB0", "/dev/ttyUSB1"),
        ] {
            let text = format!("{MINIMAL}{}{}", one_station("a", a), one_station("b", b));
            assert!(parse(&text).is_ok(), "{a} {b}");
        }
    }

    #[test]
    fn a_shared_token_hash_and_an_unexposed_public_listen_are_refused() {
        let token = "\n[[web.token]]\nrole = \"quality\"\nname = \"qe\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n";
        let e = parse(&format!("{MINIMAL}{token}{token}")).unwrap_err();
        assert_eq!(e.key, "web.token[1].sha256", "{e}");
        assert!(e.to_string().contains("web.token[0]"), "{e}");

        let e = parse(&format!("{MINIMAL}\n[web]\nlisten = \"0.0.0.0:8470\"\n")).unwrap_err();
        assert_eq!(e.key, "web.listen", "{e}");
        assert!(e.to_string().contains("expose = true"), "{e}");
        let c = parse(&format!(
            "{MINIMAL}\n[web]\nlisten = \"0.0.0.0:8470\"\nexpose = true\n"
        ))
        .unwrap();
        assert_eq!(c.web.listen.to_string(), "0.0.0.0:8470");
        assert!(parse(&format!("{MINIMAL}\n[web]\nlisten = \"[::1]:8470\"\n")).is_ok());
    }

    #[test]
    fn free_text_values_have_a_length_limit_and_no_control_characters() {
        let long = "x".repeat(MAX_TEXT + 1);
        let with_facility =
            |v: &str| MINIMAL.replacen("line_id", &format!("facility = {v:?}\nline_id"), 1);
        let e = parse(&with_facility(&long)).unwrap_err();
        assert_eq!(e.key, "facility", "{e}");
        let e = parse(&with_facility("Hall 3\nERROR forged")).unwrap_err();
        assert_eq!(e.key, "facility", "{e}");
        assert!(parse(&with_facility("Hall 3, Wrocław")).is_ok());
        let token = format!(
            "\n[[web.token]]\nrole = \"quality\"\nname = \"{}\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n",
            "q".repeat(65)
        );
        assert_eq!(
            parse(&format!("{MINIMAL}{token}")).unwrap_err().key,
            "web.token[0].name"
        );
    }
}
