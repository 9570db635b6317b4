//! The operations a job may perform: typed statements over the data file
//! and the key store. `WriteTx` runs inside the writer's group transaction;
//! `ReadTx` on a pooled read connection inside a read transaction, so that
//! everything it sees comes from one snapshot.

mod disclosures;
mod lifecycle;
mod members_web;
mod requests;

use crate::db::{Db, Dialect, Optional, Row, params};

use crate::rows::*;
use crate::{Result, StoreError};

/// The write side: all three files, inside the batch's transactions.
pub struct WriteTx<'c> {
    pub(crate) data: Db<'c>,
    pub(crate) keys: Db<'c>,
    pub(crate) dormant: Db<'c>,
}

impl std::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTx")
    }
}

/// The read side: a snapshot of both files.
pub struct ReadTx<'c> {
    pub(crate) data: Db<'c>,
    pub(crate) keys: Db<'c>,
}

impl std::fmt::Debug for ReadTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadTx")
    }
}

impl<'c> ReadTx<'c> {
    /// Begins a read transaction on both stores: one snapshot each.
    pub(crate) fn new(data: Db<'c>, keys: Db<'c>) -> Result<ReadTx<'c>> {
        let begin = match data.dialect() {
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        data.execute_batch(begin)?;
        if let Err(e) = keys.execute_batch(begin) {
            let _ = data.execute_batch("ROLLBACK");
            return Err(e);
        }
        Ok(ReadTx { data, keys })
    }

    pub(crate) fn finish(&self) -> Result<()> {
        let data = self.data.execute_batch("COMMIT");
        let keys = self.keys.execute_batch("COMMIT");
        data.and(keys)
    }

    pub fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        api_key(self.data, id)
    }

    pub fn subject(&self, id: &str) -> Result<Option<SubjectRow>> {
        subject(self.data, id)
    }

    /// Subjects of a service (or of the platform for `None`) after the
    /// cursor `after` (an id), in id order.
    pub fn subjects_page(&self, service: Option<&str>, after: &str, limit: u32) -> Result<Vec<SubjectRow>> {
        subjects_page(self.data, service, after, limit)
    }

    pub fn service(&self, id: &str) -> Result<Option<ServiceRow>> {
        service(self.data, id)
    }

    pub fn staff(&self, id: &str) -> Result<Option<StaffRow>> {
        staff_where(self.data, "id = ?1", &id)
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        session(self.data, id)
    }

    pub fn staff_by_email(&self, digest: &[u8]) -> Result<Option<StaffRow>> {
        staff_where(self.data, "email_digest = ?1", &digest)
    }

    pub fn staff_by_invite(&self, digest: &[u8]) -> Result<Option<StaffRow>> {
        staff_where(self.data, "invite_hash = ?1", &digest)
    }

    /// Every amendment, in the order they were announced.
    pub fn amendments(&self) -> Result<Vec<AmendmentRow>> {
        amendments(self.data)
    }

    /// A wrapped data key (staff keys are read outside a write job).
    pub fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        key_by(self.keys, "id = ?1", id)
    }

    pub fn audit_len(&self) -> Result<u64> {
        // Positions are 1..n without a gap: the largest is the count, read
        // from the key's end instead of counting every row.
        Ok(self.data.query_row("SELECT coalesce(max(seq), 0) FROM audit", params![], |r| r.get::<usize, i64>(0))?
            as u64)
    }

    pub fn audit_page(&self, after: i64, limit: u32) -> Result<Vec<(i64, AuditRow)>> {
        audit_page(self.data, after, limit)
    }

    /// Leaf hashes of entries `after + 1 ..= after + limit`, in order.
    pub fn audit_leaves(&self, after: i64, limit: u32) -> Result<Vec<(i64, Option<Vec<u8>>)>> {
        audit_leaves(self.data, after, limit)
    }

    pub fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>> {
        checkpoints(self.data, "ORDER BY size DESC LIMIT 1").map(|mut v| v.pop())
    }

    pub fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        checkpoints(self.data, "ORDER BY size")
    }

    pub fn instance_id(&self) -> Result<Option<String>> {
        self.data
            .prepare_cached("SELECT value FROM meta WHERE key = 'instance'")?
            .query_row(params![], |r| r.get(0))
            .optional()
    }

    /// True once a root key's check value is recorded (the store holds
    /// data sealed under some root key).
    pub fn has_root_key_check(&self) -> Result<bool> {
        Ok(self
            .data
            .prepare_cached("SELECT 1 FROM meta WHERE key = 'root_key_check'")?
            .query_row(params![], |r| r.get::<usize, i64>(0))
            .optional()?
            .is_some())
    }

    pub fn key_count(&self) -> Result<u64> {
        Ok(self.keys.query_row("SELECT count(*) FROM data_keys", params![], |r| r.get::<usize, i64>(0))? as u64)
    }

    /// A visitor's cookie consents, oldest first.
    pub fn cookie_consents_of_visitor(&self, visitor_id: &str) -> Result<Vec<CookieConsentRow>> {
        cookie_consents(self.data, "visitor_id", visitor_id)
    }
}

impl<'c> WriteTx<'c> {
    pub(crate) fn new(data: Db<'c>, keys: Db<'c>, dormant: Db<'c>) -> WriteTx<'c> {
        WriteTx { data, keys, dormant }
    }

    /// Runs one job inside a savepoint on both files: its changes are
    /// released into the batch on success and rolled back on failure.
    pub(crate) fn in_savepoint<T>(&mut self, job: impl FnOnce(&mut WriteTx<'c>) -> Result<T>) -> Result<T> {
        let run = |conn: Db<'_>, sql: &str| conn.control(sql);
        let end = |conn: Db<'_>, ok: bool| {
            if ok {
                run(conn, "RELEASE job")
            } else {
                run(conn, "ROLLBACK TO job").and_then(|()| run(conn, "RELEASE job"))
            }
        };
        run(self.data, "SAVEPOINT job")?;
        if let Err(e) = run(self.keys, "SAVEPOINT job") {
            let _ = end(self.data, false);
            return Err(e);
        }
        if let Err(e) = run(self.dormant, "SAVEPOINT job") {
            let _ = end(self.data, false);
            let _ = end(self.keys, false);
            return Err(e);
        }
        let outcome = job(self);
        let ok = outcome.is_ok();
        let ended = end(self.data, ok).and_then(|()| end(self.keys, ok)).and_then(|()| end(self.dormant, ok));
        match (outcome, ended) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    }

    // --- instance metadata ---

    /// A value of the data file's `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.data
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row(params![key], |r| r.get(0))
            .optional()
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        Ok(())
    }

    // --- services and subjects ---

    pub fn insert_service(&mut self, row: &ServiceRow) -> Result<()> {
        self.data
            .prepare_cached("INSERT INTO services (id, operator_id, created_at) VALUES (?1, ?2, ?3)")?
            .execute(params![row.id, row.operator_id, row.created_at])?;
        Ok(())
    }

    pub fn service(&self, id: &str) -> Result<Option<ServiceRow>> {
        service(self.data, id)
    }

    pub fn insert_subject(&mut self, row: &SubjectRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO subjects (id, service_id, kind, status, profile_key, policy_version, created_at, last_activity_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                row.id,
                row.service_id,
                row.kind,
                row.status,
                row.profile_key,
                row.policy_version,
                row.created_at,
                row.last_activity_at
            ])?;
        Ok(())
    }

    pub fn subject(&self, id: &str) -> Result<Option<SubjectRow>> {
        subject(self.data, id)
    }

    /// Subjects of a service (or of the platform for `None`) after the
    /// cursor `after` (an id), in id order.
    pub fn subjects_page(&self, service: Option<&str>, after: &str, limit: u32) -> Result<Vec<SubjectRow>> {
        subjects_page(self.data, service, after, limit)
    }

    pub fn touch_activity(&mut self, subject_id: &str, at: &str) -> Result<()> {
        let n = self
            .data
            .prepare_cached("UPDATE subjects SET last_activity_at = ?2 WHERE id = ?1")?
            .execute(params![subject_id, at])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("subject {subject_id}")));
        }
        Ok(())
    }

    // --- items and blind indexes ---

    /// Inserts or replaces one item.
    pub fn put_item(&mut self, row: &ItemRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO items (subject_id, item, value, key_version, source, point, collected_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (subject_id, item) DO UPDATE SET
                   value = excluded.value, key_version = excluded.key_version, source = excluded.source,
                   point = excluded.point, collected_at = excluded.collected_at",
            )?
            .execute(params![
                row.subject_id,
                row.item,
                row.value,
                row.key_version,
                row.source,
                row.point,
                row.collected_at
            ])?;
        Ok(())
    }

    /// The subject's items among `items` (all of them when `items` is empty).
    pub fn items(&self, subject_id: &str, items: &[&str]) -> Result<Vec<ItemRow>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT subject_id, item, value, key_version, source, point, collected_at FROM items WHERE subject_id = ?1
             ORDER BY item",
        )?;
        let rows = stmt.query_map(params![subject_id], item_row)?;
        let mut out = Vec::new();
        for row in rows {
            let row = row?;
            if items.is_empty() || items.contains(&row.item.as_str()) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Claims a blind index; `Conflict` when another subject holds it.
    pub fn insert_index(&mut self, scope: &str, item: &str, digest: &[u8], subject_id: &str) -> Result<()> {
        let inserted = self
            .data
            .prepare_cached(
                "INSERT INTO blind_index (scope, item, digest, subject_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (scope, item, digest) DO NOTHING",
            )?
            .execute(params![scope, item, digest, subject_id])?;
        if inserted == 0 {
            let holder = self.find_index(scope, item, digest)?;
            if holder.as_deref() != Some(subject_id) {
                return Err(StoreError::Conflict(format!("{item} is already registered in this scope")));
            }
        }
        Ok(())
    }

    pub fn remove_index(&mut self, subject_id: &str, item: &str) -> Result<()> {
        self.data
            .prepare_cached("DELETE FROM blind_index WHERE subject_id = ?1 AND item = ?2")?
            .execute(params![subject_id, item])?;
        Ok(())
    }

    pub fn find_index(&self, scope: &str, item: &str, digest: &[u8]) -> Result<Option<String>> {
        self.data
            .prepare_cached("SELECT subject_id FROM blind_index WHERE scope = ?1 AND item = ?2 AND digest = ?3")?
            .query_row(params![scope, item, digest], |r| r.get(0))
            .optional()
    }

    // --- records ---

    pub fn insert_record(&mut self, row: &RecordRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO records (id, subject_id, class, record_date, key_id, value, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                row.id,
                row.subject_id,
                row.class,
                row.record_date,
                row.key_id,
                row.value,
                row.created_at
            ])?;
        Ok(())
    }

    /// The subject's records of the given classes, in the order they were
    /// kept, after the cursor `after` (a record id; "" for the start).
    pub fn records(&self, subject_id: &str, classes: &[&str], after: &str, limit: u32) -> Result<Vec<RecordRow>> {
        if classes.is_empty() {
            return Ok(Vec::new());
        }
        // The classes as parameters ?4.. (a statement per count of
        // classes, each prepared once): the database stops at `limit`.
        let wanted: Vec<String> = (0..classes.len()).map(|i| format!("?{}", i + 4)).collect();
        let mut stmt = self.data.prepare_cached(&format!(
            // Insertion order (rowid): the order records were kept in, even
            // within one millisecond. The cursor is the last record's id.
            "SELECT id, subject_id, class, record_date, key_id, value, created_at FROM records
             WHERE subject_id = ?1 AND rowid > coalesce((SELECT rowid FROM records WHERE id = ?2), 0)
               AND class IN ({}) ORDER BY rowid LIMIT ?3",
            wanted.join(", ")
        ))?;
        let mut values: Vec<&dyn crate::db::Param> = vec![&subject_id, &after, &limit];
        values.extend(classes.iter().map(|c| c as &dyn crate::db::Param));
        stmt.query_map(&values, record_row)?.collect()
    }

    /// Every record of `subject_id`, at most `limit`, by class and then id
    /// (the order of their time within a class): the subject index's own
    /// order, so the rows come without a sort (the access package).
    pub fn all_records(&self, subject_id: &str, limit: u32) -> Result<Vec<RecordRow>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT id, subject_id, class, record_date, key_id, value, created_at FROM records
             WHERE subject_id = ?1 ORDER BY class, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![subject_id, limit], record_row)?;
        rows.collect::<Result<Vec<_>>>()
    }

    pub fn record_exists(&self, subject_id: &str, id: &str) -> Result<bool> {
        Ok(self
            .data
            .prepare_cached("SELECT 1 FROM records WHERE subject_id = ?1 AND id = ?2")?
            .query_row(params![subject_id, id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    // --- consents ---

    pub fn insert_consent(&mut self, row: &ConsentRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO consents (id, subject_id, purpose, policy_version, granted, channel, at, notice_hash, evidence, key_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                row.id,
                row.subject_id,
                row.purpose,
                row.policy_version,
                row.granted,
                row.channel,
                row.at,
                row.notice_hash,
                row.evidence,
                row.key_id
            ])?;
        Ok(())
    }

    /// A subject's consent ledger, oldest first.
    pub fn consents(&self, subject_id: &str) -> Result<Vec<ConsentRow>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT id, subject_id, purpose, policy_version, granted, channel, at, notice_hash, evidence, key_id
             FROM consents WHERE subject_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![subject_id], |r| {
            Ok(ConsentRow {
                id: r.get(0)?,
                subject_id: r.get(1)?,
                purpose: r.get(2)?,
                policy_version: r.get(3)?,
                granted: r.get(4)?,
                channel: r.get(5)?,
                at: r.get(6)?,
                notice_hash: r.get(7)?,
                evidence: r.get(8)?,
                key_id: r.get(9)?,
            })
        })?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// The policy versions run so far, in the order they came into force.
    pub fn policy_versions(&self) -> Result<Vec<PolicyVersionRow>> {
        let mut stmt =
            self.data.prepare_cached("SELECT version, text, in_force_at FROM policy_versions ORDER BY seq")?;
        let rows = stmt.query_map(params![], |r| {
            Ok(PolicyVersionRow { version: r.get(0)?, text: r.get(1)?, in_force_at: r.get(2)? })
        })?;
        rows.collect::<Result<Vec<_>>>()
    }

    pub fn insert_amendment(&mut self, row: &AmendmentRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO amendments (version, text, previous, announced_at, effective_date, significant, changes, in_force_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                row.version,
                row.text,
                row.previous,
                row.announced_at,
                row.effective_date,
                row.significant,
                row.changes,
                row.in_force_at
            ])?;
        Ok(())
    }

    /// Every amendment, in the order they were announced.
    pub fn amendments(&self) -> Result<Vec<AmendmentRow>> {
        amendments(self.data)
    }

    /// Marks every announced amendment not yet in force as superseded.
    pub fn supersede_pending_amendments(&mut self, at: &str) -> Result<usize> {
        self.data
            .prepare_cached(
                "UPDATE amendments SET superseded_at = ?1 WHERE in_force_at IS NULL AND superseded_at IS NULL",
            )?
            .execute(params![at])
    }

    /// Marks an amendment in force; false when it already was (or was
    /// superseded).
    pub fn set_amendment_in_force(&mut self, version: &str, at: &str) -> Result<bool> {
        Ok(self
            .data
            .prepare_cached("UPDATE amendments SET in_force_at = ?2 WHERE version = ?1 AND in_force_at IS NULL AND superseded_at IS NULL")?
            .execute(params![version, at])?
            == 1)
    }

    pub fn insert_outbox(&mut self, row: &OutboxRow) -> Result<()> {
        self.data
            .prepare_cached("INSERT INTO outbox (kind, subject, body, created_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![row.kind, row.subject, row.body, row.created_at])?;
        Ok(())
    }

    /// Records a policy version coming into force (a version seen before is
    /// left as it was).
    pub fn insert_policy_version(&mut self, row: &PolicyVersionRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO policy_versions (version, text, in_force_at) VALUES (?1, ?2, ?3) ON CONFLICT (version) DO NOTHING",
            )?
            .execute(params![row.version, row.text, row.in_force_at])?;
        Ok(())
    }

    // --- keys ---

    pub fn insert_key(&mut self, row: &KeyRow) -> Result<()> {
        self.keys
            .prepare_cached(
                "INSERT INTO data_keys (id, subject_id, scope, version, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![row.id, row.subject_id, row.scope, row.version, row.wrapped, row.created_at])?;
        Ok(())
    }

    pub fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        key_by(self.keys, "id = ?1", id)
    }

    /// The key of a subject for a scope (`profile`, `hold:<class>`), if any.
    pub fn key_for(&self, subject_id: &str, scope: &str) -> Result<Option<KeyRow>> {
        self.keys
            .prepare_cached(
                "SELECT id, subject_id, scope, version, wrapped, created_at FROM data_keys
                 WHERE subject_id = ?1 AND scope = ?2 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![subject_id, scope], key_row)
            .optional()
    }

    // --- staff and sessions ---

    pub fn set_allowed_ips(&mut self, service_id: &str, allowed_ips: &str) -> Result<()> {
        let n = self
            .data
            .prepare_cached("UPDATE services SET allowed_ips = ?2 WHERE id = ?1")?
            .execute(params![service_id, allowed_ips])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("service {service_id}")));
        }
        Ok(())
    }

    /// Inserts a staff account.
    pub fn insert_staff(&mut self, row: &StaffRow) -> Result<()> {
        self.data
            .prepare_cached(&format!(
                "INSERT INTO staff ({STAFF_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))?
            .execute(staff_params!(row))?;
        Ok(())
    }

    /// Writes every column of an existing staff account. An UPDATE, never a
    /// REPLACE: a unique rule broken (a second holder of a single role) is a
    /// conflict, not a deleted row.
    pub fn update_staff(&mut self, row: &StaffRow) -> Result<()> {
        let n = self
            .data
            .prepare_cached(
                "UPDATE staff SET email_digest = ?2, email = ?3, key_id = ?4, role = ?5, single = ?6, service_id = ?7,
                 privileges = ?8, status = ?9, invite_hash = ?10, invite_expires_at = ?11, password = ?12,
                 totp_secret = ?13, totp_last_step = ?14, created_at = ?15, updated_at = ?16 WHERE id = ?1",
            )?
            .execute(staff_params!(row))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("staff {}", row.id)));
        }
        Ok(())
    }

    /// The holder (active or invited) of a single-holder role in a service.
    pub fn single_holder(&self, service_id: Option<&str>, role: &str) -> Result<Option<StaffRow>> {
        self.data
            .prepare_cached(&format!(
                "SELECT {STAFF_COLUMNS} FROM staff WHERE coalesce(service_id, '') = coalesce(?1, '') AND role = ?2
                 AND single = 1 AND status <> 'disabled'"
            ))?
            .query_row(params![service_id, role], staff_row)
            .optional()
    }

    pub fn staff(&self, id: &str) -> Result<Option<StaffRow>> {
        staff_where(self.data, "id = ?1", &id)
    }

    pub fn staff_by_email(&self, digest: &[u8]) -> Result<Option<StaffRow>> {
        staff_where(self.data, "email_digest = ?1", &digest)
    }

    pub fn staff_by_invite(&self, digest: &[u8]) -> Result<Option<StaffRow>> {
        staff_where(self.data, "invite_hash = ?1", &digest)
    }

    pub fn insert_session(&mut self, row: &SessionRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO sessions (id, staff_id, secret_hash, created_at, last_seen_at, ended_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![row.id, row.staff_id, row.secret_hash, row.created_at, row.last_seen_at, row.ended_at])?;
        Ok(())
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        session(self.data, id)
    }

    pub fn touch_session(&mut self, id: &str, at: &str) -> Result<()> {
        self.data.prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1")?.execute(params![id, at])?;
        Ok(())
    }

    pub fn end_session(&mut self, id: &str, at: &str) -> Result<()> {
        self.data
            .prepare_cached("UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL")?
            .execute(params![id, at])?;
        Ok(())
    }

    /// Ends every open session of a staff member; returns how many.
    pub fn end_sessions_of(&mut self, staff_id: &str, at: &str) -> Result<usize> {
        self.data
            .prepare_cached("UPDATE sessions SET ended_at = ?2 WHERE staff_id = ?1 AND ended_at IS NULL")?
            .execute(params![staff_id, at])
    }

    // --- API keys and idempotency ---

    pub fn insert_api_key(&mut self, row: &ApiKeyRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO api_keys (id, secret_hash, service_id, purposes, label, created_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                row.id,
                row.secret_hash,
                row.service_id,
                row.purposes,
                row.label,
                row.created_at,
                row.revoked_at
            ])?;
        Ok(())
    }

    pub fn idempotency(&self, api_key: &str, key: &str) -> Result<Option<IdempotencyRow>> {
        self
            .data
            .prepare_cached(
                "SELECT api_key, key, request_hash, status, body, created_at FROM idempotency WHERE api_key = ?1 AND key = ?2",
            )?
            .query_row(params![api_key, key], |r| {
                Ok(IdempotencyRow {
                    api_key: r.get(0)?,
                    key: r.get(1)?,
                    request_hash: r.get(2)?,
                    status: r.get(3)?,
                    body: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })
            .optional()
    }

    pub fn insert_idempotency(&mut self, row: &IdempotencyRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO idempotency (api_key, key, request_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![row.api_key, row.key, row.request_hash, row.status, row.body, row.created_at])?;
        Ok(())
    }

    // --- audit ---

    /// Entries without a leaf hash (written before the log became a tree).
    pub fn audit_without_leaf(&self, limit: u32) -> Result<Vec<(i64, AuditRow)>> {
        let mut stmt = self.data.prepare_cached(
            "SELECT seq, at, actor, role, operation, purpose, subject_id, items, outcome, policy_version, leaf_hash
             FROM audit WHERE leaf_hash IS NULL ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit], audit_row)?;
        rows.collect::<Result<Vec<_>>>()
    }

    pub fn set_leaf_hash(&mut self, seq: i64, leaf: &[u8]) -> Result<()> {
        self.data.prepare_cached("UPDATE audit SET leaf_hash = ?2 WHERE seq = ?1")?.execute(params![seq, leaf])?;
        Ok(())
    }

    /// Records a checkpoint; a second checkpoint of the same size is refused.
    pub fn insert_checkpoint(&mut self, row: &CheckpointRow) -> Result<()> {
        self.data
            .prepare_cached("INSERT INTO checkpoints (size, root, time, signature) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![row.size as i64, row.root, row.time, row.signature])?;
        Ok(())
    }

    pub fn audit_size(&self) -> Result<u64> {
        Ok(self.data.query_row("SELECT coalesce(max(seq), 0) FROM audit", params![], |r| r.get::<usize, i64>(0))?
            as u64)
    }

    /// Appends an audit entry in the job's transaction and returns its
    /// sequence number: the entry commits exactly when the act does.
    pub fn append_audit(&mut self, row: &AuditRow) -> Result<i64> {
        // The position is assigned here, not by the database, so the log
        // has no gaps on PostgreSQL either (an identity would burn numbers
        // in rolled-back jobs); writes are serialised by the batch (one
        // writer on SQLite, the sequencer row on PostgreSQL).
        Ok(self
            .data
            .prepare_cached(
                "INSERT INTO audit (seq, at, actor, role, operation, purpose, subject_id, items, outcome, policy_version, leaf_hash)
                 VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM audit), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 RETURNING seq",
            )?
            .query_row(
                params![
                    row.at,
                    row.actor,
                    row.role,
                    row.operation,
                    row.purpose,
                    row.subject_id,
                    row.items,
                    row.outcome,
                    row.policy_version,
                    row.leaf_hash
                ],
                |r| r.get(0),
            )?)
    }

    // --- cookie consents ---

    pub fn insert_cookie_consent(&mut self, row: &CookieConsentRow) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO cookie_consents (visitor_id, subject_id, category, granted, source, gpc, policy_version, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                row.visitor_id,
                row.subject_id,
                row.category,
                row.granted,
                row.source,
                row.gpc,
                row.policy_version,
                row.at
            ])?;
        Ok(())
    }

    /// A visitor's cookie consents, oldest first.
    pub fn cookie_consents_of_visitor(&self, visitor_id: &str) -> Result<Vec<CookieConsentRow>> {
        cookie_consents(self.data, "visitor_id", visitor_id)
    }

    /// A member's cookie consents (every visitor linked to them), oldest
    /// first.
    pub fn cookie_consents_of_subject(&self, subject_id: &str) -> Result<Vec<CookieConsentRow>> {
        cookie_consents(self.data, "subject_id", subject_id)
    }

    /// Links a visitor's rows that no member holds yet to `subject_id`;
    /// returns how many. Rows linked before stay with their member.
    pub fn link_cookie_consents(&mut self, visitor_id: &str, subject_id: &str, at: &str) -> Result<usize> {
        self
            .data
            .prepare_cached(
                "UPDATE cookie_consents SET subject_id = ?2, linked_at = ?3 WHERE visitor_id = ?1 AND subject_id IS NULL",
            )?
            .execute(params![visitor_id, subject_id, at])
    }
}

fn cookie_consents(conn: Db<'_>, column: &str, value: &str) -> Result<Vec<CookieConsentRow>> {
    let sql = format!(
        "SELECT visitor_id, subject_id, category, granted, source, gpc, policy_version, at
         FROM cookie_consents WHERE {column} = ?1 ORDER BY seq"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![value], |r| {
        Ok(CookieConsentRow {
            visitor_id: r.get(0)?,
            subject_id: r.get(1)?,
            category: r.get(2)?,
            granted: r.get(3)?,
            source: r.get(4)?,
            gpc: r.get(5)?,
            policy_version: r.get(6)?,
            at: r.get(7)?,
        })
    })?;
    rows.collect::<Result<Vec<_>>>()
}

fn subject_row(r: &Row<'_>) -> Result<SubjectRow> {
    Ok(SubjectRow {
        id: r.get(0)?,
        service_id: r.get(1)?,
        kind: r.get(2)?,
        status: r.get(3)?,
        profile_key: r.get(4)?,
        policy_version: r.get(5)?,
        created_at: r.get(6)?,
        last_activity_at: r.get(7)?,
    })
}

pub(super) fn item_row(r: &Row<'_>) -> Result<ItemRow> {
    Ok(ItemRow {
        subject_id: r.get(0)?,
        item: r.get(1)?,
        value: r.get(2)?,
        key_version: r.get(3)?,
        source: r.get(4)?,
        point: r.get(5)?,
        collected_at: r.get(6)?,
    })
}

fn key_row(r: &Row<'_>) -> Result<KeyRow> {
    Ok(KeyRow {
        id: r.get(0)?,
        subject_id: r.get(1)?,
        scope: r.get(2)?,
        version: r.get(3)?,
        wrapped: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn key_by(conn: Db<'_>, condition: &str, value: &str) -> Result<Option<KeyRow>> {
    let sql = format!("SELECT id, subject_id, scope, version, wrapped, created_at FROM data_keys WHERE {condition}");
    conn.prepare_cached(&sql)?.query_row(params![value], key_row).optional()
}

fn subject(conn: Db<'_>, id: &str) -> Result<Option<SubjectRow>> {
    conn.prepare_cached(
        "SELECT id, service_id, kind, status, profile_key, policy_version, created_at, last_activity_at
             FROM subjects WHERE id = ?1",
    )?
    .query_row(params![id], subject_row)
    .optional()
}

fn amendments(conn: Db<'_>) -> Result<Vec<AmendmentRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, text, previous, announced_at, effective_date, significant, changes, in_force_at, superseded_at
         FROM amendments ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![], amendment_row)?;
    rows.collect::<Result<Vec<_>>>()
}

fn amendment_row(r: &Row<'_>) -> Result<AmendmentRow> {
    Ok(AmendmentRow {
        version: r.get(0)?,
        text: r.get(1)?,
        previous: r.get(2)?,
        announced_at: r.get(3)?,
        effective_date: r.get(4)?,
        significant: r.get(5)?,
        changes: r.get(6)?,
        in_force_at: r.get(7)?,
        superseded_at: r.get(8)?,
    })
}

fn subjects_page(conn: Db<'_>, service: Option<&str>, after: &str, limit: u32) -> Result<Vec<SubjectRow>> {
    const COLUMNS: &str = "id, service_id, kind, status, profile_key, policy_version, created_at, last_activity_at";
    // Two statements rather than `service_id IS ?1`, which PostgreSQL
    // does not accept with a parameter.
    let rows: Vec<Result<SubjectRow>> = match service {
        Some(service) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM subjects WHERE service_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ))?
            .query_map(params![service, after, limit], subject_row)?
            .collect(),
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM subjects WHERE service_id IS NULL AND id > ?1 ORDER BY id LIMIT ?2"
            ))?
            .query_map(params![after, limit], subject_row)?
            .collect(),
    };
    rows.into_iter().collect()
}

fn service(conn: Db<'_>, id: &str) -> Result<Option<ServiceRow>> {
    conn.prepare_cached("SELECT id, operator_id, created_at, allowed_ips FROM services WHERE id = ?1")?
        .query_row(params![id], |r| {
            Ok(ServiceRow { id: r.get(0)?, operator_id: r.get(1)?, created_at: r.get(2)?, allowed_ips: r.get(3)? })
        })
        .optional()
}

macro_rules! staff_params {
    ($row:expr) => {
        params![
            $row.id,
            $row.email_digest,
            $row.email,
            $row.key_id,
            $row.role,
            $row.single,
            $row.service_id,
            $row.privileges,
            $row.status,
            $row.invite_hash,
            $row.invite_expires_at,
            $row.password,
            $row.totp_secret,
            $row.totp_last_step,
            $row.created_at,
            $row.updated_at
        ]
    };
}
use staff_params;

const STAFF_COLUMNS: &str = "id, email_digest, email, key_id, role, single, service_id, privileges, status, \
    invite_hash, invite_expires_at, password, totp_secret, totp_last_step, created_at, updated_at";

fn staff_row(r: &Row<'_>) -> Result<StaffRow> {
    Ok(StaffRow {
        id: r.get(0)?,
        email_digest: r.get(1)?,
        email: r.get(2)?,
        key_id: r.get(3)?,
        role: r.get(4)?,
        single: r.get(5)?,
        service_id: r.get(6)?,
        privileges: r.get(7)?,
        status: r.get(8)?,
        invite_hash: r.get(9)?,
        invite_expires_at: r.get(10)?,
        password: r.get(11)?,
        totp_secret: r.get(12)?,
        totp_last_step: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

fn staff_where(conn: Db<'_>, condition: &str, value: &dyn crate::db::Param) -> Result<Option<StaffRow>> {
    conn.prepare_cached(&format!("SELECT {STAFF_COLUMNS} FROM staff WHERE {condition}"))?
        .query_row(&[value], staff_row)
        .optional()
}

fn session(conn: Db<'_>, id: &str) -> Result<Option<SessionRow>> {
    conn.prepare_cached(
        "SELECT id, staff_id, secret_hash, created_at, last_seen_at, ended_at FROM sessions WHERE id = ?1",
    )?
    .query_row(params![id], |r| {
        Ok(SessionRow {
            id: r.get(0)?,
            staff_id: r.get(1)?,
            secret_hash: r.get(2)?,
            created_at: r.get(3)?,
            last_seen_at: r.get(4)?,
            ended_at: r.get(5)?,
        })
    })
    .optional()
}

fn api_key(conn: Db<'_>, id: &str) -> Result<Option<ApiKeyRow>> {
    conn.prepare_cached(
        "SELECT id, secret_hash, service_id, purposes, label, created_at, revoked_at FROM api_keys WHERE id = ?1",
    )?
    .query_row(params![id], |r| {
        Ok(ApiKeyRow {
            id: r.get(0)?,
            secret_hash: r.get(1)?,
            service_id: r.get(2)?,
            purposes: r.get(3)?,
            label: r.get(4)?,
            created_at: r.get(5)?,
            revoked_at: r.get(6)?,
        })
    })
    .optional()
}

fn audit_row(r: &Row<'_>) -> Result<(i64, AuditRow)> {
    Ok((
        r.get(0)?,
        AuditRow {
            at: r.get(1)?,
            actor: r.get(2)?,
            role: r.get(3)?,
            operation: r.get(4)?,
            purpose: r.get(5)?,
            subject_id: r.get(6)?,
            items: r.get(7)?,
            outcome: r.get(8)?,
            policy_version: r.get(9)?,
            leaf_hash: r.get(10)?,
        },
    ))
}

fn audit_leaves(conn: Db<'_>, after: i64, limit: u32) -> Result<Vec<(i64, Option<Vec<u8>>)>> {
    let mut stmt = conn.prepare_cached("SELECT seq, leaf_hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let rows = stmt.query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<Result<Vec<_>>>()
}

fn checkpoints(conn: Db<'_>, order: &str) -> Result<Vec<CheckpointRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT size, root, time, signature FROM checkpoints {order}"))?;
    let rows = stmt.query_map(params![], |r| {
        Ok(CheckpointRow {
            size: r.get::<usize, i64>(0)? as u64,
            root: r.get(1)?,
            time: r.get(2)?,
            signature: r.get(3)?,
        })
    })?;
    rows.collect::<Result<Vec<_>>>()
}

fn audit_page(conn: Db<'_>, after: i64, limit: u32) -> Result<Vec<(i64, AuditRow)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, actor, role, operation, purpose, subject_id, items, outcome, policy_version, leaf_hash
         FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit], audit_row)?;
    rows.collect::<Result<Vec<_>>>()
}

/// A `records` row selected as `id, subject_id, class, record_date, key_id,
/// value, created_at`.
fn record_row(r: &Row<'_>) -> Result<RecordRow> {
    Ok(RecordRow {
        id: r.get(0)?,
        subject_id: r.get(1)?,
        class: r.get(2)?,
        record_date: r.get(3)?,
        key_id: r.get(4)?,
        value: r.get(5)?,
        created_at: r.get(6)?,
    })
}
