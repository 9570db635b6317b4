//! Statements of the rights-request queue: requests, their steps, one-time
//! codes and restrictions of processing.

use crate::db::{Db, Dialect, Optional, Row, params};

use super::{ReadTx, WriteTx};
use crate::Result;
use crate::rows::*;

const REQUEST_COLUMNS: &str = "id, service_id, subject_id, kind, channel, jurisdiction, requester, status, received_at,
     acknowledge_by, answer_by, extended_by, acknowledged_at, verified_by, verified_at, assigned_to, closed_at,
     key_id, details, letter_sha256, letter, outcome, extension_reason, created_by, destroy_on";

fn request_row(r: &Row<'_>) -> Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        service_id: r.get(1)?,
        subject_id: r.get(2)?,
        kind: r.get(3)?,
        channel: r.get(4)?,
        jurisdiction: r.get(5)?,
        requester: r.get(6)?,
        status: r.get(7)?,
        received_at: r.get(8)?,
        acknowledge_by: r.get(9)?,
        answer_by: r.get(10)?,
        extended_by: r.get(11)?,
        acknowledged_at: r.get(12)?,
        verified_by: r.get(13)?,
        verified_at: r.get(14)?,
        assigned_to: r.get(15)?,
        closed_at: r.get(16)?,
        key_id: r.get(17)?,
        details: r.get(18)?,
        letter_sha256: r.get(19)?,
        letter: r.get(20)?,
        outcome: r.get(21)?,
        extension_reason: r.get(22)?,
        created_by: r.get(23)?,
        destroy_on: r.get(24)?,
    })
}

fn request(conn: Db<'_>, id: &str) -> Result<Option<RequestRow>> {
    conn.prepare_cached(&format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1"))?
        .query_row(params![id], request_row)
        .optional()
}

/// The queue: by deadline in force (extended, else first; none last), then
/// receipt, after the cursor (the last id of the previous page).
fn list(conn: Db<'_>, filter: &RequestFilter, after: Option<&str>, limit: u32) -> Result<Vec<RequestRow>> {
    let (statuses, kinds) = (filter.statuses.join(","), filter.kinds.join(","));
    let (service_any, service) = match &filter.service {
        None => (1, None),
        Some(s) => (0, s.clone()),
    };
    // The order key, also the cursor: deadline (or a far date), receipt, id.
    // instr(haystack, needle) is strpos in PostgreSQL.
    let position = match conn.dialect() {
        Dialect::Sqlite => "instr",
        Dialect::Postgres => "strpos",
    };
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM (
             SELECT *, coalesce(extended_by, answer_by, '9999-12-31') || '|' || received_at || '|' || id AS ord
             FROM requests) r
         WHERE (?1 = '' OR {position}(',' || ?1 || ',', ',' || status || ',') > 0)
           AND (?2 = 1 OR service_id = ?3 OR (service_id IS NULL AND CAST(?3 AS TEXT) IS NULL))
           AND (CAST(?4 AS TEXT) IS NULL OR subject_id = ?4)
           AND (CAST(?5 AS TEXT) IS NULL OR (status NOT IN ('fulfilled', 'denied')
                               AND coalesce(extended_by, answer_by) < ?5))
           AND (CAST(?6 AS TEXT) IS NULL OR ord > (SELECT coalesce(extended_by, answer_by, '9999-12-31') || '|' || received_at || '|' || id
                                     FROM requests WHERE id = ?6))
           AND (?8 = '' OR {position}(',' || ?8 || ',', ',' || kind || ',') > 0)
         ORDER BY ord LIMIT ?7"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![statuses, service_any, service, filter.subject_id, filter.due_before, after, limit, kinds],
        request_row,
    )?;
    rows.collect::<Result<Vec<_>>>()
}

fn steps(conn: Db<'_>, id: &str) -> Result<Vec<RequestStepRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT request_id, at, actor, step, status, note FROM request_steps WHERE request_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok(RequestStepRow {
            request_id: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            step: r.get(3)?,
            status: r.get(4)?,
            note: r.get(5)?,
        })
    })?;
    rows.collect::<Result<Vec<_>>>()
}

fn live_restrictions(conn: Db<'_>, subject_id: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT purpose, request_id FROM restrictions WHERE subject_id = ?1 AND lifted_at IS NULL ORDER BY purpose",
    )?;
    let rows = stmt.query_map(params![subject_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<Result<Vec<_>>>()
}

fn deliveries(conn: Db<'_>, subject_id: &str) -> Result<Vec<(String, String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, items, outcome FROM audit WHERE operation = 'notify' AND subject_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![subject_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect::<Result<Vec<_>>>()
}

impl ReadTx<'_> {
    pub fn request(&self, id: &str) -> Result<Option<RequestRow>> {
        request(self.data, id)
    }

    /// A page of the queue (see the module's order).
    pub fn requests(&self, filter: &RequestFilter, after: Option<&str>, limit: u32) -> Result<Vec<RequestRow>> {
        list(self.data, filter, after, limit)
    }

    pub fn request_steps(&self, id: &str) -> Result<Vec<RequestStepRow>> {
        steps(self.data, id)
    }

    /// The audit entries of deliveries to a member (`notify`): (at, items,
    /// outcome), oldest first; the outcome names the processor the item
    /// went through, when the relay is one.
    pub fn deliveries(&self, subject_id: &str) -> Result<Vec<(String, String, String)>> {
        deliveries(self.data, subject_id)
    }

    /// The purposes (`*`: all) a member's processing is restricted for,
    /// with the request that asked for each.
    pub fn restrictions(&self, subject_id: &str) -> Result<Vec<(String, String)>> {
        live_restrictions(self.data, subject_id)
    }
}

impl WriteTx<'_> {
    /// A member's requests not yet closed (through the subject index).
    pub fn open_requests_of(&self, subject_id: &str) -> Result<Vec<RequestRow>> {
        let mut stmt = self.data.prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests
             WHERE subject_id = ?1 AND status NOT IN ('fulfilled', 'denied') ORDER BY received_at, id"
        ))?;
        let rows = stmt.query_map(params![subject_id], request_row)?;
        rows.collect::<Result<Vec<_>>>()
    }

    pub fn insert_request(&mut self, row: &RequestRow) -> Result<()> {
        self.data
            .prepare_cached(&format!(
                "INSERT INTO requests ({REQUEST_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                         ?21, ?22, ?23, ?24, ?25)"
            ))?
            .execute(params![
                row.id,
                row.service_id,
                row.subject_id,
                row.kind,
                row.channel,
                row.jurisdiction,
                row.requester,
                row.status,
                row.received_at,
                row.acknowledge_by,
                row.answer_by,
                row.extended_by,
                row.acknowledged_at,
                row.verified_by,
                row.verified_at,
                row.assigned_to,
                row.closed_at,
                row.key_id,
                row.details,
                row.letter_sha256,
                row.letter,
                row.outcome,
                row.extension_reason,
                row.created_by,
                row.destroy_on,
            ])?;
        Ok(())
    }

    /// Writes back every mutable column of a request read in this job.
    pub fn update_request(&mut self, row: &RequestRow) -> Result<()> {
        let n = self
            .data
            .prepare_cached(
                "UPDATE requests SET status = ?2, extended_by = ?3, acknowledged_at = ?4, verified_by = ?5,
                        verified_at = ?6, assigned_to = ?7, closed_at = ?8, outcome = ?9, extension_reason = ?10
                 WHERE id = ?1",
            )?
            .execute(params![
                row.id,
                row.status,
                row.extended_by,
                row.acknowledged_at,
                row.verified_by,
                row.verified_at,
                row.assigned_to,
                row.closed_at,
                row.outcome,
                row.extension_reason,
            ])?;
        if n == 0 {
            return Err(crate::StoreError::NotFound(format!("request {}", row.id)));
        }
        Ok(())
    }

    pub fn request(&self, id: &str) -> Result<Option<RequestRow>> {
        request(self.data, id)
    }

    pub fn requests(&self, filter: &RequestFilter, after: Option<&str>, limit: u32) -> Result<Vec<RequestRow>> {
        list(self.data, filter, after, limit)
    }

    pub fn request_steps(&self, id: &str) -> Result<Vec<RequestStepRow>> {
        steps(self.data, id)
    }

    /// Replaces what a request asked (sealed), once it was acted on.
    pub fn update_request_details(&mut self, id: &str, details: &[u8]) -> Result<()> {
        self.data.prepare_cached("UPDATE requests SET details = ?2 WHERE id = ?1")?.execute(params![id, details])?;
        Ok(())
    }

    pub fn insert_request_step(&mut self, row: &RequestStepRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO request_steps (request_id, at, actor, step, status, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![row.request_id, row.at, row.actor, row.step, row.status, row.note])?;
        Ok(())
    }

    /// Sets (or replaces) a request's one-time code.
    pub fn set_request_code(&mut self, request_id: &str, code_mac: &str, expires_at: &str) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO request_codes (request_id, code_mac, expires_at, attempts) VALUES (?1, ?2, ?3, 0)
                 ON CONFLICT (request_id) DO UPDATE SET code_mac = ?2, expires_at = ?3, attempts = 0",
            )?
            .execute(params![request_id, code_mac, expires_at])?;
        Ok(())
    }

    /// A request's code (its MAC, expiry and failed attempts so far).
    pub fn request_code(&self, request_id: &str) -> Result<Option<(String, String, i64)>> {
        self.data
            .prepare_cached("SELECT code_mac, expires_at, attempts FROM request_codes WHERE request_id = ?1")?
            .query_row(params![request_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
    }

    pub fn count_request_code_attempt(&mut self, request_id: &str) -> Result<()> {
        self.data
            .prepare_cached("UPDATE request_codes SET attempts = attempts + 1 WHERE request_id = ?1")?
            .execute(params![request_id])?;
        Ok(())
    }

    pub fn remove_request_code(&mut self, request_id: &str) -> Result<()> {
        self.data.prepare_cached("DELETE FROM request_codes WHERE request_id = ?1")?.execute(params![request_id])?;
        Ok(())
    }

    pub fn restrictions(&self, subject_id: &str) -> Result<Vec<(String, String)>> {
        live_restrictions(self.data, subject_id)
    }

    pub fn deliveries(&self, subject_id: &str) -> Result<Vec<(String, String, String)>> {
        deliveries(self.data, subject_id)
    }

    /// Restricts processing of a member's data for `purpose` (`*`: all).
    pub fn insert_restriction(&mut self, subject_id: &str, purpose: &str, request_id: &str, since: &str) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO restrictions (subject_id, purpose, request_id, since) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![subject_id, purpose, request_id, since])?;
        Ok(())
    }

    /// Complaints and inquiries whose day of destruction has come (on or
    /// before `today`), at most `limit`: (id, subject, key id).
    pub fn requests_to_destroy(&self, today: &str, limit: u32) -> Result<Vec<(String, Option<String>, String)>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT id, subject_id, key_id FROM requests WHERE destroy_on IS NOT NULL AND destroy_on <= ?1
             ORDER BY destroy_on, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![today, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Destroys a request: its key, its row, its code and its timeline.
    /// Returns whether its key was there.
    pub fn destroy_request(&mut self, id: &str, key_id: &str) -> Result<bool> {
        let key = self.keys.prepare_cached("DELETE FROM data_keys WHERE id = ?1")?.execute(params![key_id])?;
        self.data.prepare_cached("DELETE FROM request_codes WHERE request_id = ?1")?.execute(params![id])?;
        self.data.prepare_cached("DELETE FROM request_steps WHERE request_id = ?1")?.execute(params![id])?;
        self.data.prepare_cached("DELETE FROM requests WHERE id = ?1")?.execute(params![id])?;
        Ok(key > 0)
    }

    /// Lifts the live restrictions a request put in place; returns how
    /// many were lifted.
    pub fn lift_restrictions(&mut self, request_id: &str, at: &str) -> Result<usize> {
        self.data
            .prepare_cached("UPDATE restrictions SET lifted_at = ?2 WHERE request_id = ?1 AND lifted_at IS NULL")?
            .execute(params![request_id, at])
    }
}
