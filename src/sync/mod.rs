//! Upstream sync (SPEC section 7): hands the central passport store every
//! journal event, once, in order, with its hash chain; asks the store for a
//! new block of IDs when the line runs low.
//!
//! Owns: the loop "build the batch after the acknowledged seq -> upload ->
//! check the acknowledgement -> record it", back-off on failures, the halt on
//! `409` (and on a journal restored behind the store), the daemon's schedule
//! (nightly in the line's time zone, continuous, or off), and block requests.
//! Must not: write the journal except through `Journal` (a `SYNC_HALTED`
//! event, an imported grant) and never on its own connection; it never
//! prunes anything (the journal prunes no event, synced or not).
//!
//! Files: `state` (the acknowledged seq, outside the journal), `batch`
//! (the body), `client` (HTTP + TLS + token), `backoff`, `schedule`.

pub mod backoff;
pub mod batch;
pub mod client;
pub mod schedule;
pub mod state;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::journal::Reader;
use crate::line::UpstreamState;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, SyncMode, TokenSource};
use crate::ids::{Grant, GrantPolicy};
use crate::journal::event::format_ts;
use crate::journal::{query, EventType, ImportError, Journal, JournalError, NewEvent};
use backoff::{jitter, Backoff};
use batch::{Batch, BatchBuilder};
use client::{Failure, StoreClient, Token};
pub use state::{Halt, SyncState};

/// Why a sync did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{}: {problem}", path.display())]
    State { path: PathBuf, problem: String },
    #[error("{0}")]
    Token(String),
    #[error("{0}")]
    Tls(String),
    #[error(
        "no [upstream] section in the config: add url and token_file (SPEC section 9) to sync"
    )]
    NotConfigured,
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("sync is halted since {at}: {reason}; once the cause is fixed, run `linemark sync --resume`")]
    Halted { reason: String, at: String },
    #[error("another sync is running (the daemon's or a timer's); nothing was done")]
    Busy,
    #[error("gave up after {attempts} failed attempts in a row; the next sync starts from seq {next_seq}: {last}")]
    GaveUp {
        attempts: u32,
        next_seq: i64,
        last: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error("stopped before the store had every event")]
    Cancelled,
}

/// How long `linemark sync` waits for another syncer to let go of the lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// How persistent a run is.
#[derive(Debug, Clone, Copy)]
pub enum Persistence {
    /// `linemark sync`: give up after this many failures in a row, and at
    /// once when the store refuses the token or the address.
    Attempts(u32),
    /// The daemon: retry until it works or the daemon stops.
    Forever,
}

/// What a finished run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The store had every event through this seq before the run.
    pub from: i64,
    /// ... and through this one after it.
    pub acked_through: i64,
    pub batches: u64,
    pub events: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
}

/// Live sync figures for STATUS, logs and the web page.
#[derive(Debug, Default)]
pub struct SyncStatus {
    configured: AtomicBool,
    broken: AtomicBool,
    acked_through: AtomicI64,
    halted: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl crate::line::UpstreamStatus for SyncStatus {
    fn state(&self) -> UpstreamState {
        SyncStatus::state(self)
    }
}

impl SyncStatus {
    pub fn new(configured: bool) -> Self {
        let s = SyncStatus::default();
        s.configured.store(configured, Ordering::Release);
        s
    }

    /// Off (no upstream), error (the upstream set-up failed: see the
    /// log), halted, or ok.
    pub fn state(&self) -> UpstreamState {
        if !self.configured.load(Ordering::Acquire) {
            UpstreamState::Off
        } else if self.broken.load(Ordering::Acquire) {
            UpstreamState::Error
        } else if self.halted.load(Ordering::Acquire) {
            UpstreamState::Halted
        } else {
            UpstreamState::Ok
        }
    }

    /// The upstream could not be set up (a CA file missing, say).
    pub fn set_broken(&self) {
        self.broken.store(true, Ordering::Release);
    }

    pub fn acked_through(&self) -> i64 {
        self.acked_through.load(Ordering::Acquire)
    }

    /// The halt's reason while halted.
    pub fn halt_reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    fn update(&self, st: &SyncState) {
        self.acked_through
            .store(st.acked_through, Ordering::Release);
        self.halted.store(st.halt.is_some(), Ordering::Release);
        if let Ok(mut r) = self.reason.lock() {
            *r = st.halt.as_ref().map(|h| h.reason.clone());
        }
    }
}

/// Checks the store's `acked_through` against the batch it answers:
/// `Ok(Some(n))` is progress, `Ok(None)` is nothing taken, and a number
/// outside `first_seq - 1 ..= last_seq` is an error, never trusted.
pub fn check_ack(b: &Batch, acked: i64) -> Result<Option<i64>, String> {
    if acked < b.first_seq - 1 || acked > b.last_seq {
        return Err(format!(
            "the store acknowledged through seq {acked}, outside the batch {}..={}; \
             not trusted, the batch is sent again",
            b.first_seq, b.last_seq
        ));
    }
    Ok((acked >= b.first_seq).then_some(acked))
}

/// The `SYNC_HALTED` event for a halt.
pub fn halt_event(h: &Halt) -> NewEvent {
    NewEvent {
        kind: EventType::SyncHalted,
        station: None,
        actor: "sync".into(),
        unit: None,
        data: serde_json::json!({
            "reason": h.reason,
            "first_seq": h.first_seq,
            "last_seq": h.last_seq,
        }),
    }
}

/// Journals a halt that is not journaled yet and records its seq in the
/// state file. Takes the sync lock; `Ok(None)` when there was nothing to do
/// or another syncer holds the lock (it will be done on the next call).
pub fn journal_pending_halt(
    data_dir: &std::path::Path,
    journal: &Journal,
) -> Result<Option<i64>, SyncError> {
    let Some(_lock) = state::try_lock(data_dir)? else {
        return Ok(None);
    };
    let mut st = state::load(data_dir)?;
    let Some(h) = st.halt.as_mut().filter(|h| h.journaled_seq.is_none()) else {
        return Ok(None);
    };
    let ev = halt_event(h);
    let seq = journal.write_blocking(move |tx| tx.append(ev).map(|e| e.seq))?;
    h.journaled_seq = Some(seq);
    state::save(data_dir, &st)?;
    Ok(Some(seq))
}

/// Clears a halt (`linemark sync --resume`); answers the halt it cleared.
/// When the halt came from a journal restored behind the store, the
/// acknowledged seq moves back to the last event both chains surely share
/// (the one before the restore's `RESTORE_DETECTED`), so the store, not a
/// stale local file, decides whether the chains agree after it.
pub fn resume(data_dir: &std::path::Path, db: &std::path::Path) -> Result<Option<Halt>, SyncError> {
    let _lock = state::lock_within(data_dir, LOCK_WAIT)?.ok_or(SyncError::Busy)?;
    let mut st = state::load(data_dir)?;
    let Some(h) = st.halt.take() else {
        return Ok(None);
    };
    let conn = crate::journal::open_read_only(db)?;
    let last = query::last_seq(&conn)?;
    let here = query::hash_at(&conn, st.acked_through)?;
    if st.acked_through > last
        || (here.is_some() && st.acked_hash.is_some() && here != st.acked_hash)
    {
        let end = st.acked_through.min(last);
        let restored =
            query::last_of_type_at_or_before(&conn, EventType::RestoreDetected.as_str(), end + 1)?;
        st.acked_through = restored.map_or(end, |r| (r - 1).min(end));
        st.acked_hash = query::hash_at(&conn, st.acked_through)?;
    }
    state::save(data_dir, &st)?;
    Ok(Some(h))
}

/// Reads the sync state for STATUS without taking the lock.
pub fn current_state(data_dir: &std::path::Path) -> Result<SyncState, SyncError> {
    state::load(data_dir)
}

/// One line's syncer: everything a run needs.
#[derive(Clone)]
pub struct Syncer {
    client: StoreClient,
    token: TokenSource,
    data_dir: PathBuf,
    db: PathBuf,
    line_id: String,
    retry_initial: Duration,
    retry_max: Duration,
}

impl Syncer {
    pub fn from_config(cfg: &Config) -> Result<Syncer, SyncError> {
        let up = cfg.upstream.as_ref().ok_or(SyncError::NotConfigured)?;
        Ok(Syncer {
            client: StoreClient::new(up, &cfg.line_id)?,
            token: up.token.clone(),
            data_dir: cfg.data_dir.clone(),
            db: cfg.journal_path(),
            line_id: cfg.line_id.clone(),
            retry_initial: Duration::from_millis(up.retry_initial_ms),
            retry_max: Duration::from_secs(up.retry_max_s),
        })
    }

    pub fn url(&self) -> &str {
        self.client.journal_url()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Events the store does not have yet, and the journal's last seq.
    pub fn backlog(&self) -> Result<(i64, i64), SyncError> {
        let st = state::load(&self.data_dir)?;
        let conn = crate::journal::open_read_only(&self.db)?;
        let last = query::last_seq(&conn)?;
        Ok(((last - st.acked_through).max(0), last))
    }

    /// Uploads until the store has every event the journal had when the
    /// run started (events written meanwhile go in the next run).
    /// `progress(acked_through, target)` is called after every acknowledgement.
    pub async fn run(
        &self,
        persistence: Persistence,
        lock_wait: Duration,
        progress: &(dyn Fn(i64, i64) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Report, SyncError> {
        let dir = self.data_dir.clone();
        let _lock = blocking(move || state::lock_within(&dir, lock_wait))
            .await??
            .ok_or(SyncError::Busy)?;
        let mut st = state::load(&self.data_dir)?;
        if let Some(h) = &st.halt {
            return Err(SyncError::Halted {
                reason: h.reason.clone(),
                at: h.at.clone(),
            });
        }
        let token = Token::read(&self.token)?;
        let db = self.db.clone();
        let mut conn = blocking(move || crate::journal::open_read_only(&db)).await??;
        let (c, target, fork) = {
            let acked = st.acked_through;
            let expect = st.acked_hash.clone();
            blocking(move || -> Result<_, JournalError> {
                let last = query::last_seq(&conn)?;
                let here = query::hash_at(&conn, acked)?;
                let fork = match (&here, &expect) {
                    (None, _) => Some(format!(
                        "the journal ends at seq {last} but the store acknowledged through seq {acked}"
                    )),
                    (Some(h), Some(e)) if h != e => Some(format!(
                        "the journal's event {acked} is not the one the store acknowledged"
                    )),
                    _ => None,
                };
                Ok((conn, last, fork))
            })
            .await??
        };
        conn = c;
        if let Some(why) = fork {
            let reason = format!(
                "{why}: this journal was restored from an older copy, and its new events \
                 would fork the store's chain; nothing was sent"
            );
            let first = st.acked_through + 1;
            return Err(self.halt(&mut st, reason, first, target));
        }
        let mut report = Report {
            from: st.acked_through,
            acked_through: st.acked_through,
            ..Report::default()
        };
        let mut backoff = Backoff::new(self.retry_initial, self.retry_max);
        progress(st.acked_through, target);
        // The next batch is built (read, JSON, gzip) while the current one
        // is in flight, so the two ends' CPU work overlaps.
        let mut prefetched: Option<Batch> = None;
        while st.acked_through < target {
            let after = st.acked_through;
            let batch = match prefetched.take() {
                Some(b) if b.first_seq == after + 1 => b,
                _ => {
                    let line = self.line_id.clone();
                    let (c, batch) = blocking(move || {
                        let b = read_batch(&conn, &line, after, target);
                        (conn, b)
                    })
                    .await?;
                    conn = c;
                    match batch? {
                        Some(b) => b,
                        None => break,
                    }
                }
            };
            let (line, next_after) = (self.line_id.clone(), batch.last_seq);
            let prefetch = blocking(move || {
                let b = if next_after < target {
                    read_batch(&conn, &line, next_after, target)
                } else {
                    Ok(None)
                };
                (conn, b)
            });
            // Re-send this very batch until it is acknowledged.
            loop {
                if cancel.is_cancelled() {
                    return Err(SyncError::Cancelled);
                }
                let sent = tokio::select! {
                    r = self.client.post_batch(&token, &batch) => r,
                    _ = cancel.cancelled() => return Err(SyncError::Cancelled),
                };
                let failure = match sent {
                    Ok(acked) => match check_ack(&batch, acked) {
                        Ok(Some(n)) => {
                            st.acked_through = n;
                            st.acked_hash = Some(if n == batch.last_seq {
                                batch.last_hash.clone()
                            } else {
                                let db = self.db.clone();
                                blocking(move || {
                                    crate::journal::open_read_only(&db)
                                        .and_then(|c| query::hash_at(&c, n))
                                })
                                .await??
                                .unwrap_or_default()
                            });
                            st.acked_at = Some(format_ts(jiff::Timestamp::now()));
                            let (dir, s) = (self.data_dir.clone(), st.clone());
                            blocking(move || state::save(&dir, &s)).await??;
                            report.acked_through = n;
                            report.batches += 1;
                            report.events += (n - batch.first_seq + 1) as u64;
                            backoff.reset();
                            tracing::debug!(
                                first = batch.first_seq,
                                acked = n,
                                "batch acknowledged"
                            );
                            progress(n, target);
                            break;
                        }
                        Ok(None) => Failure::Transient(format!(
                            "the store acknowledged none of seq {}..={} (acked_through {})",
                            batch.first_seq,
                            batch.last_seq,
                            batch.first_seq - 1
                        )),
                        Err(m) => Failure::Transient(m),
                    },
                    Err(f) => f,
                };
                match failure {
                    Failure::Conflict(reason) => {
                        return Err(self.halt(&mut st, reason, batch.first_seq, batch.last_seq));
                    }
                    Failure::Refused(m) if matches!(persistence, Persistence::Attempts(_)) => {
                        return Err(SyncError::Refused(m));
                    }
                    f => {
                        report.retries += 1;
                        let failures = backoff.failures() + 1;
                        if let Persistence::Attempts(max) = persistence {
                            if failures >= max {
                                return Err(SyncError::GaveUp {
                                    attempts: failures,
                                    next_seq: st.acked_through + 1,
                                    last: f.to_string(),
                                });
                            }
                        }
                        let wait = backoff.next_delay(jitter());
                        tracing::warn!(
                            first = batch.first_seq,
                            last = batch.last_seq,
                            attempt = failures,
                            retry_in_ms = wait.as_millis() as u64,
                            error = %f,
                            "sync batch failed; sending it again"
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = cancel.cancelled() => return Err(SyncError::Cancelled),
                        }
                    }
                }
            }
            let (c, next) = prefetch.await?;
            conn = c;
            prefetched = next?;
        }
        Ok(report)
    }

    /// Records a halt in the state file (journaling is the caller's: it
    /// may not hold the journal) and answers the error to return.
    fn halt(&self, st: &mut SyncState, reason: String, first_seq: i64, last_seq: i64) -> SyncError {
        let at = format_ts(jiff::Timestamp::now());
        tracing::error!(%reason, first_seq, last_seq, "sync halted; nothing more is sent until `linemark sync --resume`");
        st.halt = Some(Halt {
            reason: reason.clone(),
            first_seq,
            last_seq,
            at: at.clone(),
            journaled_seq: None,
        });
        if let Err(e) = state::save(&self.data_dir, st) {
            tracing::error!(error = %e, "the halt could not be recorded");
        }
        SyncError::Halted { reason, at }
    }

    /// Asks the store for a block and imports it through the same checks as
    /// `linemark blocks import`; a refused answer changes nothing.
    pub async fn request_block(
        &self,
        journal: &Journal,
        policy: &GrantPolicy,
        count: u64,
    ) -> Result<String, String> {
        let token = Token::read(&self.token).map_err(|e| e.to_string())?;
        let bytes = self
            .client
            .request_block(&token, count)
            .await
            .map_err(|f| f.to_string())?;
        let grant = Grant::from_json(&bytes)
            .map_err(|e| format!("the store's block answer is not a grant: {e}"))?;
        let block = grant.block_id.clone();
        let (j, p) = (journal.clone(), policy.clone());
        match blocking(move || j.import_grant_blocking(grant, &p, "upstream")).await {
            Ok(Ok(_)) => Ok(block),
            Ok(Err(ImportError::Grant(g))) => {
                Err(format!("the store's block {block} was refused: {g}"))
            }
            Ok(Err(ImportError::Journal(e))) => {
                Err(format!("the block {block} could not be imported: {e}"))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Runs `f` on a blocking thread, starting now (before the answer is
/// awaited, so work can overlap).
fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = Result<T, SyncError>> {
    let handle = tokio::task::spawn_blocking(f);
    async move {
        handle.await.map_err(|e| {
            SyncError::Journal(JournalError::Sql {
                what: "a background read",
                message: e.to_string(),
            })
        })
    }
}

/// The next batch after `after`, up to `target`.
fn read_batch(
    conn: &Reader,
    line_id: &str,
    after: i64,
    target: i64,
) -> Result<Option<Batch>, SyncError> {
    let prev = query::hash_at(conn, after)?.ok_or_else(|| JournalError::Sql {
        what: "reading the acknowledged event",
        message: format!("event {after} is missing"),
    })?;
    let mut b = BatchBuilder::new(line_id, &prev);
    query::for_each_event_after(conn, after, |ev, hash| ev.seq <= target && b.push(ev, hash))?;
    Ok(b.finish())
}

/// The daemon's side: when to sync, halts to journal, blocks to request.
pub struct DaemonSync {
    pub syncer: Syncer,
    pub mode: SyncMode,
    pub tz: jiff::tz::TimeZone,
    pub journal: Journal,
    pub status: Arc<SyncStatus>,
    pub policy: GrantPolicy,
    pub low_water: u64,
    pub block_count: u64,
}

/// How often the daemon re-reads the state file and checks IDs left.
const TICK: Duration = Duration::from_secs(2);

impl DaemonSync {
    /// Runs the schedule until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut due = match self.mode {
            SyncMode::Continuous { .. } => Some(Instant::now()),
            SyncMode::Nightly { hour, minute } => Some(self.nightly_due(hour, minute)),
            SyncMode::Off => None,
        };
        let mut block_backoff = Backoff::new(self.syncer.retry_initial, self.syncer.retry_max);
        let mut block_next = Instant::now();
        let mut halt_logged = false;
        loop {
            self.refresh(&mut halt_logged).await;
            let now = Instant::now();
            if now >= block_next {
                block_next = self.maybe_request_block(&mut block_backoff).await;
            }
            if due.is_some_and(|d| now >= d) {
                if self.status.state() != UpstreamState::Halted {
                    self.sync_once(&shutdown).await;
                    self.refresh(&mut halt_logged).await;
                }
                due = match self.mode {
                    SyncMode::Continuous { interval_s } => {
                        Some(Instant::now() + Duration::from_secs(interval_s))
                    }
                    SyncMode::Nightly { hour, minute } => Some(self.nightly_due(hour, minute)),
                    SyncMode::Off => None,
                };
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    fn nightly_due(&self, hour: u8, minute: u8) -> Instant {
        let now = jiff::Timestamp::now();
        let at = schedule::next_nightly(now, &self.tz, hour, minute);
        let wait = at.duration_since(now).unsigned_abs();
        tracing::info!(at = %at, "next nightly sync");
        Instant::now() + wait
    }

    async fn sync_once(&self, shutdown: &CancellationToken) {
        let started = Instant::now();
        match self
            .syncer
            .run(Persistence::Forever, Duration::ZERO, &|_, _| {}, shutdown)
            .await
        {
            Ok(r) if r.events > 0 => tracing::info!(
                from = r.from + 1,
                through = r.acked_through,
                events = r.events,
                batches = r.batches,
                retries = r.retries,
                ms = started.elapsed().as_millis() as u64,
                "sync done"
            ),
            Ok(_) => tracing::debug!("sync: the store has every event"),
            Err(SyncError::Busy) => {
                tracing::info!("sync skipped: another sync (linemark sync) is running")
            }
            Err(SyncError::Cancelled) => {}
            Err(SyncError::Halted { .. }) => {}
            Err(e) => tracing::warn!(error = %e, "sync failed; trying again at the next due time"),
        }
    }

    /// Re-reads the state file into STATUS and journals a pending halt.
    async fn refresh(&self, halt_logged: &mut bool) {
        let dir = self.syncer.data_dir.clone();
        let journal = self.journal.clone();
        let r = blocking(move || {
            let pending = journal_pending_halt(&dir, &journal);
            (pending, state::load(&dir))
        })
        .await;
        let Ok((pending, st)) = r else { return };
        match pending {
            Ok(Some(seq)) => tracing::error!(seq, "SYNC_HALTED journaled"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the sync halt could not be journaled yet"),
        }
        match st {
            Ok(st) => {
                match &st.halt {
                    Some(h) if !*halt_logged => {
                        *halt_logged = true;
                        tracing::error!(reason = %h.reason, since = %h.at, "sync is halted; run `linemark sync --resume` once the cause is fixed");
                    }
                    None => *halt_logged = false,
                    _ => {}
                }
                self.status.update(&st);
            }
            Err(e) => tracing::warn!(error = %e, "the sync state cannot be read"),
        }
    }

    /// Asks for a block when IDs run low; answers when to look again.
    async fn maybe_request_block(&self, backoff: &mut Backoff) -> Instant {
        let left = self.journal.shared().ids_left.load(Ordering::Acquire);
        if left >= self.low_water {
            backoff.reset();
            return Instant::now() + TICK;
        }
        match self
            .syncer
            .request_block(&self.journal, &self.policy, self.block_count)
            .await
        {
            Ok(block) => {
                backoff.reset();
                let now_left = self.journal.shared().ids_left.load(Ordering::Acquire);
                tracing::info!(block = %block, ids_left = now_left, "block received from the store and imported");
                Instant::now() + TICK
            }
            Err(e) => {
                let wait = backoff.next_delay(jitter());
                tracing::warn!(ids_left = left, error = %e, retry_in_s = wait.as_secs(), "block request failed; the allocator keeps using what it has");
                Instant::now() + wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i64, last: i64) -> Batch {
        Batch {
            first_seq: first,
            last_seq: last,
            events: (last - first + 1) as usize,
            json_len: 0,
            body: Vec::new(),
            last_hash: String::new(),
        }
    }

    #[test]
    fn an_acknowledgement_inside_the_batch_is_progress() {
        assert_eq!(check_ack(&batch(11, 20), 20), Ok(Some(20)));
        assert_eq!(check_ack(&batch(11, 20), 15), Ok(Some(15)));
        assert_eq!(check_ack(&batch(11, 20), 11), Ok(Some(11)));
    }

    #[test]
    fn an_acknowledgement_of_nothing_is_not_progress() {
        assert_eq!(check_ack(&batch(11, 20), 10), Ok(None));
    }

    #[test]
    fn an_acknowledgement_outside_the_batch_is_not_trusted() {
        for bad in [21, 9, 0, -1, 1_000_000] {
            let e = check_ack(&batch(11, 20), bad).expect_err("outside");
            assert!(e.contains("outside the batch 11..=20"), "{e}");
        }
    }

    #[test]
    fn status_word_follows_the_state() {
        let s = SyncStatus::new(false);
        assert_eq!(s.state(), UpstreamState::Off);
        let s = SyncStatus::new(true);
        assert_eq!(s.state(), UpstreamState::Ok);
        s.update(&SyncState {
            acked_through: 5,
            halt: Some(Halt {
                reason: "chain mismatch".into(),
                first_seq: 6,
                last_seq: 9,
                at: "t".into(),
                journaled_seq: None,
            }),
            ..SyncState::default()
        });
        assert_eq!(s.state(), UpstreamState::Halted);
        assert_eq!(s.acked_through(), 5);
        assert_eq!(s.halt_reason().as_deref(), Some("chain mismatch"));
    }
}
