//! `linemark-central` for the tests: a config and keys in a temporary
//! folder (the test issuer and namespace key the test lines trust), a
//! database in a throwaway PostgreSQL cluster, and `run` processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::postgres::Postgres;

pub struct Central {
    pub pg: Postgres,
    pub dir: tempfile::TempDir,
    pub db: String,
    pub url: String,
}

/// A running `linemark-central run`.
pub struct Instance {
    pub child: Child,
    pub port: u16,
}

impl Instance {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Central {
    /// A migrated central database; `None` (SKIPPED) without PostgreSQL.
    pub fn start(test: &str) -> Option<Central> {
        let pg = Postgres::start(test)?;
        let url = pg.create_db("central");
        let dir = tempfile::tempdir().expect("central dir");
        std::fs::create_dir_all(dir.path().join("keys")).expect("keys");
        std::fs::write(dir.path().join("keys/issuer.key"), "07".repeat(32)).expect("key");
        std::fs::write(
            dir.path().join("keys/namespace.key"),
            super::NAMESPACE_KEY_HEX,
        )
        .expect("key");
        let c = Central {
            pg,
            dir,
            db: "central".into(),
            url,
        };
        c.write_config(0, "");
        let out = c.cli(&["migrate"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "migrate: {}",
            super::stderr(&out)
        );
        Some(c)
    }

    /// `central.toml` listening on `port`, with `extra` appended.
    pub fn write_config(&self, port: u16, extra: &str) {
        std::fs::write(
            self.config_path(),
            format!(
                r#"[database]
url = "{}"
pool_size = 8

[http]
listen = "127.0.0.1:{port}"
public_base = "https://id.example.com"
max_body_bytes = 8388608

[issuer]
key_file = "keys/issuer.key"
namespace = "acme-batteries"
namespace_key_file = "keys/namespace.key"
first_index = 1048576
max_block = 100000

[[line]]
id = "P1-L03"
street = "Hindenburgstr. 10"
postal_code = "10719"
country = "Germany"
{extra}"#,
                self.url
            ),
        )
        .expect("central.toml");
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("central.toml")
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_linemark-central"))
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .output()
            .expect("linemark-central runs")
    }

    /// Registers a line; answers its sync token (the last line of stdout).
    pub fn add_line(&self, line_id: &str) -> String {
        let out = self.cli(&["line", "add", line_id]);
        assert_eq!(out.status.code(), Some(0), "{}", super::stderr(&out));
        super::stdout(&out)
            .lines()
            .last()
            .expect("a token")
            .trim()
            .to_string()
    }

    /// Starts `linemark-central run` on a free port and waits for `/healthz`.
    pub fn run(&self) -> Instance {
        let port = super::free_port();
        let config = self.dir.path().join(format!("central-{port}.toml"));
        let text = std::fs::read_to_string(self.config_path())
            .expect("config")
            .replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:{port}\""),
            );
        std::fs::write(&config, text).expect("instance config");
        let child = Command::new(env!("CARGO_BIN_EXE_linemark-central"))
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("linemark-central run");
        let inst = Instance { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ =
                    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut a = String::new();
                let _ = s.read_to_string(&mut a);
                if a.starts_with("HTTP/1.1 200") {
                    return inst;
                }
            }
            assert!(
                Instant::now() < deadline,
                "linemark-central run never answered /healthz"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One value from the central database.
    pub fn sql(&self, sql: &str) -> String {
        self.pg.sql(&self.db, sql)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
