//! Hand-overs as pure rules (seed clauses 4 and 5, annexes A and B): when a
//! member's data may go to a third party (a provision, on a lawful basis)
//! or to a processor for its declared duty, and when a hand-over is also a
//! cross-border transfer, with which basis.
//!
//! Invariants:
//! - a provision rests on one of the bases the policy's `[third_parties]`
//!   allows; a consent basis is the member's current, granted, opt-in
//!   consent whose purpose covers every item handed over (and, where the
//!   policy names recipients, a purpose of that recipient); a legal
//!   obligation names its citation and document; imminent danger names its
//!   justification. Anything else is refused, with every reason;
//! - a processor receives only the items its declared duty covers; a duty
//!   that declares no items receives nothing;
//! - a hand-over to a recipient outside the member's jurisdiction is a
//!   transfer, recorded with the country and its basis: into the
//!   controller's home countries, the basis the member's jurisdiction
//!   names (b.stage: adequacy for EEA/UK/Swiss members); else the
//!   transfer's own mechanism; else the disclosure in the policy itself.

use std::fmt;

use serde::Serialize;

use crate::policy::Policy;
use crate::policy::model::{BasisKind, Country, Mechanism};

/// Longest free text of a basis (a citation, a document reference, a
/// justification), in bytes.
pub const MAX_BASIS_TEXT: usize = 2000;

/// The lawful basis a provision names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionBasis {
    /// The member's consent, by its id in the consent ledger.
    Consent { consent_id: String },
    /// A legal obligation: the provision of law and the document that
    /// compels it (a warrant, an order, a letter of request).
    LegalObligation { citation: String, document: String },
    /// Imminent danger to the member's life or safety.
    VitalInterest { justification: String },
}

impl ProvisionBasis {
    pub fn kind(&self) -> BasisKind {
        match self {
            ProvisionBasis::Consent { .. } => BasisKind::Consent,
            ProvisionBasis::LegalObligation { .. } => BasisKind::LegalObligation,
            ProvisionBasis::VitalInterest { .. } => BasisKind::VitalInterest,
        }
    }
}

/// The consent a consent basis names, as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentFacts {
    /// The consent belongs to the member the provision is about.
    pub same_member: bool,
    pub purpose: String,
    pub granted: bool,
    /// No later entry (a withdrawal) for the same purpose.
    pub current: bool,
}

/// What is asked: a provision of `items` to `recipient`.
#[derive(Debug, Clone)]
pub struct ProvisionAsk<'a> {
    /// The policy's id of the recipient, when it names recipients.
    pub recipient_id: Option<&'a str>,
    pub items: &'a [String],
    pub basis: &'a ProvisionBasis,
    /// The consent named by a consent basis; `None` when it does not exist.
    pub consent: Option<&'a ConsentFacts>,
}

/// Why a hand-over is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The policy allows no provision at all (no `[third_parties]`).
    NoProvisions,
    BasisNotAllowed(String),
    NoItems,
    UnknownItem(String),
    /// A password hash never leaves.
    Secret(String),
    UnknownRecipient(String),
    /// The policy names its recipients: a consent-based provision must name
    /// one of them.
    RecipientRequired,
    /// The recipient the policy names does not receive this item.
    RecipientItem(String),
    ConsentMissing,
    ConsentOtherMember,
    ConsentWithdrawn,
    /// The consent is not an opt-in consent given for its own purpose.
    ConsentNotOptIn(String),
    /// The consent's purpose does not cover this item.
    ConsentItem(String),
    /// The consent's purpose is not one the named recipient receives for.
    ConsentRecipient(String),
    /// A basis without the text it needs (a citation, a document, a
    /// justification), or with too much.
    Text(&'static str, String),
    UnknownProcessor(String),
    /// The processor's declared duty does not cover this item.
    Duty(String),
}

impl Refusal {
    /// A short code for the audit log (no submitted text).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoProvisions => "no_provisions",
            Refusal::BasisNotAllowed(_) => "basis_not_allowed",
            Refusal::NoItems => "no_items",
            Refusal::UnknownItem(_) => "unknown_item",
            Refusal::Secret(_) => "secret_item",
            Refusal::UnknownRecipient(_) => "unknown_recipient",
            Refusal::RecipientRequired => "recipient_required",
            Refusal::RecipientItem(_) => "item_not_for_recipient",
            Refusal::ConsentMissing => "consent_missing",
            Refusal::ConsentOtherMember => "consent_of_another_member",
            Refusal::ConsentWithdrawn => "consent_not_current",
            Refusal::ConsentNotOptIn(_) => "consent_not_opt_in",
            Refusal::ConsentItem(_) => "item_not_consented",
            Refusal::ConsentRecipient(_) => "consent_not_for_recipient",
            Refusal::Text(_, _) => "basis_text",
            Refusal::UnknownProcessor(_) => "unknown_processor",
            Refusal::Duty(_) => "item_outside_duty",
        }
    }

    /// The request field the refusal is about.
    pub fn field(&self) -> &'static str {
        match self {
            Refusal::NoProvisions | Refusal::BasisNotAllowed(_) => "basis.kind",
            Refusal::NoItems
            | Refusal::UnknownItem(_)
            | Refusal::Secret(_)
            | Refusal::RecipientItem(_)
            | Refusal::ConsentItem(_)
            | Refusal::Duty(_) => "items",
            Refusal::UnknownRecipient(_) | Refusal::RecipientRequired => "recipient_id",
            Refusal::ConsentMissing
            | Refusal::ConsentOtherMember
            | Refusal::ConsentWithdrawn
            | Refusal::ConsentNotOptIn(_)
            | Refusal::ConsentRecipient(_) => "basis.consent_id",
            Refusal::Text(field, _) => field,
            Refusal::UnknownProcessor(_) => "recipient",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoProvisions => f.write_str("the policy provides personal information to no third party"),
            Refusal::BasisNotAllowed(b) => write!(f, "the policy allows no provision on the basis {b:?}"),
            Refusal::NoItems => f.write_str("name at least one item"),
            Refusal::UnknownItem(i) => write!(f, "the policy declares no item {i:?}"),
            Refusal::Secret(i) => write!(f, "{i:?} is a password hash and never leaves"),
            Refusal::UnknownRecipient(r) => write!(f, "the policy names no recipient {r:?}"),
            Refusal::RecipientRequired => {
                f.write_str("the policy names its recipients: a provision on consent must name one (recipient_id)")
            }
            Refusal::RecipientItem(i) => write!(f, "the policy does not list {i:?} among what this recipient receives"),
            Refusal::ConsentMissing => f.write_str("no such consent in the ledger"),
            Refusal::ConsentOtherMember => f.write_str("the consent was given by another member"),
            Refusal::ConsentWithdrawn => f.write_str("the consent is not current: it was refused or withdrawn"),
            Refusal::ConsentNotOptIn(p) => {
                write!(f, "the consent to {p:?} is not a separate opt-in consent, so it grounds no provision")
            }
            Refusal::ConsentItem(i) => write!(f, "the consent's purpose does not cover {i:?}"),
            Refusal::ConsentRecipient(p) => write!(f, "this recipient does not receive data for the purpose {p:?}"),
            Refusal::Text(field, why) => write!(f, "{field}: {why}"),
            Refusal::UnknownProcessor(p) => write!(f, "the policy names no processor or transfer recipient {p:?}"),
            Refusal::Duty(i) => write!(f, "the recipient's declared duty does not cover {i:?}"),
        }
    }
}

fn text(field: &'static str, value: &str, out: &mut Vec<Refusal>) {
    if value.trim().is_empty() {
        out.push(Refusal::Text(field, "required".into()));
    } else if value.len() > MAX_BASIS_TEXT {
        out.push(Refusal::Text(field, format!("at most {MAX_BASIS_TEXT} bytes")));
    } else if value.chars().any(|c| c.is_control() && c != '\n') {
        out.push(Refusal::Text(field, "control characters are not allowed".into()));
    }
}

fn check_items(policy: &Policy, items: &[String], out: &mut Vec<Refusal>) {
    if items.is_empty() {
        out.push(Refusal::NoItems);
    }
    for item in items {
        match policy.item_by_str(item) {
            None => out.push(Refusal::UnknownItem(item.clone())),
            Some(def) if def.kind == crate::policy::model::ItemType::Password => {
                out.push(Refusal::Secret(item.clone()))
            }
            Some(_) => {}
        }
    }
}

/// Whether a provision may happen; every reason it may not.
pub fn check_provision(policy: &Policy, ask: &ProvisionAsk<'_>) -> Result<(), Vec<Refusal>> {
    let mut out = Vec::new();
    let Some(third) = &policy.third_parties else {
        return Err(vec![Refusal::NoProvisions]);
    };
    let kind = ask.basis.kind();
    if !third.allowed_bases.contains(&kind) {
        out.push(Refusal::BasisNotAllowed(kind.to_string()));
    }
    check_items(policy, ask.items, &mut out);
    let recipient = match ask.recipient_id {
        Some(id) => match third.recipients.iter().find(|r| r.id.as_str() == id) {
            Some(r) => Some(r),
            None => {
                out.push(Refusal::UnknownRecipient(id.to_owned()));
                None
            }
        },
        None => {
            // Where the policy names its recipients, a consent reaches only
            // them: leaving the id out must not skip their rules.
            if !third.recipients.is_empty() && matches!(ask.basis, ProvisionBasis::Consent { .. }) {
                out.push(Refusal::RecipientRequired);
            }
            None
        }
    };
    if let Some(r) = recipient {
        for item in ask.items {
            if !r.items.iter().any(|i| i.as_str() == item) {
                out.push(Refusal::RecipientItem(item.clone()));
            }
        }
    }
    match ask.basis {
        ProvisionBasis::Consent { .. } => match ask.consent {
            None => out.push(Refusal::ConsentMissing),
            Some(c) if !c.same_member => out.push(Refusal::ConsentOtherMember),
            Some(c) => {
                if !c.granted || !c.current {
                    out.push(Refusal::ConsentWithdrawn);
                }
                match policy.purpose_by_str(&c.purpose) {
                    Some(p) if p.needs_opt_in() => {
                        for item in ask.items {
                            if !p.items.iter().any(|i| i.as_str() == item) {
                                out.push(Refusal::ConsentItem(item.clone()));
                            }
                        }
                        if let Some(r) = recipient
                            && !r.purposes.iter().any(|x| x.as_str() == c.purpose)
                        {
                            out.push(Refusal::ConsentRecipient(c.purpose.clone()));
                        }
                    }
                    _ => out.push(Refusal::ConsentNotOptIn(c.purpose.clone())),
                }
            }
        },
        ProvisionBasis::LegalObligation { citation, document } => {
            text("basis.citation", citation, &mut out);
            text("basis.document", document, &mut out);
        }
        ProvisionBasis::VitalInterest { justification } => text("basis.justification", justification, &mut out),
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Where a hand-over to a processor (or a recipient the policy lists among
/// its transfers) goes, and whether it crosses a border.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverPlan {
    pub recipient: String,
    pub name: String,
    /// The duty (a processor) or the purpose (a transfer) the items go for.
    pub duty: String,
    pub country: Option<Country>,
    /// Set when the recipient is outside the member's jurisdiction.
    pub transfer: Option<TransferBasis>,
}

/// The basis a cross-border transfer rests on, in the policy's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferBasis {
    pub kind: String,
    pub description: String,
}

fn mechanism(m: &Mechanism) -> TransferBasis {
    TransferBasis { kind: m.kind.to_string(), description: m.description.clone().unwrap_or_default() }
}

/// Whether `items` of a member of `jurisdiction` (a policy id; `None`: the
/// policy's own) may go to `recipient`, a processor of the register or a
/// recipient of the policy's `[[transfers]]`; the plan if so.
pub fn check_handover(
    policy: &Policy,
    recipient: &str,
    items: &[String],
    jurisdiction: Option<&str>,
) -> Result<HandoverPlan, Vec<Refusal>> {
    let mut out = Vec::new();
    check_items(policy, items, &mut out);
    let processor = policy.processors.iter().find(|p| p.id.as_str() == recipient);
    // A transfer entry by its own id, or the one naming this processor.
    let transfer = policy
        .transfers
        .iter()
        .find(|t| t.id.as_str() == recipient || t.processor.as_ref().is_some_and(|p| p.as_str() == recipient));
    let (name, duty, covers, country): (String, String, Vec<&str>, Option<Country>) = match (processor, transfer) {
        (Some(p), t) => (
            p.name.clone(),
            p.duty.clone(),
            p.items.iter().map(|i| i.as_str()).collect(),
            p.country.clone().or_else(|| t.map(|t| t.country.clone())),
        ),
        (None, Some(t)) => (
            t.recipient.clone(),
            t.purpose.clone(),
            t.items.iter().map(|i| i.as_str()).collect(),
            Some(t.country.clone()),
        ),
        (None, None) => {
            out.push(Refusal::UnknownProcessor(recipient.to_owned()));
            return Err(out);
        }
    };
    for item in items {
        if !covers.contains(&item.as_str()) && policy.item_by_str(item).is_some() {
            out.push(Refusal::Duty(item.clone()));
        }
    }
    if !out.is_empty() {
        return Err(out);
    }
    let home_id = &policy.meta.jurisdiction;
    let countries_of = |id: &crate::policy::model::Id| -> Vec<&Country> {
        policy.jurisdictions.iter().filter(|j| &j.id == id).flat_map(|j| j.countries.iter()).collect()
    };
    let member = jurisdiction
        .and_then(|id| policy.jurisdictions.iter().find(|j| j.id.as_str() == id))
        .or_else(|| policy.jurisdictions.iter().find(|j| &j.id == home_id));
    let member_countries = member.map(|j| countries_of(&j.id)).unwrap_or_default();
    let home = countries_of(home_id);
    // Abroad: outside the member's own countries (a recipient whose
    // country the policy does not state is not counted as abroad).
    let abroad = country.as_ref().is_some_and(|c| !member_countries.contains(&c));
    let transfer_basis = abroad.then(|| {
        // Into the controller's home countries, from a jurisdiction with a
        // basis of its own (b.stage: EEA/UK/CH to Korea, adequacy).
        let own = member
            .filter(|j| &j.id != home_id && country.as_ref().is_some_and(|c| home.contains(&c)))
            .and_then(|j| j.transfer_basis.as_ref());
        match (own, transfer.and_then(|t| t.mechanism.as_ref())) {
            (Some(m), _) | (None, Some(m)) => mechanism(m),
            (None, None) => TransferBasis {
                kind: "disclosed".into(),
                description: match transfer {
                    Some(t) => format!("disclosed in the privacy policy (transfer {:?})", t.id.as_str()),
                    None => "no mechanism stated by the policy".into(),
                },
            },
        }
    });
    Ok(HandoverPlan { recipient: recipient.to_owned(), name, duty, country, transfer: transfer_basis })
}

/// Records of processing activities in the shape of GDPR Article 30(1),
/// drawn from the policy alone: the controller and its officer, then per
/// purpose the data subjects, the categories and items, the recipients
/// (processors whose duty covers the purpose's items, third parties named
/// for it), the transfers abroad with their safeguards, the time limits,
/// and the security measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ropa {
    pub policy: String,
    pub version: String,
    pub controller: RopaController,
    pub activities: Vec<Activity>,
    /// Art. 30(1)(g): the policy's technical and organisational measures.
    pub security_measures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RopaController {
    pub name: String,
    pub address: Option<String>,
    pub contacts: Vec<String>,
    /// The officer in charge (Art. 30(1)(a)), as the policy names them.
    pub officer: Option<String>,
}

/// One processing activity: a purpose of the policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    pub purpose: String,
    pub name: String,
    pub description: String,
    pub bases: Vec<String>,
    /// Kinds of data subjects whose data is collected for it.
    pub data_subjects: Vec<String>,
    pub categories: Vec<String>,
    pub items: Vec<String>,
    pub recipients: Vec<RopaRecipient>,
    pub transfers: Vec<RopaTransfer>,
    /// Art. 30(1)(f): when the data is erased, in the policy's words.
    pub time_limits: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RopaRecipient {
    pub id: String,
    pub name: String,
    /// `processor` or `third_party`.
    pub kind: &'static str,
    pub duty: String,
    pub items: Vec<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RopaTransfer {
    pub id: String,
    pub recipient: String,
    pub country: String,
    pub items: Vec<String>,
    /// The safeguard (Art. 46) or decision (Art. 45) it rests on, or
    /// `not stated`.
    pub safeguard: String,
}

fn overlap(a: &[crate::policy::model::Id], b: &[crate::policy::model::Id]) -> Vec<String> {
    a.iter().filter(|x| b.contains(x)).map(ToString::to_string).collect()
}

/// The records of processing of `policy` (see [`Ropa`]).
pub fn records_of_processing(policy: &Policy) -> Ropa {
    let retention: Vec<String> = policy.retention.rules.iter().map(|r| r.description.clone()).collect();
    let activities = policy
        .purposes
        .iter()
        .map(|p| {
            let mut data_subjects: Vec<String> = Vec::new();
            for point in policy.collection_points.iter().filter(|c| c.purposes.contains(&p.id)) {
                for kind in &point.subject_kinds {
                    let name = policy
                        .subject_kinds
                        .iter()
                        .find(|k| &k.id == kind)
                        .map_or_else(|| kind.to_string(), |k| k.name.clone());
                    if !data_subjects.contains(&name) {
                        data_subjects.push(name);
                    }
                }
            }
            let mut categories: Vec<String> = Vec::new();
            for item in &p.items {
                if let Some(def) = policy.items.iter().find(|i| &i.id == item)
                    && let Some(c) = policy.categories.iter().find(|c| c.id == def.category)
                    && !categories.contains(&c.name)
                {
                    categories.push(c.name.clone());
                }
            }
            let mut recipients: Vec<RopaRecipient> = policy
                .processors
                .iter()
                .filter_map(|x| {
                    let items = overlap(&x.items, &p.items);
                    (!items.is_empty()).then(|| RopaRecipient {
                        id: x.id.to_string(),
                        name: x.name.clone(),
                        kind: "processor",
                        duty: x.duty.clone(),
                        items,
                        country: x.country.as_ref().map(ToString::to_string),
                    })
                })
                .collect();
            if let Some(third) = &policy.third_parties {
                recipients.extend(third.recipients.iter().filter(|r| r.purposes.contains(&p.id)).map(|r| {
                    RopaRecipient {
                        id: r.id.to_string(),
                        name: r.name.clone(),
                        kind: "third_party",
                        duty: p.name.clone(),
                        items: overlap(&r.items, &p.items),
                        country: r.country.as_ref().map(ToString::to_string),
                    }
                }));
            }
            let transfers = policy
                .transfers
                .iter()
                .filter_map(|t| {
                    let items = overlap(&t.items, &p.items);
                    (!items.is_empty()).then(|| RopaTransfer {
                        id: t.id.to_string(),
                        recipient: t.recipient.clone(),
                        country: t.country.to_string(),
                        items,
                        safeguard: t.mechanism.as_ref().map_or_else(
                            || "not stated".to_owned(),
                            |m| match &m.description {
                                Some(d) => format!("{}: {d}", m.kind),
                                None => m.kind.to_string(),
                            },
                        ),
                    })
                })
                .collect();
            let mut time_limits = retention.clone();
            for class in policy.record_classes.iter().filter(|c| c.purposes.contains(&p.id) || c.read_purpose == p.id) {
                time_limits.push(format!("{}: kept {} ({})", class.name, class.retain_for, class.law));
            }
            Activity {
                purpose: p.id.to_string(),
                name: p.name.clone(),
                description: p.description.clone(),
                bases: p
                    .bases
                    .iter()
                    .map(|b| match &b.law {
                        Some(law) => format!("{} ({law})", b.kind),
                        None => b.kind.to_string(),
                    })
                    .collect(),
                data_subjects,
                categories,
                items: p.items.iter().map(ToString::to_string).collect(),
                recipients,
                transfers,
                time_limits,
            }
        })
        .collect();
    Ropa {
        policy: policy.meta.title.clone(),
        version: policy.meta.version.clone(),
        controller: RopaController {
            name: policy.controller.name.clone(),
            address: policy.controller.address.clone(),
            contacts: policy.controller.contacts.iter().map(|c| format!("{}: {}", c.kind, c.value)).collect(),
            officer: policy.officer.as_ref().map(|o| {
                let mut parts = vec![o.title.clone()];
                parts.extend(o.name.clone());
                parts.extend(o.email.clone());
                parts.extend(o.phone.clone());
                parts.join(", ")
            }),
        },
        activities,
        security_measures: policy
            .safety
            .iter()
            .flat_map(|s| s.measures.iter().map(move |m| format!("{}: {m}", s.kind)))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
