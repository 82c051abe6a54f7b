//! Unit state inside a write transaction: the SQL behind the line rules.
//!
//! Owns: reading and updating the current-state tables (units, bindings,
//! component lots, children, test results) and the idempotency table, always
//! in the caller's transaction so state and events commit together.
//! Must not: decide whether a change is allowed; `line` does that.

use rusqlite::{params, OptionalExtension};

use super::writer::WriteTx;
use super::{JournalError, SqlContext};

/// Where a unit stands, as the `units.state` column keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitStatus {
    Allocated,
    Passed,
    Failed,
    Scrapped,
}

impl UnitStatus {
    pub const ALL: [UnitStatus; 4] = [
        UnitStatus::Allocated,
        UnitStatus::Passed,
        UnitStatus::Failed,
        UnitStatus::Scrapped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitStatus::Allocated => "allocated",
            UnitStatus::Passed => "passed",
            UnitStatus::Failed => "failed",
            UnitStatus::Scrapped => "scrapped",
        }
    }

    pub fn parse(s: &str) -> Option<UnitStatus> {
        UnitStatus::ALL.into_iter().find(|u| u.as_str() == s)
    }
}

impl rusqlite::types::FromSql for UnitStatus {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        UnitStatus::parse(s).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown unit state {s:?}").into())
        })
    }
}

/// What the rules need to know about a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub idx: i64,
    pub unit: String,
    pub product: String,
    pub gtin: String,
    pub level: String,
    pub lot: Option<String>,
    pub state: UnitStatus,
    pub shipment: Option<String>,
}

impl WriteTx<'_> {
    /// The unit's state, or `None` when this journal never allocated it.
    pub fn unit_state(&self, unit: &str) -> Result<Option<UnitState>, JournalError> {
        let Ok(idx) = self.index_of(unit) else {
            return Ok(None);
        };
        self.conn
            .prepare_cached("SELECT idx, unit, product, gtin, level, lot, state, shipment FROM units WHERE idx = ?1")
            .and_then(|mut s| {
                s.query_row([idx as i64], |r| {
                    Ok(UnitState {
                        idx: r.get(0)?,
                        unit: r.get(1)?,
                        product: r.get(2)?,
                        gtin: r.get(3)?,
                        level: r.get(4)?,
                        lot: r.get(5)?,
                        state: r.get(6)?,
                        shipment: r.get(7)?,
                    })
                })
                .optional()
            })
            .ctx("reading a unit")
    }

    /// A bound field's value.
    pub fn binding(&self, idx: i64, field: &str) -> Result<Option<String>, JournalError> {
        self.conn
            .prepare_cached("SELECT value FROM bindings WHERE unit_idx = ?1 AND field = ?2")
            .and_then(|mut s| s.query_row(params![idx, field], |r| r.get(0)).optional())
            .ctx("reading a binding")
    }

    /// The unit a unique field value (mac, uid) is bound to.
    pub fn bound_to(&self, field: &str, value: &str) -> Result<Option<String>, JournalError> {
        self.conn
            .prepare_cached(
                "SELECT u.unit FROM bindings b JOIN units u ON u.idx = b.unit_idx WHERE b.field = ?1 AND b.value = ?2",
            )
            .and_then(|mut s| s.query_row(params![field, value], |r| r.get(0)).optional())
            .ctx("looking up a binding")
    }

    pub fn set_binding(
        &self,
        idx: i64,
        field: &str,
        value: &str,
        seq: i64,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT INTO bindings (unit_idx, field, value, seq) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![idx, field, value, seq]))
            .ctx("storing a binding")?;
        Ok(())
    }

    pub fn component_lot(&self, idx: i64, part: &str) -> Result<Option<String>, JournalError> {
        self.conn
            .prepare_cached("SELECT lot FROM component_lots WHERE unit_idx = ?1 AND part = ?2")
            .and_then(|mut s| s.query_row(params![idx, part], |r| r.get(0)).optional())
            .ctx("reading a component lot")
    }

    pub fn set_component_lot(
        &self,
        idx: i64,
        part: &str,
        lot: &str,
        seq: i64,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT INTO component_lots (unit_idx, part, lot, seq) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![idx, part, lot, seq]))
            .ctx("storing a component lot")?;
        Ok(())
    }

    /// The unit a child is currently linked to.
    pub fn parent_of(&self, child: &str) -> Result<Option<String>, JournalError> {
        self.conn
            .prepare_cached(
                "SELECT u.unit FROM children c JOIN units u ON u.idx = c.parent_idx
                 WHERE c.child = ?1 AND c.unlinked_seq IS NULL",
            )
            .and_then(|mut s| s.query_row([child], |r| r.get(0)).optional())
            .ctx("looking up a child link")
    }

    /// Whether `candidate` is `unit` or one of the units it is (through
    /// current links) contained in. Linking `candidate` under `unit` would
    /// then make a unit its own ancestor.
    pub fn is_self_or_ancestor(&self, unit: &str, candidate: &str) -> Result<bool, JournalError> {
        // UNION (not UNION ALL) ends the walk even over a loop already stored.
        self.conn
            .prepare_cached(
                "WITH RECURSIVE up(unit) AS (
                   SELECT ?1
                   UNION
                   SELECT u.unit FROM up
                     JOIN children c ON c.child = up.unit AND c.unlinked_seq IS NULL
                     JOIN units u ON u.idx = c.parent_idx)
                 SELECT 1 FROM up WHERE unit = ?2 LIMIT 1",
            )
            .and_then(|mut s| s.query_row([unit, candidate], |_| Ok(())).optional())
            .map(|found| found.is_some())
            .ctx("walking a unit's ancestors")
    }

    pub fn link_child(&self, parent_idx: i64, child: &str, seq: i64) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT INTO children (parent_idx, child, linked_seq) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![parent_idx, child, seq]))
            .ctx("linking a child")?;
        Ok(())
    }

    /// Records a RESULT or FINAL, at the seq, time and station of its event,
    /// with its measurements (a JSON object).
    pub fn add_test_result(
        &self,
        ev: &super::Event,
        idx: i64,
        step: &str,
        status: &str,
        measurements: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT INTO test_results (seq, unit_idx, step, status, station, ts, measurements)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    ev.seq,
                    idx,
                    step,
                    status,
                    ev.station,
                    ev.ts,
                    measurements
                ])
            })
            .ctx("storing a test result")?;
        Ok(())
    }

    /// The latest status of each step the unit went through.
    pub fn latest_results(&self, idx: i64) -> Result<Vec<(String, String)>, JournalError> {
        self.conn
            .prepare_cached(
                "SELECT step, status FROM test_results t
                 WHERE unit_idx = ?1 AND seq = (SELECT MAX(seq) FROM test_results WHERE unit_idx = ?1 AND step = t.step)",
            )
            .and_then(|mut s| {
                s.query_map([idx], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .ctx("reading test results")
    }

    /// Sets the unit's state after a final test.
    pub fn set_final(
        &self,
        idx: i64,
        passed: bool,
        seq: i64,
        ts: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "UPDATE units SET state = ?2, final_seq = ?3, final_at = ?4 WHERE idx = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    idx,
                    if passed {
                        UnitStatus::Passed
                    } else {
                        UnitStatus::Failed
                    }
                    .as_str(),
                    seq,
                    ts
                ])
            })
            .ctx("recording a final test")?;
        Ok(())
    }

    pub fn set_scrapped(&self, idx: i64, seq: i64, reason: &str) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("UPDATE units SET state = 'scrapped', scrapped_seq = ?2, scrap_reason = ?3 WHERE idx = ?1")
            .and_then(|mut s| s.execute(params![idx, seq, reason]))
            .ctx("recording a scrap")?;
        Ok(())
    }

    /// Records a unit as shipped (the SHIPPED event is the caller's).
    pub fn set_shipped(
        &self,
        idx: i64,
        shipment: &str,
        buyer: Option<&str>,
        ev: &super::Event,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("UPDATE units SET shipment = ?2, shipped_seq = ?3 WHERE idx = ?1")
            .and_then(|mut s| s.execute(params![idx, shipment, ev.seq]))
            .ctx("recording a shipment")?;
        self.conn
            .prepare_cached("INSERT INTO shipped (unit_idx, shipment, buyer, seq, ts) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![idx, shipment, buyer, ev.seq, ev.ts]))
            .ctx("recording a shipment")?;
        Ok(())
    }

    /// Whether `child` is currently linked to the unit `parent_idx`.
    pub fn is_child_of(&self, child: &str, parent_idx: i64) -> Result<bool, JournalError> {
        self.conn
            .prepare_cached("SELECT 1 FROM children WHERE parent_idx = ?1 AND child = ?2 AND unlinked_seq IS NULL")
            .and_then(|mut s| s.query_row(params![parent_idx, child], |_| Ok(())).optional())
            .map(|r| r.is_some())
            .ctx("looking up a child link")
    }

    /// Ends a child link (the history keeps it).
    pub fn unlink_child(&self, parent_idx: i64, child: &str, seq: i64) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("UPDATE children SET unlinked_seq = ?3 WHERE parent_idx = ?1 AND child = ?2 AND unlinked_seq IS NULL")
            .and_then(|mut s| s.execute(params![parent_idx, child, seq]))
            .ctx("unlinking a child")?;
        Ok(())
    }

    /// The answer stored for `(station, req)`: (fingerprint, answer frame).
    pub fn stored_answer(
        &self,
        station: &str,
        req: &str,
    ) -> Result<Option<(String, String)>, JournalError> {
        self.conn
            .prepare_cached(
                "SELECT fingerprint, response FROM requests WHERE station = ?1 AND req = ?2",
            )
            .and_then(|mut s| {
                s.query_row([station, req], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx("looking up a request")
    }

    /// Stores the answer to `(station, req)` in this transaction.
    pub fn store_answer(
        &self,
        station: &str,
        req: &str,
        fingerprint: &str,
        answer: &str,
        seq: Option<i64>,
    ) -> Result<(), JournalError> {
        let ts = super::event::format_ts(jiff::Timestamp::now());
        self.conn
            .prepare_cached(
                "INSERT INTO requests (station, req, fingerprint, response, seq, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| s.execute(params![station, req, fingerprint, answer, seq, ts]))
            .ctx("storing a request's answer")?;
        Ok(())
    }

    /// Forgets idempotency tokens older than `before` (RFC 3339 UTC).
    pub fn prune_requests(&self, before: &str) -> Result<usize, JournalError> {
        self.conn
            .prepare_cached("DELETE FROM requests WHERE ts < ?1")
            .and_then(|mut s| s.execute([before]))
            .ctx("pruning old requests")
    }
}
