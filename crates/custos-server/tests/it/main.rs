//! Tests of the `custos` server: the real binary end to end, and the HTTP
//! application in-process.

mod openapi;
mod policy_cli;
mod support;
