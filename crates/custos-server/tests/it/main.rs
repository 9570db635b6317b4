//! End-to-end tests of the `custos` binary: each starts the real executable.

mod policy_cli;
