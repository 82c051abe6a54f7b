//! The durable label queue: jobs are inserted in the transaction of the
//! FINAL_PASS (or reprint) that asks for them and marked printed only after
//! a printer took the bytes.
//!
//! Owns: the `label_jobs` table. Must not: render or talk to printers.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use super::writer::WriteTx;
use super::{Event, EventType, JournalError, NewEvent, SqlContext};

/// A queued label with what rendering needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelJob {
    pub job: i64,
    pub printer: String,
    pub unit: String,
    pub template: String,
    pub kind: String,
    pub queued_seq: i64,
    pub product: String,
    pub gtin: String,
    pub level: String,
    pub lot: Option<String>,
    pub allocated_at: String,
}

impl WriteTx<'_> {
    /// The printer of a unit's latest label job.
    pub fn last_printer(&self, unit: &str) -> Result<Option<String>, JournalError> {
        let idx = self.index_of(unit)? as i64;
        self.conn
            .query_row(
                "SELECT printer FROM label_jobs WHERE unit_idx = ?1 ORDER BY job DESC LIMIT 1",
                [idx],
                |r| r.get(0),
            )
            .optional()
            .ctx("finding a unit's printer")
    }

    /// Queues a label and journals it (`LABEL_QUEUED`, or `LABEL_REPRINTED`
    /// with the reason). Returns the job number.
    pub fn queue_label(
        &mut self,
        printer: &str,
        unit: &str,
        template: &str,
        station: Option<&str>,
        actor: &str,
        reprint_reason: Option<&str>,
    ) -> Result<(i64, Event), JournalError> {
        let idx = self.index_of(unit)? as i64;
        let job: i64 = self
            .conn
            .query_row(
                "SELECT COALESCE(MAX(job), 0) + 1 FROM label_jobs",
                [],
                |r| r.get(0),
            )
            .ctx("numbering a label job")?;
        let (kind, ev_kind) = match reprint_reason {
            Some(_) => ("reprint", EventType::LabelReprinted),
            None => ("final", EventType::LabelQueued),
        };
        let mut data = json!({"job": job, "printer": printer, "template": template});
        if let Some(r) = reprint_reason {
            data["reason"] = json!(r);
        }
        let ev = self.append(NewEvent {
            kind: ev_kind,
            station: station.map(str::to_string),
            actor: actor.to_string(),
            unit: Some(unit.to_string()),
            data,
        })?;
        self.conn
            .prepare_cached(
                "INSERT INTO label_jobs (job, printer, unit_idx, unit, template, kind, reason, queued_seq, queued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| s.execute(params![job, printer, idx, unit, template, kind, reprint_reason, ev.seq, ev.ts]))
            .ctx("queueing a label")?;
        Ok((job, ev))
    }

    /// Marks a job printed and journals `LABEL_PRINTED`. `after_restart`
    /// says the job was queued before this daemon started (it may have been
    /// sent once already when the daemon stopped).
    pub fn mark_printed(
        &mut self,
        job: &LabelJob,
        after_restart: bool,
    ) -> Result<Event, JournalError> {
        let printed: Option<Option<i64>> = self
            .conn
            .prepare_cached("SELECT printed_seq FROM label_jobs WHERE job = ?1")
            .and_then(|mut s| s.query_row([job.job], |r| r.get(0)).optional())
            .ctx("reading a label job")?;
        if printed.flatten().is_some() {
            return Err(JournalError::Corrupt(format!(
                "label job {} was already printed",
                job.job
            )));
        }
        let ev = self.append(NewEvent {
            kind: EventType::LabelPrinted,
            station: None,
            actor: format!("printer:{}", job.printer),
            unit: Some(job.unit.clone()),
            data: json!({"job": job.job, "printer": job.printer, "kind": job.kind, "after_restart": after_restart}),
        })?;
        self.conn
            .prepare_cached(
                "UPDATE label_jobs SET printed_seq = ?2, printed_at = ?3 WHERE job = ?1",
            )
            .and_then(|mut s| s.execute(params![job.job, ev.seq, ev.ts]))
            .ctx("marking a label printed")?;
        Ok(ev)
    }
}

/// The oldest job not yet printed on `printer`.
pub fn next_job(conn: &Connection, printer: &str) -> Result<Option<LabelJob>, JournalError> {
    conn.prepare_cached(
        "SELECT j.job, j.printer, j.unit, j.template, j.kind, j.queued_seq, u.product, u.gtin, u.level, u.lot, u.allocated_at
         FROM label_jobs j JOIN units u ON u.idx = j.unit_idx
         WHERE j.printer = ?1 AND j.printed_seq IS NULL ORDER BY j.job LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row([printer], |r| {
            Ok(LabelJob {
                job: r.get(0)?,
                printer: r.get(1)?,
                unit: r.get(2)?,
                template: r.get(3)?,
                kind: r.get(4)?,
                queued_seq: r.get(5)?,
                product: r.get(6)?,
                gtin: r.get(7)?,
                level: r.get(8)?,
                lot: r.get(9)?,
                allocated_at: r.get(10)?,
            })
        })
        .optional()
    })
    .ctx("reading the label queue")
}

/// Jobs waiting on `printer`.
pub fn queued(conn: &Connection, printer: &str) -> Result<u64, JournalError> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM label_jobs WHERE printer = ?1 AND printed_seq IS NULL",
    )
    .and_then(|mut s| s.query_row([printer], |r| r.get::<_, i64>(0)))
    .map(|n| n as u64)
    .ctx("counting the label queue")
}
