//! Trusting a PLC's certificate (`linemark plc trust CERT`): the file goes
//! into `data_dir/opcua/trusted/` under the name the server looks it up
//! by, and out of `rejected/` where a first refused connection put it.
//!
//! Owns: the certificate store's file names. Must not: change a running
//! server's configuration (it reads the folders on each connection).

use std::path::{Path, PathBuf};

use opcua::crypto::CertificateStore;

/// A certificate now trusted.
#[derive(Debug)]
pub struct Trusted {
    pub path: PathBuf,
    pub thumbprint: String,
    pub subject: String,
    /// It had been refused once and was waiting in `rejected/`.
    pub was_rejected: bool,
}

/// Copies the certificate at `cert` (DER or PEM) into the trusted folder.
pub fn trust(data_dir: &Path, cert: &Path) -> Result<Trusted, String> {
    let x509 = CertificateStore::read_cert(cert).map_err(|e| {
        format!(
            "{}: not a DER or PEM X.509 certificate ({e})",
            cert.display()
        )
    })?;
    let name = CertificateStore::cert_file_name(&x509);
    let pki = super::pki_dir(data_dir);
    let trusted = pki.join("trusted");
    std::fs::create_dir_all(&trusted).map_err(|e| format!("{}: {e}", trusted.display()))?;
    let der = x509
        .to_der()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let path = trusted.join(&name);
    std::fs::write(&path, der).map_err(|e| format!("{}: {e}", path.display()))?;
    let rejected = pki.join("rejected").join(&name);
    let was_rejected = rejected.exists();
    if was_rejected {
        std::fs::remove_file(&rejected).map_err(|e| format!("{}: {e}", rejected.display()))?;
    }
    Ok(Trusted {
        path,
        thumbprint: hex::encode(x509.thumbprint().value()),
        subject: x509.subject_name(),
        was_rejected,
    })
}

/// Certificates refused so far, waiting for `linemark plc trust`.
pub fn rejected(data_dir: &Path) -> Vec<PathBuf> {
    let dir = super::pki_dir(data_dir).join("rejected");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}
