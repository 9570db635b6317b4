-- Staff accounts, their sessions, and each service's staff login IP list.
-- `email` and `password` and `totp_secret` are AES-256-GCM ciphertext under
-- the staff member's data key; `email_digest` is the HMAC blind index of the
-- normalised e-mail; invitation and session secrets are stored as SHA-256
-- digests only.

CREATE TABLE staff (
    id                TEXT PRIMARY KEY,
    email_digest      BLOB NOT NULL UNIQUE,
    email             BLOB NOT NULL,
    key_id            TEXT NOT NULL,
    role              TEXT NOT NULL,
    single            INTEGER NOT NULL,
    service_id        TEXT,
    privileges        TEXT NOT NULL,
    status            TEXT NOT NULL,
    invite_hash       BLOB,
    invite_expires_at TEXT,
    password          BLOB,
    totp_secret       BLOB,
    totp_last_step    INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX staff_by_invite ON staff (invite_hash) WHERE invite_hash IS NOT NULL;
-- A single-holder role (the head admin) has one holder per service.
CREATE UNIQUE INDEX staff_single_holder ON staff (ifnull(service_id, ''), role)
    WHERE single = 1 AND status <> 'disabled';

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    staff_id     TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ended_at     TEXT
) STRICT;
CREATE INDEX sessions_by_staff ON sessions (staff_id);

ALTER TABLE services ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '';
