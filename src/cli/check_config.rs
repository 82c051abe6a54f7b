//! `linemark check-config`: validate and summarise.

use std::path::Path;

use super::{load_config, CliError};
use crate::config::SyncMode;

pub fn run(path: &Path) -> Result<(), CliError> {
    let c = load_config(path)?;
    println!("{}: OK", c.origin);
    println!(
        "  line {} ({}), time zone {}",
        c.line_id, c.facility, c.timezone_name
    );
    println!("  resolver {}", c.resolver);
    println!("  data dir {}", c.data_dir.display());
    println!(
        "  namespace key {} (key_id {}), low water {}, dev grants {}",
        c.ids.namespace_key_file.display(),
        c.ids.namespace_key.key_id(),
        c.ids.low_water,
        if c.ids.allow_dev_grants {
            "ALLOWED"
        } else {
            "refused"
        }
    );
    println!(
        "  {} products, {} stations, {} printers, {} shifts, upstream {}",
        c.products.len(),
        c.stations.len(),
        c.printers.len(),
        c.shifts.len(),
        c.upstream
            .as_ref()
            .map_or("off".to_string(), |u| u.url.clone())
    );
    if let Some(up) = &c.upstream {
        // The TLS files and the token must be usable now, not at 02:00.
        crate::sync::Syncer::from_config(&c).map_err(CliError::input)?;
        crate::sync::client::Token::read(&up.token).map_err(CliError::input)?;
        let when = match up.mode {
            SyncMode::Nightly { hour, minute } => {
                format!("nightly at {hour:02}:{minute:02} {}", c.timezone_name)
            }
            SyncMode::Continuous { interval_s } => format!("every {interval_s} s"),
            SyncMode::Off => "only by `linemark sync`".to_string(),
        };
        println!(
            "  sync {when}; token readable; TLS {}{}",
            if up.ca_file.is_some() {
                "with an extra CA"
            } else {
                "with public roots"
            },
            if up.client_cert.is_some() {
                " and a client certificate"
            } else {
                ""
            }
        );
    }
    Ok(())
}
