//! The single writer: one thread owns the write connection and
//! group-commits.
//!
//! Owns: the transaction boundary, the chain head, the allocator cursors and
//! the high-water file. Jobs queue on a channel; the thread takes every job
//! that is waiting, runs each in its own savepoint (a refused job rolls back
//! alone), makes the high-water file durable if any mark moved, commits once
//! (one fsync for the whole batch), and only then answers every caller.
//! Must not: apply business rules (jobs come from `line` and the CLI through
//! the methods of [`WriteTx`]).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::event::{canonical_json, format_ts, Event, EventType, HashInput, NewEvent};
use super::highwater::HighWater;
use super::{JournalError, Shared, SqlContext};
use crate::ids::alloc::{self, BlockCursor};
use crate::ids::{Grant, GrantError, HeldRange, IdCodec};

/// Most jobs in one transaction; a longer queue is served by the next one.
const MAX_BATCH: usize = 1024;

/// What a job hands back to the writer: did it succeed (keep its savepoint),
/// and how to answer its caller once the transaction's fate is known.
pub(crate) type Reply = Box<dyn FnOnce(Result<(), JournalError>) + Send>;
/// A job gets the open transaction, or the error that kept it from opening.
pub(crate) type Job =
    Box<dyn FnOnce(Result<&mut WriteTx<'_>, JournalError>) -> (bool, Reply) + Send>;

/// Fixed facts the writer needs.
pub(crate) struct WriterCtx {
    pub line_id: String,
    pub codec: IdCodec,
    pub reserve_ahead: u64,
    pub low_water: u64,
    pub hw_path: std::path::PathBuf,
    /// The WAL file, watched so it stays bounded.
    pub wal_path: std::path::PathBuf,
}

/// State that jobs change and a rollback must restore.
#[derive(Clone)]
pub(crate) struct Head {
    pub seq: i64,
    pub hash: String,
    pub cursors: Vec<BlockCursor>,
}

pub(crate) struct WriterState {
    pub head: Head,
    /// Marks moved in this transaction: (block_id, new mark).
    pub bumps: Vec<(Arc<str>, u64)>,
    pub hw: HighWater,
}

/// The request of one allocation.
#[derive(Debug, Clone)]
pub struct AllocRequest<'a> {
    pub product: &'a str,
    pub gtin: &'a str,
    pub level: &'a str,
    pub lot: Option<&'a str>,
    pub station: Option<&'a str>,
    pub actor: &'a str,
}

/// One allocated unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub unit: String,
    pub seq: i64,
    pub ids_left: u64,
}

/// Why an allocation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error(
        "E_NO_IDS: every held block is used up; import a new block grant (linemark blocks import)"
    )]
    NoIds,
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Why a block import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The open transaction a job works in. Only journal code writes SQL.
pub struct WriteTx<'c> {
    pub(crate) conn: &'c Connection,
    pub(crate) st: &'c mut WriterState,
    pub(crate) ctx: &'c WriterCtx,
    scratch: String,
    clock: Option<jiff::Timestamp>,
}

impl<'c> WriteTx<'c> {
    pub(crate) fn new(conn: &'c Connection, st: &'c mut WriterState, ctx: &'c WriterCtx) -> Self {
        Self {
            conn,
            st,
            ctx,
            scratch: String::new(),
            clock: None,
        }
    }

    /// Events appended later in this job carry `ts` instead of the current
    /// time. For building synthetic journals (benchmarks, report tests);
    /// the daemon never calls it. Lasts until the job ends.
    pub fn set_time(&mut self, ts: jiff::Timestamp) {
        self.clock = Some(ts);
    }

    /// The line this journal belongs to.
    pub fn line_id(&self) -> &str {
        &self.ctx.line_id
    }

    /// The last seq in this transaction so far.
    pub fn seq(&self) -> i64 {
        self.st.head.seq
    }

    /// IDs left across all held blocks.
    pub fn ids_left(&self) -> u64 {
        alloc::left(&self.st.head.cursors)
    }

    /// Blocks held, for overlap checks.
    pub fn held_ranges(&self) -> Vec<HeldRange> {
        self.st
            .head
            .cursors
            .iter()
            .map(|c| HeldRange {
                block_id: c.block_id.to_string(),
                start: c.start,
                count: c.count,
            })
            .collect()
    }

    /// The index behind a unit ID; an event may only name a well-formed ID.
    pub fn index_of(&self, unit: &str) -> Result<u64, JournalError> {
        let id =
            crate::ids::UnitId::parse(unit).map_err(|e| JournalError::Corrupt(e.to_string()))?;
        Ok(self.ctx.codec.index_of(id))
    }

    /// Appends an event to the chain.
    pub fn append(&mut self, ev: NewEvent) -> Result<Event, JournalError> {
        let seq = self.st.head.seq + 1;
        let event_id = uuid::Uuid::now_v7().to_string();
        let ts = format_ts(self.clock.unwrap_or_else(jiff::Timestamp::now));
        let mut data = String::new();
        canonical_json(&ev.data, &mut data);
        let kind = ev.kind.as_str();
        let unit_idx = match ev.unit.as_deref() {
            Some(u) => Some(self.index_of(u)? as i64),
            None => None,
        };
        let hash = HashInput {
            seq,
            event_id: &event_id,
            ts: &ts,
            line_id: &self.ctx.line_id,
            station: ev.station.as_deref(),
            actor: &ev.actor,
            kind,
            unit: ev.unit.as_deref(),
            data: &data,
        }
        .hash(&self.st.head.hash, &mut self.scratch);
        self.conn
            .prepare_cached(
                "INSERT INTO events (seq, event_id, ts, line_id, station, actor, type, unit, data, hash, unit_idx)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    seq,
                    event_id,
                    ts,
                    self.ctx.line_id,
                    ev.station,
                    ev.actor,
                    kind,
                    ev.unit,
                    data,
                    hash,
                    unit_idx
                ])
            })
            .ctx("appending an event")?;
        self.st.head.seq = seq;
        self.st.head.hash.clone_from(&hash);
        Ok(Event {
            seq,
            event_id,
            ts,
            line_id: self.ctx.line_id.clone(),
            station: ev.station,
            actor: ev.actor,
            kind: kind.to_string(),
            unit: ev.unit,
            data,
            hash,
        })
    }

    /// Takes the next ID from the held blocks, journals `ALLOCATED` and
    /// creates the unit's state row.
    pub fn allocate(&mut self, req: &AllocRequest<'_>) -> Result<Allocation, AllocError> {
        let take = alloc::take(&mut self.st.head.cursors, self.ctx.reserve_ahead)
            .ok_or(AllocError::NoIds)?;
        let cursor = &self.st.head.cursors[take.block];
        let block_id = cursor.block_id.clone();
        let (used, reserved) = (cursor.used, cursor.reserved);
        if let Some(mark) = take.new_mark {
            self.st.bumps.push((block_id.clone(), mark));
        }
        self.conn
            .prepare_cached("UPDATE blocks SET used = ?1, reserved = ?2 WHERE block_id = ?3")
            .and_then(|mut s| s.execute(params![used as i64, reserved as i64, &*block_id]))
            .ctx("advancing the allocator")?;
        let unit = self.ctx.codec.id_of(take.index).to_string();
        let mut data = json!({"product": req.product, "gtin": req.gtin, "level": req.level});
        if let Some(lot) = req.lot {
            data["lot"] = Value::from(lot);
        }
        let ev = self.append(NewEvent {
            kind: EventType::Allocated,
            station: req.station.map(str::to_string),
            actor: req.actor.to_string(),
            unit: Some(unit.clone()),
            data,
        })?;
        self.conn
            .prepare_cached(
                "INSERT INTO units (unit, idx, block_id, product, gtin, level, lot, station, allocated_seq, allocated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    unit,
                    take.index as i64,
                    &*block_id,
                    req.product,
                    req.gtin,
                    req.level,
                    req.lot,
                    req.station,
                    ev.seq,
                    ev.ts
                ])
            })
            .ctx("creating the unit")?;
        Ok(Allocation {
            unit,
            seq: ev.seq,
            ids_left: self.ids_left(),
        })
    }

    /// Imports a grant that already passed [`Grant::verify`]: refuses one
    /// imported before or overlapping a held block, then journals
    /// `BLOCK_IMPORTED`. A block the high-water file already knows (imported
    /// before a restore) starts past its mark.
    pub fn import_block(&mut self, grant: &Grant, actor: &str) -> Result<Event, ImportError> {
        let before: Option<i64> = self
            .conn
            .prepare_cached("SELECT imported_seq FROM blocks WHERE block_id = ?1")
            .and_then(|mut s| s.query_row([&grant.block_id], |r| r.get(0)).optional())
            .ctx("looking up the block")?;
        if let Some(seq) = before {
            return Err(GrantError::AlreadyImported {
                block_id: grant.block_id.clone(),
                seq,
            }
            .into());
        }
        grant.check_overlap(&self.held_ranges())?;
        let mark = self
            .st
            .hw
            .blocks
            .get(&grant.block_id)
            .copied()
            .unwrap_or(0)
            .min(grant.count);
        let data = json!({
            "block_id": grant.block_id, "namespace": grant.namespace, "key_id": grant.key_id,
            "start": grant.start, "count": grant.count, "issued_at": grant.issued_at,
            "issuer": grant.issuer, "signature": grant.signature,
            "skipped": mark,
        });
        let ev = self.append(NewEvent {
            kind: EventType::BlockImported,
            station: None,
            actor: actor.to_string(),
            unit: None,
            data,
        })?;
        let grant_json =
            serde_json::to_string(grant).map_err(|e| JournalError::Corrupt(e.to_string()))?;
        let ordinal = self.st.head.cursors.len() as i64;
        self.conn
            .execute(
                "INSERT INTO blocks (block_id, ordinal, start, count, namespace, key_id, issuer, issued_at,
                                     imported_seq, used, reserved, grant_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
                params![
                    grant.block_id,
                    ordinal,
                    grant.start as i64,
                    grant.count as i64,
                    grant.namespace,
                    grant.key_id,
                    grant.issuer,
                    grant.issued_at,
                    ev.seq,
                    mark as i64,
                    grant_json
                ],
            )
            .ctx("storing the block")?;
        self.st.head.cursors.push(BlockCursor {
            block_id: grant.block_id.as_str().into(),
            start: grant.start,
            count: grant.count,
            used: mark,
            reserved: mark,
        });
        Ok(ev)
    }
}

/// Runs a parameterless statement through the statement cache.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

/// Runs one batch: savepoint per job, high-water file, one commit, replies.
/// `Ok` while the batch's transaction is still open.
fn in_transaction(conn: &Connection) -> Result<(), JournalError> {
    if conn.is_autocommit() {
        return Err(JournalError::Sql {
            what: "checking the open transaction",
            message: "SQLite rolled the whole transaction back (disk full or I/O error?)".into(),
        });
    }
    Ok(())
}

fn run_batch(
    conn: &Connection,
    st: &mut WriterState,
    ctx: &WriterCtx,
    shared: &Shared,
    batch: Vec<Job>,
) {
    let committed = st.head.clone();
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    let begin = conn
        .execute_batch("BEGIN IMMEDIATE")
        .ctx("starting a transaction");
    if let Err(e) = begin {
        tracing::error!(error = %e, "journal transaction could not start");
        for job in batch {
            // Never run a job outside a transaction: answer it with the error.
            let (_, reply) = job(Err(e.clone()));
            reply(Err(e.clone()));
        }
        return;
    }
    let mut scratch = String::new();
    // Set when the transaction can no longer be trusted (a savepoint
    // statement failed, or SQLite rolled the whole transaction back on its
    // own after a full disk or an I/O error). From then on no job runs: a
    // SAVEPOINT outside a transaction would start a new one that RELEASE
    // commits, while its caller is told E_STORAGE.
    let mut broken: Option<JournalError> = None;
    for job in batch {
        if let Some(e) = &broken {
            let (_, reply) = job(Err(e.clone()));
            replies.push(reply);
            continue;
        }
        let snapshot = (st.head.clone(), st.bumps.len());
        if let Err(e) = in_transaction(conn).and_then(|()| {
            conn.execute_batch("SAVEPOINT job")
                .ctx("opening a savepoint")
        }) {
            let (_, reply) = job(Err(e.clone()));
            replies.push(reply);
            broken = Some(e);
            continue;
        }
        let mut tx = WriteTx {
            conn,
            st,
            ctx,
            scratch: std::mem::take(&mut scratch),
            clock: None,
        };
        let (ok, reply) = job(Ok(&mut tx));
        scratch = tx.scratch;
        replies.push(reply);
        let end = in_transaction(conn).and_then(|()| {
            if ok {
                exec_cached(conn, "RELEASE job").ctx("releasing a savepoint")
            } else {
                exec_cached(conn, "ROLLBACK TO job")
                    .and_then(|_| exec_cached(conn, "RELEASE job"))
                    .ctx("rolling back a refused job")
            }
            .map(|_| ())
        });
        if !ok {
            st.head = snapshot.0;
            st.bumps.truncate(snapshot.1);
        }
        if let Err(e) = end {
            broken = Some(e);
        }
    }
    let mut outcome: Result<(), JournalError> = match broken {
        Some(e) => {
            tracing::error!(error = %e, jobs = replies.len(), "journal transaction failed; every job in it is answered with the error and nothing of it is kept");
            st.bumps.clear();
            Err(e)
        }
        None => Ok(()),
    };
    if outcome.is_ok() && !st.bumps.is_empty() {
        for (b, m) in st.bumps.drain(..) {
            st.hw.raise(&b, m);
        }
        st.hw.seq = committed.seq;
        st.hw.hash = Some(committed.hash.clone());
        outcome = st.hw.write(&ctx.hw_path).map_err(JournalError::from);
    }
    if outcome.is_ok() {
        let t = std::time::Instant::now();
        outcome = conn.execute_batch("COMMIT").ctx("committing");
        shared.commit_latency.observe(t.elapsed());
    }
    if let Err(e) = &outcome {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        shared.storage_failed(&e.to_string());
        st.head = committed;
    } else {
        if st.head.seq > committed.seq {
            shared.storage_ok();
        }
        shared.last_seq.store(st.head.seq, Ordering::Release);
        shared.commits.fetch_add(1, Ordering::Relaxed);
        let left = alloc::left(&st.head.cursors);
        let before = shared.ids_left.swap(left, Ordering::AcqRel);
        warn_low_water(before, left, ctx.low_water);
    }
    shared
        .jobs
        .fetch_add(replies.len() as u64, Ordering::Relaxed);
    for reply in replies {
        reply(outcome.clone());
    }
}

/// Logs when IDs left fall under the low-water mark, and again at every
/// further tenth of it, so the warning is seen without flooding the log.
fn warn_low_water(before: u64, left: u64, low_water: u64) {
    if low_water == 0 || left >= low_water || left == before {
        return;
    }
    let step = (low_water / 10).max(1);
    if before >= low_water || before / step != left / step || left == 0 {
        tracing::warn!(
            ids_left = left,
            low_water,
            "IDs are running low: import a new block grant"
        );
    }
}

/// The writer thread's loop: block for the first job, then take every job
/// already waiting into the same transaction.
pub(crate) fn run(
    conn: Connection,
    mut st: WriterState,
    ctx: WriterCtx,
    shared: Arc<Shared>,
    rx: Receiver<Job>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        run_batch(&conn, &mut st, &ctx, &shared, batch);
        bound_wal(&conn, &ctx);
    }
    if let Err(e) = release_reservations(&conn, &mut st, &ctx) {
        tracing::warn!(error = %e, "could not release the ID reservation at shutdown; the reserved IDs will be skipped");
    }
}

/// Under continuous load a checkpoint from another connection starves (the
/// writer always holds or wants the lock), and the WAL grows without end.
/// Here, between batches and after their answers went out, the writer
/// copies the WAL into the database and truncates it once it passes
/// [`super::checkpoint::WAL_LIMIT`]: one pause of a few tens of
/// milliseconds per that many bytes written.
fn bound_wal(conn: &Connection, ctx: &WriterCtx) {
    let size = std::fs::metadata(&ctx.wal_path).map_or(0, |m| m.len());
    if size <= super::checkpoint::WAL_LIMIT {
        return;
    }
    let t = std::time::Instant::now();
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(0) => tracing::debug!(
            wal_bytes = size,
            ms = t.elapsed().as_millis() as u64,
            "WAL checkpointed and truncated"
        ),
        Ok(_) => tracing::debug!(
            wal_bytes = size,
            "WAL checkpoint could not finish (a reader is busy); next batch retries"
        ),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; next batch retries"),
    }
}

/// On a clean stop, nothing past `used` was handed out: lower the marks so a
/// restart skips nothing. (A database restored from an older backup still
/// starts past the file, which now says exactly what was issued.)
fn release_reservations(
    conn: &Connection,
    st: &mut WriterState,
    ctx: &WriterCtx,
) -> Result<(), JournalError> {
    conn.execute_batch("BEGIN IMMEDIATE; UPDATE blocks SET reserved = used; COMMIT;")
        .ctx("releasing reservations")?;
    for c in &mut st.head.cursors {
        c.reserved = c.used;
        st.hw.blocks.insert(c.block_id.to_string(), c.used);
    }
    st.hw.seq = st.head.seq;
    st.hw.hash = Some(st.head.hash.clone());
    st.hw.write(&ctx.hw_path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Journal, JournalOptions};

    fn journal(dir: &std::path::Path) -> Journal {
        let key = crate::ids::NamespaceKey::from_hex(&"11".repeat(32)).unwrap();
        Journal::open(JournalOptions {
            db_path: dir.join("journal.db"),
            line_id: "P1-L03".into(),
            codec: IdCodec::new(&key),
            reserve_ahead: 10,
            low_water: 0,
        })
        .unwrap()
    }

    fn note(tx: &mut WriteTx<'_>, what: &str) -> Result<(), JournalError> {
        tx.append(NewEvent {
            kind: EventType::Scrapped,
            station: None,
            actor: "test".into(),
            unit: None,
            data: json!({ "reason": what }),
        })
        .map(|_| ())
    }

    fn events(j: &Journal) -> i64 {
        j.reader()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    type TestJob = Box<dyn FnOnce(&mut WriteTx<'_>) -> Result<(), JournalError> + Send>;

    /// Queues jobs behind one that holds the writer, so they run as one
    /// batch; answers come back in order.
    fn one_batch(j: &Journal, jobs: Vec<TestJob>) -> Vec<Result<(), JournalError>> {
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
        j.submit(
            move |_tx: &mut WriteTx<'_>| -> Result<(), JournalError> {
                let _ = held_tx.send(());
                let _ = hold_rx.recv();
                Ok(())
            },
            |_| {},
        );
        held_rx.recv().unwrap();
        let (ans_tx, ans_rx) = std::sync::mpsc::channel();
        let n = jobs.len();
        for (i, f) in jobs.into_iter().enumerate() {
            let ans_tx = ans_tx.clone();
            j.submit(f, move |r| {
                let _ = ans_tx.send((i, r));
            });
        }
        hold_tx.send(()).unwrap();
        let mut answers: Vec<_> = (0..n).map(|_| ans_rx.recv().unwrap()).collect();
        answers.sort_by_key(|(i, _)| *i);
        answers.into_iter().map(|(_, r)| r).collect()
    }

    #[test]
    fn a_transaction_sqlite_rolled_back_fails_the_whole_batch_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        j.write_blocking(|tx| note(tx, "before")).unwrap();
        let before = events(&j);
        // The second job's statement makes SQLite roll the whole transaction
        // back, as it does on SQLITE_FULL or SQLITE_IOERR; the job itself
        // reports success. Jobs after it must not run outside the
        // transaction and be committed while their callers hear an error.
        let answers = one_batch(
            &j,
            vec![
                Box::new(|tx| note(tx, "first")),
                Box::new(|tx| {
                    note(tx, "second")?;
                    tx.conn.execute_batch("ROLLBACK").ctx("injected fault")
                }),
                Box::new(|tx| note(tx, "third")),
                Box::new(|tx| note(tx, "fourth")),
            ],
        );
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
        assert_eq!(events(&j), before, "nothing of the failed batch is kept");
        // The writer goes on, on the committed chain.
        j.write_blocking(|tx| note(tx, "after")).unwrap();
        assert_eq!(events(&j), before + 1);
        let key = crate::ids::NamespaceKey::from_hex(&"11".repeat(32)).unwrap();
        let report =
            crate::journal::verify::verify(&j.reader().unwrap(), &IdCodec::new(&key), |_, _| {});
        assert!(report.is_ok(), "{report:?}");
    }

    #[test]
    fn a_refused_job_whose_rollback_fails_fails_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let before = events(&j);
        let answers = one_batch(
            &j,
            vec![
                Box::new(|tx| note(tx, "kept?")),
                Box::new(|tx| {
                    note(tx, "refused")?;
                    // The job is refused after SQLite already dropped the
                    // transaction: ROLLBACK TO then fails.
                    let _ = tx.conn.execute_batch("ROLLBACK");
                    Err(JournalError::Corrupt("refused".into()))
                }),
                Box::new(|tx| note(tx, "after")),
            ],
        );
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
        assert_eq!(events(&j), before);
    }
}
