//! A throwaway PostgreSQL cluster (Debian's `postgresql`: `initdb` and
//! `pg_ctl`) in a temporary folder, on a Unix socket only, stopped when the
//! value is dropped. As root (CI) the cluster runs as the `postgres` user,
//! since `initdb` refuses root. Used by the tests and by `benches/central.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// `initdb`'s folder: on PATH, or Debian's versioned folder.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(o) = Command::new("pg_config").arg("--bindir").output() {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if p.join("initdb").exists() {
            return Some(p);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// A port nothing listens on now (the cluster listens only on its Unix
/// socket, whose name carries the port).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Postgres {
    /// `None` (after a loud SKIPPED line) where PostgreSQL is not installed.
    pub fn start(test: &str) -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            eprintln!("SKIPPED: {test}: PostgreSQL is not installed (Debian's postgresql; .ci/run installs it)");
            return None;
        };
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::tempdir().expect("pg dir");
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster folder to postgres");
        }
        let pg = Postgres {
            dir,
            bin,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        let out = pg
            .cmd("initdb")
            .args([
                "--auth=trust",
                "--no-sync",
                "-U",
                "linemark",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!(
            "-k {} -p {} -c listen_addresses='' -c fsync=off -c max_connections=200",
            pg.dir.path().display(),
            pg.port
        );
        let out = pg
            .cmd("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.path().join("log"))
            .args(["-o", &opts, "start"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            pg.log()
        );
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The URL of database `db` (the `postgres` database always exists).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://linemark@/{db}?host={}&port={}",
            self.dir.path().display(),
            self.port
        )
    }

    /// Creates database `name` and answers its URL.
    pub fn create_db(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// Runs SQL through `psql`; answers its output (fails the test on an error).
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.psql(db, sql);
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs SQL through `psql` and answers the raw result (for refusals).
    pub fn psql(&self, db: &str, sql: &str) -> std::process::Output {
        Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(db))
            .args(["-c", sql])
            .output()
            .expect("psql runs")
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .args(["-D"])
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
