//! The verifiable audit log (issue 4): its entries are the leaves of an
//! RFC 9162 Merkle tree, signed checkpoints fix the tree's size and root, and
//! an auditor checks an exported log offline.
//!
//! What this file proves:
//!
//! - the proof endpoints serve inclusion and consistency proofs that verify
//!   with `custos_core::merkle` against the roots of signed checkpoints, and
//!   refuse bad parameters, service keys and anonymous callers with
//!   problem+json; a checkpoint of an unchanged log is the same checkpoint;
//! - `verify_export` raises no false alarm on an untouched export and refuses
//!   every one of thousands of random single modifications (change, delete,
//!   swap, truncate, insert, forge, damaged checkpoints, damaged header, roll
//!   back to an older copy) against the auditor's saved checkpoint of the
//!   final size, reporting the damage no later than the first signed
//!   statement that covers it; against a saved checkpoint of a middle size, or
//!   a pinned key alone, it refuses exactly what such a checkpoint can expose;
//! - `custos audit checkpoint | export | verify | public-key` do the same end
//!   to end with the real binary;
//! - entries of a database from before the tree get their leaf hashes at the
//!   next open, and the log still verifies against a checkpoint taken before.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::{Command, Output};

use custos_core::audit::{Entry, hex, unhex};
use custos_core::merkle::{self, Hash, verify_consistency, verify_inclusion};
use custos_engine::{SignedCheckpoint, Verified, VerifyFailure, verify_export};
use serde_json::{Value, json};

use crate::kit::*;
use crate::peek::{Db, Peek};
use crate::support::{Scratch, TestApp, start_time};

// --- helpers ---------------------------------------------------------------

/// A signed-up business operator: id and e-mail, for reads and look-ups.
struct Person {
    id: String,
    email: String,
}

async fn people(app: &TestApp, n: u16) -> Vec<Person> {
    let mut out = Vec::new();
    for i in 0..n {
        let email = format!("auditee{i}@example.com");
        let id = app.business_operator(&email, &format!("+82 10 7000 {i:04}")).await;
        out.push(Person { id, email });
    }
    out
}

async fn audit_len(app: &TestApp) -> u64 {
    app.engine.metrics().await.unwrap().audit_entries
}

/// One audited request of a few kinds (read, read of one item, look-up,
/// look-up that finds nobody): each appends exactly one entry.
async fn one_entry(app: &TestApp, people: &[Person], step: usize) {
    let person = &people[step % people.len()];
    let read = format!("/v1/subjects/{}?purpose=member_management", person.id);
    let lookup = |value: &str| json!({"item": "email", "value": value, "purpose": "member_management"});
    match step % 4 {
        0 => {
            call(app, "GET", &read, Some(&app.key), None).await.expect(200);
        }
        1 => {
            call(app, "GET", &format!("{read}&items=email"), Some(&app.key), None).await.expect(200);
        }
        2 => {
            call(app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup(&person.email))).await.expect(200);
        }
        _ => {
            let nobody = lookup(&format!("nobody{step}@example.com"));
            call(app, "POST", "/v1/lookup", Some(&app.key), Some(&nobody)).await.problem(404, "not_found");
        }
    }
}

/// Adds audited requests until the log holds exactly `size` entries.
async fn grow_to(app: &TestApp, people: &[Person], size: u64) {
    let mut len = audit_len(app).await;
    assert!(len <= size, "the log already holds {len} entries, more than {size}");
    while len < size {
        one_entry(app, people, len as usize).await;
        let now = audit_len(app).await;
        assert_eq!(now, len + 1, "one request, one audit entry");
        len = now;
    }
}

fn checkpoint_of(body: &Value) -> SignedCheckpoint {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("not a signed checkpoint ({e}): {body}"))
}

async fn post_checkpoint(app: &TestApp) -> SignedCheckpoint {
    checkpoint_of(call(app, "POST", "/v1/audit/checkpoint", Some(&app.key), None).await.expect(200))
}

async fn get_checkpoint(app: &TestApp) -> SignedCheckpoint {
    checkpoint_of(call(app, "GET", "/v1/audit/checkpoint", Some(&app.key), None).await.expect(200))
}

async fn export(app: &TestApp) -> (Vec<u8>, SignedCheckpoint) {
    let mut out = Vec::new();
    let last = app.engine.export_audit(&mut out, custos_server::clock::Clock::now(&*app.clock)).await.unwrap();
    (out, last)
}

/// The entries of an export, in order, as the leaves hash them.
fn entries(export: &[u8]) -> Vec<(u64, Entry)> {
    let text = std::str::from_utf8(export).unwrap();
    let string = |v: &Value| v.as_str().unwrap().to_owned();
    let optional = |v: &Value| v.as_str().map(str::to_owned);
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v.get("seq").is_some())
        .map(|v| {
            let entry = Entry {
                at: string(&v["at"]),
                actor: string(&v["actor"]),
                role: string(&v["role"]),
                operation: string(&v["operation"]),
                purpose: optional(&v["purpose"]),
                subject: optional(&v["subject"]),
                items: string(&v["items"]),
                outcome: string(&v["outcome"]),
                policy_version: string(&v["policy_version"]),
            };
            (v["seq"].as_u64().unwrap(), entry)
        })
        .collect()
}

/// The leaf hashes of the whole log, from an export.
async fn leaves(app: &TestApp) -> Vec<Hash> {
    let entries = entries(&export(app).await.0);
    for (i, (seq, _)) in entries.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "the export lists entries in order");
    }
    entries.iter().map(|(_, e)| e.leaf_hash()).collect()
}

fn hash(s: &str) -> Hash {
    unhex(s).unwrap_or_else(|| panic!("not a hash: {s:?}"))
}

fn hashes(proof: &Value) -> Vec<Hash> {
    proof.as_array().unwrap().iter().map(|h| hash(h.as_str().unwrap())).collect()
}

fn verify(export: &[u8], saved: Option<&SignedCheckpoint>, key: Option<&str>) -> Result<Verified, VerifyFailure> {
    verify_export(&mut std::io::Cursor::new(export), saved, key)
}

fn later(hours: i64) -> jiff::Timestamp {
    start_time() + jiff::SignedDuration::from_hours(hours)
}

// --- 1. checkpoints and proofs over HTTP ------------------------------------

#[tokio::test]
async fn proofs_verify_against_the_roots_of_signed_checkpoints() {
    let app = TestApp::new("audit-proofs").await;
    let key = app.engine.checkpoint_public_key();
    call(&app, "GET", "/v1/audit/checkpoint", Some(&app.key), None).await.problem(404, "not_found");

    let people = people(&app, 4).await;
    grow_to(&app, &people, 50).await;
    let first = post_checkpoint(&app).await;
    assert_eq!((first.size, first.time.as_str(), first.public_key.as_str()), (50, "2024-06-01T00:00:00Z", &*key));
    assert!(first.origin.starts_with("custos:"), "{first:?}");
    first.verify_signature(&key).unwrap();
    assert_eq!(get_checkpoint(&app).await, first);

    // The signature covers size, root, time and origin, under this key only.
    let other_key = TestApp::new("audit-proofs-other").await.engine.checkpoint_public_key();
    assert_ne!(other_key, key);
    assert!(first.verify_signature(&other_key).is_err());
    let altered = [
        SignedCheckpoint { size: 49, ..first.clone() },
        SignedCheckpoint { root: hex(&[0u8; 32]), ..first.clone() },
        SignedCheckpoint { time: "2024-06-01T00:00:01Z".into(), ..first.clone() },
        SignedCheckpoint { origin: "custos:another".into(), ..first.clone() },
    ];
    for c in altered {
        assert!(c.verify_signature(&key).is_err(), "{c:?}");
    }

    // An unchanged log is checkpointed once: later requests get the same one.
    app.clock.set(later(1));
    assert_eq!(post_checkpoint(&app).await, first, "no new checkpoint of an unchanged log");
    assert_eq!(get_checkpoint(&app).await, first);

    let leaves = leaves(&app).await;
    assert_eq!(leaves.len(), 50);
    assert_eq!(hex(&merkle::root(&leaves)), first.root, "the root is the RFC 9162 hash of the entries");

    // Inclusion: every position class of a tree of 50 (first, last, edges of
    // the perfect subtrees of 32 and 16, the lone right leaves).
    let root = hash(&first.root);
    for seq in [1u64, 2, 16, 17, 31, 32, 33, 48, 49, 50] {
        let answer =
            call(&app, "GET", &format!("/v1/audit/proof/inclusion?seq={seq}&size=50"), Some(&app.key), None).await;
        let body = answer.expect(200);
        assert_eq!((body["seq"].as_u64(), body["size"].as_u64()), (Some(seq), Some(50)));
        let proof = hashes(&body["proof"]);
        let index = seq - 1;
        verify_inclusion(&leaves[index as usize], index, 50, &proof, &root)
            .unwrap_or_else(|e| panic!("entry {seq}: {e}"));
        // The proof binds this entry at this place: not its neighbour, not
        // another place, not another root.
        let neighbour = &leaves[(index as usize + 1) % 50];
        assert!(verify_inclusion(neighbour, index, 50, &proof, &root).is_err(), "entry {seq}");
        assert!(verify_inclusion(&leaves[index as usize], (index + 1) % 50, 50, &proof, &root).is_err());
        assert!(verify_inclusion(&leaves[index as usize], index, 50, &proof, &merkle::EMPTY_ROOT).is_err());
    }
    // A proof for a smaller tree verifies against that tree's root.
    for (seq, size) in [(1u64, 1u64), (5, 7), (20, 32), (33, 33), (12, 49)] {
        let path = format!("/v1/audit/proof/inclusion?seq={seq}&size={size}");
        let proof = hashes(&call(&app, "GET", &path, Some(&app.key), None).await.expect(200)["proof"]);
        let root = merkle::root(&leaves[..size as usize]);
        verify_inclusion(&leaves[seq as usize - 1], seq - 1, size, &proof, &root)
            .unwrap_or_else(|e| panic!("entry {seq} of {size}: {e}"));
    }

    // The log grows; a second checkpoint extends the first.
    grow_to(&app, &people, 83).await;
    app.clock.set(later(2));
    let second = post_checkpoint(&app).await;
    assert_eq!((second.size, second.time.as_str()), (83, "2024-06-01T02:00:00Z"));
    second.verify_signature(&key).unwrap();
    assert_eq!(second.origin, first.origin);
    assert_eq!(get_checkpoint(&app).await, second, "GET serves the latest checkpoint");
    let grown = self::leaves(&app).await;
    assert_eq!(grown[..50], leaves[..], "old entries never change");
    assert_eq!(hex(&merkle::root(&grown)), second.root);

    let (old_root, new_root) = (hash(&first.root), hash(&second.root));
    let path = "/v1/audit/proof/consistency?from=50&to=83";
    let body = call(&app, "GET", path, Some(&app.key), None).await.expect(200).clone();
    assert_eq!((body["from"].as_u64(), body["to"].as_u64()), (Some(50), Some(83)));
    let proof = hashes(&body["proof"]);
    verify_consistency(50, 83, &old_root, &new_root, &proof).unwrap();
    assert!(verify_consistency(50, 83, &new_root, &new_root, &proof).is_err(), "another old root");
    assert!(verify_consistency(50, 83, &old_root, &old_root, &proof).is_err(), "another new root");
    assert!(verify_consistency(49, 83, &old_root, &new_root, &proof).is_err(), "another old size");
    for (from, to) in [(1u64, 83u64), (32, 83), (33, 50), (64, 83), (50, 50), (83, 83)] {
        let path = format!("/v1/audit/proof/consistency?from={from}&to={to}");
        let proof = hashes(&call(&app, "GET", &path, Some(&app.key), None).await.expect(200)["proof"]);
        let (old, new) = (merkle::root(&grown[..from as usize]), merkle::root(&grown[..to as usize]));
        verify_consistency(from, to, &old, &new, &proof).unwrap_or_else(|e| panic!("{from} → {to}: {e}"));
        assert_eq!(proof.is_empty(), from == to, "{from} → {to}");
    }

    // Bad parameters: problem+json, never a proof. The log holds 83 entries.
    // (path, status, problem code)
    let bad: &[(&str, u16, &str)] = &[
        ("/v1/audit/proof/inclusion?seq=0&size=50", 422, "invalid"),
        ("/v1/audit/proof/inclusion?seq=51&size=50", 422, "invalid"),
        ("/v1/audit/proof/inclusion?seq=1&size=0", 422, "invalid"),
        ("/v1/audit/proof/inclusion?seq=1&size=84", 404, "not_found"),
        ("/v1/audit/proof/inclusion?seq=84&size=84", 404, "not_found"),
        ("/v1/audit/proof/inclusion?seq=1&size=100000", 404, "not_found"),
        ("/v1/audit/proof/inclusion?seq=1", 400, "bad_request"),
        ("/v1/audit/proof/inclusion?size=50", 400, "bad_request"),
        ("/v1/audit/proof/inclusion?seq=-1&size=50", 400, "bad_request"),
        ("/v1/audit/proof/inclusion?seq=one&size=50", 400, "bad_request"),
        ("/v1/audit/proof/inclusion?seq=1&size=50&extra=1", 400, "bad_request"),
        ("/v1/audit/proof/consistency?from=51&to=50", 422, "invalid"),
        ("/v1/audit/proof/consistency?from=0&to=50", 422, "invalid"),
        ("/v1/audit/proof/consistency?from=50&to=84", 404, "not_found"),
        ("/v1/audit/proof/consistency?from=84&to=84", 404, "not_found"),
        ("/v1/audit/proof/consistency?from=50", 400, "bad_request"),
        ("/v1/audit/proof/consistency?from=50&to=1e3", 400, "bad_request"),
    ];
    for (path, status, code) in bad {
        let answer = call(&app, "GET", path, Some(&app.key), None).await;
        assert!(answer.body.get("proof").is_none(), "{path}: {}", answer.text);
        answer.problem(*status, code);
    }
    let answer = call(&app, "GET", "/v1/audit/proof/inclusion?seq=0&size=50", Some(&app.key), None).await;
    answer.only_fields(&[("seq", "invalid_format")]);
    let answer = call(&app, "GET", "/v1/audit/proof/consistency?from=51&to=50", Some(&app.key), None).await;
    answer.only_fields(&[("from", "invalid_format")]);

    // Platform keys only; no key, or a wrong one, is 401.
    let service = app.service("audit-service@example.com").await;
    let service_key = app.key_for(Some(&service), &["member_management"]).await;
    let endpoints = [
        ("GET", "/v1/audit/checkpoint"),
        ("POST", "/v1/audit/checkpoint"),
        ("GET", "/v1/audit/proof/inclusion?seq=1&size=50"),
        ("GET", "/v1/audit/proof/consistency?from=50&to=83"),
    ];
    for (method, path) in endpoints {
        call(&app, method, path, Some(&service_key), None).await.problem(403, "forbidden");
        call(&app, method, path, None, None).await.problem(401, "unauthenticated");
        call(&app, method, path, Some("ck_nope_nope"), None).await.problem(401, "unauthenticated");
    }
    assert_eq!(get_checkpoint(&app).await, second, "refused requests issue no checkpoint");
}

/// Proofs are answered from a cache of block roots (1,024 leaves each) and
/// the few blocks a proof cuts: across block edges they must equal proofs
/// over every leaf.
#[tokio::test]
async fn proofs_across_block_edges_verify() {
    let app = TestApp::new("audit-blocks").await;
    let people = people(&app, 8).await;
    grow_to(&app, &people, 1030).await;
    let first = post_checkpoint(&app).await;
    grow_to(&app, &people, 2100).await;
    app.clock.set(later(1));
    let second = post_checkpoint(&app).await;
    let leaves = leaves(&app).await;
    assert_eq!(hex(&merkle::root(&leaves[..1030])), first.root);
    assert_eq!(hex(&merkle::root(&leaves[..2100])), second.root);
    let inclusions = [
        (1u64, 2100u64),
        (1024, 2100),
        (1025, 2100),
        (1030, 2100),
        (2048, 2100),
        (2049, 2100),
        (2100, 2100),
        (1025, 1030),
        (1024, 1024),
        (700, 2049),
    ];
    for (seq, size) in inclusions {
        let path = format!("/v1/audit/proof/inclusion?seq={seq}&size={size}");
        let proof = hashes(&call(&app, "GET", &path, Some(&app.key), None).await.expect(200)["proof"]);
        let root = merkle::root(&leaves[..size as usize]);
        verify_inclusion(&leaves[seq as usize - 1], seq - 1, size, &proof, &root)
            .unwrap_or_else(|e| panic!("entry {seq} of {size}: {e}"));
    }
    for (old, new) in [(1030u64, 2100u64), (1024, 2100), (1025, 2048), (2048, 2100), (1, 2100), (1023, 1025)] {
        let path = format!("/v1/audit/proof/consistency?from={old}&to={new}");
        let proof = hashes(&call(&app, "GET", &path, Some(&app.key), None).await.expect(200)["proof"]);
        let (old_root, new_root) = (merkle::root(&leaves[..old as usize]), merkle::root(&leaves[..new as usize]));
        verify_consistency(old, new, &old_root, &new_root, &proof).unwrap_or_else(|e| panic!("{old} → {new}: {e}"));
    }
}

/// Sizes beyond the log are 404 however large: the engine must not reserve
/// memory for the leaves a caller merely names.
#[tokio::test]
async fn huge_tree_sizes_are_not_found_not_a_crash() {
    let app = TestApp::new("audit-huge-sizes").await;
    for path in [
        format!("/v1/audit/proof/inclusion?seq=1&size={}", u64::MAX),
        format!("/v1/audit/proof/inclusion?seq=1&size={}", 1u64 << 58),
        format!("/v1/audit/proof/consistency?from=1&to={}", u64::MAX),
    ] {
        call(&app, "GET", &path, Some(&app.key), None).await.problem(404, "not_found");
    }
}

// --- 2. the tamper test -----------------------------------------------------

/// xorshift64: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What a line of an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Header,
    Entry(u64),
    Checkpoint(u64),
}

fn line_kind(line: &str) -> Line {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    match (v.get("seq"), v.get("checkpoint")) {
        (Some(seq), _) => Line::Entry(seq.as_u64().unwrap()),
        (None, Some(c)) => Line::Checkpoint(c["size"].as_u64().unwrap()),
        (None, None) => Line::Header,
    }
}

fn lines_of(export: &[u8]) -> Vec<String> {
    std::str::from_utf8(export).unwrap().lines().map(str::to_owned).collect()
}

fn bytes_of(lines: &[String]) -> Vec<u8> {
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// One character of one field of an entry (a `null` becomes `""`).
    ChangeField,
    /// An entry's sequence number.
    ChangeSeq,
    DeleteEntry,
    SwapEntries,
    /// Cut after a line, dropping everything after it.
    TruncateDroppingCheckpoints,
    /// Cut entries from the end but keep the final checkpoint.
    TruncateKeepingCheckpoint,
    InsertCopy,
    InsertForged,
    CheckpointRoot,
    CheckpointSize,
    CheckpointSignature,
    CheckpointTime,
    /// One character of the header's format, origin or key.
    Header,
    /// An export taken earlier, with fewer entries.
    RollBack,
}

const KINDS: [Kind; 14] = [
    Kind::ChangeField,
    Kind::ChangeSeq,
    Kind::DeleteEntry,
    Kind::SwapEntries,
    Kind::TruncateDroppingCheckpoints,
    Kind::TruncateKeepingCheckpoint,
    Kind::InsertCopy,
    Kind::InsertForged,
    Kind::CheckpointRoot,
    Kind::CheckpointSize,
    Kind::CheckpointSignature,
    Kind::CheckpointTime,
    Kind::Header,
    Kind::RollBack,
];

/// A damaged export and what a verifier should say about it.
struct Mutant {
    kind: Kind,
    lines: Vec<String>,
    /// What was done, for failure messages.
    what: String,
    /// Where the failure must be reported (lines of the mutant, 1-based):
    /// from the first damaged line to the first signed statement covering it.
    report: RangeInclusive<u64>,
    /// The entry whose content changed: the failure must name a range of
    /// entries holding it.
    changed: Option<u64>,
    /// The entry number the failure must name, when it names one for sure.
    entry: Option<u64>,
    /// `Some(size)` when the mutant is a whole, well-formed log of `size`
    /// entries ending in its own signed checkpoint: a true prefix of the log
    /// (a truncation at a checkpoint, or an older copy). Nothing inside it is
    /// wrong, so only a saved checkpoint of a larger size can expose it.
    prefix: Option<u64>,
}

impl Mutant {
    /// Whether a verifier holding `saved` can tell this export is not the log.
    fn detectable(&self, saved: Option<&SignedCheckpoint>) -> bool {
        match self.prefix {
            Some(size) => saved.is_some_and(|s| size < s.size),
            None => true,
        }
    }
}

/// The export, indexed.
struct Log {
    lines: Vec<String>,
    entries: Vec<usize>,
    checkpoints: Vec<usize>,
    /// A subject id of the log, for forged entries.
    subject: String,
}

impl Log {
    fn new(export: &[u8]) -> Log {
        let lines = lines_of(export);
        let kinds: Vec<Line> = lines.iter().map(|l| line_kind(l)).collect();
        let entries = (0..lines.len()).filter(|&i| matches!(kinds[i], Line::Entry(_))).collect();
        let checkpoints = (0..lines.len()).filter(|&i| matches!(kinds[i], Line::Checkpoint(_))).collect();
        let subject = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| v.get("subject").and_then(Value::as_str).map(str::to_owned))
            .unwrap();
        Log { lines, entries, checkpoints, subject }
    }

    /// The 1-based number of the first checkpoint line at or after index
    /// `from` of `lines`.
    fn next_checkpoint(lines: &[String], from: usize) -> u64 {
        let i = (from..lines.len()).find(|&i| matches!(line_kind(&lines[i]), Line::Checkpoint(_))).unwrap();
        i as u64 + 1
    }

    fn mutate(&self, kind: Kind, rng: &mut Rng, older: &[Vec<u8>]) -> Mutant {
        let mut lines = self.lines.clone();
        let n = lines.len();
        let m = |what: String, report: RangeInclusive<u64>, lines: Vec<String>| Mutant {
            kind,
            lines,
            what,
            report,
            changed: None,
            entry: None,
            prefix: None,
        };
        match kind {
            Kind::ChangeField => {
                let i = *rng.pick(&self.entries);
                let field = *rng.pick(&[
                    "at",
                    "actor",
                    "role",
                    "operation",
                    "purpose",
                    "subject",
                    "items",
                    "outcome",
                    "policy_version",
                ]);
                let Line::Entry(seq) = line_kind(&lines[i]) else { unreachable!() };
                lines[i] = change_field(&lines[i], field, rng);
                let to = Log::next_checkpoint(&lines, i);
                let mut out = m(format!("changed {field} of entry {seq} (line {})", i + 1), i as u64 + 1..=to, lines);
                out.changed = Some(seq);
                out
            }
            Kind::ChangeSeq => {
                let i = *rng.pick(&self.entries);
                let Line::Entry(seq) = line_kind(&lines[i]) else { unreachable!() };
                let new = loop {
                    let candidate = match rng.below(4) {
                        0 => seq + 1,
                        1 => seq - 1,
                        2 => rng.next() % (2 * self.entries.len() as u64),
                        _ => rng.next(),
                    };
                    if candidate != seq {
                        break candidate;
                    }
                };
                lines[i] = lines[i].replacen(&format!("\"seq\":{seq},"), &format!("\"seq\":{new},"), 1);
                let line = i as u64 + 1;
                let mut out = m(format!("renumbered entry {seq} as {new} (line {line})"), line..=line, lines);
                out.entry = Some(new);
                out
            }
            Kind::DeleteEntry => {
                let i = *rng.pick(&self.entries);
                lines.remove(i);
                m(format!("deleted line {}", i + 1), i as u64 + 1..=i as u64 + 1, lines)
            }
            Kind::SwapEntries => {
                let (a, b) = loop {
                    let (a, b) = (*rng.pick(&self.entries), *rng.pick(&self.entries));
                    if a != b {
                        break (a.min(b), a.max(b));
                    }
                };
                lines.swap(a, b);
                m(format!("swapped lines {} and {}", a + 1, b + 1), a as u64 + 1..=a as u64 + 1, lines)
            }
            Kind::TruncateDroppingCheckpoints => {
                // A third of the cuts fall right after a checkpoint (not the
                // final one): the prefixes only a saved checkpoint exposes.
                let at_checkpoint = &self.checkpoints[..self.checkpoints.len() - 1];
                let keep = if rng.below(3) == 0 { *rng.pick(at_checkpoint) + 1 } else { 1 + rng.below(n - 1) };
                lines.truncate(keep);
                let prefix = match line_kind(&lines[keep - 1]) {
                    Line::Checkpoint(size) => Some(size),
                    _ => None,
                };
                let mut out = m(format!("cut after line {keep}"), keep as u64..=keep as u64, lines);
                out.prefix = prefix;
                out
            }
            Kind::TruncateKeepingCheckpoint => {
                let last_entry = *self.entries.last().unwrap();
                let keep = 1 + rng.below(last_entry);
                let tail: Vec<String> = lines[last_entry + 1..].to_vec();
                lines.truncate(keep);
                lines.extend(tail);
                let line = keep as u64 + 1;
                m(
                    format!("cut lines {}..={} before the final checkpoint", keep + 1, last_entry + 1),
                    line..=line,
                    lines,
                )
            }
            Kind::InsertCopy => {
                let copy = lines[*rng.pick(&self.entries)].clone();
                let at = rng.below(n + 1);
                lines.insert(at, copy);
                let line = at as u64 + 1;
                m(format!("inserted a copy of an entry as line {line}"), line..=line + 1, lines)
            }
            Kind::InsertForged => {
                let at = rng.below(n + 1);
                let seq = self.entries.iter().filter(|&&i| i < at).count() as u64 + 1;
                let forged = json!({
                    "seq": seq, "at": "2024-06-01T00:30:00Z", "actor": "api_key:forged", "role": "platform_api",
                    "operation": "read", "purpose": "member_management", "subject": self.subject,
                    "items": "name", "outcome": "allowed", "policy_version": "2023-02-21"
                });
                lines.insert(at, forged.to_string());
                let line = at as u64 + 1;
                m(format!("inserted a forged entry {seq} as line {line}"), line..=line + 1, lines)
            }
            Kind::CheckpointRoot | Kind::CheckpointSize | Kind::CheckpointSignature | Kind::CheckpointTime => {
                let i = *rng.pick(&self.checkpoints);
                let field = match kind {
                    Kind::CheckpointRoot => "root",
                    Kind::CheckpointSize => "size",
                    Kind::CheckpointSignature => "signature",
                    _ => "time",
                };
                lines[i] = change_field(&lines[i], field, rng);
                let line = i as u64 + 1;
                m(format!("changed the {field} of the checkpoint on line {line}"), line..=line, lines)
            }
            Kind::Header => {
                let field = *rng.pick(&["format", "origin", "public_key"]);
                lines[0] = change_field(&lines[0], field, rng);
                // A changed origin shows at the first checkpoint, when no
                // saved checkpoint names the log.
                let to = Log::next_checkpoint(&lines, 0);
                m(format!("changed the header's {field}"), 1..=to, lines)
            }
            Kind::RollBack => {
                let copy = lines_of(rng.pick(older).as_slice());
                let size = copy.iter().filter(|l| matches!(line_kind(l), Line::Entry(_))).count() as u64;
                let line = copy.len() as u64;
                let mut out = m(format!("an older copy of {size} entries"), line..=line, copy);
                out.prefix = Some(size);
                out
            }
        }
    }
}

/// Changes one character of the value of `field` in a JSON line, in place:
/// a string gets one character replaced (a hex digit by another hex digit,
/// so a hash stays well-formed), `""` gets one, `null` becomes `""`, a
/// number another number. The line stays valid JSON with the same keys.
fn change_field(line: &str, field: &str, rng: &mut Rng) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    let value = v.get(field).or_else(|| v.get("checkpoint").and_then(|c| c.get(field))).unwrap().clone();
    let needle = format!("\"{field}\":{value}");
    assert_eq!(line.matches(&needle).count(), 1, "{needle} in {line}");
    let new = match &value {
        Value::Null => json!(""),
        Value::Number(n) => {
            let n = n.as_u64().unwrap();
            json!(if rng.below(2) == 0 { n + 1 } else { n.wrapping_sub(1 + rng.next() % 1000) })
        }
        Value::String(s) if s.is_empty() => json!("x"),
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            let at = rng.below(chars.len());
            let alphabet: &[char] = if chars[at].is_ascii_hexdigit() && !chars[at].is_ascii_uppercase() {
                &['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f']
            } else {
                &['a', 'k', 'z', 'Q', '0', '7', ':', '_', '-', '.', ' ']
            };
            let replacement = loop {
                let c = *rng.pick(alphabet);
                if c != chars[at] {
                    break c;
                }
            };
            let mut changed = chars;
            changed[at] = replacement;
            json!(changed.into_iter().collect::<String>())
        }
        other => panic!("unexpected value {other} of {field}"),
    };
    let out = line.replacen(&needle, &format!("\"{field}\":{new}"), 1);
    assert_ne!(out, line);
    serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    out
}

/// The entries a failure says the change lies in, read from its message:
/// "…something changed in entries A..=B" or "…(a change after entry A-1,
/// at or before this one)" of entry B.
fn blamed(f: &VerifyFailure) -> Option<RangeInclusive<u64>> {
    let number = |s: &str| s.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u64>().ok();
    if let Some((_, rest)) = f.message.split_once("a change after entry ") {
        return Some(number(rest)? + 1..=f.entry?);
    }
    let (_, rest) = f.message.split_once("something changed in entries ")?;
    let (from, to) = rest.split_once("..=")?;
    Some(number(from)?..=number(to)?)
}

/// Per kind: mutants tried, refused against the final saved checkpoint,
/// and, for the weaker verifiers, how many they should and did refuse.
#[derive(Debug, Default)]
struct Tally {
    tried: u32,
    refused_final: u32,
    /// Also verified by the weaker verifiers.
    weaker: u32,
    middle_expected: u32,
    middle_refused: u32,
    key_only_expected: u32,
    key_only_refused: u32,
}

#[tokio::test]
async fn the_verifier_refuses_thousands_of_random_single_modifications() {
    let app = TestApp::new("audit-tamper").await;
    let key = app.engine.checkpoint_public_key();
    let people = people(&app, 6).await;

    // The log: ~300 entries, checkpoints along the way (at 40, 64, 128, 129,
    // 201 and 300). The auditor saves the one of 128 and the final one; the
    // exports of 40, 128 and 201 are the older copies of the roll-backs.
    let mut older = Vec::new();
    let mut middle = None;
    for (hour, size) in [(1, 40u64), (2, 64), (3, 128), (4, 129), (5, 201)] {
        grow_to(&app, &people, size).await;
        app.clock.set(later(hour));
        let c = post_checkpoint(&app).await;
        assert_eq!(c.size, size);
        if size == 128 {
            middle = Some(get_checkpoint(&app).await);
        }
        if [40, 128, 201].contains(&size) {
            older.push(export(&app).await.0);
        }
    }
    let middle = middle.unwrap();
    grow_to(&app, &people, 300).await;
    app.clock.set(later(6));
    let (final_export, last) = export(&app).await;
    let saved = get_checkpoint(&app).await;
    assert_eq!(last, saved, "the export ends with the latest checkpoint");
    assert_eq!(saved.size, 300);

    let log = Log::new(&final_export);
    assert_eq!((log.lines.len(), log.entries.len(), log.checkpoints.len()), (307, 300, 6));
    let sizes: Vec<Line> = log.checkpoints.iter().map(|&i| line_kind(&log.lines[i])).collect();
    let expected: Vec<Line> = [40, 64, 128, 129, 201, 300].map(Line::Checkpoint).to_vec();
    assert_eq!(sizes, expected, "each checkpoint follows the entry it covers");
    for copy in &older {
        assert!(final_export.starts_with(copy), "an older export is a prefix of a newer one");
    }

    // No false alarm: the untouched export verifies with every kind of trust,
    // and so does a copy whose lines were re-encoded (keys reordered).
    let untouched = [
        ("final saved", Some(&saved), None),
        ("final saved, pinned key", Some(&saved), Some(key.as_str())),
        ("middle saved", Some(&middle), None),
        ("middle saved, pinned key", Some(&middle), Some(key.as_str())),
        ("pinned key", None, Some(key.as_str())),
        ("nothing", None, None),
    ];
    let reencoded: Vec<String> = log
        .lines
        .iter()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            sort_keys_reversed(&mut v);
            v.to_string()
        })
        .collect();
    assert_ne!(reencoded, log.lines);
    for bytes in [final_export.clone(), bytes_of(&reencoded)] {
        for (trust, saved, key) in untouched {
            let verified = verify(&bytes, saved, key).unwrap_or_else(|f| panic!("false alarm ({trust}): {f}"));
            assert_eq!(verified, Verified { entries: 300, checkpoints: 6, root: last.root.clone() }, "{trust}");
        }
    }
    for copy in &older {
        // What the log was then: it verifies, against the middle checkpoint
        // too once it covers it.
        let size = entries(copy).len() as u64;
        let saved_then = (size >= middle.size).then_some(&middle);
        assert_eq!(verify(copy, saved_then, Some(&key)).map(|v| v.entries), Ok(size));
    }

    // The export of another instance is refused, whatever it holds.
    let other = TestApp::new("audit-tamper-other").await;
    let (other_export, other_last) = export(&other).await;
    for (trust, saved, key) in [("final saved", Some(&saved), None), ("pinned key", None, Some(key.as_str()))] {
        let failure = verify(&other_export, saved, key).expect_err(trust);
        assert_eq!(failure.line, 1, "{trust}: {failure}");
    }
    let failure = verify(&final_export, Some(&other_last), None).unwrap_err();
    assert_eq!(failure.line, 1, "{failure}");

    // The modifications. Against the final saved checkpoint every one must be
    // refused. Against the middle one (or a pinned key alone) a prefix of the
    // log that ends in its own signed checkpoint — a truncation that also
    // drops the later checkpoints, or an older copy — is refused only when the
    // saved checkpoint covers more entries than the prefix: nothing inside a
    // prefix is wrong, and it is exactly what the log looked like then.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tally: BTreeMap<Kind, Tally> = BTreeMap::new();
    // 215 of each kind: 3,010 in all. Every one is verified against the final
    // saved checkpoint; the weaker verifiers see every truncation and
    // roll-back (where their answer depends on the saved size) and every
    // tenth of the rest (which the export's own checkpoints expose).
    let per_kind = 215;
    for round in 0..per_kind * KINDS.len() {
        let kind = KINDS[round % KINDS.len()];
        let mutant = log.mutate(kind, &mut rng, &older);
        let bytes = bytes_of(&mutant.lines);
        assert_ne!(bytes, final_export, "{}", mutant.what);
        let t = tally.entry(kind).or_default();
        t.tried += 1;

        let failure = verify(&bytes, Some(&saved), None)
            .err()
            .unwrap_or_else(|| panic!("{kind:?}: not detected: {}", mutant.what));
        t.refused_final += 1;
        check_report(&mutant, &failure);

        let prefix_kind = matches!(kind, Kind::TruncateDroppingCheckpoints | Kind::RollBack);
        if !prefix_kind && t.tried % 10 != 1 {
            continue;
        }
        t.weaker += 1;
        for (trust, saved, counts) in [
            ("middle saved", Some(&middle), (&mut t.middle_expected, &mut t.middle_refused)),
            ("pinned key", None, (&mut t.key_only_expected, &mut t.key_only_refused)),
        ] {
            let expected = mutant.detectable(saved);
            let outcome = verify(&bytes, saved, Some(&key));
            assert_eq!(outcome.is_err(), expected, "{kind:?} ({trust}): {}: {outcome:?}", mutant.what);
            *counts.0 += u32::from(expected);
            if let Err(failure) = outcome {
                *counts.1 += 1;
                check_report(&mutant, &failure);
            }
        }
    }

    print_tally(&tally);
    let total: u32 = tally.values().map(|t| t.tried).sum();
    assert!(total >= 3000, "{total} modifications");
    assert_eq!(tally.len(), KINDS.len());
    for (kind, t) in &tally {
        assert_eq!(t.refused_final, t.tried, "{kind:?}: every modification is refused against the final checkpoint");
        assert_eq!(t.middle_refused, t.middle_expected, "{kind:?}");
        assert_eq!(t.key_only_refused, t.key_only_expected, "{kind:?}");
    }
    // The weaker verifiers did meet undetectable prefixes (the rule above was
    // exercised), and still refused the shorter ones.
    let prefixes = &tally[&Kind::TruncateDroppingCheckpoints];
    assert!(prefixes.middle_expected < prefixes.tried && prefixes.key_only_expected < prefixes.middle_expected);
    assert!(tally.values().all(|t| t.weaker > 0));
    let rollbacks = &tally[&Kind::RollBack];
    assert!(0 < rollbacks.middle_expected && rollbacks.middle_expected < rollbacks.tried);
    assert_eq!(rollbacks.key_only_expected, 0);
}

/// The counts, shown with `--nocapture`.
#[allow(clippy::print_stdout)] // reason: the tally is this test's report
fn print_tally(tally: &BTreeMap<Kind, Tally>) {
    println!(
        "kind                         tried  refused (final)  weaker: checked  middle: expected/refused  key only: expected/refused"
    );
    for (kind, t) in tally {
        println!(
            "{:<29}{:>5}  {:>15}  {:>15}  {:>15}/{:<8}  {:>17}/{}",
            format!("{kind:?}"),
            t.tried,
            t.refused_final,
            t.weaker,
            t.middle_expected,
            t.middle_refused,
            t.key_only_expected,
            t.key_only_refused
        );
    }
}

/// The failure points at the damage: no earlier than the first damaged line
/// (no blame on the untouched part) and no later than the first signed
/// statement that covers it; a changed entry lies in the range it names.
#[track_caller]
fn check_report(mutant: &Mutant, failure: &VerifyFailure) {
    let what = format!("{:?}: {}: reported as {failure}", mutant.kind, mutant.what);
    assert!(mutant.report.contains(&failure.line), "{what}; expected a line in {:?}", mutant.report);
    if let Some(seq) = mutant.changed {
        let range = blamed(failure).unwrap_or_else(|| panic!("{what}; names no range of entries"));
        assert!(range.contains(&seq), "{what}; entry {seq} is not in {range:?}");
    }
    if let Some(entry) = mutant.entry {
        assert_eq!(failure.entry, Some(entry), "{what}");
    }
}

/// Reorders every object's keys (reversed), so the re-encoded text differs.
fn sort_keys_reversed(v: &mut Value) {
    if let Value::Object(map) = v {
        let mut pairs: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
        pairs.sort_by(|a, b| b.0.cmp(&a.0));
        for (k, mut value) in pairs {
            sort_keys_reversed(&mut value);
            map.insert(k, value);
        }
    }
}

// --- 3. the command line ------------------------------------------------------

fn custos(dir: &Scratch, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(args)
        .env_clear()
        .env("CUSTOS_ROOT_KEY_FILE", dir.0.join("root.key"))
        .current_dir(&dir.0)
        .output()
        .expect("the custos binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn the_cli_checkpoints_exports_and_verifies_offline() {
    let dir = Scratch::new("audit-cli");
    let data = dir.0.join("data");
    let instance = ["--data-dir", path_str(&data)];
    let run = |args: &[&str], instance_args: bool| {
        let mut all: Vec<&str> = args.to_vec();
        if instance_args {
            all.extend(instance);
        }
        let out = custos(&dir, &all);
        assert!(out.status.success(), "custos {all:?}: {}", text(&out.stderr));
        out
    };

    // Entry 1, a checkpoint the auditor saves, entry 2, the export.
    run(&["admin", "create-key"], true);
    let saved = text(&run(&["audit", "checkpoint"], true).stdout);
    let saved_file = dir.0.join("saved-checkpoint.json");
    std::fs::write(&saved_file, &saved).unwrap();
    let saved: SignedCheckpoint = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved.size, 1);
    run(&["admin", "create-key"], true);
    let log = dir.0.join("audit.jsonl");
    let out = run(&["audit", "export", "--out", path_str(&log)], true);
    assert!(text(&out.stderr).contains("exported 2 audit entries"), "{}", text(&out.stderr));
    let last: SignedCheckpoint = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(last.size, 2);
    let key = text(&run(&["audit", "public-key"], true).stdout);
    assert_eq!(key.trim(), saved.public_key);

    let (log_arg, saved_arg) = (path_str(&log), path_str(&saved_file));
    for extra in [&[][..], &["--public-key", key.trim()][..]] {
        let mut args = vec!["audit", "verify", "--log", log_arg, "--checkpoint", saved_arg];
        args.extend(extra);
        let out = custos(&dir, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with(&format!("ok: {log_arg} verified: 2 entries, 2 signed checkpoints")), "{stdout}");
        assert!(stdout.contains("consistent with the saved checkpoint of size 1"), "{stdout}");
    }
    // Without anything to trust, it verifies but warns.
    let out = custos(&dir, &["audit", "verify", "--log", log_arg]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).starts_with("warning: no saved checkpoint and no pinned key"), "{}", text(&out.stderr));

    // One byte of entry 1 (line 2) changed: exit 1, naming the line.
    let original = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    assert!(lines[1].contains("\"seq\":1,") && lines[1].contains("admin:cli"), "{}", lines[1]);
    let changed = lines[1].replacen("admin:cli", "admin:clj", 1);
    lines[1] = &changed;
    std::fs::write(&log, format!("{}\n", lines.join("\n"))).unwrap();
    let out = custos(&dir, &["audit", "verify", "--log", log_arg, "--checkpoint", saved_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with(&format!("error: {log_arg}:2: entry 1: ")), "{stderr}");
    assert!(stderr.contains("do not match the saved checkpoint of size 1"), "{stderr}");
    // Without the saved checkpoint the export's own checkpoint (line 3) tells.
    let out = custos(&dir, &["audit", "verify", "--log", log_arg, "--public-key", key.trim()]);
    assert_eq!(out.status.code(), Some(1));
    // (after the warning that, without a saved checkpoint, truncation cannot be told)
    assert!(text(&out.stderr).contains(&format!("\nerror: {log_arg}:3: ")), "{}", text(&out.stderr));

    // A wrong pinned key, and a damaged saved checkpoint, are refused too.
    std::fs::write(&log, &original).unwrap();
    let out = custos(&dir, &["audit", "verify", "--log", log_arg, "--public-key", &"ab".repeat(32)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let forged = serde_json::to_string(&SignedCheckpoint { size: 2, ..saved.clone() }).unwrap();
    std::fs::write(&saved_file, forged).unwrap();
    let out = custos(&dir, &["audit", "verify", "--log", log_arg, "--checkpoint", saved_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("the saved checkpoint"), "{}", text(&out.stderr));
}

// --- 4. entries from before the tree -----------------------------------------

#[tokio::test]
async fn entries_without_a_leaf_hash_get_one_at_the_next_open() {
    let app = TestApp::new("audit-backfill").await;
    let people = people(&app, 2).await;
    grow_to(&app, &people, 20).await;
    let saved = post_checkpoint(&app).await;
    let leaves_before = stored_leaves(&app.dir);
    assert_eq!(leaves_before.len(), 20);

    // Close the instance, then forget the leaf hashes of a third of the
    // entries, the last one included, as a database from before the tree.
    let TestApp { router, engine, clock, key: _, dir } = app;
    drop((router, engine, clock));
    let cleared =
        Peek::at(&dir).execute(Db::Data, "UPDATE audit SET leaf_hash = NULL WHERE seq % 3 = 1 OR seq = 20", &[]);
    assert_eq!(cleared, 8);

    let app = TestApp::in_folder(dir).await;
    let leaves_after = stored_leaves(&app.dir);
    assert_eq!(leaves_after.len(), 21, "the reopen added its API key's entry");
    assert!(leaves_after.iter().all(Option::is_some), "every entry has its leaf hash again");
    assert_eq!(leaves_after[..20], leaves_before[..], "the same leaf hashes as before");

    let (export, last) = export(&app).await;
    assert_eq!(last.size, 21);
    let verified = verify(&export, Some(&saved), None).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(verified.entries, 21);
    // A backfilled entry's inclusion in the earlier checkpoint still proves.
    let leaves = entries(&export).iter().map(|(_, e)| e.leaf_hash()).collect::<Vec<_>>();
    let proof = call(&app, "GET", "/v1/audit/proof/inclusion?seq=1&size=20", Some(&app.key), None).await;
    verify_inclusion(&leaves[0], 0, 20, &hashes(&proof.expect(200)["proof"]), &hash(&saved.root)).unwrap();
}

fn stored_leaves(dir: &Scratch) -> Vec<Option<Vec<u8>>> {
    Peek::at(dir).column(Db::Data, "SELECT leaf_hash FROM audit ORDER BY seq", &[])
}
