//! systemd's notify protocol (sd_notify): one datagram per message to the
//! socket named by `NOTIFY_SOCKET`, and the watchdog interval from
//! `WATCHDOG_USEC`.
//!
//! Owns: talking to the service manager. Must not: decide when the daemon
//! is ready or healthy (`daemon` does).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to the service manager, if there is one.
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    /// Set with `STOPPING=1`: nothing is sent after it (a watchdog probe
    /// finishing during the stop must not look like a live daemon). The
    /// lock orders a send against the stop.
    stopping: std::sync::Mutex<bool>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET").ok().and_then(|path| {
            let sock = UnixDatagram::unbound().ok()?;
            Some((sock, path))
        });
        Notifier {
            socket,
            stopping: Default::default(),
        }
    }

    /// To an explicit socket path (tests, or a supervisor other than systemd).
    pub fn to_path(path: &std::path::Path) -> Notifier {
        Notifier {
            socket: UnixDatagram::unbound()
                .ok()
                .map(|s| (s, path.display().to_string())),
            stopping: Default::default(),
        }
    }

    /// No service manager.
    pub fn none() -> Notifier {
        Notifier {
            socket: None,
            stopping: Default::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one message, e.g. `READY=1`. Failures are logged, never fatal.
    pub fn send(&self, msg: &str) {
        let Some((sock, path)) = &self.socket else {
            return;
        };
        let Ok(mut stopping) = self.stopping.lock() else {
            return;
        };
        if *stopping {
            return;
        }
        if msg.starts_with("STOPPING=1") {
            *stopping = true;
        }
        let r = if let Some(name) = path.strip_prefix('@') {
            abstract_addr(name).and_then(|a| sock.send_to_addr(msg.as_bytes(), &a))
        } else {
            sock.send_to(msg.as_bytes(), path)
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot notify the service manager");
        }
    }

    /// Half the watchdog interval the service manager asked for, if any.
    pub fn watchdog_interval() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Some(pid) = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
        {
            if pid != std::process::id() {
                return None;
            }
        }
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &str) -> std::io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &str) -> std::io::Result<std::os::unix::net::SocketAddr> {
    Err(std::io::Error::other("abstract sockets need Linux"))
}

#[cfg(test)]
mod stopping_tests {
    use super::*;

    #[test]
    fn nothing_is_sent_after_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let n = Notifier::to_path(&path);
        for m in ["WATCHDOG=1", "STOPPING=1", "WATCHDOG=1\nSTATUS=late"] {
            n.send(m);
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(k) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
        }
        assert_eq!(got, vec!["WATCHDOG=1", "STOPPING=1"]);
    }
}
