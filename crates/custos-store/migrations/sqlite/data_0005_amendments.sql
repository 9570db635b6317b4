-- Policy amendments published at runtime: the new version's text, when it
-- was announced, when it takes effect, what changed (JSON list of the
-- changes in words) and whether that is significant under the version in
-- force; `in_force_at` is set when it takes effect (and the version joins
-- `policy_versions`), `superseded_at` when a later announcement replaced it
-- before its date. `outbox` holds notifications waiting for delivery.

CREATE TABLE amendments (
    seq            INTEGER PRIMARY KEY,
    version        TEXT NOT NULL UNIQUE,
    text           TEXT NOT NULL,
    previous       TEXT NOT NULL,
    announced_at   TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    significant    INTEGER NOT NULL,
    changes        TEXT NOT NULL,
    in_force_at    TEXT,
    superseded_at  TEXT
) STRICT;

CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject      TEXT,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    delivered_at TEXT
) STRICT;
