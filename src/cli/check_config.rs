//! `linemark check-config`: validate and summarise.

use std::path::Path;

use super::{load_config, CliError};

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
    Ok(())
}
