//! `central.toml` (SPEC section 11): the database, the HTTP listener and
//! public base, the issuer, where each line is, and what the resolver
//! offers per GTIN. Every error names `file:line: key: problem`.
//!
//! Owns: reading and checking the file and the key files it names.
//! Must not: connect to the database or open ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::Deserialize;

use crate::config::locate::{error_at, toml_error, Seg};
use crate::config::ConfigError;
use crate::gs1::Gtin;
use crate::ids::NamespaceKey;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCentral {
    database: RawDatabase,
    http: RawHttp,
    issuer: RawIssuer,
    #[serde(default, rename = "line")]
    lines: Vec<RawLine>,
    #[serde(default, rename = "product")]
    products: Vec<RawProduct>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default = "default_pool")]
    pool_size: usize,
}

fn default_pool() -> usize {
    16
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: String,
    public_base: String,
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    key_file: String,
    namespace: String,
    namespace_key_file: String,
    #[serde(default)]
    first_index: u64,
    #[serde(default = "default_max_block")]
    max_block: u64,
    #[serde(default = "default_issuer_name")]
    name: String,
}

fn default_max_block() -> u64 {
    1_000_000
}

fn default_issuer_name() -> String {
    "linemark-central".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    id: String,
    #[serde(default)]
    street: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    gtin: String,
    name: String,
    #[serde(default, rename = "link")]
    links: Vec<RawLink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    rel: String,
    href: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    lang: Option<String>,
}

/// Where a line is: the passports' manufacturing place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSite {
    pub id: String,
    pub street: String,
    pub postal_code: String,
    pub country: String,
}

/// One link the resolver offers for a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub rel: String,
    pub href: String,
    pub title: String,
    pub lang: Option<String>,
}

/// A product the resolver knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInfo {
    pub gtin: Gtin,
    pub name: String,
    pub links: Vec<Link>,
}

/// The issuer of block grants.
pub struct IssuerConfig {
    pub key: SigningKey,
    pub namespace: String,
    pub key_id: String,
    pub first_index: u64,
    pub max_block: u64,
    pub name: String,
}

impl std::fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("key", &"<redacted>")
            .field("namespace", &self.namespace)
            .field("key_id", &self.key_id)
            .field("first_index", &self.first_index)
            .field("max_block", &self.max_block)
            .finish()
    }
}

/// A checked `central.toml`.
#[derive(Debug)]
pub struct CentralConfig {
    pub origin: String,
    pub database_url: String,
    pub pool_size: usize,
    pub listen: SocketAddr,
    pub public_base: String,
    pub max_body_bytes: usize,
    pub issuer: IssuerConfig,
    pub lines: Vec<LineSite>,
    pub products: Vec<ProductInfo>,
}

impl CentralConfig {
    /// Reads and checks a config file; relative paths are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (text, origin, base) = crate::config::locate::read_config(path)?;
        Self::parse(&text, &origin, &base, |name| std::env::var(name).ok())
    }

    /// Checks config text; `env` reads `database.url_env`.
    pub fn parse(
        text: &str,
        origin: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        use Seg::{Index as I, Key as K};
        let raw: RawCentral = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        let err = |path: &[Seg<'_>], m: String| error_at(text, origin, path, m);
        let file = |p: &str| -> PathBuf {
            if Path::new(p).is_absolute() {
                PathBuf::from(p)
            } else {
                base.join(p)
            }
        };
        let database_url = match (&raw.database.url, &raw.database.url_env) {
            (Some(u), None) => u.clone(),
            (None, Some(name)) => env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                err(
                    &[K("database"), K("url_env")],
                    format!("the environment variable {name} is not set"),
                )
            })?,
            _ => {
                return Err(err(
                    &[K("database")],
                    "give exactly one of url = \"postgresql://...\" or url_env = \"NAME\"".into(),
                ))
            }
        };
        if !(database_url.starts_with("postgresql://") || database_url.starts_with("postgres://")) {
            return Err(err(
                &[K("database"), K("url")],
                "must start with postgresql:// (e.g. postgresql://linemark@/linemark?host=/run/postgresql)".into(),
            ));
        }
        if !(1..=1024).contains(&raw.database.pool_size) {
            return Err(err(
                &[K("database"), K("pool_size")],
                "must be 1 to 1024".into(),
            ));
        }
        let listen = raw.http.listen.parse::<SocketAddr>().map_err(|_| {
            err(
                &[K("http"), K("listen")],
                format!(
                    "{:?} must be HOST:PORT with an IP address, e.g. 127.0.0.1:8480",
                    raw.http.listen
                ),
            )
        })?;
        let pb = &raw.http.public_base;
        if !(pb.starts_with("https://") || pb.starts_with("http://")) || pb.ends_with('/') {
            return Err(err(
                &[K("http"), K("public_base")],
                format!("{pb:?} must be an http(s) base URL without a trailing '/' (the lines' resolver)"),
            ));
        }
        if raw.http.max_body_bytes < 1024 {
            return Err(err(
                &[K("http"), K("max_body_bytes")],
                "must be at least 1024".into(),
            ));
        }
        let issuer = issuer(&raw.issuer, &file, &|path, m| err(path, m))?;
        let mut lines: Vec<LineSite> = Vec::new();
        for (i, l) in raw.lines.iter().enumerate() {
            if l.id.is_empty() || lines.iter().any(|o| o.id == l.id) {
                return Err(err(
                    &[K("line"), I(i), K("id")],
                    format!("{:?} is empty or listed twice", l.id),
                ));
            }
            lines.push(LineSite {
                id: l.id.clone(),
                street: l.street.clone(),
                postal_code: l.postal_code.clone(),
                country: l.country.clone(),
            });
        }
        let mut products: Vec<ProductInfo> = Vec::new();
        for (i, p) in raw.products.iter().enumerate() {
            let gtin = Gtin::parse(&p.gtin)
                .map_err(|e| err(&[K("product"), I(i), K("gtin")], e.to_string()))?;
            if products.iter().any(|o| o.gtin == gtin) {
                return Err(err(
                    &[K("product"), I(i), K("gtin")],
                    format!("GTIN {} is listed twice", p.gtin),
                ));
            }
            let mut links = Vec::new();
            for (j, l) in p.links.iter().enumerate() {
                let at = |k| [K("product"), I(i), K("link"), I(j), K(k)];
                if !(l.href.starts_with("https://") || l.href.starts_with("http://")) {
                    return Err(err(
                        &at("href"),
                        format!("{:?} must be an http(s) URL", l.href),
                    ));
                }
                if l.rel.is_empty() || l.rel.contains(char::is_whitespace) {
                    return Err(err(
                        &at("rel"),
                        format!("{:?} must be a GS1 link type (gs1:pip) or a URI", l.rel),
                    ));
                }
                links.push(Link {
                    rel: l.rel.clone(),
                    href: l.href.clone(),
                    title: l.title.clone(),
                    lang: l.lang.clone(),
                });
            }
            products.push(ProductInfo {
                gtin,
                name: p.name.clone(),
                links,
            });
        }
        Ok(CentralConfig {
            origin: origin.to_string(),
            database_url,
            pool_size: raw.database.pool_size,
            listen,
            public_base: raw.http.public_base.clone(),
            max_body_bytes: raw.http.max_body_bytes,
            issuer,
            lines,
            products,
        })
    }
}

fn issuer(
    raw: &RawIssuer,
    file: &dyn Fn(&str) -> PathBuf,
    err: &dyn Fn(&[Seg<'_>], String) -> ConfigError,
) -> Result<IssuerConfig, ConfigError> {
    use Seg::Key as K;
    let read = |key: &'static str, p: &str| -> Result<[u8; 32], ConfigError> {
        let path = file(p);
        let at = [K("issuer"), K(key)];
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err(&at, format!("cannot read {}: {e}", path.display())))?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
            err(
                &at,
                format!("{} must hold 64 hex characters", path.display()),
            )
        })?;
        Ok(bytes)
    };
    let key = SigningKey::from_bytes(&read("key_file", &raw.key_file)?);
    let ns = read("namespace_key_file", &raw.namespace_key_file)?;
    let namespace_key = NamespaceKey::from_hex(&hex::encode(ns))
        .map_err(|e| err(&[K("issuer"), K("namespace_key_file")], e.to_string()))?;
    if raw.namespace.is_empty() {
        return Err(err(
            &[K("issuer"), K("namespace")],
            "must not be empty".into(),
        ));
    }
    if raw.first_index >= crate::ids::permute::INDEX_SPACE {
        return Err(err(
            &[K("issuer"), K("first_index")],
            "must be below 2^60".into(),
        ));
    }
    if raw.max_block == 0 {
        return Err(err(
            &[K("issuer"), K("max_block")],
            "must be at least 1".into(),
        ));
    }
    Ok(IssuerConfig {
        key,
        namespace: raw.namespace.clone(),
        key_id: namespace_key.key_id(),
        first_index: raw.first_index,
        max_block: raw.max_block,
        name: raw.name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"[database]
url = "postgresql://linemark@/linemark?host=/run/postgresql"

[http]
listen = "127.0.0.1:8480"
public_base = "https://id.example.com"

[issuer]
key_file = "issuer.key"
namespace = "acme-batteries"
namespace_key_file = "namespace.key"
first_index = 1048576

[[line]]
id = "P1-L03"
country = "Germany"

[[product]]
gtin = "09506000134352"
name = "PACK-48V battery pack"
[[product.link]]
rel = "gs1:pip"
href = "https://www.example.com/packs/48v"
"#;

    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("issuer.key"), "07".repeat(32)).unwrap();
        std::fs::write(d.path().join("namespace.key"), "ab".repeat(32)).unwrap();
        d
    }

    fn parse(text: &str, d: &Path) -> Result<CentralConfig, ConfigError> {
        CentralConfig::parse(text, "central.toml", d, |n| {
            (n == "DB").then(|| "postgresql:///x".into())
        })
    }

    #[test]
    fn a_good_config_reads_with_its_defaults() {
        let d = dir();
        let c = parse(GOOD, d.path()).unwrap();
        assert_eq!(c.listen.port(), 8480);
        assert_eq!(c.issuer.first_index, 1_048_576);
        assert_eq!(c.issuer.max_block, 1_000_000);
        assert_eq!(c.issuer.key_id.len(), 16);
        assert_eq!(c.products[0].links[0].rel, "gs1:pip");
        assert_eq!(c.pool_size, 16);
        let env = GOOD.replace(
            "url = \"postgresql://linemark@/linemark?host=/run/postgresql\"",
            "url_env = \"DB\"",
        );
        assert_eq!(
            parse(&env, d.path()).unwrap().database_url,
            "postgresql:///x"
        );
    }

    #[test]
    fn every_error_names_the_file_line_and_key() {
        let d = dir();
        let cases = [
            (
                "listen = \"127.0.0.1:8480\"",
                "listen = \"nowhere\"",
                "central.toml:5: http.listen:",
            ),
            (
                "gtin = \"09506000134352\"",
                "gtin = \"09506000134353\"",
                "central.toml:19: product[0].gtin:",
            ),
            (
                "first_index = 1048576",
                "first_index = 1152921504606846976",
                "central.toml:12: issuer.first_index:",
            ),
            (
                "key_file = \"issuer.key\"",
                "key_file = \"nope.key\"",
                "central.toml:9: issuer.key_file: cannot read",
            ),
            (
                "public_base = \"https://id.example.com\"",
                "public_base = \"https://id.example.com/\"",
                "central.toml:6: http.public_base:",
            ),
            (
                "url = \"postgresql://",
                "url_env = \"NOPE\"\n#",
                "central.toml:2: database.url_env: the environment variable NOPE",
            ),
            (
                "country = \"Germany\"",
                "colour = \"red\"",
                "central.toml:16: line[0].colour: unknown field",
            ),
            (
                "href = \"https://www.example.com/packs/48v\"",
                "href = \"ftp://x\"",
                "central.toml:23: product[0].link[0].href:",
            ),
        ];
        for (from, to, want) in cases {
            let e = parse(&GOOD.replace(from, to), d.path())
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{e}\n  expected {want}");
        }
    }
}
