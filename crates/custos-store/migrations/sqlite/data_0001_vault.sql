-- The vault: services, subjects, encrypted items, blind indexes, records,
-- consents, API keys, idempotency keys and the audit trail.
-- Every column named `value` holds AES-256-GCM ciphertext; nothing here is
-- personal data in plaintext.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE services (
    id          TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE subjects (
    id               TEXT PRIMARY KEY,
    service_id       TEXT,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    profile_key      TEXT NOT NULL,
    policy_version   TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    last_activity_at TEXT NOT NULL
) STRICT;
CREATE INDEX subjects_by_service ON subjects (service_id, id);

CREATE TABLE items (
    subject_id   TEXT NOT NULL,
    item         TEXT NOT NULL,
    value        BLOB NOT NULL,
    key_version  INTEGER NOT NULL,
    source       TEXT NOT NULL,
    point        TEXT,
    collected_at TEXT NOT NULL,
    PRIMARY KEY (subject_id, item)
) STRICT, WITHOUT ROWID;

CREATE TABLE blind_index (
    scope      TEXT NOT NULL,
    item       TEXT NOT NULL,
    digest     BLOB NOT NULL,
    subject_id TEXT NOT NULL,
    PRIMARY KEY (scope, item, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX blind_index_by_subject ON blind_index (subject_id, item);

CREATE TABLE records (
    id          TEXT PRIMARY KEY,
    subject_id  TEXT NOT NULL,
    class       TEXT NOT NULL,
    record_date TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    value       BLOB NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX records_by_subject ON records (subject_id, class, id);

CREATE TABLE consents (
    seq            INTEGER PRIMARY KEY,
    subject_id     TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    granted        INTEGER NOT NULL,
    channel        TEXT NOT NULL,
    at             TEXT NOT NULL
) STRICT;
CREATE INDEX consents_by_subject ON consents (subject_id, purpose, seq);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    service_id  TEXT,
    purposes    TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) STRICT;

CREATE TABLE idempotency (
    api_key      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (api_key, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit (
    seq            INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    role           TEXT NOT NULL,
    operation      TEXT NOT NULL,
    purpose        TEXT,
    subject_id     TEXT,
    items          TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    policy_version TEXT NOT NULL
) STRICT;
