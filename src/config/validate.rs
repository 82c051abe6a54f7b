//! Raw TOML to a validated `Config`: every check, every error naming the
//! file, the line and the key path.
//!
//! Owns: the checks and where an error points. Must not: open ports,
//! sockets or journals (it reads only key files and templates).

use std::collections::BTreeMap;
use std::path::Path;

use crate::label::Template;

use super::locate::{self, Seg};
use super::*;

/// Longest free-text config value (a site name).
pub(super) const MAX_TEXT: usize = 128;
/// Longest URL or device path in the config.
const MAX_URL: usize = 512;

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) origin: &'a str,
    pub(super) base: &'a Path,
}

impl Validator<'_> {
    pub(super) fn err(&self, path: &[Seg<'_>], message: impl Into<String>) -> ConfigError {
        locate::error_at(self.text, self.origin, path, message)
    }

    pub(super) fn path(&self, p: &str) -> PathBuf {
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

    pub(super) fn name(&self, path: &[Seg<'_>], s: &str) -> Result<(), ConfigError> {
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
    pub(super) fn text(&self, path: &[Seg<'_>], s: &str, max: usize) -> Result<(), ConfigError> {
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

    pub(super) fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        use Seg::Key as K;
        self.name(&[K("line_id")], &raw.line_id)?;
        self.text(&[K("facility")], &raw.facility, MAX_TEXT)?;
        self.text(&[K("resolver")], &raw.resolver, MAX_URL)?;

        self.resolver(&raw.resolver)?;

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
        let (products, templates) = self.products(&raw.products, &templates_dir, &raw.resolver)?;

        let printers = self.printers(&raw.printers)?;

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

        let shifts = self.shifts(&raw.shifts)?;
        let plc = self.plc(&raw.plc, &stations)?;

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
            plc,
            templates,
        })
    }

    /// `resolver`: a plain http(s) base URL the Digital Link path is appended to.
    fn resolver(&self, r: &str) -> Result<(), ConfigError> {
        use Seg::Key as K;
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
        Ok(())
    }

    /// `[[product]]`s and the label templates they name (loaded once each).
    fn products(
        &self,
        raw: &[raw::RawProduct],
        templates_dir: &Path,
        resolver: &str,
    ) -> Result<(Vec<Product>, BTreeMap<String, Template>), ConfigError> {
        use Seg::{Index as I, Key as K};
        let mut templates = std::collections::BTreeMap::new();
        let mut products: Vec<Product> = Vec::new();
        for (i, p) in raw.iter().enumerate() {
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
                let t = load_template(templates_dir, &p.template, resolver)
                    .map_err(|e| self.err(&at("template"), e.to_string()))?;
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
        Ok((products, templates))
    }

    /// `[[printer]]`s: unique names and a driver URL.
    fn printers(&self, raw: &[raw::RawPrinter]) -> Result<Vec<Printer>, ConfigError> {
        use Seg::{Index as I, Key as K};
        let mut printers: Vec<Printer> = Vec::new();
        for (i, p) in raw.iter().enumerate() {
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
        Ok(printers)
    }

    /// `[[shift]]`s: unique names, `HH:MM` start and end.
    fn shifts(&self, raw: &[raw::RawShift]) -> Result<Vec<Shift>, ConfigError> {
        use Seg::{Index as I, Key as K};
        let mut shifts: Vec<Shift> = Vec::new();
        for (i, s) in raw.iter().enumerate() {
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
        Ok(shifts)
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
        let port = self.station_port(&at("port"), &s.port)?;
        if !(50..=4_000_000).contains(&s.baud) {
            return Err(self.err(
                &at("baud"),
                format!("{} is not a baud rate (50 to 4000000)", s.baud),
            ));
        }
        if !(5..=8).contains(&s.data_bits) {
            return Err(self.err(&at("data_bits"), "must be 5, 6, 7 or 8"));
        }
        use {ChecksumPolicy as C, FlowControl as F, Parity as P};
        let parity = self.choice(
            &at("parity"),
            &s.parity,
            &[("none", P::None), ("even", P::Even), ("odd", P::Odd)],
        )?;
        if !(1..=2).contains(&s.stop_bits) {
            return Err(self.err(&at("stop_bits"), "must be 1 or 2"));
        }
        let flow_control = self.choice(
            &at("flow_control"),
            &s.flow_control,
            &[
                ("none", F::None),
                ("software", F::Software),
                ("hardware", F::Hardware),
            ],
        )?;
        let checksum = self.choice(
            &at("checksum"),
            &s.checksum,
            &[("optional", C::Optional), ("required", C::Required)],
        )?;
        let allow = self.allow(i, &s.allow)?;
        let steps = self.steps(i, s.step.as_ref(), &s.steps)?;
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
            modbus_slot: s.modbus_slot,
        })
    }

    /// A station's `port`: `tcp://HOST:PORT` or a serial device path.
    fn station_port(&self, at: &[Seg<'_>], port: &str) -> Result<StationPort, ConfigError> {
        if port == "plc" {
            return Ok(StationPort::Plc);
        }
        if let Some(addr) = port.strip_prefix("tcp://") {
            let ok = addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(self.err(at, format!("{port:?} must be tcp://HOST:PORT")));
            }
            Ok(StationPort::Tcp(addr.to_string()))
        } else if port.is_empty() || port.contains("://") {
            Err(self.err(
                at,
                format!("{port:?} must be a serial device path, tcp://HOST:PORT or plc"),
            ))
        } else {
            Ok(StationPort::Serial(PathBuf::from(port)))
        }
    }

    /// One of a fixed set of words; the error lists them (`a, b or c`).
    fn choice<T: Copy>(
        &self,
        at: &[Seg<'_>],
        value: &str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        if let Some((_, v)) = options.iter().find(|(w, _)| *w == value) {
            return Ok(*v);
        }
        let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
        let list = match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => words.join(""),
        };
        Err(self.err(at, format!("{value:?} must be {list}")))
    }

    /// A station's `allow`: verbs from `protocol::Verb::ALL`.
    fn allow(&self, i: usize, words: &[String]) -> Result<Vec<Verb>, ConfigError> {
        use Seg::{Index as I, Key as K};
        let mut allow = Vec::new();
        for (j, v) in words.iter().enumerate() {
            let Some(verb) = Verb::parse(v) else {
                let known: Vec<&str> = Verb::ALL.iter().map(|v| v.as_str()).collect();
                return Err(self.err(
                    &[K("station"), I(i), K("allow"), I(j)],
                    format!("{v:?} is not a verb; known verbs: {}", known.join(", ")),
                ));
            };
            allow.push(verb);
        }
        Ok(allow)
    }

    /// A station's `step` and `steps`, as one list without repeats.
    fn steps(
        &self,
        i: usize,
        step: Option<&String>,
        more: &[String],
    ) -> Result<Vec<String>, ConfigError> {
        use Seg::{Index as I, Key as K};
        let mut steps = Vec::new();
        if let Some(step) = step {
            self.name(&[K("station"), I(i), K("step")], step)?;
            steps.push(step.clone());
        }
        for (j, step) in more.iter().enumerate() {
            let at = [K("station"), I(i), K("steps"), I(j)];
            self.name(&at, step)?;
            if steps.contains(step) {
                return Err(self.err(&at, format!("step {step:?} is listed twice")));
            }
            steps.push(step.clone());
        }
        Ok(steps)
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
