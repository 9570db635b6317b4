//! Custos core: the domain types and the policy model.
//!
//! Invariants kept here, checked in CI by the dependency rules:
//! - no I/O, no async, no database, no HTTP: this crate only computes;
//! - no clock: every decision that depends on time takes `now` (or a date)
//!   as a parameter, so tests drive time by hand.

pub mod access;
pub mod audit;
pub mod authz;
pub mod collect;
pub mod consent;
pub mod cookies;
pub mod lifecycle;
pub mod merkle;
pub mod net;
pub mod policy;
pub mod provision;
pub mod receipt;
pub mod rights;
