//! What the central benches share: running `linemark-central` commands and
//! `run` processes, and free ports.
#![allow(dead_code)] // each bench uses a part

use std::process::{Child, Command, Output, Stdio};

/// A `linemark-central run` process, killed when dropped.
pub struct Instance(pub Child, pub u16);

impl Instance {
    /// `linemark-central run` on `config`, which listens on `port`.
    pub fn start(config: &std::path::Path, port: u16) -> Instance {
        let child = Command::new(env!("CARGO_BIN_EXE_linemark-central"))
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("linemark-central run");
        Instance(child, port)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `linemark-central ARGS --config CONFIG`.
pub fn central(args: &[&str], config: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linemark-central"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("linemark-central")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}
