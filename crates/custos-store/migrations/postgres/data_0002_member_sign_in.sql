-- The privacy center's sign-in (issue 10), as SQLite's data_0012: pending
-- one-time codes (HMAC only) and member sessions (SHA-256 of the token
-- only).
CREATE TABLE custos.member_sign_ins (
    id         text PRIMARY KEY,
    subject_id text NOT NULL,
    code_mac   text NOT NULL,
    expires_at text NOT NULL,
    attempts   bigint NOT NULL DEFAULT 0,
    created_at text NOT NULL
);
CREATE INDEX member_sign_ins_by_subject ON custos.member_sign_ins (subject_id);

CREATE TABLE custos.member_sessions (
    token_hash   bytea PRIMARY KEY,
    subject_id   text NOT NULL,
    created_at   text NOT NULL,
    last_seen_at text NOT NULL,
    expires_at   text NOT NULL
);
CREATE INDEX member_sessions_by_subject ON custos.member_sessions (subject_id);
