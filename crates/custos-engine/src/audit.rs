//! The verifiable audit log: every entry is a leaf of an RFC 9162 Merkle
//! tree, in the order the single writer committed it (the sequencer); signed
//! checkpoints fix the tree's size and root; proofs and an export let anyone
//! check, offline, that the log they hold is the one that was checkpointed.
//!
//! The formats (entry bytes, checkpoint text) live in `custos_core::audit`;
//! the Merkle algorithms in `custos_core::merkle`. This module stores,
//! signs, exports and verifies.

use std::io::{BufRead, Write};

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use custos_core::audit::{Checkpoint, Entry, hex, unhex};
use custos_core::merkle::{self, Compact, Hash};
use custos_store::{AuditRow, CheckpointRow};
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError, Result, stamp};

/// Builds a stored audit row with its leaf hash.
pub(crate) fn row(entry: Entry) -> AuditRow {
    let leaf = entry.leaf_hash().to_vec();
    AuditRow {
        at: entry.at,
        actor: entry.actor,
        role: entry.role,
        operation: entry.operation,
        purpose: entry.purpose,
        subject_id: entry.subject,
        items: entry.items,
        outcome: entry.outcome,
        policy_version: entry.policy_version,
        leaf_hash: Some(leaf),
    }
}

fn entry_of(row: &AuditRow) -> Entry {
    Entry {
        at: row.at.clone(),
        actor: row.actor.clone(),
        role: row.role.clone(),
        operation: row.operation.clone(),
        purpose: row.purpose.clone(),
        subject: row.subject_id.clone(),
        items: row.items.clone(),
        outcome: row.outcome.clone(),
        policy_version: row.policy_version.clone(),
    }
}

/// A checkpoint with its signature, as served and as saved by auditors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    pub origin: String,
    pub size: u64,
    /// Hex.
    pub root: String,
    pub time: String,
    /// Ed25519 over the checkpoint text, hex.
    pub signature: String,
    /// The log's checkpoint key, hex: pin it out of band.
    pub public_key: String,
}

impl SignedCheckpoint {
    fn checkpoint(&self) -> std::result::Result<Checkpoint, String> {
        Ok(Checkpoint {
            origin: self.origin.clone(),
            size: self.size,
            root: unhex(&self.root).ok_or("the root is not 64 hex digits")?,
            time: self.time.clone(),
        })
    }

    /// Checks the signature under `public_key` (hex of 32 bytes).
    pub fn verify_signature(&self, public_key: &str) -> std::result::Result<(), String> {
        let key = unhex(public_key).ok_or("the public key is not 64 hex digits")?;
        let signature = decode_hex(&self.signature).ok_or("the signature is not hex")?;
        let text = self.checkpoint()?.signed_text();
        UnparsedPublicKey::new(&ED25519, key)
            .verify(text.as_bytes(), &signature)
            .map_err(|_| format!("the signature of the checkpoint of size {} does not verify", self.size))
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    origin: String,
    public_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportEntry {
    seq: u64,
    at: String,
    actor: String,
    role: String,
    operation: String,
    purpose: Option<String>,
    subject: Option<String>,
    items: String,
    outcome: String,
    policy_version: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: SignedCheckpoint,
}

const EXPORT_FORMAT: &str = "custos-audit-log v1";
const PAGE: u32 = 10_000;
/// Leaves per block of the proof cache: a proof reads at most a few blocks,
/// and the cache holds one root per block (32 bytes per 1,024 entries).
const BLOCK: u64 = 1024;

impl Engine {
    fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The checkpoint key, hex.
    pub fn checkpoint_public_key(&self) -> String {
        hex(&self.inner.keyring.checkpoint_public_key())
    }

    /// Fills in the leaf hashes of entries written before the log was a tree.
    pub(crate) async fn backfill_leaves(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            // At start, not for a request: it may wait behind other nodes'
            // batches as long as a scheduled job does.
            let done = self
                .background_job(|tx| {
                    let rows = tx.audit_without_leaf(PAGE)?;
                    for (seq, row) in &rows {
                        tx.set_leaf_hash(*seq, &entry_of(row).leaf_hash())?;
                    }
                    Ok(rows.len() as u64)
                })
                .await?;
            total += done;
            if done < u64::from(PAGE) {
                return Ok(total);
            }
        }
    }

    /// The leaf hashes of block `block` (entries `block*BLOCK + 1 ..`), at
    /// most up to entry `size`.
    async fn block_leaves(&self, block: u64, size: u64) -> Result<Vec<Hash>> {
        let first = block * BLOCK;
        let want = BLOCK.min(size.saturating_sub(first));
        let after = i64::try_from(first).map_err(|_| EngineError::NotFound)?;
        let limit = u32::try_from(want).unwrap_or(u32::MAX);
        let page = self.inner.store.read(move |r| r.audit_leaves(after, limit)).await?;
        let mut out = Vec::with_capacity(page.len());
        for (n, (seq, leaf)) in page.into_iter().enumerate() {
            if seq != after + 1 + n as i64 {
                return Err(EngineError::Integrity(format!("the audit log has a gap before entry {seq}")));
            }
            let leaf = leaf
                .as_deref()
                .and_then(|l| <Hash>::try_from(l).ok())
                .ok_or_else(|| EngineError::Integrity(format!("audit entry {seq} has no leaf hash")))?;
            out.push(leaf);
        }
        if (out.len() as u64) < want {
            return Err(EngineError::NotFound);
        }
        Ok(out)
    }

    /// The roots of the complete blocks below `size`, extending the cache
    /// as the log grows. Entries never change, so a block's root, once
    /// known, holds for good.
    async fn block_roots(&self, size: u64) -> Result<Vec<Hash>> {
        let mut cache = self.inner.audit_blocks.lock().await;
        let complete = size / BLOCK;
        while (cache.len() as u64) < complete {
            let leaves = self.block_leaves(cache.len() as u64, size).await?;
            cache.push(merkle::root(&leaves));
        }
        Ok(cache[..complete as usize].to_vec())
    }

    /// The tree hashes of leaf ranges of the tree of `size` entries, read
    /// through the block cache: only the blocks a range cuts are read.
    /// `NotFound` when the log is shorter (`size` may come from a request).
    async fn range_roots(&self, ranges: &[(u64, u64)], size: u64) -> Result<Vec<Hash>> {
        let len = self.inner.store.read(|r| r.audit_len()).await?;
        if size > len {
            return Err(EngineError::NotFound);
        }
        let roots = self.block_roots(size).await?;
        let mut loaded: std::collections::BTreeMap<u64, Vec<Hash>> = std::collections::BTreeMap::new();
        loop {
            let outcome: std::result::Result<Vec<Hash>, u64> = {
                let lookup = |i: u64| loaded.get(&i).map(Vec::as_slice);
                let blocks = merkle::Blocks { block: BLOCK, roots: &roots, leaves: &lookup };
                ranges.iter().map(|(lo, hi)| blocks.range_root(*lo, *hi)).collect()
            };
            match outcome {
                Ok(hashes) => return Ok(hashes),
                Err(block) if loaded.contains_key(&block) => {
                    return Err(EngineError::Integrity(format!("block {block} of the audit log is short")));
                }
                Err(block) => {
                    let leaves = self.block_leaves(block, size).await?;
                    loaded.insert(block, leaves);
                }
            }
        }
    }

    fn signed(&self, row: &CheckpointRow) -> SignedCheckpoint {
        SignedCheckpoint {
            origin: self.origin().to_owned(),
            size: row.size,
            root: hex(&row.root),
            time: row.time.clone(),
            signature: hex(&row.signature),
            public_key: self.checkpoint_public_key(),
        }
    }

    /// Issues a checkpoint of the whole log as it stands (or returns the
    /// latest one when the log has not grown since).
    pub async fn issue_checkpoint(&self, now: jiff::Timestamp) -> Result<SignedCheckpoint> {
        let (size, latest) = self.inner.store.read(|r| Ok((r.audit_len()?, r.latest_checkpoint()?))).await?;
        if let Some(latest) = latest.filter(|c| c.size == size) {
            return Ok(self.signed(&latest));
        }
        // Never sign a fork: the tree must still contain the latest
        // checkpoint, unchanged (each one was checked the same way against
        // the one before when it was signed).
        let previous = self.inner.store.read(|r| r.latest_checkpoint()).await?;
        let mut ranges = vec![(0, size)];
        if let Some(c) = previous.as_ref().filter(|c| c.size > 0 && c.size <= size) {
            ranges.push((0, c.size));
        }
        let roots = self.range_roots(&ranges, size).await?;
        if let (Some(c), Some(root)) = (previous.as_ref(), roots.get(1))
            && root.as_slice() != c.root.as_slice()
        {
            return Err(EngineError::Integrity(format!(
                "the audit log no longer matches its checkpoint of size {}: refusing to sign a changed history",
                c.size
            )));
        }
        let checkpoint = Checkpoint { origin: self.origin().to_owned(), size, root: roots[0], time: stamp(now) };
        let signature = self.inner.keyring.sign_checkpoint(checkpoint.signed_text().as_bytes());
        let row = CheckpointRow { size, root: checkpoint.root.to_vec(), time: checkpoint.time.clone(), signature };
        let stored = row.clone();
        let inserted = self.write_job(move |tx| tx.insert_checkpoint(&stored)).await;
        match inserted {
            Ok(()) => Ok(self.signed(&row)),
            // Another caller checkpointed the same size first: serve theirs.
            Err(custos_store::StoreError::Conflict(_)) => {
                let existing = self.inner.store.read(|r| r.checkpoints()).await?;
                existing.iter().find(|c| c.size == size).map(|c| self.signed(c)).ok_or(EngineError::NotFound)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The latest checkpoint, if one was issued.
    pub async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>> {
        Ok(self.inner.store.read(|r| r.latest_checkpoint()).await?.map(|c| self.signed(&c)))
    }

    /// Proof that entry `seq` (1-based) is in the tree of `size` entries.
    pub async fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<String>> {
        if seq == 0 || seq > size {
            return Err(EngineError::Invalid(vec![crate::FieldError::new(
                "seq",
                crate::ErrorCode::InvalidFormat,
                "seq must be between 1 and the tree size",
            )]));
        }
        let ranges = merkle::inclusion_ranges(seq - 1, size).map_err(|e| EngineError::Integrity(e.to_string()))?;
        let proof = self.range_roots(&ranges, size).await?;
        Ok(proof.iter().map(|h| hex(h)).collect())
    }

    /// Proof that the tree of `new` entries extends the tree of `old`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<String>> {
        if old == 0 || old > new {
            return Err(EngineError::Invalid(vec![crate::FieldError::new(
                "from",
                crate::ErrorCode::InvalidFormat,
                "from must be between 1 and to",
            )]));
        }
        let ranges = merkle::consistency_ranges(old, new).map_err(|e| EngineError::Integrity(e.to_string()))?;
        let proof = self.range_roots(&ranges, new).await?;
        Ok(proof.iter().map(|h| hex(h)).collect())
    }

    /// Writes the whole log as JSON lines: a header, every entry, every
    /// checkpoint after the entry it covers, and a fresh checkpoint of the
    /// whole log at the end. Returns that final checkpoint.
    pub async fn export_audit(&self, out: &mut (dyn Write + Send), now: jiff::Timestamp) -> Result<SignedCheckpoint> {
        let last = self.issue_checkpoint(now).await?;
        let io = |e: std::io::Error| EngineError::Unavailable(format!("cannot write the export: {e}"));
        let checkpoints = self.inner.store.read(|r| r.checkpoints()).await?;
        let header = Header {
            format: EXPORT_FORMAT.into(),
            origin: self.origin().into(),
            public_key: self.checkpoint_public_key(),
        };
        writeln!(out, "{}", json(&header)).map_err(io)?;
        let mut pending = checkpoints.iter().filter(|c| c.size > 0 && c.size <= last.size).peekable();
        let mut after = 0i64;
        while (after as u64) < last.size {
            let page = self.inner.store.read(move |r| r.audit_page(after, PAGE)).await?;
            if page.is_empty() {
                break;
            }
            for (seq, row) in page {
                if seq as u64 > last.size {
                    break;
                }
                let line = ExportEntry {
                    seq: seq as u64,
                    at: row.at,
                    actor: row.actor,
                    role: row.role,
                    operation: row.operation,
                    purpose: row.purpose,
                    subject: row.subject_id,
                    items: row.items,
                    outcome: row.outcome,
                    policy_version: row.policy_version,
                };
                writeln!(out, "{}", json(&line)).map_err(io)?;
                while let Some(c) = pending.next_if(|c| c.size == seq as u64) {
                    writeln!(out, "{}", json(&CheckpointLine { checkpoint: self.signed(c) })).map_err(io)?;
                }
                after = seq;
            }
        }
        out.flush().map_err(io)?;
        Ok(last)
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub checkpoints: u64,
    pub root: String,
}

/// Where and why a verification failed: `line` is the line of the export
/// (1-based), `entry` the sequence number concerned, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}: {}{message}", entry.map(|e| format!("entry {e}: ")).unwrap_or_default())]
pub struct VerifyFailure {
    pub line: u64,
    pub entry: Option<u64>,
    pub message: String,
}

/// Checks an exported log offline: the shape of every line, the sequence
/// of entries, every checkpoint's root and signature, the final checkpoint
/// covering every entry, and consistency with a checkpoint the auditor saved
/// earlier (its root must be the root of the log's first `size` entries).
///
/// `pinned_key` is the checkpoint key the auditor trusts; without it the
/// saved checkpoint's key is trusted, and without that the export's own.
pub fn verify_export(
    input: &mut dyn BufRead,
    saved: Option<&SignedCheckpoint>,
    pinned_key: Option<&str>,
) -> std::result::Result<Verified, VerifyFailure> {
    let fail = |line: u64, entry: Option<u64>, message: String| VerifyFailure { line, entry, message };
    let mut lines = input.lines();
    let header_text = match lines.next() {
        Some(Ok(t)) => t,
        _ => return Err(fail(1, None, "the export is empty or unreadable".into())),
    };
    let header: Header =
        serde_json::from_str(&header_text).map_err(|e| fail(1, None, format!("the header is not valid: {e}")))?;
    if header.format != EXPORT_FORMAT {
        return Err(fail(1, None, format!("unknown format {:?} (expected {EXPORT_FORMAT:?})", header.format)));
    }
    let key = pinned_key
        .map(str::to_owned)
        .or_else(|| saved.map(|s| s.public_key.clone()))
        .unwrap_or(header.public_key.clone());
    if header.public_key != key {
        return Err(fail(1, None, "the export is signed with another key than the one trusted".into()));
    }
    if let Some(saved) = saved {
        saved.verify_signature(&key).map_err(|m| fail(0, None, format!("the saved checkpoint: {m}")))?;
        if saved.origin != header.origin {
            return Err(fail(
                1,
                None,
                format!("the export is of log {:?}, the saved checkpoint of {:?}", header.origin, saved.origin),
            ));
        }
    }

    let mut compact = Compact::new();
    let mut checkpoints = 0u64;
    let mut last_checkpoint: Option<u64> = None;
    let mut last_good: u64 = 0;
    let mut number = 1u64;
    for line in lines {
        number += 1;
        let text = line.map_err(|e| fail(number, None, format!("unreadable: {e}")))?;
        if let Ok(entry) = serde_json::from_str::<ExportEntry>(&text) {
            let expected = compact.size() + 1;
            if entry.seq != expected {
                return Err(fail(
                    number,
                    Some(entry.seq),
                    format!(
                        "expected entry {expected} here, found entry {}: an entry was removed, inserted or moved",
                        entry.seq
                    ),
                ));
            }
            let leaf = Entry {
                at: entry.at,
                actor: entry.actor,
                role: entry.role,
                operation: entry.operation,
                purpose: entry.purpose,
                subject: entry.subject,
                items: entry.items,
                outcome: entry.outcome,
                policy_version: entry.policy_version,
            }
            .leaf_hash();
            compact.push(leaf);
            if let Some(saved) = saved.filter(|s| s.size == compact.size()) {
                if hex(&compact.root()) != saved.root {
                    return Err(fail(
                        number,
                        Some(entry.seq),
                        format!(
                            "entries 1..={} do not match the saved checkpoint of size {} (a change after entry {last_good}, at or before this one)",
                            saved.size, saved.size
                        ),
                    ));
                }
                last_good = saved.size;
            }
        } else if let Ok(c) = serde_json::from_str::<CheckpointLine>(&text) {
            let c = c.checkpoint;
            checkpoints += 1;
            c.verify_signature(&key).map_err(|m| fail(number, None, m))?;
            if c.origin != header.origin {
                return Err(fail(number, None, "a checkpoint of another log".into()));
            }
            if c.size != compact.size() {
                return Err(fail(
                    number,
                    None,
                    format!("a checkpoint of size {} after {} entries", c.size, compact.size()),
                ));
            }
            if hex(&compact.root()) != c.root {
                return Err(fail(
                    number,
                    None,
                    format!(
                        "the entries do not match the signed checkpoint of size {}: something changed in entries {}..={}",
                        c.size,
                        last_good + 1,
                        c.size
                    ),
                ));
            }
            last_good = c.size;
            last_checkpoint = Some(c.size);
        } else {
            return Err(fail(number, Some(compact.size() + 1), "the line is neither an entry nor a checkpoint".into()));
        }
    }
    if let Some(saved) = saved
        && compact.size() < saved.size
    {
        return Err(fail(
            number,
            None,
            format!(
                "the log holds {} entries, fewer than the {} of the saved checkpoint: it was truncated or rolled back",
                compact.size(),
                saved.size
            ),
        ));
    }
    if last_checkpoint != Some(compact.size()) {
        return Err(fail(
            number,
            Some(compact.size()),
            "the export does not end with a signed checkpoint of all its entries: entries were added or removed at the end".into(),
        ));
    }
    Ok(Verified { entries: compact.size(), checkpoints, root: hex(&compact.root()) })
}
