//! Browser tests: the pages `custos` serves, driven in Debian's chromium by
//! playwright-core (the Node scripts in `tests/browser/` at the repository
//! root). Each test serves the real router on a free port of 127.0.0.1
//! with a scratch data folder and a manual clock, runs one script against
//! it, and stops the server when the test ends, however it ends.
//!
//! They need `scripts/ensure-browser` to have run, so they are `ignore`d in
//! a plain `cargo test`; `scripts/test` (the README's test command, run by
//! CI) installs what they need and runs them with `--ignored`.

#[allow(dead_code)] // reason: shared with the `it` tests; this binary uses a part of it
#[path = "../it/smtp_sink.rs"]
mod smtp_sink;
#[allow(dead_code)] // reason: shared with the `it` tests; this binary uses a part of it
#[path = "../it/support.rs"]
mod support;

mod cookie_banner;
mod demo;
mod harness;
mod privacy_center;
mod staff_console;
