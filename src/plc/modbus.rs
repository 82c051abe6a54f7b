//! The Modbus TCP server inside `linemark run` (SPEC section 12): one
//! mailbox of holding registers per `port = "plc"` station with a
//! `modbus_slot`, any unit id. Each mailbox has its own task, so slots
//! never wait for each other; a request runs through the gateway once per
//! new sequence number and its answer is written before `B+200`.
//!
//! Owns: the listening socket, Modbus function codes to mailbox reads and
//! writes, and the mailboxes' tasks. Must not: decide when a request runs
//! or how registers are packed (that is `mailbox`), or anything about a
//! verb.

use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_modbus::server::tcp::Server;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Modbus, Station};
use crate::plc::gateway::Gateway;
use crate::plc::mailbox::{self, Job, Mailbox};

/// Why the Modbus server did not start.
#[derive(Debug, thiserror::Error)]
#[error("[plc.modbus] listen {addr}: {source} (is another program using the port? change listen)")]
pub struct ModbusError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// One station's mailbox.
struct Slot {
    station: Station,
    state: Mutex<Mailbox>,
    jobs: mpsc::UnboundedSender<Job>,
}

/// Every mailbox, by slot number.
#[derive(Clone)]
struct Mailboxes {
    numbers: Arc<Vec<u16>>,
    slots: Arc<Vec<Arc<Slot>>>,
}

impl Mailboxes {
    fn at(&self, addr: u16, count: u16, write: bool) -> Result<(&Slot, u16), ExceptionCode> {
        let place = mailbox::locate(&self.numbers, addr, count, write).map_err(|e| {
            tracing::debug!(error = %e, "Modbus access refused");
            ExceptionCode::IllegalDataAddress
        })?;
        let slot = self
            .slots
            .get(place.mailbox)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        Ok((slot, place.offset))
    }

    fn read(&self, addr: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        let (slot, offset) = self.at(addr, count, false)?;
        let state = slot
            .state
            .lock()
            .map_err(|_| ExceptionCode::ServerDeviceFailure)?;
        Ok(state.read(offset, count))
    }

    fn write(&self, addr: u16, values: &[u16]) -> Result<(), ExceptionCode> {
        let count = u16::try_from(values.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
        let (slot, offset) = self.at(addr, count, true)?;
        let job = slot
            .state
            .lock()
            .map_err(|_| ExceptionCode::ServerDeviceFailure)?
            .write(offset, values);
        if let Some(job) = job {
            slot.jobs
                .send(job)
                .map_err(|_| ExceptionCode::ServerDeviceBusy)?;
        }
        Ok(())
    }

    fn answer(&self, req: Request<'_>) -> Result<Response, ExceptionCode> {
        match req {
            Request::ReadHoldingRegisters(addr, n) => {
                self.read(addr, n).map(Response::ReadHoldingRegisters)
            }
            Request::WriteSingleRegister(addr, v) => {
                self.write(addr, &[v])?;
                Ok(Response::WriteSingleRegister(addr, v))
            }
            Request::WriteMultipleRegisters(addr, values) => {
                self.write(addr, &values)?;
                let n = u16::try_from(values.len()).unwrap_or(u16::MAX);
                Ok(Response::WriteMultipleRegisters(addr, n))
            }
            Request::ReadWriteMultipleRegisters(raddr, n, waddr, values) => {
                self.write(waddr, &values)?;
                self.read(raddr, n)
                    .map(Response::ReadWriteMultipleRegisters)
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }
}

impl tokio_modbus::server::Service for Mailboxes {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        ready(self.answer(req.request))
    }
}

/// Starts the server and one task per mailbox; they run on `tasks` until
/// `shutdown`. Returns the address it listens on.
pub async fn start(
    gateway: Gateway,
    cfg: &Modbus,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<SocketAddr, ModbusError> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ModbusError {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ModbusError {
        addr: cfg.listen,
        source,
    })?;
    let mut numbers = Vec::new();
    let mut slots = Vec::new();
    for st in &gateway.config().stations {
        let Some(n) = st.modbus_slot else { continue };
        let (tx, rx) = mpsc::unbounded_channel();
        let slot = Arc::new(Slot {
            station: st.clone(),
            state: Mutex::new(Mailbox::default()),
            jobs: tx,
        });
        tasks.spawn(run_slot(
            gateway.clone(),
            slot.clone(),
            rx,
            shutdown.clone(),
        ));
        numbers.push(n);
        slots.push(slot);
    }
    let boxes = Mailboxes {
        numbers: Arc::new(numbers),
        slots: Arc::new(slots),
    };
    tracing::info!(%addr, mailboxes = boxes.slots.len(), "Modbus TCP server");
    let server = Server::new(listener);
    tasks.spawn(async move {
        let on_connected = |stream, peer: SocketAddr| {
            tracing::debug!(%peer, "Modbus client connected");
            ready(Ok(Some((boxes.clone(), stream))))
        };
        let on_error = |e: std::io::Error| tracing::debug!(error = %e, "Modbus connection ended");
        if let Err(e) = server
            .serve_until(&on_connected, on_error, shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "the Modbus server stopped");
        }
    });
    Ok(addr)
}

/// Runs a mailbox's requests one after the other; a request already
/// running finishes (and is answered) before shutdown.
async fn run_slot(
    gateway: Gateway,
    slot: Arc<Slot>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    shutdown: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            j = jobs.recv() => j,
            _ = shutdown.cancelled() => None,
        };
        let Some(job) = job else { break };
        let response = gateway.handle(&slot.station, mailbox::request(&job)).await;
        match slot.state.lock() {
            Ok(mut state) => state.answer(job.seq, &response),
            Err(_) => tracing::error!(station = %slot.station.name, "a Modbus mailbox is poisoned"),
        }
    }
}
