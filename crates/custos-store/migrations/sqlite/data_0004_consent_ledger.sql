-- The consent ledger gains its evidence: an id per entry (for receipts),
-- the SHA-256 of the exact notice text shown, and the member's IP address
-- and user agent sealed under the member's data key (`evidence`, with the
-- key's id). Entries written before keep NULL there.
--
-- `policy_versions` is the history of the policies this instance has run,
-- in the order they came into force: consent is derived against it.

ALTER TABLE consents ADD COLUMN id TEXT;
ALTER TABLE consents ADD COLUMN notice_hash TEXT;
ALTER TABLE consents ADD COLUMN evidence BLOB;
ALTER TABLE consents ADD COLUMN key_id TEXT;

CREATE TABLE policy_versions (
    seq          INTEGER PRIMARY KEY,
    version      TEXT NOT NULL UNIQUE,
    text         TEXT NOT NULL,
    in_force_at  TEXT NOT NULL
) STRICT;
