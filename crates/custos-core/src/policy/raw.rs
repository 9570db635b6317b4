//! The raw mirror of a policy file: plain `serde` structs that follow the TOML
//! one to one, with every unknown key refused.
//!
//! Nothing here is checked beyond the shape of the file. The validating
//! conversion into the domain model lives in `convert.rs`; the reverse
//! conversion (domain → raw) in `unconvert.rs` lets a valid policy be written
//! back as TOML. Keep field names and order in step with
//! `docs/policy-format.md`.

use serde::{Deserialize, Serialize};

/// A whole policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub policy: RawMeta,
    pub controller: RawController,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<RawChannel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub laws: Vec<RawLaw>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jurisdictions: Vec<RawJurisdiction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_kinds: Vec<RawSubjectKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<RawCategory>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<RawItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<RawPurpose>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<RawSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<RawEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collection_points: Vec<RawCollectionPoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<RawPrivilege>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RawRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RawRetention>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_classes: Vec<RawRecordClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_parties: Option<RawThirdParties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrustment: Option<RawEntrustment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<RawProcessor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfers: Vec<RawTransfer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rights: Option<RawRights>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safety: Vec<RawSafety>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookies: Option<RawCookies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<RawOfficer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedies: Option<RawRemedies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<RawChildren>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amendments: Option<RawAmendments>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    pub id: String,
    pub version: String,
    pub title: String,
    pub language: String,
    /// Id of the jurisdiction whose law the policy is written under.
    pub jurisdiction: String,
    pub notice_date: toml::value::Datetime,
    pub effective_date: toml::value::Datetime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preamble: Option<String>,
    /// Prose printed before the jurisdiction annexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annex_preamble: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawController {
    pub name: String,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<RawContact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    pub kind: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    pub id: String,
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLaw {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJurisdiction {
    pub id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2 codes of the countries this jurisdiction covers.
    pub countries: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rights: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_age: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sells_personal_information: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_basis: Option<RawMechanism>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines: Option<RawDeadlines>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeadlines {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<String>,
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub law: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMechanism {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<toml::value::Datetime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubjectKind {
    pub id: String,
    pub name: String,
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategory {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub special: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawItem {
    pub id: String,
    pub name: String,
    pub category: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_form: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPurpose {
    pub id: String,
    pub name: String,
    pub description: String,
    pub bases: Vec<RawBasis>,
    pub items: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<RawConsent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasis {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub law: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsent {
    pub mode: String,
    pub withdraw_via: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub id: String,
    pub kind: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollectionPoint {
    pub id: String,
    pub name: String,
    pub subject_kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional: Vec<String>,
    pub purposes: Vec<String>,
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub age_check: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivilege {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub description: String,
    pub purposes: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub single: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transferable_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grantable: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principle: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RawRetentionRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dormancy: Option<RawDormancy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destruction: Vec<RawDestruction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetentionRule {
    pub id: String,
    pub description: String,
    pub trigger: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt_roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDormancy {
    pub description: String,
    pub inactive_for: String,
    pub activity: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_before: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notice_via: Vec<String>,
    pub destroy_after: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt_roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestruction {
    pub medium: String,
    pub method: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecordClass {
    pub id: String,
    pub name: String,
    pub law: String,
    pub retain_for: String,
    pub read_purpose: String,
    /// What the span runs from; required, since no default is stated.
    pub from: String,
    /// Purposes that may read these records while the account exists;
    /// after the account is deleted only `read_purpose` may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThirdParties {
    pub statement: String,
    pub allowed_bases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sells_personal_information: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RawRecipient>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipient {
    pub id: String,
    pub name: String,
    pub purposes: Vec<String>,
    pub items: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntrustment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safeguards: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcessor {
    pub id: String,
    pub name: String,
    pub duty: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransfer {
    pub id: String,
    pub recipient: String,
    pub country: String,
    pub items: Vec<String>,
    pub purpose: String,
    pub retention: String,
    pub timing: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<RawMechanism>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRights {
    pub kinds: Vec<String>,
    pub channels: Vec<String>,
    pub agents: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSafety {
    pub kind: String,
    pub measures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCookies {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_effect: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpc_opts_out: Vec<String>,
    pub categories: Vec<RawCookieCategory>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub browsers: Vec<RawBrowser>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCookieCategory {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub necessary: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBrowser {
    pub name: String,
    pub instructions: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOfficer {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemedies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub agencies: Vec<RawAgency>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgency {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChildren {
    pub minimum_age: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAmendments {
    pub board: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub significant_notice: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub significant_changes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}
