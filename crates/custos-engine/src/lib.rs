//! Custos engine: the only code that reads or changes personal data.
//!
//! Every operation will run as authorise → decide (a pure function in
//! `custos-core`) → encrypt or decrypt → write together with its audit record
//! in one transaction of `custos-store`. Until the vault issue brings
//! personal data, the engine exposes what the server needs from the policy
//! model, so that the server never has to reach past it.

pub use custos_core::policy;

pub mod crypto;
pub mod password;
