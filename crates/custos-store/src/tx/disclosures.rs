//! Statements of the hand-over register: provisions to third parties and
//! hand-overs to processors.

use crate::db::{Db, Optional, Row, params};

use super::{ReadTx, WriteTx};
use crate::Result;
use crate::rows::DisclosureRow;

const COLUMNS: &str = "id, kind, service_id, subject_id, recipient, recipient_id, items, duty, marketing, basis,
     consent_id, sealed, key_id, country, transfer_basis, transfer_description, at, actor, policy_version";

fn row(r: &Row<'_>) -> Result<DisclosureRow> {
    Ok(DisclosureRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        service_id: r.get(2)?,
        subject_id: r.get(3)?,
        recipient: r.get(4)?,
        recipient_id: r.get(5)?,
        items: r.get(6)?,
        duty: r.get(7)?,
        marketing: r.get(8)?,
        basis: r.get(9)?,
        consent_id: r.get(10)?,
        sealed: r.get(11)?,
        key_id: r.get(12)?,
        country: r.get(13)?,
        transfer_basis: r.get(14)?,
        transfer_description: r.get(15)?,
        at: r.get(16)?,
        actor: r.get(17)?,
        policy_version: r.get(18)?,
    })
}

fn of_subject(conn: Db<'_>, subject_id: &str) -> Result<Vec<DisclosureRow>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM disclosures WHERE subject_id = ?1 ORDER BY at, id"))?;
    let rows = stmt.query_map(params![subject_id], row)?;
    rows.collect::<Result<Vec<_>>>()
}

impl ReadTx<'_> {
    /// A member's hand-overs, oldest first.
    pub fn disclosures(&self, subject_id: &str) -> Result<Vec<DisclosureRow>> {
        of_subject(self.data, subject_id)
    }
}

impl WriteTx<'_> {
    pub fn insert_disclosure(&mut self, d: &DisclosureRow) -> Result<()> {
        self.data
            .prepare_cached(&format!(
                "INSERT INTO disclosures ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
            ))?
            .execute(params![
                d.id,
                d.kind,
                d.service_id,
                d.subject_id,
                d.recipient,
                d.recipient_id,
                d.items,
                d.duty,
                d.marketing,
                d.basis,
                d.consent_id,
                d.sealed,
                d.key_id,
                d.country,
                d.transfer_basis,
                d.transfer_description,
                d.at,
                d.actor,
                d.policy_version
            ])?;
        Ok(())
    }

    /// A member's hand-overs, oldest first.
    pub fn disclosures(&self, subject_id: &str) -> Result<Vec<DisclosureRow>> {
        of_subject(self.data, subject_id)
    }

    /// The register's newest entries, newest first: a service's, or (with
    /// `None`) every service's and the platform's.
    pub fn recent_disclosures(&self, service: Option<&str>, limit: u32) -> Result<Vec<DisclosureRow>> {
        let mut stmt = self.data.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM disclosures WHERE CAST(?1 AS TEXT) IS NULL OR service_id = ?1
             ORDER BY at DESC, id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![service, limit], row)?;
        rows.collect::<Result<Vec<_>>>()
    }

    /// The member a consent of the ledger belongs to, by the consent's id.
    pub fn consent_owner(&self, consent_id: &str) -> Result<Option<String>> {
        self.data
            .prepare_cached("SELECT subject_id FROM consents WHERE id = ?1")?
            .query_row(params![consent_id], |r| r.get(0))
            .optional()
    }
}
