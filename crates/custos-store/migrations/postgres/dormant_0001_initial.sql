-- The dormant store (SQLite's dormant.db) in PostgreSQL 15, schema
-- `custos_dormant`: the initial PostgreSQL schema, equal to the result of
-- SQLite's dormant_0001 as of now. The items of members moved aside after a
-- year without activity, sealed under each member's dormant key.
-- tests/pg_schema.rs checks that both agree.

CREATE SCHEMA IF NOT EXISTS custos_dormant;

CREATE TABLE custos_dormant.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE custos_dormant.dormant_items (
    subject_id   text NOT NULL,
    item         text NOT NULL,
    value        bytea NOT NULL,
    key_version  bigint NOT NULL,
    source       text NOT NULL,
    point        text,
    collected_at text NOT NULL,
    PRIMARY KEY (subject_id, item)
);
