-- The key store (SQLite's keys.db) in PostgreSQL 15, schema `custos_keys`:
-- the initial PostgreSQL schema, equal to the result of SQLite's
-- keys_0001..keys_0002 as of now. Wrapped data keys only, kept apart from
-- the data so that a copy of the data alone reveals nothing: this file
-- refers to no other schema, so the key store may live in a database of
-- its own. tests/pg_schema.rs checks that both agree.
--
-- Table with an explicit `rowid` column (bigint GENERATED ALWAYS AS
-- IDENTITY UNIQUE), because the store's SQL uses SQLite's implicit rowid on
-- it: data_keys (batched removal of keys by scope).

CREATE SCHEMA IF NOT EXISTS custos_keys;

CREATE TABLE custos_keys.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE custos_keys.data_keys (
    id         text PRIMARY KEY,
    subject_id text NOT NULL,
    scope      text NOT NULL,
    version    bigint NOT NULL,
    wrapped    bytea NOT NULL,
    created_at text NOT NULL,
    rowid      bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX data_keys_by_subject ON custos_keys.data_keys (subject_id, scope);
-- Hold keys are destroyed by scope (`hold:<class>:<YYYY-MM>`) when the last
-- record they could hold expires (keys_0002).
CREATE INDEX data_keys_by_scope ON custos_keys.data_keys (scope);
