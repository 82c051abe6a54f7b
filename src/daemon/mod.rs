//! `linemark run`: the daemon, as a library so tests run it in-process.
//!
//! Owns: the order of start-up (config already validated -> journal open
//! and recovered -> station tasks) and shutdown (stop reading new frames,
//! finish and answer in-flight requests, let the writer drain its queue and
//! release its reservation). Reads top to bottom; no global state.
//! Must not: hold rules or IO details (those are `line` and `station`).

pub mod notify;

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
use crate::sync::{DaemonSync, SyncStatus, Syncer};

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
    #[error("the journal's state disagrees with its events, so linemark will not serve it: {0}. Run `linemark journal verify` for the full check, keep this file as evidence, and restore the last good backup (`linemark restore BACKUP`) or ask for help before going on")]
    Inconsistent(String),
    #[error(transparent)]
    OpcUa(#[from] crate::plc::opcua::OpcUaError),
    #[error(transparent)]
    Modbus(#[from] crate::plc::modbus::ModbusError),
}

/// Events whose units the start-up consistency check rebuilds.
const STARTUP_CHECK_EVENTS: i64 = 20_000;

/// How the daemon talks to its service manager.
pub struct Supervision {
    pub notifier: notify::Notifier,
    /// Ping the watchdog this often (half of systemd's `WatchdogSec`).
    pub watchdog: Option<Duration>,
}

impl Supervision {
    /// From systemd's environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`).
    pub fn from_env() -> Supervision {
        Supervision {
            notifier: notify::Notifier::from_env(),
            watchdog: notify::Notifier::watchdog_interval(),
        }
    }
}

/// A running daemon.
pub struct Daemon {
    notifier: Arc<notify::Notifier>,
    journal: Journal,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    tcp: BTreeMap<String, SocketAddr>,
    stats: BTreeMap<String, Arc<StationStats>>,
    web: Option<SocketAddr>,
    opcua: Option<SocketAddr>,
    modbus: Option<SocketAddr>,
}

impl Daemon {
    /// Opens the journal and starts every station. TCP listeners are bound
    /// before this returns, so their addresses are known (port 0 works).
    pub async fn start(config: Config) -> Result<Daemon, DaemonError> {
        Self::start_supervised(config, Supervision::from_env()).await
    }

    /// [`Daemon::start`] reporting to a given supervisor: `READY=1` once the
    /// journal is open and every station task runs, `STATUS=` lines, and
    /// `WATCHDOG=1` only while a probe gets through the journal writer in
    /// time and every station task is alive.
    pub async fn start_supervised(config: Config, sup: Supervision) -> Result<Daemon, DaemonError> {
        let config = Arc::new(config);
        let opts = JournalOptions::from_config(&config);
        let journal = tokio::task::spawn_blocking(move || Journal::open(opts))
            .await
            .map_err(|e| DaemonError::Start(e.to_string()))??;
        // State edited behind the events' back (a forged `passed`) must not
        // be served: check the units of the most recent events.
        let (reader, codec) = (
            journal.reader()?,
            crate::ids::IdCodec::new(&config.ids.namespace_key),
        );
        let checked = tokio::task::spawn_blocking(move || {
            crate::journal::derive::check_recent(&reader, &codec, STARTUP_CHECK_EVENTS)
        })
        .await
        .map_err(|e| DaemonError::Start(e.to_string()))?;
        match checked {
            Ok(units) => tracing::debug!(units, "recent state agrees with the events"),
            Err(crate::journal::derive::DeriveError::Journal(e)) => return Err(e.into()),
            Err(e) => return Err(DaemonError::Inconsistent(e.to_string())),
        }
        let recovery = journal.recovery().clone();
        if recovery.restore_detected {
            tracing::warn!(
                "the journal was restored from an older copy; IDs resume past the high-water mark"
            );
        }
        let hub = Arc::new(printer::Hub::default());
        let sync_status = Arc::new(SyncStatus::new(config.upstream.is_some()));
        let line = Line::new(config.clone(), journal.clone(), hub.clone())
            .with_sync_status(sync_status.clone());
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        if let Some(up) = &config.upstream {
            match start_sync(&config, up, &journal, sync_status.clone()) {
                Ok(s) => {
                    tasks.spawn(s.run(shutdown.clone()));
                }
                Err(e) => {
                    sync_status.set_broken();
                    tracing::error!(error = %e, "upstream sync cannot start; the line runs on, events wait in the journal until it is fixed");
                }
            }
        }
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
        // PLC stations have no task of their own: the gateway serves them.
        let own_tasks = config
            .stations
            .iter()
            .filter(|s| s.port != StationPort::Plc)
            .count();
        let stations_alive = Arc::new(std::sync::atomic::AtomicUsize::new(own_tasks));
        for st in &config.stations {
            let s = Arc::new(StationStats::default());
            stats.insert(st.name.clone(), s.clone());

            match &st.port {
                StationPort::Tcp(addr) => {
                    let guard = AliveGuard(stations_alive.clone());
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
                    let fut =
                        station::run_tcp(line.clone(), st.clone(), listener, s, shutdown.clone());
                    tasks.spawn(async move {
                        fut.await;
                        drop(guard);
                    });
                }
                StationPort::Serial(_) => {
                    let guard = AliveGuard(stations_alive.clone());
                    let fut = station::run_serial(line.clone(), st.clone(), s, shutdown.clone());
                    tasks.spawn(async move {
                        fut.await;
                        drop(guard);
                    });
                }
                // Served by the PLC gateway: no task of its own.
                StationPort::Plc => {}
            }
        }
        tasks.spawn(prune_requests(journal.clone(), shutdown.clone()));
        let (opcua, modbus) = match start_plc(&config, &line, &shutdown, &tasks).await {
            Ok(addrs) => addrs,
            Err(e) => {
                // Nothing has been answered yet: stop cleanly.
                shutdown.cancel();
                tasks.close();
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await;
                return Err(e);
            }
        };
        let web = match tokio::net::TcpListener::bind(config.web.listen).await {
            Ok(l) => {
                let addr = l.local_addr().ok();
                let state = crate::web::WebState {
                    config: config.clone(),
                    journal: journal.clone(),
                    line: line.clone(),
                    hub: hub.clone(),
                    stations: stats.clone(),
                    sync: sync_status.clone(),
                    actions: Default::default(),
                    readers: Default::default(),
                };
                tasks.spawn(crate::web::serve(l, state, shutdown.clone()));
                if let Some(a) = addr {
                    tracing::info!(url = %format!("http://{a}/"), "web page");
                }
                addr
            }
            Err(e) => {
                tracing::error!(listen = %config.web.listen, error = %e, "the web page cannot listen; the line runs on without it (set [web] listen)");
                None
            }
        };
        let notifier = Arc::new(sup.notifier);
        let stations = own_tasks;
        let status = StatusParts {
            journal: journal.clone(),
            hub: hub.clone(),
            sync: sync_status.clone(),
        };
        notifier.send(&format!("READY=1\n{}", status.line()));
        tasks.spawn(supervise(
            status,
            notifier.clone(),
            sup.watchdog,
            stations_alive,
            stations,
            shutdown.clone(),
        ));
        tracing::info!(
            line = %config.line_id,
            stations = config.stations.len(),
            ids_left = journal.shared().ids_left.load(std::sync::atomic::Ordering::Acquire),
            "linemark is running"
        );
        Ok(Daemon {
            notifier,
            journal,
            shutdown,
            tasks,
            tcp,
            stats,
            web,
            opcua,
            modbus,
        })
    }

    /// Where the web page listens (`None` when it could not bind).
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web
    }

    /// Where the OPC UA server listens (`None` without `[plc.opcua]`).
    pub fn opcua_addr(&self) -> Option<SocketAddr> {
        self.opcua
    }

    /// Where the Modbus server listens (`None` without `[plc.modbus]`).
    pub fn modbus_addr(&self) -> Option<SocketAddr> {
        self.modbus
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
        self.notifier.send("STOPPING=1");
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

/// The PLC gateway's servers, when configured: their addresses.
async fn start_plc(
    config: &Arc<Config>,
    line: &Line,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>), DaemonError> {
    use crate::plc::{gateway::Gateway, modbus, opcua};
    let gateway = Gateway::new(line.clone(), config.clone());
    let opcua = match &config.plc.opcua {
        Some(cfg) => Some(
            opcua::start(
                gateway.clone(),
                cfg,
                &config.data_dir,
                shutdown.clone(),
                tasks,
            )
            .await?,
        ),
        None => None,
    };
    let modbus = match &config.plc.modbus {
        Some(cfg) => Some(modbus::start(gateway, cfg, shutdown.clone(), tasks).await?),
        None => None,
    };
    Ok((opcua, modbus))
}

/// Runs until `shutdown` resolves, then stops gracefully.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    raise_fd_limit();
    let daemon = Daemon::start(config).await?;
    shutdown.await;
    daemon.shutdown().await;
    Ok(())
}

/// Raises the soft limit of open files to the hard limit, so a busy web
/// port or many printers cannot starve the journal and the stations of
/// file descriptors (systemd's default soft limit is 1,024). Nothing is
/// called when the two are already equal, as under `LimitNOFILE=` in
/// `linemark.service`.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur >= lim.rlim_max {
        tracing::debug!(
            open_files = lim.rlim_cur,
            "file limit already at its maximum"
        );
        return;
    }
    let before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        tracing::info!(
            from = before,
            to = lim.rlim_max,
            "raised the open-file limit"
        );
    } else {
        tracing::warn!(open_files = before, error = %std::io::Error::last_os_error(), "cannot raise the open-file limit; set LimitNOFILE= in the service");
    }
}

/// Decrements the count of live station tasks when one ends.
struct AliveGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What the `STATUS=` line for systemd is made of.
struct StatusParts {
    journal: Journal,
    hub: Arc<printer::Hub>,
    sync: Arc<SyncStatus>,
}

impl StatusParts {
    fn line(&self) -> String {
        format!(
            "STATUS=ids_left={} queued={} sync={}",
            self.journal
                .shared()
                .ids_left
                .load(std::sync::atomic::Ordering::Acquire),
            self.hub.total_queued(),
            self.sync.state().as_str()
        )
    }
}

fn start_sync(
    config: &Config,
    up: &crate::config::Upstream,
    journal: &Journal,
    status: Arc<SyncStatus>,
) -> Result<DaemonSync, String> {
    Ok(DaemonSync {
        syncer: Syncer::from_config(config).map_err(|e| e.to_string())?,
        mode: up.mode,
        tz: config.timezone.clone(),
        journal: journal.clone(),
        status,
        policy: config.grant_policy().map_err(|e| e.to_string())?,
        low_water: config.ids.low_water,
        block_count: up.block_count,
    })
}

/// The main health loop: a probe through the journal writer (a stuck
/// writer cannot answer it), station tasks counted; only a healthy daemon
/// pings the watchdog, so systemd restarts a stuck one.
async fn supervise(
    status: StatusParts,
    notifier: Arc<notify::Notifier>,
    watchdog: Option<Duration>,
    alive: Arc<std::sync::atomic::AtomicUsize>,
    stations: usize,
    shutdown: CancellationToken,
) {
    let every = watchdog.unwrap_or(Duration::from_secs(10));
    let mut unhealthy_logged = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        // A real write and fsync: a full or read-only disk stops the pings
        // even while no station writes.
        let probe = status.journal.probe_storage();
        let writer_ok = matches!(tokio::time::timeout(every, probe).await, Ok(Ok(())));
        let storage_ok = status.journal.shared().storage_fault().is_none();
        let stations_ok = alive.load(std::sync::atomic::Ordering::Acquire) == stations;
        if writer_ok && storage_ok && stations_ok {
            unhealthy_logged = false;
            if watchdog.is_some() {
                notifier.send(&format!("WATCHDOG=1\n{}", status.line()));
            } else {
                notifier.send(&status.line());
            }
        } else if !unhealthy_logged && !shutdown.is_cancelled() {
            unhealthy_logged = true;
            tracing::error!(
                writer_ok,
                storage_ok,
                stations_ok,
                "linemark is unhealthy: the watchdog is not pinged, so systemd will restart it"
            );
        }
    }
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
