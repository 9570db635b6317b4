-- The key store: wrapped data keys, in a file of its own so that a copy of
-- the data file alone reveals nothing, and a destroyed key is gone from the
-- one place that held it.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE data_keys (
    id         TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    scope      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    wrapped    BLOB NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX data_keys_by_subject ON data_keys (subject_id, scope);
