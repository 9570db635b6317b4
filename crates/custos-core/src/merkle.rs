//! The Merkle tree of the verifiable audit log, as RFC 9162 (Certificate
//! Transparency v2) defines it, with the hashing of RFC 6962.
//!
//! - A leaf hash is `SHA-256(0x00 || data)` ([`leaf_hash`]), an interior node
//!   `SHA-256(0x01 || left || right)` ([`node_hash`]); the empty tree's root is
//!   `SHA-256("")` ([`EMPTY_ROOT`]). The two prefixes keep a leaf from ever
//!   passing for a node.
//! - [`root`] is the Merkle Tree Hash (MTH, §2.1.1) over leaf hashes: a tree
//!   of `n > 1` leaves splits at the largest power of two smaller than `n`.
//! - [`inclusion_proof`] / [`verify_inclusion`] (§2.1.3) prove that a leaf
//!   sits at an index of a tree; [`consistency_proof`] /
//!   [`verify_consistency`] (§2.1.4) prove that a tree is an append-only
//!   extension of an older one.
//! - [`Compact`] builds the root of a log entry by entry in O(log n) memory,
//!   so a verifier can stream a log of millions of entries.
//!
//! Every function here works on leaf *hashes*; callers hash their entries
//! with [`leaf_hash`] first. Verification never panics and never allocates
//! on behalf of its input: hostile sizes, indices and proofs give a
//! [`MerkleError`].
//!
//! A proof binds a position only together with its root: an inclusion proof
//! for leaf 0 of a tree of 8 also "verifies" for a tree of 7 *against the
//! root of the tree of 8*, because both paths have the same shape. Verifiers
//! must therefore take size and root together from one signed checkpoint,
//! never one without the other.
//!
//! ```
//! use custos_core::merkle::{Compact, inclusion_proof, leaf_hash, root, verify_inclusion};
//!
//! let leaves: Vec<_> = ["a", "b", "c"].iter().map(|e| leaf_hash(e.as_bytes())).collect();
//! let head = root(&leaves);
//! let proof = inclusion_proof(&leaves, 2).unwrap();
//! assert!(verify_inclusion(&leaves[2], 2, 3, &proof, &head).is_ok());
//!
//! let mut compact = Compact::new();
//! leaves.iter().for_each(|leaf| compact.push(*leaf));
//! assert_eq!(compact.root(), head);
//! ```

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} out of range for tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The old tree is larger than the new one.
    #[error("tree sizes out of order: old size {old_size} is larger than new size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    /// The proof has more or fewer hashes than its index and sizes call for.
    #[error("proof of wrong length: {actual} hashes where {expected} were expected")]
    WrongProofLength { expected: usize, actual: usize },
    /// The proof does not lead to the given root (for a consistency proof:
    /// the new root; for two trees of one size: the roots differ).
    #[error("root mismatch: the proof does not lead to the given root")]
    RootMismatch,
    /// A consistency proof does not lead to the given old root.
    #[error("old root mismatch: the proof does not lead to the given old root")]
    OldRootMismatch,
}

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new().chain_update([0x00]).chain_update(data).finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([0x01]).chain_update(left).chain_update(right).finalize().into()
}

/// The Merkle Tree Hash of a list of leaf hashes (RFC 9162 §2.1.1);
/// [`EMPTY_ROOT`] for no leaves.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// The inclusion proof (audit path, RFC 9162 §2.1.3.1) of the leaf at
/// `index` in the tree of `leaves`: the sibling hashes from the leaf up.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, MerkleError> {
    let size = len_u64(leaves);
    let index_usize = usize::try_from(index).ok().filter(|&i| i < leaves.len());
    let index_usize = index_usize.ok_or(MerkleError::IndexOutOfRange { index, size })?;
    let mut proof = Vec::new();
    path(index_usize, leaves, &mut proof);
    Ok(proof)
}

/// Checks that `leaf` (a leaf *hash*) is the leaf at `index` of the tree of
/// `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength { expected, actual: proof.len() });
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(MerkleError::WrongProofLength { expected, actual: proof.len() });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(MerkleError::WrongProofLength { expected, actual: proof.len() });
    }
    if r != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// The consistency proof (RFC 9162 §2.1.4.1) from the tree of the first
/// `old_size` of `leaves` to the tree of all of them.
///
/// The proof is empty when `old_size` is 0 or equals the number of leaves:
/// every tree extends the empty one, and a tree extends itself.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, MerkleError> {
    let new_size = len_u64(leaves);
    if old_size > new_size {
        return Err(MerkleError::SizesOutOfOrder { old_size, new_size });
    }
    let mut proof = Vec::new();
    // old_size <= leaves.len(), so it fits in usize.
    let old_size = usize::try_from(old_size).unwrap_or(leaves.len());
    if old_size > 0 {
        subproof(old_size, leaves, true, &mut proof);
    }
    Ok(proof)
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends
/// the tree of `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots; an old size of 0 needs
/// an empty proof and `old_root` equal to [`EMPTY_ROOT`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizesOutOfOrder { old_size, new_size });
    }
    let expected = consistency_proof_len(old_size, new_size);
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength { expected, actual: proof.len() });
    }
    if old_size == 0 {
        return if *old_root == EMPTY_ROOT { Ok(()) } else { Err(MerkleError::OldRootMismatch) };
    }
    if old_size == new_size {
        return if old_root == new_root { Ok(()) } else { Err(MerkleError::RootMismatch) };
    }
    // Now 0 < old_size < new_size and the proof has the expected length.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        proof.split_first().ok_or(MerkleError::WrongProofLength { expected, actual: 0 })?
    };
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut f_r = *seed;
    let mut s_r = *seed;
    for c in rest {
        if s_n == 0 {
            return Err(MerkleError::WrongProofLength { expected, actual: proof.len() });
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(MerkleError::WrongProofLength { expected, actual: proof.len() });
    }
    if f_r != *old_root {
        return Err(MerkleError::OldRootMismatch);
    }
    if s_r != *new_root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// A compact range over the whole log so far: the roots of its perfect
/// subtrees, largest (leftmost) first, one per set bit of the size.
///
/// It computes the same root as [`root`] in O(log n) memory and O(1)
/// amortised hashes per leaf, so a verifier can stream the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compact {
    size: u64,
    frontier: Vec<Hash>,
}

impl Compact {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash (hash entries with [`leaf_hash`] first).
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        // Each trailing one bit of the old size is a perfect subtree of the
        // new leaf's size on the frontier: merge them into one.
        while size & 1 == 1 {
            match self.frontier.pop() {
                Some(left) => hash = node_hash(&left, &hash),
                None => break,
            }
            size >>= 1;
        }
        self.frontier.push(hash);
        self.size = self.size.saturating_add(1);
    }

    /// The number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees, largest (leftmost) first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// The Merkle Tree Hash of the leaves pushed so far; [`EMPTY_ROOT`] when
    /// none were.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.frontier.iter().rev();
        let Some(last) = subtrees.next() else { return EMPTY_ROOT };
        subtrees.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// The leaf ranges `[lo, hi)` whose tree hashes make up the inclusion proof
/// of leaf `index` in a tree of `size`, in proof order: a log too large to
/// hold in memory answers a proof by hashing just these ranges (see
/// [`Blocks`]).
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::with_capacity(inclusion_proof_len(index, size));
    range_path(index, 0, size, &mut out);
    Ok(out)
}

/// The leaf ranges whose tree hashes make up the consistency proof from the
/// tree of `old_size` to the tree of `new_size`, in proof order.
pub fn consistency_ranges(old_size: u64, new_size: u64) -> Result<Vec<(u64, u64)>, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizesOutOfOrder { old_size, new_size });
    }
    let mut out = Vec::with_capacity(consistency_proof_len(old_size, new_size));
    if old_size > 0 {
        range_subproof(old_size, 0, new_size, true, &mut out);
    }
    Ok(out)
}

fn split_u64(n: u64) -> u64 {
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// PATH(m, D[lo:hi]) as ranges.
fn range_path(m: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
    if hi - lo <= 1 {
        return;
    }
    let k = split_u64(hi - lo);
    if m < k {
        range_path(m, lo, lo + k, out);
        out.push((lo + k, hi));
    } else {
        range_path(m - k, lo + k, hi, out);
        out.push((lo, lo + k));
    }
}

/// SUBPROOF(m, D[lo:hi], b) as ranges.
fn range_subproof(m: u64, lo: u64, hi: u64, complete: bool, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push((lo, hi));
        }
        return;
    }
    let k = split_u64(n);
    if m <= k {
        range_subproof(m, lo, lo + k, complete, out);
        out.push((lo + k, hi));
    } else {
        range_subproof(m - k, lo + k, hi, false, out);
        out.push((lo, lo + k));
    }
}

/// A log seen in blocks of `block` leaves (a power of two): the roots of
/// the complete blocks, and the leaves of some blocks. Enough to hash any
/// range a proof needs without reading the whole log.
#[derive(Clone, Copy)]
pub struct Blocks<'a> {
    pub block: u64,
    /// Root of block `i` (leaves `i*block .. (i+1)*block`), for every
    /// complete block held.
    pub roots: &'a [Hash],
    /// The leaves of a block, when loaded (the last block may be partial).
    pub leaves: &'a dyn Fn(u64) -> Option<&'a [Hash]>,
}

impl std::fmt::Debug for Blocks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocks")
            .field("block", &self.block)
            .field("complete", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl Blocks<'_> {
    /// The tree hash of leaves `[lo, hi)`, or `Err(i)`: block `i`'s leaves
    /// are needed and not loaded.
    pub fn range_root(&self, lo: u64, hi: u64) -> Result<Hash, u64> {
        let n = hi - lo;
        if n == 0 {
            return Ok(EMPTY_ROOT);
        }
        let first = lo / self.block;
        if lo.is_multiple_of(self.block) && n == self.block && (first as usize) < self.roots.len() {
            return Ok(self.roots[first as usize]);
        }
        if (hi - 1) / self.block == first {
            // Within one block: hash its leaves.
            let leaves = (self.leaves)(first).ok_or(first)?;
            let start = (lo - first * self.block) as usize;
            let end = (hi - first * self.block) as usize;
            return leaves.get(start..end).map(root).ok_or(first);
        }
        if n == 1 {
            return Err(first);
        }
        let k = split_u64(n);
        Ok(node_hash(&self.range_root(lo, lo + k)?, &self.range_root(lo + k, hi)?))
    }
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

fn len_u64(leaves: &[Hash]) -> u64 {
    u64::try_from(leaves.len()).unwrap_or(u64::MAX)
}

/// PATH(m, D[n]) of RFC 9162 §2.1.3.1, appended to `proof`.
fn path(m: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m < k {
        path(m, left, proof);
        proof.push(root(right));
    } else {
        path(m - k, right, proof);
        proof.push(root(left));
    }
}

/// SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1 (`0 < m <= n`), appended to
/// `proof`.
fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, complete, proof);
        proof.push(root(right));
    } else {
        subproof(m - k, right, false, proof);
        proof.push(root(left));
    }
}

/// The length of the audit path of leaf `index` in a tree of `size`
/// (`index < size`): the levels below the point where the paths to `index`
/// and to the last leaf part, plus one per left sibling above it.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = (index.checked_shr(inner).unwrap_or(0)).count_ones();
    (inner + border) as usize
}

/// The length of the consistency proof between two sizes
/// (`old_size <= new_size`).
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    if old_size == 0 || old_size == new_size {
        return 0;
    }
    // The proof is the audit path of the last perfect subtree of the old
    // tree (at level `shift`), preceded by that subtree's root unless it is
    // the whole old tree.
    let shift = old_size.trailing_zeros();
    let path_len = inclusion_proof_len((old_size - 1) >> shift, ((new_size - 1) >> shift) + 1);
    let seed = usize::from(!old_size.is_power_of_two());
    path_len + seed
}

#[cfg(test)]
mod tests;
