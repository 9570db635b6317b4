-- The dormant store: the items of members moved aside after a year without
-- activity, sealed under each member's dormant key (scope `dormant` in the
-- key store). A file of its own, so that dormant data is kept apart from
-- the active data and its reads go through one place.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE dormant_items (
    subject_id   TEXT NOT NULL,
    item         TEXT NOT NULL,
    value        BLOB NOT NULL,
    key_version  INTEGER NOT NULL,
    source       TEXT NOT NULL,
    point        TEXT,
    collected_at TEXT NOT NULL,
    PRIMARY KEY (subject_id, item)
) STRICT, WITHOUT ROWID;
