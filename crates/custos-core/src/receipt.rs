//! Consent receipts in the Kantara Initiative Consent Receipt Specification
//! v1.1 format (`KI-CR-v1.1.0`): a record, handed to the member, of one
//! consent event, a grant or a withdrawal, for one purpose of the policy.
//!
//! [`consent_receipt`] is pure: the receipt id, the time, the subject's
//! pseudonymous id, the channel and where the policy is published come from
//! the caller in [`ReceiptFacts`]; everything else is read from the policy.
//! The types serialise (serde) to the specification's JSON field names; this
//! crate has no JSON library, the caller picks one.
//!
//! No personal data goes into a receipt: the subject appears only as the
//! pseudonymous id the caller passes, the controller only through the
//! contacts its policy publishes, and the officer only by department, title
//! and function telephone line, never by name or e-mail.
//!
//! How the policy maps onto the specification's fields, where it had to be
//! read one way or another:
//! - `jurisdiction` is the id of the policy's jurisdiction (`[policy]
//!   jurisdiction`), e.g. `kr`;
//! - `consentType` is `EXPLICIT` for an opt-in purpose (the term of the
//!   specification's example) and `IMPLICIT` for an opt-out one (used until
//!   the member objects);
//! - `purposeCategory` holds the purpose's id: the policy has no category
//!   scheme of purposes, and the specification's example list is not
//!   normative;
//! - `piiCategory` holds the names of the policy categories of the purpose's
//!   items, `spiCat` those of them marked `special`, and `sensitive` is true
//!   when there is one;
//! - `primaryPurpose` is true only for a purpose that has a contract basis
//!   (needed for the service itself); a consent-based one is an extra;
//! - `thirdPartyDisclosure` is true when a third-party recipient of the
//!   policy receives data for the purpose, `thirdPartyName` then names them;
//! - `termination` states how consent ends: the channels the policy names for
//!   withdrawing (or objecting to) it;
//! - `collectionMethod` is the channel the caller names, followed by the
//!   hash of the notice shown when the caller passes one;
//! - the controller's `address` is a schema.org-style object with
//!   `streetAddress` (the policy's address, else its postal contact), or
//!   empty when the policy states none; `contact` is the officer's
//!   department or title; `email` and `phone` are the controller's published
//!   contacts (the phone falls back to the officer's), each `not stated` when
//!   the policy gives none; `piiControllerUrl` is its web contact if any.
//!
//! [`cookie_receipt`] makes the receipt of one cookie consent call (DESIGN
//! clause 8): the entries it recorded, one purpose per cookie category, in
//! one service, the controller's. It reads the policy's `[cookies]` the same
//! way:
//! - `piiPrincipalId` is the visitor id (`vis_…`) or the member's
//!   pseudonymous subject id;
//! - `purpose` is the category's name and description, `purposeCategory`
//!   its id, `primaryPurpose` whether it is strictly necessary;
//! - `consentType` is `EXPLICIT` for a choice and `IMPLICIT` for an opt-out
//!   recorded from a Global Privacy Control signal (no one clicked);
//! - `piiCategory` holds the names of the policy categories of the items of
//!   type `cookie` (`cookie` when the policy has no such item), `spiCat`
//!   those of them marked `special`;
//! - `thirdPartyDisclosure` is true when a third-party recipient of the
//!   policy receives an item of type `cookie`: the policy ties recipients to
//!   items, not to cookie categories, so it holds for every category;
//! - `termination` is "until changed in the cookie settings" for a grant;
//! - `collectionMethod` is `cookie settings`, saying so when the request
//!   carried Global Privacy Control.

use serde::Serialize;

use crate::cookies::Source;
use crate::policy::Policy;
use crate::policy::model::{BasisKind, ConsentMode, ContactKind, Id, ItemType, Purpose};

#[cfg(test)]
mod tests;

/// The `version` of every receipt made here.
pub const VERSION: &str = "KI-CR-v1.1.0";

/// Stands in for a field the specification requires and the policy does not
/// state.
pub const NOT_STATED: &str = "not stated";

/// What the caller knows about one consent event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptFacts<'a> {
    /// A fresh random id for this receipt (e.g. a UUID v4), made by the caller.
    pub receipt_id: &'a str,
    /// When the consent was given or withdrawn.
    pub at: jiff::Timestamp,
    /// The subject's pseudonymous id; never an e-mail address or a name
    /// (an `@` in it fails a debug assertion).
    pub subject: &'a str,
    /// The id of a consent-based purpose of the policy.
    pub purpose: &'a str,
    /// `true` for a grant, `false` for a withdrawal.
    pub granted: bool,
    /// How the event reached the controller, e.g. `web`, `app`, `writing`.
    pub channel: &'a str,
    /// Where the rendered policy is published.
    pub policy_url: &'a str,
    /// A hash of the notice shown when consent was asked, if the caller has one.
    pub notice_hash: Option<&'a str>,
}

/// One entry a cookie consent call recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieReceiptChoice<'a> {
    /// A cookie category id of the policy.
    pub category: &'a str,
    /// `true` for a grant, `false` for a refusal or a withdrawal.
    pub granted: bool,
    /// Whether the category's latest earlier entry was a grant: `false` then
    /// withdraws consent; otherwise it refuses it.
    pub was_granted: bool,
    /// A choice of the visitor, or an opt-out recorded from a Global Privacy
    /// Control signal.
    pub source: Source,
}

/// What the caller knows about one cookie consent call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieReceiptFacts<'a> {
    /// A fresh random id for this receipt, made by the caller.
    pub receipt_id: &'a str,
    /// When the entries were recorded.
    pub at: jiff::Timestamp,
    /// The visitor id (`vis_…`) or the member's pseudonymous subject id;
    /// never an e-mail address or a name (an `@` in it fails a debug
    /// assertion).
    pub principal: &'a str,
    /// The entries the call recorded, in the order recorded.
    pub choices: &'a [CookieReceiptChoice<'a>],
    /// Whether the request carried Global Privacy Control (`Sec-GPC: 1`).
    pub gpc: bool,
    /// Where the rendered policy is published.
    pub policy_url: &'a str,
}

/// A consent receipt; serialises to the specification's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    #[serde(rename = "version")]
    pub version: String,
    #[serde(rename = "jurisdiction")]
    pub jurisdiction: String,
    /// Seconds since the Unix epoch (UTC).
    #[serde(rename = "consentTimestamp")]
    pub consent_timestamp: u64,
    #[serde(rename = "collectionMethod")]
    pub collection_method: String,
    #[serde(rename = "consentReceiptID")]
    pub consent_receipt_id: String,
    /// The controller's public key, for a signed receipt; never set here.
    #[serde(rename = "publicKey", skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(rename = "language")]
    pub language: String,
    #[serde(rename = "piiPrincipalId")]
    pub pii_principal_id: String,
    #[serde(rename = "piiControllers")]
    pub pii_controllers: Vec<PiiController>,
    #[serde(rename = "policyUrl")]
    pub policy_url: String,
    #[serde(rename = "services")]
    pub services: Vec<Service>,
    #[serde(rename = "sensitive")]
    pub sensitive: bool,
    #[serde(rename = "spiCat")]
    pub spi_cat: Vec<String>,
}

/// One controller of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PiiController {
    #[serde(rename = "piiController")]
    pub pii_controller: String,
    /// The office to contact (never a person's name).
    #[serde(rename = "contact")]
    pub contact: String,
    #[serde(rename = "address")]
    pub address: Address,
    #[serde(rename = "email")]
    pub email: String,
    #[serde(rename = "phone")]
    pub phone: String,
    #[serde(rename = "piiControllerUrl", skip_serializing_if = "Option::is_none")]
    pub pii_controller_url: Option<String>,
}

/// A postal address; the specification only asks for an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The whole address as the policy states it.
    #[serde(rename = "streetAddress", skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
}

/// One service and the purposes the receipt covers in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    #[serde(rename = "service")]
    pub service: String,
    #[serde(rename = "purposes")]
    pub purposes: Vec<ReceiptPurpose>,
}

/// One purpose of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptPurpose {
    #[serde(rename = "purpose")]
    pub purpose: String,
    #[serde(rename = "purposeCategory")]
    pub purpose_category: Vec<String>,
    #[serde(rename = "consentType")]
    pub consent_type: String,
    #[serde(rename = "piiCategory")]
    pub pii_category: Vec<String>,
    #[serde(rename = "primaryPurpose")]
    pub primary_purpose: bool,
    #[serde(rename = "termination")]
    pub termination: String,
    #[serde(rename = "thirdPartyDisclosure")]
    pub third_party_disclosure: bool,
    /// Set exactly when `third_party_disclosure` is true, as the schema demands.
    #[serde(rename = "thirdPartyName", skip_serializing_if = "Option::is_none")]
    pub third_party_name: Option<String>,
}

/// Why no receipt can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the policy has no purpose {0:?}")]
    UnknownPurpose(String),
    #[error("purpose {0:?} is not consent-based: there is no consent to record")]
    NotConsentBased(String),
    #[error("the policy has no cookies section")]
    NoCookies,
    #[error("the policy declares no cookie category {0:?}")]
    UnknownCookieCategory(String),
    #[error("a cookie consent receipt needs at least one recorded entry")]
    NoCookieChoices,
}

/// The receipt of one consent event for one consent-based purpose.
///
/// A withdrawal (`granted == false`) gets a receipt of the same shape: the
/// schema has no field for the kind of event, and `consentType` names the
/// kind of consent concerned, so it stays as for the grant. The withdrawal
/// is stated where a reader of the receipt sees it first, in the `purpose`
/// text (`Consent withdrawn: …`), and `termination` says that this event
/// ended the consent. `consentTimestamp` is the time of the withdrawal and
/// `collectionMethod` the channel it came through.
///
/// Fails when the purpose is not in the policy or has no consent rule.
pub fn consent_receipt(policy: &Policy, facts: &ReceiptFacts<'_>) -> Result<Receipt, ReceiptError> {
    let purpose =
        policy.purpose_by_str(facts.purpose).ok_or_else(|| ReceiptError::UnknownPurpose(facts.purpose.to_owned()))?;
    let Some(consent) = &purpose.consent else {
        return Err(ReceiptError::NotConsentBased(facts.purpose.to_owned()));
    };
    debug_assert!(!facts.subject.contains('@'), "a receipt names the subject by a pseudonymous id, not an e-mail");

    let (pii_category, spi_cat) = categories(policy, purpose);
    let recipients: Vec<&str> = policy
        .third_parties
        .iter()
        .flat_map(|t| &t.recipients)
        .filter(|r| r.purposes.contains(&purpose.id))
        .map(|r| r.name.as_str())
        .collect();

    let channels: Vec<&str> =
        consent.withdraw_via.iter().map(|id| policy.channel(id).map_or(id.as_str(), |c| c.name.as_str())).collect();
    let termination = if !facts.granted {
        "Ended by this withdrawal.".to_owned()
    } else if channels.is_empty() {
        "Withdrawal at any time through the same channel.".to_owned()
    } else {
        match consent.mode {
            ConsentMode::OptIn => format!("Until withdrawn; withdraw at any time via: {}.", channels.join(", ")),
            ConsentMode::OptOut => format!("Until you opt out; opt out at any time via: {}.", channels.join(", ")),
        }
    };

    let text = format!("{}. {}", purpose.name.trim_end_matches('.'), purpose.description);
    let receipt_purpose = ReceiptPurpose {
        purpose: if facts.granted { text } else { format!("Consent withdrawn: {text}") },
        purpose_category: vec![purpose.id.as_str().to_owned()],
        consent_type: match consent.mode {
            ConsentMode::OptIn => "EXPLICIT",
            ConsentMode::OptOut => "IMPLICIT",
        }
        .to_owned(),
        pii_category,
        primary_purpose: purpose.bases.iter().any(|b| b.kind == BasisKind::Contract),
        termination,
        third_party_disclosure: !recipients.is_empty(),
        third_party_name: (!recipients.is_empty()).then(|| recipients.join("; ")),
    };

    let collection_method = match facts.notice_hash {
        Some(hash) => format!("{}; notice {hash}", facts.channel),
        None => facts.channel.to_owned(),
    };

    Ok(Receipt {
        version: VERSION.to_owned(),
        jurisdiction: policy.meta.jurisdiction.as_str().to_owned(),
        // The schema allows no negative timestamp; no consent predates 1970.
        consent_timestamp: u64::try_from(facts.at.as_second()).unwrap_or(0),
        collection_method,
        consent_receipt_id: facts.receipt_id.to_owned(),
        public_key: None,
        language: policy.meta.language.clone(),
        pii_principal_id: facts.subject.to_owned(),
        pii_controllers: vec![controller(policy)],
        policy_url: facts.policy_url.to_owned(),
        services: vec![Service { service: policy.controller.service.clone(), purposes: vec![receipt_purpose] }],
        sensitive: !spi_cat.is_empty(),
        spi_cat,
    })
}

/// The receipt of one cookie consent call: one purpose per entry recorded,
/// in the order recorded, in one service (the controller's).
///
/// `granted == false` follows the convention of [`consent_receipt`]: the
/// `purpose` text starts with `Consent withdrawn: ` when a grant held before
/// ([`CookieReceiptChoice::was_granted`]) and `Consent refused: ` otherwise
/// (`… by a Global Privacy Control signal: ` for an opt-out the signal
/// made), and `termination` says that this entry ended or refused consent.
///
/// Fails when the policy has no `[cookies]`, a category is not one of its
/// cookie categories, or there is no entry.
pub fn cookie_receipt(policy: &Policy, facts: &CookieReceiptFacts<'_>) -> Result<Receipt, ReceiptError> {
    let cookies = policy.cookies.as_ref().ok_or(ReceiptError::NoCookies)?;
    if facts.choices.is_empty() {
        return Err(ReceiptError::NoCookieChoices);
    }
    debug_assert!(!facts.principal.contains('@'), "a receipt names the principal by a pseudonymous id, not an e-mail");

    let is_cookie = |id: &Id| policy.item(id).is_some_and(|i| i.kind == ItemType::Cookie);
    let cookie_items = policy.items.iter().filter(|i| i.kind == ItemType::Cookie).map(|i| &i.category);
    let (mut pii_category, spi_cat) = category_names(policy, cookie_items);
    if pii_category.is_empty() {
        pii_category.push(ItemType::Cookie.as_str().to_owned());
    }
    let recipients: Vec<&str> = policy
        .third_parties
        .iter()
        .flat_map(|t| &t.recipients)
        .filter(|r| r.items.iter().any(is_cookie))
        .map(|r| r.name.as_str())
        .collect();

    let mut purposes = Vec::with_capacity(facts.choices.len());
    for choice in facts.choices {
        let category = cookies
            .categories
            .iter()
            .find(|c| c.id.as_str() == choice.category)
            .ok_or_else(|| ReceiptError::UnknownCookieCategory(choice.category.to_owned()))?;
        let text = format!("{}. {}", category.name.trim_end_matches('.'), category.description);
        let by_gpc = choice.source == Source::Gpc;
        let (purpose, termination) = match (choice.granted, choice.was_granted, by_gpc) {
            (true, _, _) => (text, "Until changed in the cookie settings.".to_owned()),
            (false, true, false) => (format!("Consent withdrawn: {text}"), "Ended by this withdrawal.".to_owned()),
            (false, false, false) => (
                format!("Consent refused: {text}"),
                "Not given: refused by this choice; it can be given in the cookie settings.".to_owned(),
            ),
            (false, true, true) => (
                format!("Consent withdrawn by a Global Privacy Control signal: {text}"),
                format!("Ended by this signal; {GPC_UNTIL}"),
            ),
            (false, false, true) => (
                format!("Consent refused by a Global Privacy Control signal: {text}"),
                format!("Not given: refused by this signal; {GPC_UNTIL}"),
            ),
        };
        purposes.push(ReceiptPurpose {
            purpose,
            purpose_category: vec![category.id.as_str().to_owned()],
            consent_type: if by_gpc { "IMPLICIT" } else { "EXPLICIT" }.to_owned(),
            pii_category: pii_category.clone(),
            primary_purpose: category.necessary,
            termination,
            third_party_disclosure: !recipients.is_empty(),
            third_party_name: (!recipients.is_empty()).then(|| recipients.join("; ")),
        });
    }

    let collection_method = if facts.gpc {
        "cookie settings, with a Global Privacy Control signal (Sec-GPC: 1)"
    } else {
        "cookie settings"
    };

    Ok(Receipt {
        version: VERSION.to_owned(),
        jurisdiction: policy.meta.jurisdiction.as_str().to_owned(),
        consent_timestamp: u64::try_from(facts.at.as_second()).unwrap_or(0),
        collection_method: collection_method.to_owned(),
        consent_receipt_id: facts.receipt_id.to_owned(),
        public_key: None,
        language: policy.meta.language.clone(),
        pii_principal_id: facts.principal.to_owned(),
        pii_controllers: vec![controller(policy)],
        policy_url: facts.policy_url.to_owned(),
        services: vec![Service { service: policy.controller.service.clone(), purposes }],
        sensitive: !spi_cat.is_empty(),
        spi_cat,
    })
}

/// How long a Global Privacy Control opt-out holds (`custos_core::cookies`).
const GPC_UNTIL: &str = "off until a new choice in the cookie settings made without the signal.";

/// The names of the categories of the purpose's items, first appearance
/// first, and those of them that are special categories.
fn categories(policy: &Policy, purpose: &Purpose) -> (Vec<String>, Vec<String>) {
    category_names(policy, purpose.items.iter().filter_map(|id| policy.item(id)).map(|item| &item.category))
}

/// The names of the given policy categories, first appearance first, and
/// those of them that are special categories.
fn category_names<'p>(policy: &'p Policy, ids: impl Iterator<Item = &'p Id>) -> (Vec<String>, Vec<String>) {
    let mut all = Vec::new();
    let mut special = Vec::new();
    for id in ids {
        let (name, is_special) = policy.category(id).map_or((id.as_str(), false), |c| (c.name.as_str(), c.special));
        if !all.iter().any(|n| n == name) {
            all.push(name.to_owned());
            if is_special {
                special.push(name.to_owned());
            }
        }
    }
    (all, special)
}

/// The controller as the policy publishes it.
fn controller(policy: &Policy) -> PiiController {
    let c = &policy.controller;
    let contact = |kind: ContactKind| c.contacts.iter().find(|x| x.kind == kind).map(|x| x.value.clone());
    let officer = policy.officer.as_ref();
    PiiController {
        pii_controller: c.name.clone(),
        contact: officer
            .and_then(|o| o.department.clone().or_else(|| Some(o.title.clone())))
            .or_else(|| c.contacts.iter().find_map(|x| x.label.clone()))
            .unwrap_or_else(|| NOT_STATED.to_owned()),
        address: Address { street_address: c.address.clone().or_else(|| contact(ContactKind::Postal)) },
        email: contact(ContactKind::Email).unwrap_or_else(|| NOT_STATED.to_owned()),
        phone: contact(ContactKind::Phone)
            .or_else(|| officer.and_then(|o| o.phone.clone()))
            .unwrap_or_else(|| NOT_STATED.to_owned()),
        pii_controller_url: contact(ContactKind::Web),
    }
}
