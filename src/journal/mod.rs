//! The journal (SPEC section 5): an append-only, hash-chained SQLite file
//! and the current-state tables derived from it.
//!
//! Owns: every SQL statement in linemark, the data dir lock (one writer
//! process), recovery at open (high-water marks, restore detection), the
//! group-commit writer thread, read-only connections, and `verify`.
//! Must not: decide business rules; callers pass closures that use the
//! typed methods of [`WriteTx`].

pub mod backup;
mod checkpoint;
pub mod derive;
pub mod event;
pub mod highwater;
pub mod labels;
pub mod query;
pub mod schema;
pub mod units;
pub mod verify;
mod writer;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};
use serde_json::json;

pub use event::{Event, EventType, NewEvent};
use highwater::{HighWater, HighWaterError};
pub use writer::{AllocError, AllocRequest, Allocation, ImportError, WriteTx};
use writer::{Head, Job, WriterCtx, WriterState};

use crate::config::Config;
use crate::ids::alloc::BlockCursor;
use crate::ids::{Grant, GrantPolicy, IdCodec};

/// Why the journal could not do what was asked. Cloneable, so one commit
/// failure can answer every caller of the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("the data dir {dir} is in use by another linemark process ({holder}); stop it first (systemctl stop linemark) or use its web actions")]
    Locked { dir: PathBuf, holder: String },
    #[error("journal schema: {0}")]
    Schema(String),
    #[error("journal storage error while {what}: {message}")]
    Sql { what: &'static str, message: String },
    #[error("{0}")]
    HighWater(String),
    #[error("the journal is inconsistent: {0}")]
    Corrupt(String),
    #[error("the journal writer has stopped")]
    WriterGone,
}

impl From<HighWaterError> for JournalError {
    fn from(e: HighWaterError) -> Self {
        JournalError::HighWater(e.to_string())
    }
}

/// Adds what was being done to a SQLite error.
pub(crate) trait SqlContext<T> {
    fn ctx(self, what: &'static str) -> Result<T, JournalError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn ctx(self, what: &'static str) -> Result<T, JournalError> {
        self.map_err(|e| JournalError::Sql {
            what,
            message: e.to_string(),
        })
    }
}

/// A read-only connection to the journal, as `open_read_only` and
/// `Journal::reader` give it: what the rest of the crate passes to the
/// named queries of this module (it writes no SQL itself).
pub type Reader = Connection;

/// Figures the writer publishes for status pages and metrics.
#[derive(Debug, Default)]
pub struct Shared {
    pub last_seq: AtomicI64,
    pub ids_left: AtomicU64,
    /// Transactions committed (each one fsync of the WAL).
    pub commits: AtomicU64,
    /// Jobs answered, refused ones included.
    pub jobs: AtomicU64,
    /// How long each COMMIT (the WAL write and its fsync) took.
    pub commit_latency: Histogram,
    /// Failed durable writes (commits, the high-water file, storage probes).
    pub storage_errors: AtomicU64,
    /// Why the last durable write failed, while it is the latest news:
    /// cleared by the next committed event or passing storage probe.
    pub storage_fault: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// Records a failed durable write.
    pub fn storage_failed(&self, why: &str) {
        self.storage_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut f) = self.storage_fault.lock() {
            if f.is_none() {
                tracing::error!(reason = why, "storage is failing: stations are answered E_STORAGE, /healthz is 503 and the watchdog is not pinged until a write succeeds again");
            }
            *f = Some(why.to_string());
        }
    }

    /// Records a durable write that succeeded.
    pub fn storage_ok(&self) {
        if let Ok(mut f) = self.storage_fault.lock() {
            if f.take().is_some() {
                tracing::info!("storage works again");
            }
        }
    }

    /// Why storage is failing, if it is.
    pub fn storage_fault(&self) -> Option<String> {
        self.storage_fault.lock().ok().and_then(|f| f.clone())
    }
}

/// Upper bounds (seconds) of the commit latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A latency histogram with fixed buckets, lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Cumulative counts per bucket (the last is `+Inf`, the total), and the
    /// sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut acc = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                acc += c.load(Ordering::Relaxed);
                acc
            })
            .collect();
        (cumulative, self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9)
    }
}

/// How to open a journal for writing.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    pub db_path: PathBuf,
    pub line_id: String,
    pub codec: IdCodec,
    pub reserve_ahead: u64,
    pub low_water: u64,
}

impl JournalOptions {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            db_path: cfg.journal_path(),
            line_id: cfg.line_id.clone(),
            codec: IdCodec::new(&cfg.ids.namespace_key),
            reserve_ahead: cfg.ids.reserve_ahead,
            low_water: cfg.ids.low_water,
        }
    }

    /// The high-water file beside the database.
    pub fn highwater_path(&self) -> PathBuf {
        highwater_path(&self.db_path)
    }
}

/// `journal.db` -> `journal.db.highwater`.
pub fn highwater_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".highwater");
    PathBuf::from(s)
}

/// What recovery found at open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The database was behind the high-water file (restored from a backup).
    pub restore_detected: bool,
    /// IDs skipped because they may have been issued before a crash.
    pub skipped: u64,
}

struct Inner {
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    shared: Arc<Shared>,
    db_path: PathBuf,
    _lock: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish its queue, release its
        // reservation and exit; wait for that before the lock is let go.
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
        if let Some((stop, t)) = self.checkpointer.lock().ok().and_then(|mut c| c.take()) {
            drop(stop);
            let _ = t.join();
        }
    }
}

/// The open journal: a handle to the writer thread. Cheap to clone; the
/// writer stops when the last clone is dropped.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
    recovery: Recovery,
}

pub(crate) fn pragmas(conn: &Connection) -> Result<(), JournalError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .ctx("setting the busy time-out")?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .ctx("enabling WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx("setting synchronous=FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .ctx("enabling foreign keys")?;
    // A REPLACE then fires DELETE triggers too (defence in depth beside
    // the INSERT trigger of schema version 4).
    conn.pragma_update(None, "recursive_triggers", "ON")
        .ctx("enabling recursive triggers")?;
    Ok(())
}

/// Takes the data dir's lock file, recording who holds it.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join("linemark.lock");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?;
    if f.try_lock().is_err() {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        return Err(JournalError::Locked {
            dir: dir.to_path_buf(),
            holder: if holder.trim().is_empty() {
                "unknown pid".into()
            } else {
                holder.trim().to_string()
            },
        });
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = write!(f, "pid {}", std::process::id());
    Ok(f)
}

fn load_head(conn: &Connection) -> Result<Head, JournalError> {
    let (seq, hash): (i64, String) = conn
        .query_row(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, event::GENESIS_HASH.to_string())),
            e => Err(e),
        })
        .ctx("reading the chain head")?;
    let mut stmt = conn
        .prepare("SELECT block_id, start, count, used, reserved FROM blocks ORDER BY ordinal")
        .ctx("reading blocks")?;
    let cursors = stmt
        .query_map([], |r| {
            Ok(BlockCursor {
                block_id: r.get::<_, String>(0)?.into(),
                start: r.get::<_, i64>(1)? as u64,
                count: r.get::<_, i64>(2)? as u64,
                used: r.get::<_, i64>(3)? as u64,
                reserved: r.get::<_, i64>(4)? as u64,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("reading blocks")?;
    Ok(Head { seq, hash, cursors })
}

impl Journal {
    /// Opens (creating if needed) the journal for writing, recovers the
    /// allocator from the database and the high-water file, and starts the
    /// writer thread.
    pub fn open(opts: JournalOptions) -> Result<Journal, JournalError> {
        let dir = opts
            .db_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir).map_err(|e| JournalError::Open {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let lock = lock_data_dir(&dir)?;
        let mut conn = Connection::open(&opts.db_path).map_err(|e| JournalError::Open {
            path: opts.db_path.clone(),
            message: e.to_string(),
        })?;
        pragmas(&conn)?;
        schema::migrate(&mut conn).map_err(|e| JournalError::Schema(e.to_string()))?;

        let hw_path = opts.highwater_path();
        let hw_file = HighWater::read(&hw_path)?;
        let ctx = WriterCtx {
            line_id: opts.line_id.clone(),
            codec: opts.codec.clone(),
            reserve_ahead: opts.reserve_ahead,
            low_water: opts.low_water,
            hw_path,
            wal_path: wal_path(&opts.db_path),
        };
        let mut st = WriterState {
            head: load_head(&conn)?,
            bumps: Vec::new(),
            hw: hw_file.clone().unwrap_or_default(),
        };
        let recovery = recover(&conn, &mut st, &ctx, hw_file.as_ref())?;

        let shared = Arc::new(Shared::default());
        shared.last_seq.store(st.head.seq, Ordering::Release);
        shared
            .ids_left
            .store(crate::ids::alloc::left(&st.head.cursors), Ordering::Release);
        // The checkpointer does this work off the commit path.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .ctx("moving checkpoints off the commit path")?;
        conn.pragma_update(None, "journal_size_limit", checkpoint::WAL_LIMIT as i64)
            .ctx("limiting the WAL file's size")?;
        let checkpointer = checkpoint::spawn(&opts.db_path, shared.clone())?;
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer::run(conn, st, ctx, sh, rx))
            .map_err(|e| JournalError::Open {
                path: opts.db_path.clone(),
                message: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Journal {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                checkpointer: Mutex::new(Some(checkpointer)),
                shared,
                db_path: opts.db_path,
                _lock: lock,
            }),
            recovery,
        })
    }

    /// What recovery found when this journal was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Live figures from the writer.
    pub fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// Queues `f`; `deliver` gets its result once the transaction's fate is known.
    fn submit<T, E, F, D>(&self, f: F, deliver: D)
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
        E: From<JournalError> + Send + 'static,
        T: Send + 'static,
        D: FnOnce(Result<T, E>) + Send + 'static,
    {
        let job: Job = Box::new(move |tx| {
            let result = match tx {
                Ok(tx) => f(tx),
                Err(e) => Err(E::from(e)),
            };
            let ok = result.is_ok();
            let reply: writer::Reply = Box::new(move |outcome| {
                deliver(match (result, outcome) {
                    (Ok(_), Err(e)) => Err(E::from(e)),
                    (r, _) => r,
                })
            });
            (ok, reply)
        });
        let sent = self
            .inner
            .tx
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|s| s.send(job).is_ok()));
        if sent != Some(true) {
            tracing::error!("journal writer is not running");
        }
    }

    /// Runs `f` in the next group commit and answers after it is durable.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
        E: From<JournalError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        self.submit(f, move |r| {
            let _ = reply_tx.send(r);
        });
        reply_rx
            .await
            .unwrap_or_else(|_| Err(E::from(JournalError::WriterGone)))
    }

    /// [`Journal::write`] for plain threads (CLI, tests, benches). Safe to
    /// call anywhere, but it blocks the calling thread until the commit.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
        E: From<JournalError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply_tx, reply_rx) = std::sync::mpsc::sync_channel(1);
        self.submit(f, move |r| {
            let _ = reply_tx.send(r);
        });
        reply_rx
            .recv()
            .unwrap_or_else(|_| Err(E::from(JournalError::WriterGone)))
    }

    /// Verifies a grant against `policy` and imports it: the one path for
    /// `blocks import`, the web action and upstream block answers.
    pub fn import_grant_blocking(
        &self,
        grant: Grant,
        policy: &GrantPolicy,
        actor: &str,
    ) -> Result<Event, ImportError> {
        grant.verify(policy)?;
        let actor = actor.to_string();
        self.write_blocking(move |tx| tx.import_block(&grant, &actor))
    }

    /// A new read-only connection (readers never share the writer's).
    pub fn reader(&self) -> Result<Connection, JournalError> {
        open_read_only(&self.inner.db_path)
    }

    /// Proves the data dir takes a durable write now: on the writer's
    /// thread (so it also proves the writer answers), writes and fsyncs a
    /// small probe file beside the journal. The outcome is recorded in
    /// [`Shared::storage_fault`].
    pub async fn probe_storage(&self) -> Result<(), JournalError> {
        let path = self.inner.db_path.with_file_name(".linemark-probe");
        let r = self
            .write(move |_tx| {
                write_probe(&path).map_err(|e| JournalError::Sql {
                    what: "writing the storage probe",
                    message: e.to_string(),
                })
            })
            .await;
        match &r {
            Ok(()) => self.inner.shared.storage_ok(),
            Err(JournalError::WriterGone) => {}
            Err(e) => self.inner.shared.storage_failed(&e.to_string()),
        }
        r
    }
}

/// Opens a journal file read-only, e.g. for `verify`, `unit show` or a
/// backup while the daemon runs.
pub fn open_read_only(path: &Path) -> Result<Connection, JournalError> {
    if !path.exists() {
        return Err(JournalError::Open {
            path: path.to_path_buf(),
            message: "no journal here yet (it is created by the first command that writes, e.g. linemark blocks import)".into(),
        });
    }
    let open = |immutable: bool| -> rusqlite::Result<(Connection, i64)> {
        let conn = if immutable {
            // On read-only media SQLite cannot create the WAL index (-shm);
            // immutable=1 reads the file as it is, without locks or WAL.
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?
        } else {
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?
        };
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok((conn, version))
    };
    let open_error = |e: rusqlite::Error| JournalError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let (conn, version) = match open(false) {
        Ok(x) => x,
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
            let wal = wal_path(path);
            if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                return Err(JournalError::Open {
                    path: path.to_path_buf(),
                    message: format!("{e}; the file system is read-only and {} holds changes not yet in the journal file, which cannot be read from here: copy both files to writable storage, or take a `linemark backup` (one self-contained file) for read-only media", wal.display()),
                });
            }
            open(true).map_err(open_error)?
        }
        Err(e) => return Err(open_error(e)),
    };
    if version > schema::CURRENT_VERSION {
        return Err(JournalError::Schema(format!(
            "the journal has schema version {version}, newer than this build ({})",
            schema::CURRENT_VERSION
        )));
    }
    if version == 0 {
        return Err(JournalError::Open {
            path: path.to_path_buf(),
            message: "not a linemark journal (schema version 0)".into(),
        });
    }
    Ok(conn)
}

/// SQLite's write-ahead log beside the journal `db`.
pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut w = db.as_os_str().to_owned();
    w.push("-wal");
    PathBuf::from(w)
}

/// Writes 4 KiB and fsyncs them: the size of a small commit.
fn write_probe(path: &Path) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(&[0u8; 4096])?;
    f.sync_all()
}

/// A path as the path part of an SQLite `file:` URI (`?`, `#` and `%`
/// percent-encoded).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// Brings the allocator past every ID that may have been issued, and
/// journals `RESTORE_DETECTED` when the database is behind the high-water
/// file. Runs before the writer starts.
fn recover(
    conn: &Connection,
    st: &mut WriterState,
    ctx: &WriterCtx,
    hw_file: Option<&HighWater>,
) -> Result<Recovery, JournalError> {
    let mut rec = Recovery::default();
    let db_seq = st.head.seq;
    let mut restore_reason: Option<String> = None;
    match hw_file {
        Some(hw) if hw.seq > db_seq => {
            restore_reason = Some(format!(
                "the database ends at seq {db_seq} but the high-water file was written at seq {}: the database was restored from an older copy",
                hw.seq
            ));
        }
        None if db_seq > 0 => {
            restore_reason =
                Some("the high-water file is missing: trusting the database's marks".into());
        }
        _ => {}
    }
    let mut moved = Vec::new();
    for c in &mut st.head.cursors {
        let file_mark = hw_file
            .and_then(|h| h.blocks.get(&*c.block_id))
            .copied()
            .unwrap_or(0);
        let mark = c.reserved.max(file_mark).max(c.used).min(c.count);
        if mark != c.used {
            rec.skipped += mark - c.used;
            moved.push(json!({"block_id": &*c.block_id, "db_used": c.used, "db_mark": c.reserved, "file_mark": file_mark, "resume_at": mark}));
        }
        c.used = mark;
        c.reserved = mark;
    }
    conn.execute_batch("BEGIN IMMEDIATE")
        .ctx("starting recovery")?;
    let result = (|| -> Result<(), JournalError> {
        {
            let mut upd = conn
                .prepare("UPDATE blocks SET used = ?1, reserved = ?1 WHERE block_id = ?2")
                .ctx("recovering block marks")?;
            for c in &st.head.cursors {
                upd.execute(rusqlite::params![c.used as i64, &*c.block_id])
                    .ctx("recovering block marks")?;
            }
        }
        if let Some(reason) = &restore_reason {
            tracing::warn!(%reason, "restore detected");
            let mut tx = WriteTx::new(conn, &mut *st, ctx);
            tx.append(NewEvent {
                kind: EventType::RestoreDetected,
                station: None,
                actor: "linemark".into(),
                unit: None,
                data: json!({
                    "reason": reason,
                    "db_seq": db_seq,
                    "file_seq": hw_file.map(|h| h.seq),
                    "blocks": moved,
                }),
            })?;
            rec.restore_detected = true;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").ctx("committing recovery")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    // The file now follows the database's timeline: marks only go up here.
    for c in &st.head.cursors {
        st.hw.raise(&c.block_id, c.used);
    }
    st.hw.seq = st.head.seq;
    st.hw.hash = Some(st.head.hash.clone());
    st.hw.write(&ctx.hw_path)?;
    if rec.skipped > 0 {
        tracing::info!(
            skipped = rec.skipped,
            "allocator resumes past IDs that may have been issued before an unclean stop"
        );
    }
    Ok(rec)
}
