//! Merkle tree tests: the RFC 6962 / RFC 9162 reference vectors in
//! `shared/specs/merkle/rfc6962-vectors.json` (generated and verified, and
//! every tampered variant refused), hostile input, and properties over
//! random trees of up to 300 leaves.

use std::sync::LazyLock;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::{
    Blocks, Compact, EMPTY_ROOT, Hash, MerkleError, consistency_proof, consistency_ranges, inclusion_proof,
    inclusion_ranges, leaf_hash, node_hash, root, verify_consistency, verify_inclusion,
};

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/merkle/rfc6962-vectors.json");

// ---------------------------------------------------------------------------
// A minimal JSON reader, enough for the vector file (custos-core has no JSON
// dependency and gets none for a test).

#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Num(u64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut parser = JsonParser { bytes: text.as_bytes(), at: 0 };
        let value = parser.value();
        parser.skip_space();
        assert_eq!(parser.at, parser.bytes.len(), "trailing text after the JSON value");
        value
    }

    fn get(&self, key: &str) -> &Json {
        let Json::Obj(fields) = self else { panic!("not an object, looking for {key:?}: {self:?}") };
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("no field {key:?}"))
    }

    fn num(&self) -> u64 {
        let Json::Num(n) = self else { panic!("not a number: {self:?}") };
        *n
    }

    fn str(&self) -> &str {
        let Json::Str(s) = self else { panic!("not a string: {self:?}") };
        s
    }

    fn arr(&self) -> &[Json] {
        let Json::Arr(items) = self else { panic!("not an array: {self:?}") };
        items
    }
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn skip_space(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> u8 {
        self.skip_space();
        *self.bytes.get(self.at).expect("unexpected end of JSON")
    }

    fn expect(&mut self, byte: u8) {
        assert_eq!(self.peek(), byte, "expected {:?} at byte {}", byte as char, self.at);
        self.at += 1;
    }

    fn literal(&mut self, word: &str, value: Json) -> Json {
        assert!(self.bytes[self.at..].starts_with(word.as_bytes()), "bad literal at byte {}", self.at);
        self.at += word.len();
        value
    }

    fn value(&mut self) -> Json {
        match self.peek() {
            b'{' => {
                self.at += 1;
                let mut fields = Vec::new();
                if self.peek() == b'}' {
                    self.at += 1;
                    return Json::Obj(fields);
                }
                loop {
                    let key = self.string();
                    self.expect(b':');
                    fields.push((key, self.value()));
                    match self.peek() {
                        b',' => self.at += 1,
                        b'}' => {
                            self.at += 1;
                            return Json::Obj(fields);
                        }
                        other => panic!("unexpected {:?} in object at byte {}", other as char, self.at),
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek() == b']' {
                    self.at += 1;
                    return Json::Arr(items);
                }
                loop {
                    items.push(self.value());
                    match self.peek() {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Json::Arr(items);
                        }
                        other => panic!("unexpected {:?} in array at byte {}", other as char, self.at),
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            b'0'..=b'9' => {
                let start = self.at;
                while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.bytes[start..self.at]).expect("ascii digits");
                Json::Num(digits.parse().expect("a non-negative integer"))
            }
            other => {
                panic!("unexpected {:?} at byte {} (only what the vector file uses is read)", other as char, self.at)
            }
        }
    }

    fn string(&mut self) -> String {
        self.expect(b'"');
        let mut out = Vec::new();
        loop {
            let byte = *self.bytes.get(self.at).expect("unterminated string");
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).expect("UTF-8 string"),
                b'\\' => {
                    let escaped = *self.bytes.get(self.at).expect("unterminated escape");
                    self.at += 1;
                    match escaped {
                        b'"' | b'\\' | b'/' => out.push(escaped),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        other => panic!("escape \\{} not supported by the test reader", other as char),
                    }
                }
                _ => out.push(byte),
            }
        }
    }
}

#[test]
fn json_reader_reads_what_it_claims() {
    let json = Json::parse(r#" {"a": [1, "x\"y", true, false, null, {}], "b": []} "#);
    let a = json.get("a").arr();
    assert_eq!(a[0].num(), 1);
    assert_eq!(a[1].str(), "x\"y");
    assert!(matches!(a[2..], [Json::Bool(true), Json::Bool(false), Json::Null, Json::Obj(_)]));
    assert!(json.get("b").arr().is_empty());
}

// ---------------------------------------------------------------------------
// The vectors.

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex {text:?}");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit")).collect()
}

fn hash_hex(text: &str) -> Hash {
    hex(text).try_into().unwrap_or_else(|_| panic!("not 32 bytes: {text:?}"))
}

fn hashes(json: &Json) -> Vec<Hash> {
    json.arr().iter().map(|h| hash_hex(h.str())).collect()
}

struct InclusionVector {
    index: u64,
    size: u64,
    proof: Vec<Hash>,
}

struct ConsistencyVector {
    old_size: u64,
    new_size: u64,
    proof: Vec<Hash>,
}

struct Vectors {
    /// Leaf hashes of the vector's leaf inputs.
    leaves: Vec<Hash>,
    /// `roots[n]` is the root of the tree of the first `n` leaves.
    roots: Vec<Hash>,
    inclusion: Vec<InclusionVector>,
    consistency: Vec<ConsistencyVector>,
}

static VECTORS: LazyLock<Vectors> = LazyLock::new(|| {
    let text = std::fs::read_to_string(VECTORS_PATH).unwrap_or_else(|e| panic!("reading {VECTORS_PATH}: {e}"));
    let json = Json::parse(&text);
    let leaves = json.get("leaf_inputs_hex").arr().iter().map(|d| leaf_hash(&hex(d.str()))).collect();
    let roots = hashes(json.get("root_by_tree_size_hex"));
    let inclusion = (json.get("inclusion_proofs").arr().iter())
        .map(|v| InclusionVector {
            index: v.get("leaf_index").num(),
            size: v.get("tree_size").num(),
            proof: hashes(v.get("proof_hex")),
        })
        .collect();
    let consistency = (json.get("consistency_proofs").arr().iter())
        .map(|v| ConsistencyVector {
            old_size: v.get("size1").num(),
            new_size: v.get("size2").num(),
            proof: hashes(v.get("proof_hex")),
        })
        .collect();
    Vectors { leaves, roots, inclusion, consistency }
});

fn usize_of(n: u64) -> usize {
    usize::try_from(n).expect("small size")
}

#[test]
fn vector_file_is_read_whole() {
    let v = &*VECTORS;
    assert_eq!(v.leaves.len(), 8);
    assert_eq!(v.roots.len(), v.leaves.len() + 1, "one root per tree size 0..=8");
    assert_eq!(v.inclusion.len(), 5);
    assert_eq!(v.consistency.len(), 5);
}

// ---------------------------------------------------------------------------
// Hashing and roots.

#[test]
fn hashes_carry_their_domain_prefix() {
    assert_eq!(EMPTY_ROOT, <Hash>::from(Sha256::digest(b"")));
    assert_eq!(root(&[]), EMPTY_ROOT);
    assert_eq!(leaf_hash(b"abc"), <Hash>::from(Sha256::digest(b"\x00abc")));
    let (l, r) = ([1; 32], [2; 32]);
    let mut joined = vec![0x01];
    joined.extend_from_slice(&l);
    joined.extend_from_slice(&r);
    assert_eq!(node_hash(&l, &r), <Hash>::from(Sha256::digest(&joined)));
    assert_ne!(node_hash(&l, &r), node_hash(&r, &l));
    // A leaf is never its data's node: the prefixes differ.
    assert_ne!(leaf_hash(&joined[1..]), node_hash(&l, &r));
}

#[test]
fn roots_match_vectors_for_every_size() {
    let v = &*VECTORS;
    let mut compact = Compact::new();
    for (size, expected) in v.roots.iter().enumerate() {
        assert_eq!(root(&v.leaves[..size]), *expected, "root of size {size}");
        assert_eq!(compact.size(), size as u64);
        assert_eq!(compact.root(), *expected, "compact root of size {size}");
        if let Some(leaf) = v.leaves.get(size) {
            compact.push(*leaf);
        }
    }
}

#[test]
fn compact_matches_root_at_every_size_up_to_300() {
    let leaves = tree(300, 300);
    let mut compact = Compact::new();
    for (i, leaf) in leaves.iter().enumerate() {
        compact.push(*leaf);
        assert_eq!(compact.size(), i as u64 + 1);
        assert_eq!(compact.root(), root(&leaves[..=i]), "size {}", i + 1);
    }
}

#[test]
fn compact_keeps_one_subtree_per_set_bit() {
    let mut compact = Compact::default();
    let mut leaves = Vec::new();
    for i in 1u32..=4099 {
        let leaf = leaf_hash(&i.to_be_bytes());
        compact.push(leaf);
        leaves.push(leaf);
        assert_eq!(compact.frontier().len(), compact.size().count_ones() as usize);
        if i.is_power_of_two() || i == 4099 {
            assert_eq!(compact.root(), root(&leaves), "size {i}");
            assert_eq!(compact.frontier().last(), Some(&root(&leaves[leaves.len() - (1 << i.trailing_zeros())..])));
        }
    }
}

/// Streams a million entries: the frontier never holds more than one hash
/// per bit of the size (20 for a million), and the root equals the one
/// computed over all the leaves. Three million SHA-256 runs take a minute
/// in an unoptimised build, hence ignored by default; run it with
/// `cargo test --release -p custos-core --lib merkle -- --ignored`.
#[test]
#[ignore = "three million hashes: slow without optimisation; run with --release -- --ignored"]
fn compact_streams_a_million_leaves() {
    const N: u32 = 1_000_000;
    let mut compact = Compact::new();
    let mut leaves = Vec::with_capacity(N as usize);
    let mut widest = 0;
    for i in 0..N {
        let leaf = leaf_hash(&i.to_le_bytes());
        compact.push(leaf);
        leaves.push(leaf);
        widest = widest.max(compact.frontier().len());
    }
    assert_eq!(compact.size(), u64::from(N));
    assert!(widest <= 20, "frontier grew to {widest}");
    assert_eq!(compact.root(), root(&leaves));
}

// ---------------------------------------------------------------------------
// Inclusion proofs against the vectors.

/// The sides of the siblings along the audit path of leaf `index` in a tree
/// of `size` (true: the sibling is on the right), from RFC 9162's recursive
/// PATH definition. Two positions with the same shape are verified by the
/// very same hash computation.
fn path_shape(index: u64, size: u64) -> Vec<bool> {
    if size <= 1 {
        return Vec::new();
    }
    let k = 1u64 << (63 - (size - 1).leading_zeros());
    let (mut shape, right_sibling) =
        if index < k { (path_shape(index, k), true) } else { (path_shape(index - k, size - k), false) };
    shape.push(right_sibling);
    shape
}

/// Other values for an index or size: ±1, each single bit flipped, 0 and
/// the largest.
fn neighbours(value: u64) -> Vec<u64> {
    let mut out: Vec<u64> = (0..64).map(|bit| value ^ (1 << bit)).collect();
    out.extend([value.wrapping_add(1), value.wrapping_sub(1), 0, u64::MAX]);
    out.sort_unstable();
    out.dedup();
    out.retain(|&v| v != value);
    out
}

/// Every way to damage a proof: flip each bit of each byte, drop, add or
/// repeat a hash, swap two hashes.
fn damaged_proofs(proof: &[Hash]) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    for i in 0..proof.len() {
        for byte in 0..32 {
            for bit in 0..8 {
                let mut p = proof.to_vec();
                p[i][byte] ^= 1 << bit;
                out.push(p);
            }
        }
        let mut shorter = proof.to_vec();
        shorter.remove(i);
        out.push(shorter);
        let mut repeated = proof.to_vec();
        repeated.insert(i, proof[i]);
        out.push(repeated);
        if i + 1 < proof.len() && proof[i] != proof[i + 1] {
            let mut swapped = proof.to_vec();
            swapped.swap(i, i + 1);
            out.push(swapped);
        }
    }
    let mut longer = proof.to_vec();
    longer.push(EMPTY_ROOT);
    out.push(longer);
    let mut longer = proof.to_vec();
    longer.insert(0, EMPTY_ROOT);
    out.push(longer);
    out
}

/// Each single-bit change of a hash.
fn damaged_hashes(hash: &Hash) -> impl Iterator<Item = Hash> + '_ {
    (0..256).map(move |bit| {
        let mut h = *hash;
        h[bit / 8] ^= 1 << (bit % 8);
        h
    })
}

#[test]
fn inclusion_proofs_match_vectors() {
    let v = &*VECTORS;
    for case in &v.inclusion {
        let leaves = &v.leaves[..usize_of(case.size)];
        let made = inclusion_proof(leaves, case.index).unwrap();
        assert_eq!(made, case.proof, "proof for leaf {} of {}", case.index, case.size);
        let leaf = &leaves[usize_of(case.index)];
        let head = &v.roots[usize_of(case.size)];
        assert_eq!(verify_inclusion(leaf, case.index, case.size, &case.proof, head), Ok(()));
    }
}

#[test]
fn tampered_inclusion_vectors_fail() {
    let v = &*VECTORS;
    let mut same_shape = Vec::new();
    for case in &v.inclusion {
        let (index, size, proof) = (case.index, case.size, &case.proof);
        let leaf = &v.leaves[usize_of(index)];
        let head = &v.roots[usize_of(size)];
        let what = format!("leaf {index} of {size}");
        for p in damaged_proofs(proof) {
            assert!(verify_inclusion(leaf, index, size, &p, head).is_err(), "{what}: damaged proof {p:02x?}");
        }
        for h in damaged_hashes(head) {
            assert_eq!(verify_inclusion(leaf, index, size, proof, &h), Err(MerkleError::RootMismatch), "{what}");
        }
        for l in damaged_hashes(leaf) {
            assert_eq!(verify_inclusion(&l, index, size, proof, head), Err(MerkleError::RootMismatch), "{what}");
        }
        for other in neighbours(index) {
            assert!(verify_inclusion(leaf, other, size, proof, head).is_err(), "{what}: as leaf {other}");
        }
        for other in neighbours(size) {
            // Against the other size's own root (the checkpoint binds the
            // two): always refused.
            if let Some(other_head) = v.roots.get(other as usize) {
                assert!(verify_inclusion(leaf, index, other, proof, other_head).is_err(), "{what}: in size {other}");
            }
            // Against this size's root: refused unless the two paths have the
            // same shape, which the hash cannot tell apart.
            let ok = verify_inclusion(leaf, index, other, proof, head).is_ok();
            let shape = index < other && path_shape(index, other) == path_shape(index, size);
            assert_eq!(ok, shape, "{what}: in size {other} with the root of {size}");
            if ok {
                same_shape.push((index, size, other));
            }
        }
    }
    // The known blind spot: a path's hashes fix the sides of the siblings,
    // not the tree size. Leaf 0 of 8 and of 7 both go right, right, right;
    // leaf 5 of 8 and of 7 left, right, left; leaf 1 of 5, 6 and 7 left,
    // right, right. Only the checkpoint's size and root together tell them
    // apart (checked above: against the other size's own root, refused).
    assert_eq!(same_shape, [(0, 8, 7), (5, 8, 7), (1, 5, 6), (1, 5, 7)]);
}

#[test]
fn inclusion_proofs_of_every_vector_leaf_verify() {
    let v = &*VECTORS;
    for size in 1..=v.leaves.len() {
        let leaves = &v.leaves[..size];
        for index in 0..size {
            let proof = inclusion_proof(leaves, index as u64).unwrap();
            let size = size as u64;
            assert_eq!(proof.len(), path_shape(index as u64, size).len());
            assert_eq!(verify_inclusion(&leaves[index], index as u64, size, &proof, &v.roots[size as usize]), Ok(()));
        }
    }
}

// ---------------------------------------------------------------------------
// Consistency proofs against the vectors.

#[test]
fn consistency_proofs_match_vectors() {
    let v = &*VECTORS;
    for case in &v.consistency {
        let leaves = &v.leaves[..usize_of(case.new_size)];
        let made = consistency_proof(leaves, case.old_size).unwrap();
        assert_eq!(made, case.proof, "proof from {} to {}", case.old_size, case.new_size);
        let (old_root, new_root) = (&v.roots[usize_of(case.old_size)], &v.roots[usize_of(case.new_size)]);
        assert_eq!(verify_consistency(case.old_size, case.new_size, old_root, new_root, &case.proof), Ok(()));
    }
}

#[test]
fn tampered_consistency_vectors_fail() {
    let v = &*VECTORS;
    let mut with_same_roots = Vec::new();
    for case in &v.consistency {
        let (old, new, proof) = (case.old_size, case.new_size, &case.proof);
        let (old_root, new_root) = (&v.roots[usize_of(old)], &v.roots[usize_of(new)]);
        let what = format!("from {old} to {new}");
        for p in damaged_proofs(proof) {
            assert!(verify_consistency(old, new, old_root, new_root, &p).is_err(), "{what}: damaged proof {p:02x?}");
        }
        for h in damaged_hashes(old_root) {
            assert!(verify_consistency(old, new, &h, new_root, proof).is_err(), "{what}: damaged old root");
        }
        for h in damaged_hashes(new_root) {
            assert!(verify_consistency(old, new, old_root, &h, proof).is_err(), "{what}: damaged new root");
        }
        let pairs =
            (neighbours(old).into_iter().map(|o| (o, new))).chain(neighbours(new).into_iter().map(|n| (old, n)));
        for (o, n) in pairs {
            // Against the roots of the sizes claimed: always refused (but an
            // empty proof does prove the trivial cases, 0 → n and n → n).
            let trivial = proof.is_empty() && (o == 0 || o == n);
            if let (Some(o_root), Some(n_root), false) = (v.roots.get(o as usize), v.roots.get(n as usize), trivial) {
                assert!(verify_consistency(o, n, o_root, n_root, proof).is_err(), "{what}: as {o} to {n}");
            }
            // Against the original roots: refused except where the sizes'
            // proofs have the same shape (listed below).
            if verify_consistency(o, n, old_root, new_root, proof).is_ok() {
                with_same_roots.push((old, new, o, n));
            }
        }
    }
    // The same blind spot for consistency: 1 → 8 and 1 → 7 (the first
    // leaf's path), 6 → 8 and 6 → 7, 2 → 5, 2 → 6 and 2 → 7 share their
    // shape, so the same hashes give the same roots. Against the roots of
    // the sizes claimed (above) every one is refused.
    assert_eq!(with_same_roots, [(1, 8, 1, 7), (6, 8, 6, 7), (2, 5, 2, 6), (2, 5, 2, 7), (6, 7, 6, 8)]);
}

#[test]
fn consistency_proofs_between_every_vector_size_verify() {
    let v = &*VECTORS;
    for new in 0..=v.leaves.len() {
        for old in 0..=new {
            let proof = consistency_proof(&v.leaves[..new], old as u64).unwrap();
            let (o, n) = (old as u64, new as u64);
            assert_eq!(verify_consistency(o, n, &v.roots[old], &v.roots[new], &proof), Ok(()), "{old} to {new}");
        }
    }
}

// ---------------------------------------------------------------------------
// Hostile input: errors, never panics.

#[test]
fn proofs_for_positions_outside_the_tree_are_refused() {
    let leaves = &VECTORS.leaves;
    assert_eq!(inclusion_proof(leaves, 8), Err(MerkleError::IndexOutOfRange { index: 8, size: 8 }));
    assert_eq!(inclusion_proof(leaves, u64::MAX), Err(MerkleError::IndexOutOfRange { index: u64::MAX, size: 8 }));
    assert_eq!(inclusion_proof(&[], 0), Err(MerkleError::IndexOutOfRange { index: 0, size: 0 }));
    assert_eq!(consistency_proof(leaves, 9), Err(MerkleError::SizesOutOfOrder { old_size: 9, new_size: 8 }));
    assert_eq!(
        consistency_proof(leaves, u64::MAX),
        Err(MerkleError::SizesOutOfOrder { old_size: u64::MAX, new_size: 8 })
    );
    assert_eq!(consistency_proof(leaves, 0), Ok(vec![]));
    assert_eq!(consistency_proof(&[], 0), Ok(vec![]));
    assert_eq!(consistency_proof(leaves, 8), Ok(vec![]));
}

#[test]
fn hostile_inclusion_checks_fail_cleanly() {
    let leaf = [7; 32];
    let big_proof = vec![[0; 32]; 200];
    for (index, size) in
        [(0, 0), (1, 1), (5, 3), (u64::MAX, u64::MAX), (u64::MAX, 0), (0, u64::MAX), (u64::MAX - 1, u64::MAX)]
    {
        for proof in [&[][..], &[[0; 32]][..], &big_proof[..64], &big_proof[..]] {
            let result = verify_inclusion(&leaf, index, size, proof, &EMPTY_ROOT);
            assert!(result.is_err(), "leaf {index} of {size} with {} hashes", proof.len());
            if index >= size {
                assert_eq!(result, Err(MerkleError::IndexOutOfRange { index, size }));
            }
        }
    }
    // A one-leaf tree: the leaf is the root, the proof empty.
    assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
    assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &EMPTY_ROOT), Err(MerkleError::RootMismatch));
    assert_eq!(
        verify_inclusion(&leaf, 0, 1, &[leaf], &leaf),
        Err(MerkleError::WrongProofLength { expected: 0, actual: 1 })
    );
    // The longest possible path: leaf 0 of the largest tree has 64
    // siblings, all on the right.
    let size = u64::MAX;
    let proof = vec![[1; 32]; 64];
    let head = proof.iter().fold(leaf, |r, p| node_hash(&r, p));
    assert_eq!(path_shape(0, size), [true; 64]);
    assert_eq!(verify_inclusion(&leaf, 0, size, &proof, &head), Ok(()));
    assert_eq!(
        verify_inclusion(&leaf, 0, size, &proof[1..], &head),
        Err(MerkleError::WrongProofLength { expected: 64, actual: 63 })
    );
}

#[test]
fn hostile_consistency_checks_fail_cleanly() {
    let v = &*VECTORS;
    let (r3, r8) = (&v.roots[3], &v.roots[8]);
    assert_eq!(verify_consistency(9, 8, r8, r8, &[]), Err(MerkleError::SizesOutOfOrder { old_size: 9, new_size: 8 }));
    assert_eq!(
        verify_consistency(u64::MAX, 0, r8, r8, &[]),
        Err(MerkleError::SizesOutOfOrder { old_size: u64::MAX, new_size: 0 })
    );
    // Empty proofs where hashes are needed.
    assert_eq!(verify_consistency(3, 8, r3, r8, &[]), Err(MerkleError::WrongProofLength { expected: 4, actual: 0 }));
    assert!(verify_consistency(1, u64::MAX, &v.roots[1], r8, &[]).is_err());
    assert!(verify_consistency(u64::MAX - 1, u64::MAX, r3, r8, &[]).is_err());
    // Equal sizes: nothing to prove but equal roots.
    assert_eq!(verify_consistency(8, 8, r8, r8, &[]), Ok(()));
    assert_eq!(verify_consistency(8, 8, r3, r8, &[]), Err(MerkleError::RootMismatch));
    assert_eq!(verify_consistency(8, 8, r8, r8, &[*r8]), Err(MerkleError::WrongProofLength { expected: 0, actual: 1 }));
    assert_eq!(verify_consistency(u64::MAX, u64::MAX, r8, r8, &[]), Ok(()));
    // From the empty tree: the old root must be the empty root.
    assert_eq!(verify_consistency(0, 8, &EMPTY_ROOT, r8, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 8, r8, r8, &[]), Err(MerkleError::OldRootMismatch));
    assert_eq!(
        verify_consistency(0, 8, &EMPTY_ROOT, r8, &[*r8]),
        Err(MerkleError::WrongProofLength { expected: 0, actual: 1 })
    );
    // Huge sizes with proofs of every length up to past the longest.
    let junk = vec![[3; 32]; 200];
    for (old, new) in
        [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX), (3, 1 << 63), (u64::MAX >> 1, u64::MAX)]
    {
        for len in [0, 1, 2, 63, 64, 65, 127, 128, 129, 200] {
            assert!(verify_consistency(old, new, r3, r8, &junk[..len]).is_err(), "{old} to {new}, {len} hashes");
        }
    }
}

#[test]
fn error_messages_are_lower_case_and_name_the_failure() {
    let cases = [
        (MerkleError::IndexOutOfRange { index: 9, size: 8 }, "leaf index 9 out of range for tree size 8"),
        (
            MerkleError::SizesOutOfOrder { old_size: 9, new_size: 8 },
            "tree sizes out of order: old size 9 is larger than new size 8",
        ),
        (
            MerkleError::WrongProofLength { expected: 3, actual: 2 },
            "proof of wrong length: 2 hashes where 3 were expected",
        ),
        (MerkleError::RootMismatch, "root mismatch: the proof does not lead to the given root"),
        (MerkleError::OldRootMismatch, "old root mismatch: the proof does not lead to the given old root"),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}

// ---------------------------------------------------------------------------
// Properties over random trees.

fn tree(seed: u64, size: usize) -> Vec<Hash> {
    (0..size as u64).map(|i| leaf_hash(&[seed.to_le_bytes(), i.to_le_bytes()].concat())).collect()
}

/// A tree of 1..=300 leaves and a few positions in it (as fractions, scaled
/// to the tree).
fn tree_and_picks() -> impl Strategy<Value = (u64, usize, Vec<f64>)> {
    (any::<u64>(), 1usize..=300, prop::collection::vec(0.0..1.0f64, 8))
}

fn pick(fraction: f64, below: usize) -> usize {
    ((fraction * below as f64) as usize).min(below - 1)
}

/// Every consistency proof between two sizes of a tree of 32 (every pair),
/// generated and verified.
#[test]
fn consistency_proofs_between_every_size_up_to_32_verify() {
    let leaves = tree(32, 32);
    let roots: Vec<Hash> = (0..=32).map(|n| root(&leaves[..n])).collect();
    for new in 0..=32 {
        for old in 0..=new {
            let proof = consistency_proof(&leaves[..new], old as u64).unwrap();
            let (o, n) = (old as u64, new as u64);
            assert_eq!(verify_consistency(o, n, &roots[old], &roots[new], &proof), Ok(()), "{old} to {new}");
            if old > 0 && old < new {
                assert!(verify_consistency(o, n, &roots[new], &roots[old], &proof).is_err(), "{old} to {new}");
            }
        }
    }
}

proptest! {
    // SHA-256 is slow in an unoptimised build: few cases, each one a whole
    // tree checked through.
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn every_inclusion_proof_of_a_tree_verifies(seed in any::<u64>(), size in 1usize..=300) {
        let leaves = tree(seed, size);
        let head = root(&leaves);
        for (i, leaf) in leaves.iter().enumerate() {
            let proof = inclusion_proof(&leaves, i as u64).unwrap();
            prop_assert_eq!(proof.len(), path_shape(i as u64, size as u64).len());
            prop_assert_eq!(verify_inclusion(leaf, i as u64, size as u64, &proof, &head), Ok(()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_proofs_verify_only_for_their_position((seed, size, picks) in tree_and_picks()) {
        let leaves = tree(seed, size);
        let head = root(&leaves);
        let n = size as u64;
        for &fraction in &picks[..4] {
            let index = pick(fraction, size) as u64;
            let proof = inclusion_proof(&leaves, index).unwrap();
            prop_assert_eq!(verify_inclusion(&leaves[index as usize], index, n, &proof, &head), Ok(()));
        }
        // A proof for one index does not verify for another, nor in another
        // tree (a size with its root), nor with another size against this
        // root unless the two paths share their shape.
        let (index, other) = (pick(picks[4], size) as u64, pick(picks[5], size) as u64);
        let proof = inclusion_proof(&leaves, index).unwrap();
        let leaf = &leaves[index as usize];
        if other != index {
            prop_assert!(verify_inclusion(leaf, other, n, &proof, &head).is_err());
            let other_proof = inclusion_proof(&leaves, other).unwrap();
            prop_assert!(verify_inclusion(leaf, index, n, &other_proof, &head).is_err());
            prop_assert!(verify_inclusion(&leaves[other as usize], index, n, &proof, &head).is_err());
        }
        let other_size = pick(picks[6], size) as u64 + 1;
        if other_size != n {
            let other_head = root(&leaves[..other_size as usize]);
            prop_assert!(verify_inclusion(leaf, index, other_size, &proof, &other_head).is_err());
            let same_shape = index < other_size && path_shape(index, other_size) == path_shape(index, n);
            prop_assert_eq!(verify_inclusion(leaf, index, other_size, &proof, &head).is_ok(), same_shape);
        }
        if let Some(first) = proof.first() {
            let mut tampered = proof.clone();
            tampered[0][pick(picks[7], 32)] ^= 0x40;
            prop_assert_ne!(tampered[0], *first);
            prop_assert!(verify_inclusion(leaf, index, n, &tampered, &head).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_only_for_their_sizes((seed, size, picks) in tree_and_picks()) {
        let leaves = tree(seed, size);
        let size_at = |fraction: f64| pick(fraction, size + 1);
        for pair in picks[..6].chunks(2) {
            let (a, b) = (size_at(pair[0]), size_at(pair[1]));
            let (old, new) = (a.min(b), a.max(b));
            let (old_root, new_root) = (root(&leaves[..old]), root(&leaves[..new]));
            let proof = consistency_proof(&leaves[..new], old as u64).unwrap();
            prop_assert_eq!(verify_consistency(old as u64, new as u64, &old_root, &new_root, &proof), Ok(()));

            // The proof does not serve another pair of sizes (each with its
            // own root), except that an empty proof proves the trivial pairs
            // 0 → n and n → n.
            let c = size_at(picks[6]);
            for (o, n) in [(c.min(new), new), (old, c.max(old))] {
                if (o, n) != (old, new) {
                    let (o_root, n_root) = (root(&leaves[..o]), root(&leaves[..n]));
                    let result = verify_consistency(o as u64, n as u64, &o_root, &n_root, &proof);
                    let trivial = (o == 0 || o == n) && proof.is_empty();
                    prop_assert_eq!(result.is_ok(), trivial, "proof {}->{} as {}->{}", old, new, o, n);
                }
            }
            if old > 0 && old < new {
                // Swapped roots, a flipped byte and a wrong old root fail.
                prop_assert!(verify_consistency(old as u64, new as u64, &new_root, &old_root, &proof).is_err());
                let mut tampered = proof.clone();
                tampered[pick(picks[7], proof.len())][7] ^= 1;
                prop_assert!(verify_consistency(old as u64, new as u64, &old_root, &new_root, &tampered).is_err());
                let wrong_old = root(&leaves[..old - 1]);
                prop_assert!(verify_consistency(old as u64, new as u64, &wrong_old, &new_root, &proof).is_err());
            }
        }
    }

    #[test]
    fn compact_matches_root((seed, size, picks) in tree_and_picks()) {
        let leaves = tree(seed, size);
        let mut checks: Vec<usize> = picks.iter().map(|&f| pick(f, size) + 1).collect();
        checks.sort_unstable();
        let mut compact = Compact::new();
        prop_assert_eq!(compact.root(), EMPTY_ROOT);
        for (i, leaf) in leaves.iter().enumerate() {
            compact.push(*leaf);
            prop_assert_eq!(compact.frontier().len(), (i + 1).count_ones() as usize);
            if checks.binary_search(&(i + 1)).is_ok() {
                prop_assert_eq!(compact.root(), root(&leaves[..=i]), "size {}", i + 1);
            }
        }
        prop_assert_eq!(compact.size(), size as u64);
        prop_assert_eq!(compact.root(), root(&leaves));
    }
}

// ---------------------------------------------------------------------------
// Proofs by ranges and blocks: the same hashes as the proofs over all leaves.

fn numbered_leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// Resolves ranges through `Blocks` of `block` leaves, loading a block's
/// leaves only when asked for one; returns the hashes and the blocks loaded.
fn by_blocks(leaves: &[Hash], block: u64, ranges: &[(u64, u64)]) -> (Vec<Hash>, usize) {
    let roots: Vec<Hash> = leaves.chunks_exact(block as usize).map(root).collect();
    let mut loaded: Vec<u64> = Vec::new();
    loop {
        let lookup = |i: u64| {
            loaded.contains(&i).then(|| {
                let start = (i * block) as usize;
                &leaves[start..leaves.len().min(start + block as usize)]
            })
        };
        let blocks = Blocks { block, roots: &roots, leaves: &lookup };
        let outcome: Result<Vec<Hash>, u64> = ranges.iter().map(|(lo, hi)| blocks.range_root(*lo, *hi)).collect();
        match outcome {
            Ok(hashes) => return (hashes, loaded.len()),
            Err(i) => {
                assert!(!loaded.contains(&i), "block {i} asked for twice");
                loaded.push(i);
            }
        }
    }
}

#[test]
fn proofs_by_ranges_and_blocks_equal_proofs_over_all_leaves() {
    for size in 1..=70u64 {
        let leaves = numbered_leaves(size);
        for block in [1u64, 2, 4, 8] {
            for index in 0..size {
                let ranges = inclusion_ranges(index, size).unwrap();
                let (hashes, loaded) = by_blocks(&leaves, block, &ranges);
                assert_eq!(
                    hashes,
                    inclusion_proof(&leaves, index).unwrap(),
                    "inclusion {index} of {size}, block {block}"
                );
                assert!(loaded <= 2, "inclusion {index} of {size}: {loaded} blocks read");
            }
            for old in 0..=size {
                let ranges = consistency_ranges(old, size).unwrap();
                let (hashes, loaded) = by_blocks(&leaves, block, &ranges);
                assert_eq!(
                    hashes,
                    consistency_proof(&leaves, old).unwrap(),
                    "consistency {old} → {size}, block {block}"
                );
                assert!(loaded <= 2, "consistency {old} → {size}: {loaded} blocks read");
            }
        }
    }
    assert_eq!(inclusion_ranges(3, 3), Err(MerkleError::IndexOutOfRange { index: 3, size: 3 }));
    assert_eq!(consistency_ranges(4, 3), Err(MerkleError::SizesOutOfOrder { old_size: 4, new_size: 3 }));
}
