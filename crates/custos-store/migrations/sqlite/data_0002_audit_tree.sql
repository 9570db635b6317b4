-- The verifiable audit log: each entry's Merkle leaf hash (RFC 9162), and
-- the signed checkpoints issued over the tree. Entries written before this
-- migration get their leaf hash filled in by the engine at start.

ALTER TABLE audit ADD COLUMN leaf_hash BLOB;

CREATE TABLE checkpoints (
    size      INTEGER PRIMARY KEY,
    root      BLOB NOT NULL,
    time      TEXT NOT NULL,
    signature BLOB NOT NULL
) STRICT;
