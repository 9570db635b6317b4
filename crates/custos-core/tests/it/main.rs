//! Integration tests of custos-core, built as one test binary.

mod validation;
