//! `linemark run`: the daemon until SIGTERM or SIGINT.

use std::path::Path;

use super::{load_config, CliError};
use crate::daemon;

pub fn run(config: &Path) -> Result<(), CliError> {
    let cfg = load_config(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("linemark")
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let stop = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = term.recv() => tracing::info!("SIGTERM received"),
                            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        daemon::run(cfg, stop).await.map_err(CliError::runtime)
    })
}
