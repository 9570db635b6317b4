-- Rights requests (access, export, correction, deletion, restriction,
-- objection to marketing, opt-out of sale, right to know), complaints and
-- inquiries: one queue.
--
-- Nothing here is personal data in plaintext: what was asked (the changes
-- asked for, the agent's name and contact, a complaint's body), the letter
-- of attorney and the answer are sealed under the request's own key
-- (`data_keys` scope `request`), which outlives the member's profile key so
-- that the request stays on record after a deletion it fulfilled.
-- `letter_sha256` is the hash of the letter as received. Dates are RFC 3339
-- instants (`*_at`) or calendar dates in UTC (`*_by`: the last day on time).

CREATE TABLE requests (
    id              TEXT PRIMARY KEY,
    -- The service whose staff may see it; NULL: the platform's.
    service_id      TEXT,
    -- NULL for a complaint or inquiry from someone who is not a member.
    subject_id      TEXT,
    kind            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    jurisdiction    TEXT NOT NULL,
    -- 'member' or 'agent'.
    requester       TEXT NOT NULL,
    status          TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    acknowledge_by  TEXT,
    answer_by       TEXT,
    extended_by     TEXT,
    acknowledged_at TEXT,
    -- How the requester was verified: 'code', 'platform_session',
    -- 'staff' (an agent's letter checked by a staff member).
    verified_by     TEXT,
    verified_at     TEXT,
    assigned_to     TEXT,
    closed_at       TEXT,
    key_id          TEXT NOT NULL,
    details         BLOB NOT NULL,
    letter_sha256   TEXT,
    letter          BLOB,
    outcome         BLOB,
    extension_reason BLOB,
    created_by      TEXT NOT NULL
) STRICT;
CREATE INDEX requests_queue ON requests (status, answer_by, id);
CREATE INDEX requests_by_subject ON requests (subject_id, received_at) WHERE subject_id IS NOT NULL;

-- One-time codes sent to a contact on file: only their HMAC is kept.
CREATE TABLE request_codes (
    request_id TEXT PRIMARY KEY,
    code_mac   TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Every step of a request, in order (its audit entries say the same, with
-- the rest of the log; this is the request's own timeline). `note` holds
-- no personal data: a reason for a denial or an extension is sealed in the
-- request's outcome.
CREATE TABLE request_steps (
    seq        INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    step       TEXT NOT NULL,
    status     TEXT NOT NULL,
    note       TEXT NOT NULL
) STRICT;
CREATE INDEX request_steps_by_request ON request_steps (request_id, seq);

-- Cessation of processing for a purpose ('*': every purpose), until lifted.
CREATE TABLE restrictions (
    subject_id TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    request_id TEXT NOT NULL,
    since      TEXT NOT NULL,
    lifted_at  TEXT,
    PRIMARY KEY (subject_id, purpose, request_id)
) STRICT;
CREATE INDEX restrictions_live ON restrictions (subject_id, purpose) WHERE lifted_at IS NULL;
