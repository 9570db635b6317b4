//! Tests of the `custos` server: the real binary end to end, and the HTTP
//! application in-process.

mod at_rest;
mod audit_log;
mod audit_match;
mod authz_matrix;
mod crash;
mod disclosures;
mod hostile;
mod http_amendments;
mod http_consents;
mod http_cookies;
mod http_ops;
mod http_records;
mod http_services;
mod http_staff;
mod http_subjects;
mod jobs_kill;
mod kit;
mod lifecycle;
mod lifecycle_props;
mod openapi;
mod pages;
mod peek;
mod pg_migrate;
mod pg_nodes;
mod policy_cli;
mod requests;
mod requests_props;
mod smtp_sink;
mod staff_pages;
mod support;
