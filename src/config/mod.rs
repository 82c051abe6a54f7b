//! Configuration (SPEC section 9): TOML -> [`Config`], validated in full
//! before anything opens a file, a port or a socket.
//!
//! Owns: key names, defaults, value checks, resolving relative paths against
//! the config file's folder, and errors that name the file, line and key.
//! Must not: open the journal, ports or printers (callers build IO objects
//! from a validated `Config`).
//!
//! `raw.rs` is the TOML as written (serde, every key documented),
//! `validate.rs` every check with its error, `types.rs` what the rest of
//! linemark reads, `templates.rs` finding and loading label templates.

pub mod locate;
mod plc;
mod raw;
mod templates;
mod types;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::gs1::{Gtin, Level};
use crate::ids::grant::parse_public_key;
use crate::ids::GrantPolicy;
use crate::ids::NamespaceKey;
use crate::protocol::Verb;
pub use raw::RawConfig;
pub use templates::*;
pub use types::*;
use validate::Validator;
#[cfg(test)]
use validate::MAX_TEXT;

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

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, origin, base) = crate::config::locate::read_config(path)?;
        Self::parse(&text, &origin, &base)
    }

    /// Validates config text; relative paths are joined to `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| locate::toml_error(text, origin, &e))?;
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
                    message: m.to_string(),
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

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} must hold 64 hex characters")]
    NotHex { path: String },
}

/// Reads the development issuer's signing key (64 hex characters), if present.
pub fn read_dev_issuer(path: &Path) -> Result<Option<ed25519_dalek::SigningKey>, KeyFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(KeyFileError::Unreadable {
                path: path.display().to_string(),
                source: e,
            })
        }
    };
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| KeyFileError::NotHex {
        path: path.display().to_string(),
    })?;
    Ok(Some(ed25519_dalek::SigningKey::from_bytes(&seed)))
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

    const PLC_STATION: &str =
        "\n[[station]]\nname = \"plc1\"\nport = \"plc\"\nallow = [\"ALLOC\"]\n";
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Tx3k1RBGzEqhXNKn8bQGGx1mIbqyh1M+d4tS1iu1o5o";

    fn plc(opcua: &str) -> Result<Config, ConfigError> {
        parse(&format!("{MINIMAL}{PLC_STATION}\n[plc.opcua]\n{opcua}"))
    }

    #[test]
    fn a_plc_station_and_the_opcua_server_load_together() {
        let c = plc(&format!(
            "listen = \"0.0.0.0:4840\"\n[[plc.opcua.user]]\nname = \"s7\"\npassword_hash = \"{HASH}\"\n"
        ))
        .unwrap();
        assert_eq!(c.stations[0].port, StationPort::Plc);
        let o = c.plc.opcua.unwrap();
        assert_eq!(o.listen.port(), 4840);
        assert!(!o.allow_anonymous);
        assert_eq!(o.users[0].name, "s7");
        assert!(o.certificate.is_none());
        let c = plc("allow_anonymous = true").unwrap();
        assert_eq!(c.plc.opcua.unwrap().listen.to_string(), "127.0.0.1:4840");
    }

    #[test]
    fn modbus_slots_are_checked_against_plc_stations_and_each_other() {
        let station = |name: &str, port: &str, slot: &str| {
            format!("\n[[station]]\nname = \"{name}\"\nport = \"{port}\"\nallow = [\"ALLOC\"]\n{slot}\n")
        };
        let modbus = "\n[plc.modbus]\nlisten = \"127.0.0.1:5020\"\n";
        let ok = parse(&format!(
            "{MINIMAL}{}{}{modbus}",
            station("a", "plc", "modbus_slot = 1"),
            station("b", "plc", "modbus_slot = 65")
        ))
        .unwrap();
        assert_eq!(ok.stations[1].modbus_slot, Some(65));
        assert_eq!(ok.plc.modbus.unwrap().listen.port(), 5020);
        let cases = [
            (
                format!("{}{modbus}", station("a", "plc", "modbus_slot = 66")),
                "station[0].modbus_slot",
                "0 to 65",
            ),
            (
                format!(
                    "{}{}{modbus}",
                    station("a", "plc", "modbus_slot = 2"),
                    station("b", "plc", "modbus_slot = 2")
                ),
                "station[1].modbus_slot",
                "already the mailbox of station \"a\"",
            ),
            (
                format!(
                    "{}{modbus}",
                    station("a", "tcp://127.0.0.1:7001", "modbus_slot = 1")
                ),
                "station[0].modbus_slot",
                "port = \"plc\"",
            ),
            (
                station("a", "plc", "modbus_slot = 1"),
                "station[0].modbus_slot",
                "[plc.modbus]",
            ),
            (
                format!("{}{modbus}", station("a", "plc", "")),
                "station[0].port",
                "nothing reaches it",
            ),
            (
                format!("{}{modbus}", station("a", "tcp://127.0.0.1:7001", "")),
                "plc.modbus",
                "no PLC station has a modbus_slot",
            ),
            (
                format!(
                    "{}\n[plc.modbus]\nlisten = \"502\"\n",
                    station("a", "plc", "modbus_slot = 1")
                ),
                "plc.modbus.listen",
                "ADDRESS:PORT",
            ),
        ];
        for (extra, key, msg) in cases {
            let e = parse(&format!("{MINIMAL}{extra}")).unwrap_err();
            assert_eq!(e.key, key, "{extra}: {e}");
            assert!(e.message.contains(msg), "{extra}: {e}");
        }
    }

    #[test]
    fn plc_config_mistakes_name_the_key_and_the_fix() {
        let cases: Vec<(String, &str, &str)> = vec![
            (
                format!("{MINIMAL}{PLC_STATION}"),
                "station[0].port",
                "nothing reaches it",
            ),
            (
                format!("{MINIMAL}\n[plc.opcua]\nallow_anonymous = true\n"),
                "plc.opcua",
                "no [[station]] has port = \"plc\"",
            ),
        ];
        for (text, key, msg) in cases {
            let e = parse(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(msg), "{e}");
        }
        let cases: [(&str, &str, &str); 6] = [
            ("", "plc.opcua", "no PLC could connect"),
            ("listen = \"4840\"\nallow_anonymous = true", "plc.opcua.listen", "ADDRESS:PORT"),
            (
                "[[plc.opcua.user]]\nname = \"s7\"\npassword_hash = \"secret\"",
                "plc.opcua.user[0].password_hash",
                "linemark plc passwd",
            ),
            (
                "[[plc.opcua.user]]\nname = \"s7\"\npassword_hash = \"$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$aGFzaA\"",
                "plc.opcua.user[0].password_hash",
                "argon2id",
            ),
            (
                "allow_anonymous = true\ncertificate = \"server.der\"",
                "plc.opcua.certificate",
                "needs private_key",
            ),
            ("allow_anonymous = true\nport = 4840", "plc.opcua", "unknown field"),
        ];
        for (opcua, key, msg) in cases {
            let e = plc(opcua).unwrap_err();
            assert!(e.key.starts_with(key), "{opcua}: {e}");
            assert!(e.message.contains(msg), "{opcua}: {e}");
            assert!(e.line.is_some(), "{opcua}: {e}");
        }
        let twice = format!(
            "[[plc.opcua.user]]\nname = \"s7\"\npassword_hash = \"{HASH}\"\n[[plc.opcua.user]]\nname = \"s7\"\npassword_hash = \"{HASH}\"\n"
        );
        let e = plc(&twice).unwrap_err();
        assert_eq!(e.key, "plc.opcua.user[1].name", "{e}");
    }
}
