//! Statements of the privacy center's sign-in: pending one-time codes
//! (their HMAC) and member sessions (the SHA-256 of their token). Plain
//! SQL with numbered placeholders, the same on PostgreSQL.

use crate::db::{Optional, params};

use super::WriteTx;
use crate::Result;

impl WriteTx<'_> {
    pub fn insert_member_sign_in(
        &mut self,
        id: &str,
        subject_id: &str,
        code_mac: &str,
        expires_at: &str,
        created_at: &str,
    ) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO member_sign_ins (id, subject_id, code_mac, expires_at, attempts, created_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            )?
            .execute(params![id, subject_id, code_mac, expires_at, created_at])?;
        Ok(())
    }

    /// A pending sign-in: (subject id, code MAC, expires at, wrong tries).
    pub fn member_sign_in(&self, id: &str) -> Result<Option<(String, String, String, i64)>> {
        self.data
            .prepare_cached("SELECT subject_id, code_mac, expires_at, attempts FROM member_sign_ins WHERE id = ?1")?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()
    }

    pub fn count_member_sign_in_attempt(&mut self, id: &str) -> Result<()> {
        self.data
            .prepare_cached("UPDATE member_sign_ins SET attempts = attempts + 1 WHERE id = ?1")?
            .execute(params![id])?;
        Ok(())
    }

    pub fn remove_member_sign_in(&mut self, id: &str) -> Result<()> {
        self.data.prepare_cached("DELETE FROM member_sign_ins WHERE id = ?1")?.execute(params![id])?;
        Ok(())
    }

    /// Removes the pending sign-ins and sessions that expired before `now`.
    pub fn remove_expired_member_sign_ins(&mut self, now: &str) -> Result<()> {
        self.data.prepare_cached("DELETE FROM member_sign_ins WHERE expires_at < ?1")?.execute(params![now])?;
        self.data.prepare_cached("DELETE FROM member_sessions WHERE expires_at < ?1")?.execute(params![now])?;
        Ok(())
    }

    pub fn insert_member_session(
        &mut self,
        token_hash: &[u8],
        subject_id: &str,
        created_at: &str,
        expires_at: &str,
    ) -> Result<()> {
        self.data
            .prepare_cached(
                "INSERT INTO member_sessions (token_hash, subject_id, created_at, last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?3, ?4)",
            )?
            .execute(params![token_hash, subject_id, created_at, expires_at])?;
        Ok(())
    }

    /// A member session: (subject id, last seen at, expires at).
    pub fn member_session(&self, token_hash: &[u8]) -> Result<Option<(String, String, String)>> {
        self.data
            .prepare_cached("SELECT subject_id, last_seen_at, expires_at FROM member_sessions WHERE token_hash = ?1")?
            .query_row(params![token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
    }

    pub fn touch_member_session(&mut self, token_hash: &[u8], at: &str) -> Result<()> {
        self.data
            .prepare_cached("UPDATE member_sessions SET last_seen_at = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, at])?;
        Ok(())
    }

    pub fn remove_member_session(&mut self, token_hash: &[u8]) -> Result<()> {
        self.data.prepare_cached("DELETE FROM member_sessions WHERE token_hash = ?1")?.execute(params![token_hash])?;
        Ok(())
    }

    /// Ends every session of a member (sign-out everywhere, deletion).
    pub fn remove_member_sessions(&mut self, subject_id: &str) -> Result<()> {
        self.data.prepare_cached("DELETE FROM member_sessions WHERE subject_id = ?1")?.execute(params![subject_id])?;
        self.data.prepare_cached("DELETE FROM member_sign_ins WHERE subject_id = ?1")?.execute(params![subject_id])?;
        Ok(())
    }
}
