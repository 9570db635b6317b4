//! The audit log's formats, as pure functions: the canonical bytes of an
//! entry (what a Merkle leaf hashes), and the text of a checkpoint (what is
//! signed). The engine writes them, the offline verifier reads them; both
//! use these functions, so the two cannot disagree.
//!
//! An entry's position is not part of its leaf: the position *is* the leaf
//! index (sequence number minus one), fixed by the tree itself.

use std::fmt::Write as _;

use crate::merkle::{Hash, leaf_hash};

/// One audit entry, as logged. Never personal data: subjects are
/// pseudonymous ids, items are item ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub operation: String,
    pub purpose: Option<String>,
    pub subject: Option<String>,
    /// Item ids, comma-separated.
    pub items: String,
    pub outcome: String,
    pub policy_version: String,
}

const ENTRY_DOMAIN: &[u8] = b"custos-audit-entry v1";

impl Entry {
    /// The canonical encoding: a domain tag, then each field as a 4-byte
    /// big-endian length and its bytes; an absent optional field is a single
    /// 0xFF byte, which no length prefix starts with (lengths are capped).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.outcome.len() + self.items.len());
        out.extend_from_slice(ENTRY_DOMAIN);
        let mut field = |value: Option<&str>| match value {
            Some(v) => {
                let len = u32::try_from(v.len()).unwrap_or(u32::MAX) & 0x7FFF_FFFF;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&v.as_bytes()[..len as usize]);
            }
            None => out.push(0xFF),
        };
        field(Some(&self.at));
        field(Some(&self.actor));
        field(Some(&self.role));
        field(Some(&self.operation));
        field(self.purpose.as_deref());
        field(self.subject.as_deref());
        field(Some(&self.items));
        field(Some(&self.outcome));
        field(Some(&self.policy_version));
        out
    }

    /// The entry's Merkle leaf hash.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.canonical_bytes())
    }
}

/// A checkpoint: the state of the log at one size, as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log (`custos:<instance id>`), so a checkpoint of one log
    /// cannot pass for another's.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// When it was issued (RFC 3339).
    pub time: String,
}

const CHECKPOINT_HEADER: &str = "custos-audit-checkpoint v1";

impl Checkpoint {
    /// The exact bytes that are signed: five lines, each ending in `\n`.
    pub fn signed_text(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{CHECKPOINT_HEADER}\norigin {}\nsize {}\nroot {}\ntime {}\n",
            self.origin,
            self.size,
            hex(&self.root),
            self.time
        );
        out
    }

    /// Reads the text `signed_text` writes; anything else is refused.
    pub fn parse_signed_text(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.split_terminator('\n');
        if lines.next() != Some(CHECKPOINT_HEADER) {
            return Err(format!("a checkpoint starts with the line {CHECKPOINT_HEADER:?}"));
        }
        let mut field = |name: &str| -> Result<String, String> {
            let line = lines.next().ok_or_else(|| format!("the checkpoint has no {name} line"))?;
            line.strip_prefix(&format!("{name} "))
                .map(str::to_owned)
                .ok_or_else(|| format!("expected the {name} line, found {line:?}"))
        };
        let origin = field("origin")?;
        let size = field("size")?.parse().map_err(|_| "the size is not a whole number".to_owned())?;
        let root = unhex(&field("root")?).ok_or_else(|| "the root is not 64 hex digits".to_owned())?;
        let time = field("time")?;
        if lines.next().is_some() || !text.ends_with('\n') {
            return Err("the checkpoint has extra text".into());
        }
        Ok(Checkpoint { origin, size, root, time })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// 64 lower-case hex digits → a hash.
pub fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = digit(chunk[0])? << 4 | digit(chunk[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            at: "2024-06-01T00:00:00Z".into(),
            actor: "api_key:abc".into(),
            role: "platform_api".into(),
            operation: "read".into(),
            purpose: Some("member_management".into()),
            subject: Some("sub_1".into()),
            items: "name,email".into(),
            outcome: "allowed".into(),
            policy_version: "2023-02-21".into(),
        }
    }

    #[test]
    fn every_field_changes_the_leaf() {
        let base = entry().leaf_hash();
        let variants: Vec<Entry> = vec![
            Entry { at: "2024-06-01T00:00:01Z".into(), ..entry() },
            Entry { actor: "api_key:abd".into(), ..entry() },
            Entry { role: "service_api".into(), ..entry() },
            Entry { operation: "lookup".into(), ..entry() },
            Entry { purpose: None, ..entry() },
            Entry { purpose: Some(String::new()), ..entry() },
            Entry { subject: None, ..entry() },
            Entry { items: "name".into(), ..entry() },
            Entry { outcome: "denied".into(), ..entry() },
            Entry { policy_version: "2024".into(), ..entry() },
            // Moving a boundary between fields changes the leaf too.
            Entry { actor: "api_key:ab".into(), role: "cplatform_api".into(), ..entry() },
        ];
        for v in variants {
            assert_ne!(v.leaf_hash(), base, "{v:?}");
        }
        assert_ne!(
            Entry { purpose: None, ..entry() }.leaf_hash(),
            Entry { purpose: Some(String::new()), ..entry() }.leaf_hash()
        );
    }

    #[test]
    fn checkpoint_text_round_trips_and_refuses_anything_else() {
        let c =
            Checkpoint { origin: "custos:1234".into(), size: 42, root: [7u8; 32], time: "2024-06-01T00:00:00Z".into() };
        let text = c.signed_text();
        assert_eq!(Checkpoint::parse_signed_text(&text).unwrap(), c);
        for bad in [
            text.replace("v1", "v2"),
            text.replace("size 42", "size -1"),
            text.replace("root 07", "root zz"),
            format!("{text}extra\n"),
            text.trim_end().to_owned(),
            String::new(),
        ] {
            assert!(Checkpoint::parse_signed_text(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let h = [0xABu8; 32];
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert_eq!(unhex("AB"), None);
        assert_eq!(unhex(&"G".repeat(64)), None);
    }
}
