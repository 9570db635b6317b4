-- Cookie consent per category (DESIGN clause 8: opt-in per category,
-- recorded; browser signals honoured). A visitor of the site is anonymous
-- at first, known only by a random id its browser keeps (`vis_<32 hex>`);
-- when they sign in, their rows are linked to the member (`subject_id`,
-- `linked_at`). Append-only: a choice is a new row, and the state is
-- derived from the rows (custos-core `cookies`), never stored.
--
-- `source` is 'choice' (the visitor chose) or 'gpc' (a Global Privacy
-- Control signal turned a `gpc_opts_out` category off); `gpc` says whether
-- the request that made the row carried `Sec-GPC: 1`.
--
-- Data minimisation: for an anonymous visitor nothing is kept but the
-- random id, the category, the choice, the GPC flag, the policy version
-- and the time. No IP address, no user agent, no page address: a cookie
-- banner does not need them to record and honour a choice.

CREATE TABLE cookie_consents (
    seq            INTEGER PRIMARY KEY,
    visitor_id     TEXT NOT NULL,
    subject_id     TEXT,
    category       TEXT NOT NULL,
    granted        INTEGER NOT NULL,
    source         TEXT NOT NULL,
    gpc            INTEGER NOT NULL,
    policy_version TEXT NOT NULL,
    at             TEXT NOT NULL,
    linked_at      TEXT
) STRICT;
CREATE INDEX cookie_consents_by_visitor ON cookie_consents (visitor_id, seq);
CREATE INDEX cookie_consents_by_subject ON cookie_consents (subject_id, seq) WHERE subject_id IS NOT NULL;

-- A row never changes, but for being linked once to a member.
CREATE TRIGGER cookie_consents_append_only BEFORE UPDATE ON cookie_consents
WHEN OLD.subject_id IS NOT NULL
    OR NEW.seq IS NOT OLD.seq OR NEW.visitor_id IS NOT OLD.visitor_id OR NEW.category IS NOT OLD.category
    OR NEW.granted IS NOT OLD.granted OR NEW.source IS NOT OLD.source OR NEW.gpc IS NOT OLD.gpc
    OR NEW.policy_version IS NOT OLD.policy_version OR NEW.at IS NOT OLD.at
BEGIN
    SELECT RAISE(ABORT, 'cookie consents are append-only');
END;
