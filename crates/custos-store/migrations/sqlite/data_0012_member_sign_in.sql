-- The privacy center's sign-in (issue 10): a member asks for a one-time
-- code by e-mail, and typing it opens a short session.
--
-- A pending sign-in holds only the HMAC of its code (keyed per sign-in),
-- its expiry and the wrong tries so far; a session only the SHA-256 of its
-- 256-bit token. Neither holds an e-mail address or any other value.
CREATE TABLE member_sign_ins (
    id         TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    code_mac   TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX member_sign_ins_by_subject ON member_sign_ins (subject_id);

CREATE TABLE member_sessions (
    token_hash   BLOB PRIMARY KEY,
    subject_id   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) STRICT;
CREATE INDEX member_sessions_by_subject ON member_sessions (subject_id);
