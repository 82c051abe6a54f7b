//! Station IO: one task per configured station, on a serial port
//! (tokio-serial) or a TCP port, speaking the frame protocol.
//!
//! Owns: opening ports with the configured settings, reading frames,
//! writing answers, reconnecting with backoff when a port is missing or
//! disappears (logged once per outage), and counting what each station did.
//! Must not: apply rules (that is `line`) or touch the journal directly.
//! A station's garbage or stall only ever occupies its own task.
//!
//! A TCP station's connections carry keepalive and close after
//! `idle_timeout_s` of silence; at the cap of connections per station the
//! oldest idle one gives way to the new one, since a PLC that lost power
//! leaves half-open sockets behind and its newest connection is the live
//! one.

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

/// How one connection is looked after: when it last spoke, whether it is
/// in the middle of a request, and how to close it from outside.
#[derive(Debug, Default)]
pub struct Conn {
    /// Unix milliseconds of the last byte read (or of the connect).
    last_ms: AtomicI64,
    busy: AtomicBool,
    close: CancellationToken,
}

impl Conn {
    fn touch(&self) {
        self.last_ms
            .store(jiff::Timestamp::now().as_millisecond(), Ordering::Relaxed);
    }
}

/// Serves one connection until it closes, fails, stays silent for
/// `idle_timeout`, or shutdown (or `conn.close`) is asked. A request being
/// handled then is finished and answered.
pub async fn serve<S: AsyncRead + AsyncWrite>(
    line: &Line,
    station: &Station,
    stream: S,
    stats: &StationStats,
    shutdown: &CancellationToken,
    idle_timeout: Option<Duration>,
    conn: &Conn,
) -> std::io::Result<()> {
    conn.touch();
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
        conn.busy.store(false, Ordering::Release);
        let idle = async {
            match idle_timeout {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let n = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = conn.close.cancelled() => return Ok(()),
            _ = idle => {
                tracing::info!(station = %station.name, after_s = idle_timeout.unwrap_or_default().as_secs(), "closing a silent station connection (idle_timeout_s)");
                return Ok(());
            }
            r = rd.read(&mut buf) => r?,
        };
        if n == 0 {
            return Ok(());
        }
        conn.busy.store(true, Ordering::Release);
        conn.touch();
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
        let result = serve(
            &line,
            &station,
            port,
            &stats,
            &shutdown,
            None,
            &Conn::default(),
        )
        .await;
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

/// Keepalive probes after 30 s of silence, every 10 s, 3 unanswered ones
/// end the connection: a peer that lost power is noticed within a minute.
fn keepalive(sock: &tokio::net::TcpStream) -> std::io::Result<()> {
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    socket2::SockRef::from(sock).set_tcp_keepalive(&ka)
}

/// The open connection silent longest that is not in a request.
fn oldest_idle(open: &[Arc<Conn>]) -> Option<usize> {
    open.iter()
        .enumerate()
        .filter(|(_, c)| !c.busy.load(Ordering::Acquire))
        .min_by_key(|(_, c)| c.last_ms.load(Ordering::Relaxed))
        .map(|(i, _)| i)
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
    let live: Arc<Mutex<Vec<Arc<Conn>>>> = Arc::default();
    let idle_timeout =
        (station.idle_timeout_s > 0).then(|| Duration::from_secs(station.idle_timeout_s));
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
            if let Err(e) = keepalive(&sock) {
                tracing::warn!(station = %station.name, %peer, error = %e, "cannot set TCP keepalive");
            }
            let conn = Arc::new(Conn::default());
            {
                let Ok(mut open) = live.lock() else { break };
                if open.len() >= MAX_TCP_CONNECTIONS {
                    // The newest connection is the live one: the one silent
                    // longest (a PLC that lost power) gives way.
                    match oldest_idle(&open) {
                        Some(i) => {
                            let old = open.remove(i);
                            old.close.cancel();
                            tracing::warn!(station = %station.name, %peer, "{MAX_TCP_CONNECTIONS} connections open: closing the one silent longest for the new one");
                        }
                        None => {
                            tracing::warn!(station = %station.name, %peer, "refusing a connection: {MAX_TCP_CONNECTIONS} already open, all in a request");
                            drop(sock);
                            continue;
                        }
                    }
                }
                open.push(conn.clone());
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
            stats.connected.store(true, Ordering::Release);
            conns.spawn(async move {
                let r = serve(&line, &station, sock, &stats, &shutdown, idle_timeout, &conn).await;
                if let Ok(mut open) = live.lock() {
                    open.retain(|c| !Arc::ptr_eq(c, &conn));
                    if open.is_empty() {
                        stats.connected.store(false, Ordering::Release);
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn station_sockets_get_keepalive_probes() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = l.accept().await.unwrap();
        assert!(!socket2::SockRef::from(&server).keepalive().unwrap());
        keepalive(&server).unwrap();
        let s = socket2::SockRef::from(&server);
        assert!(s.keepalive().unwrap());
        assert_eq!(s.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
        assert_eq!(s.tcp_keepalive_interval().unwrap(), Duration::from_secs(10));
        assert_eq!(s.tcp_keepalive_retries().unwrap(), 3);
        drop(client);
    }

    #[test]
    fn the_oldest_idle_connection_is_chosen_never_a_busy_one() {
        let conns: Vec<Arc<Conn>> = (0..4).map(|_| Arc::new(Conn::default())).collect();
        for (c, ms) in conns.iter().zip([300, 100, 200, 400]) {
            c.last_ms.store(ms, Ordering::Relaxed);
        }
        assert_eq!(oldest_idle(&conns), Some(1));
        conns[1].busy.store(true, Ordering::Relaxed);
        assert_eq!(oldest_idle(&conns), Some(2));
        for c in &conns {
            c.busy.store(true, Ordering::Relaxed);
        }
        assert_eq!(oldest_idle(&conns), None);
    }
}
