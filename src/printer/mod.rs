//! Printers (SPEC section 6): drivers by URL and one FIFO task per printer
//! over the durable queue in the journal.
//!
//! Owns: talking to printers (`dir://`, `zpl+tcp://`, `zpl+serial://`,
//! `cups://`), the Zebra status check before each job, holding the queue on
//! a fault, journaling faults and their end, and marking jobs printed only
//! after the printer took the bytes. Must not: decide when a label may be
//! printed (only a committed FINAL PASS or REPRINT queues one).

pub mod cups;
pub mod zebra;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gs1::{Gtin, Level};
use crate::journal::labels::{self, LabelJob};
use crate::journal::{EventType, Journal, NewEvent};
use crate::label::render::{self, Format};
use crate::label::{self, LabelData};

/// How long a Zebra printer has to answer `~HS` or accept a connection.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
const MIN_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// What STATUS reports for a printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ready,
    Paused,
    Offline,
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Paused => "paused",
            State::Offline => "offline",
            State::Error => "error",
        }
    }
}

/// Why a job did not print; the queue holds and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub state: State,
    pub reason: String,
}

impl Fault {
    fn new(state: State, reason: impl Into<String>) -> Self {
        Self {
            state,
            reason: reason.into(),
        }
    }
}

/// A printer's driver, from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    Dir(PathBuf),
    ZplTcp(String),
    ZplSerial { path: String, baud: u32 },
    Cups(cups::Queue),
}

impl Driver {
    /// Parses a printer URL; relative `dir://` paths are joined to `base`.
    pub fn from_url(url: &str, base: &Path) -> Result<Driver, String> {
        if let Some(p) = url.strip_prefix("dir://") {
            let p = Path::new(p);
            return Ok(Driver::Dir(if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }));
        }
        if let Some(a) = url.strip_prefix("zpl+tcp://") {
            let a = a.trim_end_matches('/');
            let addr = if a.contains(':') {
                a.to_string()
            } else {
                format!("{a}:9100")
            };
            return Ok(Driver::ZplTcp(addr));
        }
        if let Some(rest) = url.strip_prefix("zpl+serial://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let mut baud = 9600;
            for kv in query.split('&').filter(|s| !s.is_empty()) {
                match kv.split_once('=') {
                    Some(("baud", v)) => {
                        baud = v.parse().map_err(|_| format!("baud={v} is not a number"))?
                    }
                    _ => return Err(format!("unknown option {kv:?} (only baud=N)")),
                }
            }
            return Ok(Driver::ZplSerial {
                path: path.to_string(),
                baud,
            });
        }
        if let Some(q) = url.strip_prefix("cups://") {
            return Ok(Driver::Cups(cups::Queue::new(q.trim_end_matches('/'))));
        }
        Err(format!("{url:?}: unknown printer URL scheme"))
    }

    /// The formats this driver needs.
    fn formats(&self) -> &'static [Format] {
        match self {
            Driver::Dir(_) => &[Format::Png, Format::Pdf, Format::Zpl],
            Driver::ZplTcp(_) | Driver::ZplSerial { .. } => &[Format::Zpl],
            Driver::Cups(_) => &[Format::Pdf],
        }
    }

    /// Sends one job's rendered label.
    async fn send(
        &self,
        job: &LabelJob,
        out: &BTreeMap<&'static str, Vec<u8>>,
    ) -> Result<(), Fault> {
        match self {
            Driver::Dir(dir) => write_files(dir, job, out).map_err(|e| {
                Fault::new(
                    State::Error,
                    format!("cannot write to {}: {e}", dir.display()),
                )
            }),
            Driver::ZplTcp(addr) => {
                let s = tokio::time::timeout(STATUS_TIMEOUT, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| {
                        Fault::new(
                            State::Offline,
                            format!("no connection to {addr} within {STATUS_TIMEOUT:?}"),
                        )
                    })?
                    .map_err(|e| {
                        Fault::new(State::Offline, format!("cannot connect to {addr}: {e}"))
                    })?;
                zpl_job(s, out.get("zpl").map(Vec::as_slice).unwrap_or_default()).await
            }
            Driver::ZplSerial { path, baud } => {
                let s = tokio_serial::SerialStream::open(&tokio_serial::new(path, *baud))
                    .map_err(|e| Fault::new(State::Offline, format!("cannot open {path}: {e}")))?;
                zpl_job(s, out.get("zpl").map(Vec::as_slice).unwrap_or_default()).await
            }
            Driver::Cups(queue) => {
                queue
                    .print(job, out.get("pdf").map(Vec::as_slice).unwrap_or_default())
                    .await
            }
        }
    }
}

/// Asks `~HS` and reads the three strings.
async fn host_status<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
) -> Result<zebra::HostStatus, Fault> {
    let lost = |e: std::io::Error| Fault::new(State::Offline, format!("connection lost: {e}"));
    s.write_all(b"~HS\r\n").await.map_err(lost)?;
    s.flush().await.map_err(lost)?;
    let mut buf = Vec::with_capacity(128);
    let read = async {
        let mut chunk = [0u8; 256];
        while !zebra::complete(&buf) && buf.len() <= 4096 {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed by the printer",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    };
    match tokio::time::timeout(STATUS_TIMEOUT, read).await {
        Err(_) => Err(Fault::new(
            State::Error,
            format!("no answer to ~HS within {STATUS_TIMEOUT:?} (a Zebra printer in a fault state answers nothing)"),
        )),
        Ok(Err(e)) => Err(lost(e)),
        Ok(Ok(())) => zebra::parse(&buf).map_err(|e| Fault::new(State::Error, e)),
    }
}

/// One job on any stream (TCP, serial): `~HS` and hold on a fault; send
/// the label; then `~HS` again. The second answer can only come after the
/// printer read the label's bytes, so it proves the printer took the job
/// (a write that succeeded only proves the bytes reached our kernel).
pub async fn zpl_job<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, zpl: &[u8]) -> Result<(), Fault> {
    let status = host_status(&mut s).await?;
    if let Some(why) = status.hold_reason() {
        return Err(Fault::new(State::Paused, why));
    }
    let lost = |e: std::io::Error| {
        Fault::new(
            State::Offline,
            format!("connection lost while sending: {e}"),
        )
    };
    s.write_all(zpl).await.map_err(lost)?;
    s.flush().await.map_err(lost)?;
    host_status(&mut s)
        .await
        .map_err(|f| Fault::new(f.state, format!("connection lost mid-job: {}", f.reason)))?;
    let _ = s.shutdown().await;
    Ok(())
}

fn write_files(
    dir: &Path,
    job: &LabelJob,
    out: &BTreeMap<&'static str, Vec<u8>>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (ext, bytes) in out {
        let name = dir.join(format!("{}-{}.{ext}", job.unit, job.job));
        let tmp = dir.join(format!(".{}-{}.{ext}.tmp", job.unit, job.job));
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &name)?;
    }
    Ok(())
}

/// Live state of every printer, shared with STATUS, and a doorbell that
/// wakes a printer's task when a job is queued.
#[derive(Default)]
pub struct Hub {
    states: Mutex<BTreeMap<String, (State, u64)>>,
    bells: Mutex<BTreeMap<String, Arc<Notify>>>,
    /// Labels the printers took, since start.
    pub printed: AtomicU64,
    /// Printer faults that began, since start.
    pub faults: AtomicU64,
}

impl Hub {
    fn bell(&self, printer: &str) -> Arc<Notify> {
        let mut b = self.bells.lock().unwrap_or_else(|e| e.into_inner());
        b.entry(printer.to_string()).or_default().clone()
    }

    fn set(&self, printer: &str, state: State, queued: u64) {
        if let Ok(mut s) = self.states.lock() {
            s.insert(printer.to_string(), (state, queued));
        }
    }

    /// Labels waiting on all printers.
    pub fn total_queued(&self) -> u64 {
        self.states
            .lock()
            .map(|s| s.values().map(|(_, q)| *q).sum())
            .unwrap_or(0)
    }

    /// (state, queued) of a printer.
    pub fn get(&self, printer: &str) -> (State, u64) {
        self.states
            .lock()
            .ok()
            .and_then(|s| s.get(printer).copied())
            .unwrap_or((State::Offline, 0))
    }
}

impl crate::line::PrinterStatus for Hub {
    fn printer_state(&self, printer: &str) -> (String, u64) {
        let (s, q) = self.get(printer);
        (s.as_str().to_string(), q)
    }

    fn job_queued(&self, printer: &str) {
        self.bell(printer).notify_one();
    }
}

/// Renders a job in the formats a driver needs.
pub fn render_job(
    cfg: &Config,
    job: &LabelJob,
    formats: &[Format],
) -> Result<BTreeMap<&'static str, Vec<u8>>, String> {
    let t = cfg
        .templates
        .get(&job.template)
        .ok_or_else(|| format!("template {} is no longer configured", job.template))?;
    let level = Level::parse(&job.level).unwrap_or(Level::Item);
    let date = cfg.local_date(&job.allocated_at);
    let data = LabelData {
        resolver: cfg.resolver.clone(),
        gtin: Gtin::parse(&job.gtin).map_err(|e| e.to_string())?,
        level,
        lot: job.lot.clone(),
        unit: job.unit.clone(),
        product: job.product.clone(),
        line: cfg.line_id.clone(),
        date,
    };
    let l = label::layout(t, &data).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for f in formats {
        out.insert(
            f.extension(),
            render::render(&l, *f).map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// One printer's task: print queued jobs in order; on a fault hold the
/// queue, journal the fault once, retry with backoff, journal its end.
pub async fn run_printer(
    cfg: Arc<Config>,
    name: String,
    journal: Journal,
    hub: Arc<Hub>,
    started_seq: i64,
    shutdown: CancellationToken,
) {
    let Some(p) = cfg.printers.iter().find(|p| p.name == name).cloned() else {
        return;
    };
    let base = cfg
        .data_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let driver = match Driver::from_url(&p.url, &base) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(printer = %name, error = %e, "printer URL not usable");
            return;
        }
    };
    let reader = match journal.reader() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(printer = %name, error = %e, "cannot read the label queue");
            return;
        }
    };
    let bell = hub.bell(&name);
    let mut fault: Option<(Fault, Instant)> = None;
    let mut retry = MIN_RETRY;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let queued = labels::queued(&reader, &name).unwrap_or(0);
        let job = match labels::next_job(&reader, &name) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(printer = %name, error = %e, "reading the label queue failed");
                None
            }
        };
        let Some(job) = job else {
            let state = fault.as_ref().map_or(State::Ready, |(f, _)| f.state);
            hub.set(&name, state, queued);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = bell.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        };
        let result = match render_job(&cfg, &job, driver.formats()) {
            Ok(out) => driver.send(&job, &out).await,
            Err(e) => Err(Fault::new(
                State::Error,
                format!("cannot render job {}: {e}", job.job),
            )),
        };
        match result {
            Ok(()) => {
                let after_restart = job.queued_seq <= started_seq;
                let j = job.clone();
                if let Err(e) = journal
                    .write(move |tx| tx.mark_printed(&j, after_restart))
                    .await
                {
                    tracing::error!(printer = %name, job = job.job, error = %e, "label printed but not recorded; it will be sent again");
                }
                hub.printed.fetch_add(1, Ordering::Relaxed);
                if let Some((f, since)) = fault.take() {
                    let lasted = since.elapsed().as_secs_f64();
                    tracing::info!(printer = %name, reason = %f.reason, lasted_s = lasted, "printer fault cleared");
                    journal_fault(&journal, &name, "cleared", &f.reason, lasted, job.job).await;
                }
                retry = MIN_RETRY;
                hub.set(&name, State::Ready, queued.saturating_sub(1));
            }
            Err(f) => {
                let changed = fault.as_ref().is_none_or(|(old, _)| old.reason != f.reason);
                if changed {
                    // A new situation: look again soon.
                    retry = MIN_RETRY;
                    hub.faults.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(printer = %name, state = f.state.as_str(), reason = %f.reason, job = job.job, "printer fault: labels are held until it clears");
                    journal_fault(&journal, &name, f.state.as_str(), &f.reason, 0.0, job.job).await;
                    let since = fault.as_ref().map_or_else(Instant::now, |(_, s)| *s);
                    fault = Some((f.clone(), since));
                }
                hub.set(&name, f.state, queued);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

async fn journal_fault(
    journal: &Journal,
    printer: &str,
    state: &str,
    reason: &str,
    lasted_s: f64,
    job: i64,
) {
    let (printer_s, state, reason) = (printer.to_string(), state.to_string(), reason.to_string());
    let r = journal
        .write(move |tx| {
            tx.append(NewEvent {
                kind: EventType::PrinterFault,
                station: None,
                actor: format!("printer:{printer_s}"),
                unit: None,
                data: json!({"printer": printer_s, "state": state, "reason": reason, "lasted_s": (lasted_s * 10.0).round() / 10.0, "job": job}),
            })
        })
        .await;
    if let Err(e) = r {
        tracing::error!(printer, error = %e, "cannot journal a printer fault");
    }
}
