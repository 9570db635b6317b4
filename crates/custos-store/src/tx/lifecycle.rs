//! Statements of the lifecycle jobs: dormancy (moving members between the
//! data file and the dormant store), destruction, statutory holds, leases
//! and the outbox's delivery state.

use crate::db::{Db, Optional, Row, params};

use super::item_row;
use super::{ReadTx, WriteTx};
use crate::rows::*;
use crate::{Result, StoreError};

const LIFECYCLE_COLUMNS: &str = "s.id, s.service_id, s.kind, s.status, s.last_activity_at, s.notified_at, s.dormant_at,
     coalesce((SELECT string_agg(role, ',') FROM staff WHERE subject_id = s.id AND status = 'active'), '')";

/// `seq, kind, subject, body, created_at, attempts` of an outbox row.
fn outbox_entry(r: &Row<'_>) -> Result<OutboxEntry> {
    Ok(OutboxEntry {
        seq: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        body: r.get(3)?,
        created_at: r.get(4)?,
        attempts: r.get(5)?,
    })
}

fn lifecycle_row(r: &Row<'_>) -> Result<LifecycleRow> {
    Ok(LifecycleRow {
        id: r.get(0)?,
        service_id: r.get(1)?,
        kind: r.get(2)?,
        status: r.get(3)?,
        last_activity_at: r.get(4)?,
        notified_at: r.get(5)?,
        dormant_at: r.get(6)?,
        roles: r.get(7)?,
    })
}

/// Active members whose last activity is at or before `until`, in
/// (last activity, id) order after the cursor.
fn active_page(conn: Db<'_>, until: &str, after: (&str, &str), limit: u32) -> Result<Vec<LifecycleRow>> {
    let sql = format!(
        "SELECT {LIFECYCLE_COLUMNS} FROM subjects s
         WHERE s.status = 'active' AND s.last_activity_at <= ?1 AND (s.last_activity_at, s.id) > (?2, ?3)
         ORDER BY s.last_activity_at, s.id LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![until, after.0, after.1, limit], lifecycle_row)?;
    rows.collect::<Result<Vec<_>>>()
}

/// Dormant members moved aside at or before `until`, in (dormant_at, id)
/// order after the cursor.
fn dormant_page(conn: Db<'_>, until: &str, after: (&str, &str), limit: u32) -> Result<Vec<LifecycleRow>> {
    let sql = format!(
        "SELECT {LIFECYCLE_COLUMNS} FROM subjects s
         WHERE s.status = 'dormant' AND s.dormant_at <= ?1 AND (s.dormant_at, s.id) > (?2, ?3)
         ORDER BY s.dormant_at, s.id LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![until, after.0, after.1, limit], lifecycle_row)?;
    rows.collect::<Result<Vec<_>>>()
}

fn lifecycle_of(conn: Db<'_>, id: &str) -> Result<Option<LifecycleRow>> {
    let sql = format!("SELECT {LIFECYCLE_COLUMNS} FROM subjects s WHERE s.id = ?1");
    conn.prepare_cached(&sql)?.query_row(params![id], lifecycle_row).optional()
}

/// (class, record date, count) of the records still kept, for forecasts.
fn record_dates(conn: Db<'_>, after: (&str, &str), limit: u32) -> Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT class, record_date, count(*) FROM records WHERE (class, record_date) > (?1, ?2)
         GROUP BY class, record_date ORDER BY class, record_date LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![after.0, after.1, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect::<Result<Vec<_>>>()
}

impl ReadTx<'_> {
    /// See [`WriteTx::active_members_until`].
    pub fn active_members_until(&self, until: &str, after: (&str, &str), limit: u32) -> Result<Vec<LifecycleRow>> {
        active_page(self.data, until, after, limit)
    }

    /// See [`WriteTx::dormant_members_until`].
    pub fn dormant_members_until(&self, until: &str, after: (&str, &str), limit: u32) -> Result<Vec<LifecycleRow>> {
        dormant_page(self.data, until, after, limit)
    }

    /// Records grouped by class and date, after the cursor.
    pub fn record_dates(&self, after: (&str, &str), limit: u32) -> Result<Vec<(String, String, i64)>> {
        record_dates(self.data, after, limit)
    }

    /// Members per status.
    pub fn status_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.data.prepare_cached("SELECT status, count(*) FROM subjects GROUP BY status")?;
        let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Deleted accounts' deletion times, for holds counted from a deletion.
    pub fn deleted_subjects_with_records(&self, class: &str) -> Result<Vec<(String, Option<String>, i64)>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT s.id, s.deleted_at, count(*) FROM subjects s CROSS JOIN records r ON r.subject_id = s.id
             WHERE r.class = ?1 AND s.status = 'deleted' GROUP BY s.id ORDER BY s.id",
        )?;
        let rows = stmt.query_map(params![class], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<Vec<_>>>()
    }
}

impl WriteTx<'_> {
    /// Active members whose last activity is at or before `until`, in
    /// (last activity, id) order after the cursor `after`.
    pub fn active_members_until(&self, until: &str, after: (&str, &str), limit: u32) -> Result<Vec<LifecycleRow>> {
        active_page(self.data, until, after, limit)
    }

    /// Dormant members moved aside at or before `until`, in (dormant since,
    /// id) order after the cursor `after`.
    pub fn dormant_members_until(&self, until: &str, after: (&str, &str), limit: u32) -> Result<Vec<LifecycleRow>> {
        dormant_page(self.data, until, after, limit)
    }

    /// One member's lifecycle facts.
    pub fn lifecycle_of(&self, id: &str) -> Result<Option<LifecycleRow>> {
        lifecycle_of(self.data, id)
    }

    /// The dates of one subject's records of one class.
    pub fn record_dates_of(&self, subject_id: &str, class: &str) -> Result<Vec<String>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT record_date FROM records WHERE subject_id = ?1 AND class = ?2 ORDER BY record_date",
        )?;
        let rows = stmt.query_map(params![subject_id, class], |r| r.get(0))?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Records that the dormancy notice of the current period was queued.
    pub fn set_notified(&mut self, id: &str, at: &str) -> Result<()> {
        self.data.prepare_cached("UPDATE subjects SET notified_at = ?2 WHERE id = ?1")?.execute(params![id, at])?;
        Ok(())
    }

    /// Moves a member's items to the dormant store (already sealed under
    /// their dormant key) and marks them dormant.
    pub fn move_to_dormant(&mut self, id: &str, items: &[ItemRow], at: &str) -> Result<()> {
        let mut insert = self.dormant.prepare_cached(
            "INSERT INTO dormant_items (subject_id, item, value, key_version, source, point, collected_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (subject_id, item) DO UPDATE SET
               value = excluded.value, key_version = excluded.key_version, source = excluded.source,
               point = excluded.point, collected_at = excluded.collected_at",
        )?;
        for row in items {
            insert.execute(params![
                row.subject_id,
                row.item,
                row.value,
                row.key_version,
                row.source,
                row.point,
                row.collected_at
            ])?;
        }
        self.data.prepare_cached("DELETE FROM items WHERE subject_id = ?1")?.execute(params![id])?;
        let n = self
            .data
            .prepare_cached(
                "UPDATE subjects SET status = 'dormant', dormant_at = ?2 WHERE id = ?1 AND status = 'active'",
            )?
            .execute(params![id, at])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("active subject {id}")));
        }
        Ok(())
    }

    /// A dormant member's items, as sealed in the dormant store.
    pub fn dormant_items(&self, id: &str) -> Result<Vec<ItemRow>> {
        let mut stmt = self.dormant.prepare_cached(
            "SELECT subject_id, item, value, key_version, source, point, collected_at FROM dormant_items
             WHERE subject_id = ?1 ORDER BY item",
        )?;
        let rows = stmt.query_map(params![id], item_row)?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Brings a dormant member back: their items (sealed again under the
    /// profile key) into the data file, status active, activity `at`. The
    /// dormant copy is removed by a later job ([`WriteTx::purge_dormant`]),
    /// after this one committed.
    pub fn release_from_dormant(&mut self, id: &str, items: &[ItemRow], at: &str) -> Result<()> {
        for row in items {
            self.put_item(row)?;
        }
        let n = self
            .data
            .prepare_cached(
                "UPDATE subjects SET status = 'active', dormant_at = NULL, notified_at = NULL, last_activity_at = ?2
                 WHERE id = ?1 AND status = 'dormant'",
            )?
            .execute(params![id, at])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("dormant subject {id}")));
        }
        Ok(())
    }

    /// Removes the dormant copy and the dormant key of a member who is no
    /// longer dormant. Returns the removed key ids (empty when there was
    /// nothing left, e.g. a second run).
    pub fn purge_dormant(&mut self, id: &str) -> Result<Vec<String>> {
        let status: Option<String> = self
            .data
            .prepare_cached("SELECT status FROM subjects WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        if status.as_deref() == Some("dormant") {
            return Err(StoreError::Conflict(format!("subject {id} is dormant")));
        }
        self.dormant.prepare_cached("DELETE FROM dormant_items WHERE subject_id = ?1")?.execute(params![id])?;
        self.remove_keys(id, &["dormant"])
    }

    /// Dormant copies left behind by a crash between a release's two jobs:
    /// subjects with rows in the dormant store (after the cursor `after`,
    /// `limit` of them) and whether each is still dormant.
    pub fn dormant_store_page(&self, after: &str, limit: u32) -> Result<Vec<(String, bool)>> {
        let mut stmt = self.dormant.prepare_cached(
            "SELECT DISTINCT subject_id FROM dormant_items WHERE subject_id > ?1 ORDER BY subject_id LIMIT ?2",
        )?;
        let ids: Vec<String> = stmt.query_map(params![after, limit], |r| r.get(0))?.collect::<Result<_>>()?;
        let mut status = self.data.prepare_cached("SELECT status FROM subjects WHERE id = ?1")?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let s: Option<String> = status.query_row(params![id], |r| r.get(0)).optional()?;
            let dormant = s.as_deref() == Some("dormant");
            out.push((id, dormant));
        }
        Ok(out)
    }

    fn remove_keys(&mut self, subject_id: &str, scopes: &[&str]) -> Result<Vec<String>> {
        let mut stmt =
            self.keys.prepare_cached("DELETE FROM data_keys WHERE subject_id = ?1 AND scope = ?2 RETURNING id")?;
        let mut removed = Vec::new();
        for scope in scopes {
            let ids = stmt.query_map(params![subject_id, scope], |r| r.get::<usize, String>(0))?;
            for id in ids {
                removed.push(id?);
            }
        }
        Ok(removed)
    }

    /// Destroys a member's profile: their profile and dormant keys, items in
    /// both stores and blind indexes. The row stays as a tombstone of ids
    /// (`deleted`) while held records remain; their hold keys are untouched.
    pub fn destroy_subject(&mut self, id: &str, at: &str) -> Result<Destroyed> {
        let keys = self.remove_keys(id, &["profile", "dormant"])?;
        let items = self.data.prepare_cached("DELETE FROM items WHERE subject_id = ?1")?.execute(params![id])?;
        let dormant_items =
            self.dormant.prepare_cached("DELETE FROM dormant_items WHERE subject_id = ?1")?.execute(params![id])?;
        let indexes =
            self.data.prepare_cached("DELETE FROM blind_index WHERE subject_id = ?1")?.execute(params![id])?;
        // The register's rows stay (what went to whom); the free text sealed
        // under the profile key goes with it, ciphertext included.
        self.data
            .prepare_cached("UPDATE disclosures SET sealed = NULL, key_id = NULL WHERE subject_id = ?1")?
            .execute(params![id])?;
        // Their cookie choices stay as an anonymous visitor's; the link to
        // them goes.
        self.data
            .prepare_cached("UPDATE cookie_consents SET subject_id = NULL, linked_at = NULL WHERE subject_id = ?1")?
            .execute(params![id])?;
        let n = self
            .data
            .prepare_cached(
                "UPDATE subjects SET status = 'deleted', deleted_at = ?2, notified_at = NULL, dormant_at = NULL
                 WHERE id = ?1 AND status <> 'deleted'",
            )?
            .execute(params![id, at])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("subject {id}")));
        }
        Ok(Destroyed { keys, items, dormant_items, indexes })
    }

    /// Deletes up to `limit` records of `class` dated on or before `cutoff`;
    /// returns (subject, record id) of each.
    pub fn expire_records(&mut self, class: &str, cutoff: &str, limit: u32) -> Result<Vec<(String, String)>> {
        let mut stmt = self.data.prepare_cached(
            "DELETE FROM records WHERE rowid IN
               (SELECT rowid FROM records WHERE class = ?1 AND record_date <= ?2 LIMIT ?3)
             RETURNING subject_id, id",
        )?;
        let rows = stmt.query_map(params![class, cutoff, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Deletes the records of `class` of deleted accounts whose deletion day
    /// is on or before `cutoff` (holds counted from the deletion). Walks the
    /// deleted accounts and then their records (`CROSS JOIN` fixes that
    /// order): the other way round scanned every record of the class, more
    /// than a job's deadline with millions of them.
    pub fn expire_records_of_deleted(
        &mut self,
        class: &str,
        cutoff: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>> {
        let mut stmt = self.data.prepare_cached(
            "DELETE FROM records WHERE rowid IN
               (SELECT r.rowid FROM subjects s CROSS JOIN records r ON r.subject_id = s.id AND r.class = ?1
                WHERE s.status = 'deleted' AND substr(s.deleted_at, 1, 10) <= ?2 LIMIT ?3)
             RETURNING subject_id, id",
        )?;
        let rows = stmt.query_map(params![class, cutoff, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Removes up to `limit` keys whose scope lies in `low ..= high`.
    pub fn remove_keys_in_scopes(&mut self, low: &str, high: &str, limit: u32) -> Result<Vec<RemovedKey>> {
        let mut stmt = self.keys.prepare_cached(
            "DELETE FROM data_keys WHERE rowid IN
               (SELECT rowid FROM data_keys WHERE scope >= ?1 AND scope <= ?2 LIMIT ?3)
             RETURNING id, subject_id, scope",
        )?;
        let rows = stmt.query_map(params![low, high, limit], |r| {
            Ok(RemovedKey { id: r.get(0)?, subject_id: r.get(1)?, scope: r.get(2)? })
        })?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Removes one subject's key of one scope (a hold counted from the
    /// account's deletion).
    pub fn remove_key_of(&mut self, subject_id: &str, scope: &str) -> Result<Vec<String>> {
        self.remove_keys(subject_id, &[scope])
    }

    /// When an account was deleted (`None`: it was not).
    pub fn deleted_at(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .data
            .prepare_cached("SELECT deleted_at FROM subjects WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Whether a staff account is linked to this member account already.
    pub fn staff_linked_to(&self, subject_id: &str) -> Result<bool> {
        Ok(self
            .data
            .prepare_cached("SELECT 1 FROM staff WHERE subject_id = ?1 AND status <> 'disabled' LIMIT 1")?
            .query_row(params![subject_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Links a staff account to the member account of the same person.
    pub fn link_staff_subject(&mut self, staff_id: &str, subject_id: &str) -> Result<()> {
        self.data
            .prepare_cached("UPDATE staff SET subject_id = ?2 WHERE id = ?1")?
            .execute(params![staff_id, subject_id])?;
        Ok(())
    }

    // --- leases ---

    /// Takes or renews the lease `name` for `holder` until `until`; `false`
    /// when another holder's lease has not expired at `now`.
    pub fn acquire_lease(&mut self, name: &str, holder: &str, now: &str, until: &str) -> Result<bool> {
        let n = self
            .data
            .prepare_cached(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3",
            )?
            .execute(params![name, holder, now, until])?;
        Ok(n == 1)
    }

    /// Gives the lease up (only its holder can).
    pub fn release_lease(&mut self, name: &str, holder: &str) -> Result<()> {
        self.data
            .prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")?
            .execute(params![name, holder])?;
        Ok(())
    }

    // --- outbox ---

    /// Notifications to one member due for a delivery attempt at `now`.
    pub fn due_outbox(&self, now: &str, limit: u32) -> Result<Vec<OutboxEntry>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT seq, kind, subject, body, created_at, attempts FROM outbox
             WHERE delivered_at IS NULL AND failed_at IS NULL AND subject IS NOT NULL
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit], outbox_entry)?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// The undelivered notices of `kind` for one subject that are due.
    pub fn due_outbox_of(&self, subject: &str, kind: &str, now: &str) -> Result<Vec<OutboxEntry>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT seq, kind, subject, body, created_at, attempts FROM outbox
             WHERE delivered_at IS NULL AND failed_at IS NULL AND subject = ?1 AND kind = ?2
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?3)
             ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![subject, kind, now], outbox_entry)?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Notices to every member not fanned out yet: (seq, kind, body).
    pub fn pending_broadcasts(&self) -> Result<Vec<(i64, String, String)>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT seq, kind, body FROM outbox WHERE subject IS NULL AND delivered_at IS NULL AND failed_at IS NULL
             ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// Fans a notice out to up to `limit` active members holding one of
    /// `items` (an e-mail address), after the id `after`; returns the last
    /// member id seen (`None` when done) and how many entries were added.
    pub fn fan_out(
        &mut self,
        parent: i64,
        items: &[&str],
        after: &str,
        limit: u32,
        at: &str,
    ) -> Result<(Option<String>, usize)> {
        let (kind, body): (String, String) =
            self.data.query_row("SELECT kind, body FROM outbox WHERE seq = ?1", params![parent], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let ids: Vec<String> = {
            let mut stmt = self
                .data
                .prepare_cached("SELECT id FROM subjects WHERE status = 'active' AND id > ?1 ORDER BY id LIMIT ?2")?;
            stmt.query_map(params![after, limit], |r| r.get(0))?.collect::<Result<_>>()?
        };
        let mut has = self.data.prepare_cached("SELECT item FROM items WHERE subject_id = ?1")?;
        let mut insert = self.data.prepare_cached(
            "INSERT INTO outbox (kind, subject, body, created_at, parent) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
        )?;
        let mut added = 0;
        for id in &ids {
            let held: Vec<String> = has.query_map(params![id], |r| r.get(0))?.collect::<Result<_>>()?;
            if held.iter().any(|i| items.contains(&i.as_str())) {
                added += insert.execute(params![kind, id, body, at, parent])?;
            }
        }
        Ok((ids.last().cloned(), added))
    }

    pub fn outbox_delivered(&mut self, seq: i64, at: &str) -> Result<bool> {
        Ok(self
            .data
            .prepare_cached(
                "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1 WHERE seq = ?1 AND delivered_at IS NULL",
            )?
            .execute(params![seq, at])?
            == 1)
    }

    /// A failed attempt: try again at `next` (`None`: give up, failed).
    pub fn outbox_attempt_failed(&mut self, seq: i64, at: &str, next: Option<&str>, error: &str) -> Result<()> {
        self.data
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?4, next_attempt_at = ?3,
                   failed_at = CASE WHEN CAST(?3 AS TEXT) IS NULL THEN ?2 ELSE NULL END
                 WHERE seq = ?1 AND delivered_at IS NULL",
            )?
            .execute(params![seq, at, next, error])?;
        Ok(())
    }
}
