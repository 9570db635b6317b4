-- Hand-overs of a member's data (seed clauses 4 and 5, annexes A and B):
-- provisions to third parties on a lawful basis, and hand-overs to a
-- processor for its declared duty, each with the items that went, when, by
-- whom, and, abroad, the country and the transfer's basis. The free text of
-- a provision (its purpose, citation, document, justification) may speak of
-- the member: it is sealed under the member's profile key (`sealed`, key
-- `key_id`) and goes with them; the row itself stays as the record of what
-- went to whom.
CREATE TABLE disclosures (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('provision', 'handover')),
    service_id TEXT,
    subject_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    recipient_id TEXT,
    items TEXT NOT NULL,
    duty TEXT,
    marketing INTEGER NOT NULL DEFAULT 0 CHECK (marketing IN (0, 1)),
    basis TEXT NOT NULL,
    consent_id TEXT,
    sealed BLOB,
    key_id TEXT,
    country TEXT,
    transfer_basis TEXT,
    transfer_description TEXT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    policy_version TEXT NOT NULL
) STRICT;
CREATE INDEX disclosures_by_subject ON disclosures (subject_id, at);
CREATE INDEX consents_by_id ON consents (id) WHERE id IS NOT NULL;

-- An access or export package is built at each fetch and never stored (it
-- would outlive the member's deletion under the request's key): answers
-- stored by earlier versions are dropped.
UPDATE requests SET outcome = NULL WHERE kind IN ('access', 'export') AND status = 'fulfilled';
