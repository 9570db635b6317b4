//! Custos persistence: one `Store` API with SQLite (the embedded default) and
//! PostgreSQL behind it, migrations per backend, one conformance suite.
//!
//! Nothing is stored yet: the vault issue brings the first tables. The crate
//! exists now so that the dependency direction (core ← store ← engine ←
//! server, and never server → store) is fixed and checked from the start.
//! Only `custos-engine` may depend on this crate.
