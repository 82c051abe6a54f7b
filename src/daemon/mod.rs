//! `linemark run`: the daemon, as a library so tests run it in-process.
//!
//! Owns: the order of start-up (config already validated -> journal open
//! and recovered -> station tasks) and shutdown (stop reading new frames,
//! finish and answer in-flight requests, let the writer drain its queue and
//! release its reservation). Reads top to bottom; no global state.
//! Must not: hold rules or IO details (those are `line` and `station`).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, StationPort};
use crate::journal::{Journal, JournalError, JournalOptions};
use crate::line::Line;
use crate::printer;
use crate::station::{self, StationStats};

/// How long idempotency tokens are kept (SPEC: at least 7 days).
pub const REQ_RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);
/// How long shutdown waits for in-flight requests before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the journal could not be opened: {0}")]
    Start(String),
}

/// A running daemon.
pub struct Daemon {
    journal: Journal,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    tcp: BTreeMap<String, SocketAddr>,
    stats: BTreeMap<String, Arc<StationStats>>,
}

impl Daemon {
    /// Opens the journal and starts every station. TCP listeners are bound
    /// before this returns, so their addresses are known (port 0 works).
    pub async fn start(config: Config) -> Result<Daemon, DaemonError> {
        let config = Arc::new(config);
        let opts = JournalOptions::from_config(&config);
        let journal = tokio::task::spawn_blocking(move || Journal::open(opts))
            .await
            .map_err(|e| DaemonError::Start(e.to_string()))??;
        let recovery = journal.recovery().clone();
        if recovery.restore_detected {
            tracing::warn!(
                "the journal was restored from an older copy; IDs resume past the high-water mark"
            );
        }
        let hub = Arc::new(printer::Hub::default());
        let line = Line::new(config.clone(), journal.clone(), hub.clone());
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let started_seq = journal
            .shared()
            .last_seq
            .load(std::sync::atomic::Ordering::Acquire);
        for p in &config.printers {
            tasks.spawn(printer::run_printer(
                config.clone(),
                p.name.clone(),
                journal.clone(),
                hub.clone(),
                started_seq,
                shutdown.clone(),
            ));
        }
        let mut tcp = BTreeMap::new();
        let mut stats = BTreeMap::new();
        for st in &config.stations {
            let s = Arc::new(StationStats::default());
            stats.insert(st.name.clone(), s.clone());
            match &st.port {
                StationPort::Tcp(addr) => {
                    let listener = match station::bind_tcp(st).await {
                        Ok(l) => {
                            if let Ok(a) = l.local_addr() {
                                tcp.insert(st.name.clone(), a);
                            }
                            Some(l)
                        }
                        Err(e) => {
                            tracing::warn!(station = %st.name, %addr, error = %e, "TCP port not available yet; retrying");
                            None
                        }
                    };
                    tasks.spawn(station::run_tcp(
                        line.clone(),
                        st.clone(),
                        listener,
                        s,
                        shutdown.clone(),
                    ));
                }
                StationPort::Serial(_) => {
                    tasks.spawn(station::run_serial(
                        line.clone(),
                        st.clone(),
                        s,
                        shutdown.clone(),
                    ));
                }
            }
        }
        tasks.spawn(prune_requests(journal.clone(), shutdown.clone()));
        tracing::info!(
            line = %config.line_id,
            stations = config.stations.len(),
            ids_left = journal.shared().ids_left.load(std::sync::atomic::Ordering::Acquire),
            "linemark is running"
        );
        Ok(Daemon {
            journal,
            shutdown,
            tasks,
            tcp,
            stats,
        })
    }

    /// Where a TCP station listens.
    pub fn tcp_addr(&self, station: &str) -> Option<SocketAddr> {
        self.tcp.get(station).copied()
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn station_stats(&self, station: &str) -> Option<&Arc<StationStats>> {
        self.stats.get(station)
    }

    /// Stops reading new frames, waits for in-flight requests to be
    /// answered, then closes the journal (the writer drains its queue).
    pub async fn shutdown(self) {
        tracing::info!("stopping: finishing in-flight requests");
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some station tasks did not stop in time");
        }
        let journal = self.journal;
        let _ = tokio::task::spawn_blocking(move || drop(journal)).await;
        tracing::info!("stopped");
    }
}

/// Runs until `shutdown` resolves, then stops gracefully.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let daemon = Daemon::start(config).await?;
    shutdown.await;
    daemon.shutdown().await;
    Ok(())
}

/// Forgets idempotency tokens past their retention, now and every hour.
async fn prune_requests(journal: Journal, shutdown: CancellationToken) {
    loop {
        let cutoff = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(
                REQ_RETENTION.as_secs() as i64
            ))
            .map(crate::journal::event::format_ts);
        if let Ok(cutoff) = cutoff {
            match journal.write(move |tx| tx.prune_requests(&cutoff)).await {
                Ok(n) if n > 0 => tracing::info!(forgotten = n, "old idempotency tokens pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning idempotency tokens failed"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
