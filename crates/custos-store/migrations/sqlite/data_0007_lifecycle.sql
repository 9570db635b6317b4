-- The lifecycle jobs: dormancy, deletion, statutory holds, the outbox's
-- delivery and the lease that keeps two runners apart.
--
-- `notified_at`: when the dormancy notice of the current inactivity period
-- was queued; `dormant_at`: when the member moved to the dormant store
-- (`dormant.db`); `deleted_at`: when the account was deleted (the row stays
-- as a tombstone of ids while records under a statutory hold remain).
-- `staff.subject_id` links a staff account to the member account of the
-- same person, so that a role the policy exempts from dormancy (the head
-- admin) protects that account.

ALTER TABLE subjects ADD COLUMN notified_at TEXT;
ALTER TABLE subjects ADD COLUMN dormant_at TEXT;
ALTER TABLE subjects ADD COLUMN deleted_at TEXT;
CREATE INDEX subjects_by_activity ON subjects (status, last_activity_at, id);
CREATE INDEX subjects_dormant ON subjects (dormant_at, id) WHERE status = 'dormant';

CREATE INDEX records_by_class_date ON records (class, record_date);

ALTER TABLE staff ADD COLUMN subject_id TEXT;
CREATE INDEX staff_by_subject ON staff (subject_id) WHERE subject_id IS NOT NULL;

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at TEXT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN failed_at TEXT;
CREATE INDEX outbox_pending ON outbox (seq) WHERE delivered_at IS NULL AND failed_at IS NULL;
-- A notice to every member (an amendment) is fanned out into one entry per
-- member with an e-mail address, each pointing at it (`parent`); the index
-- makes a fan-out interrupted half way safe to run again.
ALTER TABLE outbox ADD COLUMN parent INTEGER;
CREATE UNIQUE INDEX outbox_fanout ON outbox (parent, subject) WHERE parent IS NOT NULL;
