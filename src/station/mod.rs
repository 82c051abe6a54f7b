//! Station IO: one task per configured station, on a serial port
//! (tokio-serial) or a TCP port, speaking the frame protocol.
//!
//! Owns: opening ports with the configured settings, reading frames,
//! writing answers, reconnecting with backoff when a port is missing or
//! disappears (logged once per outage), and counting what each station did.
//! Must not: apply rules (that is `line`) or touch the journal directly.
//! A station's garbage or stall only ever occupies its own task.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ChecksumPolicy, FlowControl, Parity, Station, StationPort};
use crate::line::Line;
use crate::protocol::{self, Decoded, ErrorCode, FrameDecoder, Response};

/// First wait before reopening a port; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Concurrent TCP connections one station may hold.
const MAX_TCP_CONNECTIONS: usize = 4;

/// What a station did, for status pages and metrics.
#[derive(Debug, Default)]
pub struct StationStats {
    pub connected: AtomicBool,
    pub frames: AtomicU64,
    pub errors: AtomicU64,
    /// Unix milliseconds of the last frame answered (0: none yet).
    pub last_frame_ms: AtomicI64,
    pub last_error: Mutex<Option<ErrorCode>>,
    /// Error answers by code, indexed like `ErrorCode::ALL`.
    pub by_code: [AtomicU64; ErrorCode::ALL.len()],
}

impl StationStats {
    fn note_answer(&self, answer: &Response) {
        // Cheap on every frame: no formatting, no allocation.
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.last_frame_ms
            .store(jiff::Timestamp::now().as_millisecond(), Ordering::Relaxed);
        if let Response::Err { code, .. } = answer {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.by_code[*code as usize].fetch_add(1, Ordering::Relaxed);
            if let Ok(mut e) = self.last_error.lock() {
                *e = Some(*code);
            }
        }
    }
}

/// Serves one connection until it closes, fails, or shutdown is asked.
/// A request being handled when shutdown comes is finished and answered.
pub async fn serve<S: AsyncRead + AsyncWrite>(
    line: &Line,
    station: &Station,
    stream: S,
    stats: &StationStats,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 4096];
    let required = station.checksum == ChecksumPolicy::Required;
    loop {
        while let Some(d) = dec.next() {
            let answer = match d {
                Decoded::TooLong => Response::err(
                    ErrorCode::TooLong,
                    format!(
                        "frame longer than {} bytes; discarded up to the next LF",
                        protocol::MAX_FRAME
                    ),
                ),
                Decoded::Frame(f) if f.iter().all(|b| *b == b' ' || *b == b'\r') => continue, // blank line
                Decoded::Frame(f) => match protocol::parse(f, required) {
                    Ok(req) => {
                        tracing::debug!(station = %station.name, verb = req.verb.as_str(), "request");
                        line.handle(station, req).await
                    }
                    Err(e) => e.to_response(),
                },
            };
            if let Response::Err { code, msg, .. } = &answer {
                tracing::debug!(station = %station.name, code = code.as_str(), %msg, "refused");
            }
            stats.note_answer(&answer);
            wr.write_all(&answer.to_bytes()).await?;
            wr.flush().await?;
        }
        let n = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = rd.read(&mut buf) => r?,
        };
        if n == 0 {
            return Ok(());
        }
        dec.push(&buf[..n]);
    }
}

fn serial_builder(station: &Station, path: &str) -> tokio_serial::SerialPortBuilder {
    tokio_serial::new(path, station.baud)
        .data_bits(match station.data_bits {
            5 => tokio_serial::DataBits::Five,
            6 => tokio_serial::DataBits::Six,
            7 => tokio_serial::DataBits::Seven,
            _ => tokio_serial::DataBits::Eight,
        })
        .parity(match station.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        })
        .stop_bits(if station.stop_bits == 2 {
            tokio_serial::StopBits::Two
        } else {
            tokio_serial::StopBits::One
        })
        .flow_control(match station.flow_control {
            FlowControl::None => tokio_serial::FlowControl::None,
            FlowControl::Software => tokio_serial::FlowControl::Software,
            FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        })
}

/// Sleeps for `d` unless shutdown comes first; `false` means stop.
async fn pause(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Tracks one outage so it is logged when it starts and when it ends, not
/// on every retry.
struct Outage {
    station: String,
    since: Option<std::time::Instant>,
    backoff: Duration,
}

impl Outage {
    fn new(station: &str) -> Self {
        Self {
            station: station.to_string(),
            since: None,
            backoff: MIN_BACKOFF,
        }
    }

    fn failed(&mut self, what: &str, error: &dyn std::fmt::Display) -> Duration {
        if self.since.is_none() {
            tracing::warn!(station = %self.station, error = %error, "{what}; retrying with backoff until it is back");
            self.since = Some(std::time::Instant::now());
        }
        let d = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        d
    }

    fn recovered(&mut self, what: &str) {
        if let Some(t) = self.since.take() {
            tracing::info!(station = %self.station, after_s = t.elapsed().as_secs_f64(), "{what}");
        }
        self.backoff = MIN_BACKOFF;
    }
}

/// A serial station: open, serve, and on any failure reopen with backoff.
pub async fn run_serial(
    line: Line,
    station: Station,
    stats: Arc<StationStats>,
    shutdown: CancellationToken,
) {
    let StationPort::Serial(path) = &station.port else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let mut outage = Outage::new(&station.name);
    while !shutdown.is_cancelled() {
        let port = match tokio_serial::SerialStream::open(&serial_builder(&station, &path)) {
            Ok(p) => p,
            Err(e) => {
                let d = outage.failed(&format!("serial port {path} cannot be opened"), &e);
                if !pause(d, &shutdown).await {
                    break;
                }
                continue;
            }
        };
        outage.recovered(&format!("serial port {path} is open"));
        stats.connected.store(true, Ordering::Release);
        let result = serve(&line, &station, port, &stats, &shutdown).await;
        stats.connected.store(false, Ordering::Release);
        if shutdown.is_cancelled() {
            break;
        }
        let why = match result {
            Ok(()) => "end of file".to_string(),
            Err(e) => e.to_string(),
        };
        let d = outage.failed(&format!("serial port {path} was lost"), &why);
        if !pause(d, &shutdown).await {
            break;
        }
    }
}

/// Binds a TCP station's listener (port 0 picks a free port).
pub async fn bind_tcp(station: &Station) -> std::io::Result<TcpListener> {
    let StationPort::Tcp(addr) = &station.port else {
        return Err(std::io::Error::other("not a TCP station"));
    };
    TcpListener::bind(addr.as_str()).await
}

/// A TCP station: linemark listens; each connection speaks for the station.
pub async fn run_tcp(
    line: Line,
    station: Station,
    listener: Option<TcpListener>,
    stats: Arc<StationStats>,
    shutdown: CancellationToken,
) {
    let mut outage = Outage::new(&station.name);
    let mut listener = listener;
    let conns = TaskTracker::new();
    let live = Arc::new(AtomicU64::new(0));
    while !shutdown.is_cancelled() {
        let l = match listener.take() {
            Some(l) => l,
            None => match bind_tcp(&station).await {
                Ok(l) => l,
                Err(e) => {
                    let d = outage.failed("TCP port cannot be opened", &e);
                    if !pause(d, &shutdown).await {
                        break;
                    }
                    continue;
                }
            },
        };
        outage.recovered("TCP port is open");
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = l.accept() => a,
            };
            let (sock, peer): (tokio::net::TcpStream, SocketAddr) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(station = %station.name, error = %e, "accepting a connection failed");
                    if !pause(MIN_BACKOFF, &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            if live.load(Ordering::Acquire) as usize >= MAX_TCP_CONNECTIONS {
                tracing::warn!(station = %station.name, %peer, "refusing a connection: {MAX_TCP_CONNECTIONS} already open");
                drop(sock);
                continue;
            }
            let _ = sock.set_nodelay(true);
            tracing::info!(station = %station.name, %peer, "station connected");
            let (line, station, stats, shutdown, live) = (
                line.clone(),
                station.clone(),
                stats.clone(),
                shutdown.clone(),
                live.clone(),
            );
            live.fetch_add(1, Ordering::AcqRel);
            stats.connected.store(true, Ordering::Release);
            conns.spawn(async move {
                let r = serve(&line, &station, sock, &stats, &shutdown).await;
                if live.fetch_sub(1, Ordering::AcqRel) == 1 {
                    stats.connected.store(false, Ordering::Release);
                }
                match r {
                    Ok(()) => tracing::info!(station = %station.name, %peer, "station disconnected"),
                    Err(e) => tracing::warn!(station = %station.name, %peer, error = %e, "station connection lost"),
                }
            });
        }
    }
    conns.close();
    conns.wait().await;
}
