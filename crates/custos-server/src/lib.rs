//! The `custos` server as a library: configuration, the clock and
//! environment wrappers, and the HTTP application, so that tests drive the
//! app in-process and `main.rs` stays a thin command-line front.

pub mod clock;
pub mod config;
pub mod demo;
pub mod env;
pub mod http;
