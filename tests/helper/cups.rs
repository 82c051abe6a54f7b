//! A private `cupsd` (Debian's `cups`) with its own ServerRoot, spool and
//! Unix socket in a temporary folder, and a loopback TCP printer that
//! keeps what each connection sent: the `socket://` device of its queues.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Cups {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Cups {
    /// `None` (after a loud SKIPPED line) where cupsd is not installed.
    pub fn start(test: &str) -> Option<Cups> {
        if std::process::Command::new("cupsd")
            .arg("-h")
            .output()
            .is_err()
            || std::process::Command::new("lpadmin")
                .arg("-h")
                .output()
                .is_err()
        {
            eprintln!("SKIPPED: {test}: cupsd/lpadmin not installed (Debian's cups and cups-client; .ci/run installs them)");
            return None;
        }
        let dir = tempfile::tempdir().expect("cups dir");
        let root = dir.path();
        for d in ["etc", "spool/tmp", "state", "cache", "log"] {
            std::fs::create_dir_all(root.join(d)).expect("cups dirs");
        }
        // Backends and filters run as lp: they must reach the spool.
        let _ = std::process::Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(root)
            .status();
        let _ = std::process::Command::new("chmod")
            .arg("1777")
            .arg(root.join("spool/tmp"))
            .status();
        let r = root.display();
        std::fs::write(
            root.join("etc/cupsd.conf"),
            format!(
                "Listen {r}/cups.sock\nLogLevel warn\nWebInterface No\nBrowsing No\nDefaultAuthType None\n\
                 <Location />\n  Order allow,deny\n  Allow all\n</Location>\n\
                 <Policy default>\n  <Limit All>\n    Order allow,deny\n    Allow all\n  </Limit>\n</Policy>\n"
            ),
        )
        .expect("cupsd.conf");
        std::fs::write(
            root.join("etc/cups-files.conf"),
            format!(
                "ServerRoot {r}/etc\nRequestRoot {r}/spool\nTempDir {r}/spool/tmp\nStateDir {r}/state\n\
                 CacheDir {r}/cache\nAccessLog {r}/log/access_log\nErrorLog {r}/log/error_log\n\
                 PageLog {r}/log/page_log\nServerBin /usr/lib/cups\nDataDir /usr/share/cups\n\
                 User lp\nGroup lp\nSystemGroup root\nSandboxing Relaxed\n"
            ),
        )
        .expect("cups-files.conf");
        let child = std::process::Command::new("cupsd")
            .arg("-f")
            .arg("-c")
            .arg(root.join("etc/cupsd.conf"))
            .arg("-s")
            .arg(root.join("etc/cups-files.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cupsd starts");
        let cups = Cups { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cups.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "cupsd did not make its socket: {}",
                cups.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(cups)
    }

    /// What `CUPS_SERVER` must be for the CUPS tools to talk to this cupsd.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("cups.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/error_log")).unwrap_or_default()
    }

    /// Runs a CUPS tool against this cupsd; panics with its output on failure.
    pub fn tool(&self, program: &str, args: &[&str]) -> String {
        let out = std::process::Command::new(program)
            .args(args)
            .env("CUPS_SERVER", self.socket())
            .output()
            .expect("CUPS tool runs");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A raw queue whose device is `socket://ADDR` (the PDF goes through as is).
    pub fn add_queue(&self, name: &str, device: std::net::SocketAddr) {
        self.tool(
            "lpadmin",
            &[
                "-p",
                name,
                "-E",
                "-v",
                &format!("socket://{device}"),
                "-m",
                "raw",
            ],
        );
    }
}

impl Drop for Cups {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A printer on a loopback TCP port: every connection's bytes, in order.
pub struct SocketPrinter {
    pub addr: std::net::SocketAddr,
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl SocketPrinter {
    pub async fn start() -> SocketPrinter {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("printer port");
        let addr = l.local_addr().expect("printer addr");
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let r = received.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut buf = Vec::new();
                    let _ = s.read_to_end(&mut buf).await;
                    r.lock().expect("received").push(buf);
                });
            }
        });
        SocketPrinter { addr, received }
    }

    pub fn jobs(&self) -> Vec<Vec<u8>> {
        self.received.lock().expect("received").clone()
    }
}
