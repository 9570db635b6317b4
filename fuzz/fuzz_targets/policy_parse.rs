//! Fuzzes the policy parser: any bytes must give a policy or a list of
//! located problems, never a panic, and any policy that parses must survive
//! a write-back and re-parse unchanged and render in both formats.
//!
//! Run: `cargo +nightly fuzz run policy_parse` (from the repository root).
#![no_main]

use custos_core::policy::{self, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = policy::parse_bytes(data) {
        let again = policy::parse(&policy::to_toml(&p)).expect("a written policy parses");
        assert_eq!(p, again);
        let _ = render::render(&p, render::Format::Markdown);
        let _ = render::render(&p, render::Format::Html);
    }
});
