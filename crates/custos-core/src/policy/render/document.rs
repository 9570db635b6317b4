//! The outline of the published policy, built from the validated model.
//!
//! Sections follow the order privacy notices use (and the b.stage seed):
//! purposes, items and sources, retention, third parties, processors and
//! transfers, rights, safety, cookies, officer, remedies, children,
//! amendments, then one annex per jurisdiction other than the home one. A
//! fact the policy does not state is printed as "not stated", never filled in.

use crate::policy::model::*;
use crate::policy::span::Span;

/// The whole rendered policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub title: String,
    pub language: String,
    pub intro: Vec<Block>,
    pub sections: Vec<Section>,
    pub outro: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// Plain text only: printers escape every string.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Subheading(String),
    Paragraph(String),
    List(Vec<String>),
    /// Label–value pairs, printed as a definition list.
    Fields(Vec<(String, String)>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

const NOT_STATED: &str = "not stated";

pub(super) fn build(p: &Policy) -> Document {
    let mut sections = vec![
        purposes(p),
        items(p),
        retention(p),
        third_parties(p),
        entrustment(p),
        rights(p),
        safety(p),
        cookies(p),
        officer(p),
        remedies(p),
        children(p),
        amendments(p),
    ];
    for (n, section) in sections.iter_mut().enumerate() {
        section.title = format!("{}. {}", n + 1, section.title);
    }
    let annexes: Vec<Section> =
        p.jurisdictions.iter().filter(|j| j.id != p.meta.jurisdiction).map(|j| annex(p, j)).collect();
    if let Some(text) = &p.meta.annex_preamble {
        sections.push(section("Annexes", paragraphs(text)));
    }
    sections.extend(annexes);

    let mut intro = Vec::new();
    if let Some(text) = &p.meta.preamble {
        intro.extend(paragraphs(text));
    }
    let mut outro = Vec::new();
    if let Some(text) = &p.meta.closing {
        outro.extend(paragraphs(text));
    }
    let mut fields = vec![
        ("Controller".to_owned(), p.controller.name.clone()),
        ("Service".to_owned(), p.controller.service.clone()),
    ];
    fields.push(("Address".to_owned(), p.controller.address.clone().unwrap_or_else(|| NOT_STATED.to_owned())));
    for c in &p.controller.contacts {
        let label = match &c.label {
            Some(l) => format!("{} ({l})", contact_kind(c.kind)),
            None => contact_kind(c.kind).to_owned(),
        };
        fields.push((label, c.value.clone()));
    }
    fields.push(("Policy version".to_owned(), p.meta.version.clone()));
    fields.push(("Notice date".to_owned(), long_date(p.meta.notice_date)));
    fields.push(("Effective date".to_owned(), long_date(p.meta.effective_date)));
    outro.push(Block::Fields(fields));

    Document { title: p.meta.title.clone(), language: p.meta.language.clone(), intro, sections, outro }
}

fn section(title: &str, blocks: Vec<Block>) -> Section {
    Section { title: title.to_owned(), blocks }
}

/// Splits prose into paragraphs at line breaks: policy texts use one line
/// per paragraph, as the published copies do.
fn paragraphs(text: &str) -> Vec<Block> {
    text.lines().map(str::trim).filter(|s| !s.is_empty()).map(|s| Block::Paragraph(s.to_owned())).collect()
}

fn long_date(d: jiff::civil::Date) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    format!("{} {}, {}", MONTHS[(d.month() - 1) as usize], d.day(), d.year())
}

fn join(names: impl IntoIterator<Item = String>) -> String {
    let names: Vec<String> = names.into_iter().collect();
    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
}

fn item_names(p: &Policy, ids: &[Id]) -> String {
    join(ids.iter().map(|id| p.item(id).map_or_else(|| id.to_string(), |i| i.name.clone())))
}

fn purpose_names(p: &Policy, ids: &[Id]) -> String {
    join(ids.iter().map(|id| p.purpose(id).map_or_else(|| id.to_string(), |x| x.name.clone())))
}

fn channel_names(p: &Policy, ids: &[Id]) -> String {
    join(ids.iter().map(|id| p.channel(id).map_or_else(|| id.to_string(), |c| c.name.clone())))
}

fn event_names(p: &Policy, ids: &[Id]) -> String {
    join(ids.iter().map(|id| p.event(id).map_or_else(|| id.to_string(), |e| e.name.clone())))
}

fn role_names(p: &Policy, ids: &[Id]) -> String {
    join(ids.iter().map(|id| p.role(id).map_or_else(|| id.to_string(), |r| r.name.clone())))
}

fn law_name(p: &Policy, id: &Id) -> String {
    p.law(id).map_or_else(|| id.to_string(), |l| l.name.clone())
}

fn contact_kind(k: ContactKind) -> &'static str {
    match k {
        ContactKind::Email => "E-mail",
        ContactKind::Phone => "Phone",
        ContactKind::Fax => "Fax",
        ContactKind::Postal => "Postal address",
        ContactKind::Web => "Web",
    }
}

fn basis(p: &Policy, b: &Basis) -> String {
    let kind = match b.kind {
        BasisKind::Consent => "consent",
        BasisKind::ExplicitConsent => "explicit consent",
        BasisKind::Contract => "performance of a contract",
        BasisKind::LegalObligation => "legal obligation",
        BasisKind::VitalInterest => "vital interest (danger to life or safety)",
        BasisKind::PublicTask => "public task",
        BasisKind::LegitimateInterest => "legitimate interest",
    };
    let mut out = kind.to_owned();
    let refs: Vec<String> = b.law.iter().map(|l| law_name(p, l)).chain(b.citation.iter().cloned()).collect();
    if !refs.is_empty() {
        out.push_str(&format!(" ({})", refs.join(", ")));
    }
    out
}

fn timing(t: &Timing) -> String {
    match t {
        Timing::WithoutDelay => "without delay".to_owned(),
        Timing::After(s) => format!("after {s}"),
        Timing::Criteria(c) => format!("by criteria: {c}"),
    }
}

fn purposes(p: &Policy) -> Section {
    let mut blocks = vec![Block::Paragraph(format!(
        "{} processes personal information for the purposes below and for no other. Each purpose lists its lawful basis and the items it may use; a purpose that needs consent is used only after you opt in, and a change of purpose needs your separate consent.",
        p.controller.name
    ))];
    for x in &p.purposes {
        blocks.push(Block::Subheading(x.name.clone()));
        blocks.push(Block::Paragraph(x.description.clone()));
        let mut fields = vec![
            ("Lawful basis".to_owned(), join(x.bases.iter().map(|b| basis(p, b)))),
            ("Items used".to_owned(), item_names(p, &x.items)),
        ];
        if let Some(c) = &x.consent {
            let mode = match c.mode {
                ConsentMode::OptIn => "opt-in: used only with your prior consent",
                ConsentMode::OptOut => "opt-out: you may object at any time",
            };
            fields.push(("Consent".to_owned(), mode.to_owned()));
            fields.push(("Withdraw or object through".to_owned(), channel_names(p, &c.withdraw_via)));
        }
        blocks.push(Block::Fields(fields));
    }
    section("Purposes of processing personal information", blocks)
}

fn items(p: &Policy) -> Section {
    let mut blocks =
        vec![Block::Paragraph(format!("{} collects the following personal information.", p.controller.name))];
    // Points fed only by automatic generation are described once, below,
    // rather than under every kind of subject they apply to.
    let automatic =
        |c: &CollectionPoint| c.sources.iter().all(|s| p.source(s).is_some_and(|s| s.kind == SourceKind::Generated));
    for kind in &p.subject_kinds {
        let points: Vec<&CollectionPoint> =
            p.collection_points.iter().filter(|c| c.subject_kinds.contains(&kind.id) && !automatic(c)).collect();
        if points.is_empty() {
            continue;
        }
        blocks.push(Block::Subheading(format!("[{}]", kind.name)));
        let lines = points
            .iter()
            .map(|c| {
                let mut parts = Vec::new();
                if !c.required.is_empty() {
                    parts.push(format!("(Required) {}", item_names(p, &c.required)));
                }
                if !c.optional.is_empty() {
                    parts.push(format!("(Voluntary) {}", item_names(p, &c.optional)));
                }
                let mut line = format!("{}: {}", c.name, parts.join(", "));
                line.push_str(&format!(" — for: {}", purpose_names(p, &c.purposes)));
                if c.age_check
                    && let Some(children) = &p.children
                {
                    line.push_str(&format!(" — only from the age of {}", children.minimum_age));
                }
                if let Some(notice) = &c.notice {
                    line.push_str(&format!(" — {notice}"));
                }
                line
            })
            .collect();
        blocks.push(Block::List(lines));
    }
    for c in p.collection_points.iter().filter(|c| automatic(c)) {
        let collected: Vec<Id> = c.required.iter().chain(&c.optional).cloned().collect();
        blocks.push(Block::Subheading(c.name.clone()));
        if let Some(notice) = &c.notice {
            blocks.extend(paragraphs(notice));
        }
        blocks.push(Block::Fields(vec![
            ("Items".to_owned(), item_names(p, &collected)),
            (
                "From".to_owned(),
                join(
                    c.subject_kinds.iter().map(|k| p.subject_kind(k).map_or_else(|| k.to_string(), |x| x.name.clone())),
                ),
            ),
            ("Used for".to_owned(), purpose_names(p, &c.purposes)),
        ]));
    }
    if !p.sources.is_empty() {
        blocks.push(Block::Subheading("How personal information is collected".to_owned()));
        blocks.push(Block::List(
            p.sources
                .iter()
                .map(|s| {
                    if s.channels.is_empty() {
                        s.description.clone()
                    } else {
                        format!("{} (through: {})", s.description, channel_names(p, &s.channels))
                    }
                })
                .collect(),
        ));
    }
    blocks.push(Block::Subheading("Items and how they are protected".to_owned()));
    blocks.push(Block::Table {
        head: vec!["Item".to_owned(), "Category".to_owned(), "Unique identifier".to_owned(), "Source".to_owned()],
        rows: p
            .items
            .iter()
            .map(|i| {
                let category = p.category(&i.category).map_or_else(
                    || i.category.to_string(),
                    |c| {
                        if c.special { format!("{} (special category)", c.name) } else { c.name.clone() }
                    },
                );
                let unique =
                    if i.unique { "yes: encrypted, found only through a keyed index" } else { "no: encrypted" };
                let source = if i.generated { "generated automatically" } else { "provided" };
                vec![i.name.clone(), category, unique.to_owned(), source.to_owned()]
            })
            .collect(),
    });
    section("Personal information collected and how it is collected", blocks)
}

fn retention(p: &Policy) -> Section {
    let r = &p.retention;
    let mut blocks = Vec::new();
    if let Some(text) = &r.principle {
        blocks.extend(paragraphs(text));
    }
    let mut lines: Vec<String> = r
        .rules
        .iter()
        .map(|x| {
            let mut line = format!("{} ({} {})", x.description, action(x.action), timing(&x.timing));
            if !x.exempt_roles.is_empty() {
                line.push_str(&format!("; not applied to: {}", role_names(p, &x.exempt_roles)));
            }
            line
        })
        .collect();
    if let Some(d) = &r.dormancy {
        let mut line = format!(
            "{} A member with no {} for {} is stored separately{}, and destroyed {} after that.",
            d.description,
            event_names(p, &d.activity).replace(", ", " or "),
            d.inactive_for,
            match d.notice_before {
                Some(n) => format!(" (notified {n} before, by {})", channel_names(p, &d.notice_via)),
                None => String::new(),
            },
            d.destroy_after,
        );
        if !d.released_by.is_empty() {
            line.push_str(&format!(
                " {} releases a dormant member back to normal storage.",
                capitalise(&event_names(p, &d.released_by).replace(", ", " or "))
            ));
        }
        if !d.exempt_roles.is_empty() {
            line.push_str(&format!(" Never applied to: {}.", role_names(p, &d.exempt_roles)));
        }
        lines.push(line);
    }
    if !lines.is_empty() {
        blocks.push(Block::List(lines));
    }
    if !p.record_classes.is_empty() {
        blocks.push(Block::Subheading("Retention required by law".to_owned()));
        blocks.push(Block::Table {
            head: vec![
                "Records".to_owned(),
                "Kept for".to_owned(),
                "Law".to_owned(),
                "Used while the account exists for".to_owned(),
                "After the account is deleted, used only for".to_owned(),
            ],
            rows: p
                .record_classes
                .iter()
                .map(|c| {
                    let from = match c.from {
                        RecordStart::RecordDate => "from the record's date",
                        RecordStart::RecordYearEnd => "from the end of the record's calendar year",
                        RecordStart::AccountDeletion => "from the account's deletion",
                        RecordStart::ContractEnd => "from the end of the contract",
                    };
                    vec![
                        c.name.clone(),
                        format!("{} {from}", c.retain_for),
                        law_name(p, &c.law),
                        if c.purposes.is_empty() { NOT_STATED.to_owned() } else { purpose_names(p, &c.purposes) },
                        p.purpose(&c.read_purpose).map_or_else(|| c.read_purpose.to_string(), |x| x.name.clone()),
                    ]
                })
                .collect(),
        });
    }
    if !r.destruction.is_empty() {
        blocks.push(Block::Subheading("How personal information is destroyed".to_owned()));
        blocks.push(Block::List(
            r.destruction
                .iter()
                .map(|d| {
                    let medium = match d.medium {
                        Medium::Paper => "Information printed on paper",
                        Medium::Electronic => "Information stored in electronic files",
                    };
                    format!("{medium}: {}", d.method)
                })
                .collect(),
        ));
    }
    if blocks.is_empty() {
        blocks.push(Block::Paragraph(format!("Retention: {NOT_STATED}.")));
    }
    section("Retention and destruction of personal information", blocks)
}

fn action(a: RetentionAction) -> &'static str {
    match a {
        RetentionAction::Destroy => "destroyed",
        RetentionAction::Separate => "stored separately",
        RetentionAction::Notify => "notified",
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn third_parties(p: &Policy) -> Section {
    let Some(t) = &p.third_parties else {
        return section(
            "Provision of personal information to third parties",
            vec![Block::Paragraph(format!("Provision to third parties: {NOT_STATED}."))],
        );
    };
    let mut blocks = paragraphs(&t.statement);
    let bases: Vec<String> =
        t.allowed_bases.iter().map(|b| basis(p, &Basis { kind: *b, law: None, citation: None })).collect();
    blocks.push(Block::Fields(vec![
        ("Provided only on the basis of".to_owned(), join(bases)),
        (
            "Sale of personal information".to_owned(),
            match t.sells_personal_information {
                Some(true) => "yes".to_owned(),
                Some(false) => "never sold".to_owned(),
                None => NOT_STATED.to_owned(),
            },
        ),
    ]));
    if !t.recipients.is_empty() {
        blocks.push(Block::Table {
            head: vec!["Recipient".to_owned(), "Purposes".to_owned(), "Items".to_owned(), "Country".to_owned()],
            rows: t
                .recipients
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        purpose_names(p, &r.purposes),
                        item_names(p, &r.items),
                        r.country.as_ref().map_or_else(|| NOT_STATED.to_owned(), Country::to_string),
                    ]
                })
                .collect(),
        });
    }
    section("Provision of personal information to third parties", blocks)
}

fn mechanism(m: &Mechanism) -> String {
    let kind = match m.kind {
        MechanismKind::Adequacy => "adequacy decision",
        MechanismKind::StandardContractualClauses => "standard contractual clauses",
        MechanismKind::BindingCorporateRules => "binding corporate rules",
        MechanismKind::Certification => "certification",
        MechanismKind::Consent => "consent",
        MechanismKind::Contract => "contract",
        MechanismKind::Other => "other safeguard",
    };
    let mut out = kind.to_owned();
    if let Some(d) = m.date {
        out.push_str(&format!(" of {d}"));
    }
    if let Some(desc) = &m.description {
        out.push_str(&format!(": {desc}"));
    }
    out
}

fn entrustment(p: &Policy) -> Section {
    let mut blocks = Vec::new();
    if p.processors.is_empty() {
        blocks.push(Block::Paragraph(format!("Processors: {NOT_STATED}.")));
    } else {
        blocks.push(Block::Paragraph(format!(
            "{} entrusts the processing of personal information as follows.",
            p.controller.name
        )));
        blocks.push(Block::Table {
            head: vec!["Processor".to_owned(), "Entrusted duties".to_owned(), "Items".to_owned(), "Country".to_owned()],
            rows: p
                .processors
                .iter()
                .map(|x| {
                    vec![
                        x.name.clone(),
                        x.duty.clone(),
                        if x.items.is_empty() { NOT_STATED.to_owned() } else { item_names(p, &x.items) },
                        x.country.as_ref().map_or_else(|| NOT_STATED.to_owned(), Country::to_string),
                    ]
                })
                .collect(),
        });
    }
    if !p.transfers.is_empty() {
        blocks.push(Block::Subheading("Transfers abroad".to_owned()));
        for t in &p.transfers {
            let mut fields = vec![("Recipient".to_owned(), t.recipient.clone())];
            if let Some(c) = &t.contact {
                fields.push(("Contact".to_owned(), c.clone()));
            }
            fields.extend([
                ("Country".to_owned(), t.country.to_string()),
                ("Items transferred".to_owned(), item_names(p, &t.items)),
                ("Purpose of transfer".to_owned(), t.purpose.clone()),
                ("Retention and use period".to_owned(), t.retention.clone()),
                ("Date and method of transfer".to_owned(), format!("{}; {}", t.timing, t.method)),
            ]);
            fields.push((
                "Transfer safeguard".to_owned(),
                t.mechanism.as_ref().map_or_else(|| NOT_STATED.to_owned(), mechanism),
            ));
            blocks.push(Block::Fields(fields));
        }
    }
    if let Some(e) = &p.entrustment {
        for text in e.safeguards.iter().chain(&e.change_notice) {
            blocks.extend(paragraphs(text));
        }
    }
    section("Entrusting the processing of personal information", blocks)
}

fn right_name(r: RightKind) -> &'static str {
    match r {
        RightKind::Access => "access (perusal)",
        RightKind::Correction => "correction",
        RightKind::Deletion => "deletion",
        RightKind::Restriction => "restriction (cessation of processing)",
        RightKind::Portability => "portability",
        RightKind::Objection => "objection",
        RightKind::OptOutSale => "opt-out of sale or sharing",
        RightKind::Know => "right to know",
        RightKind::MarketingDisclosure => "list of third parties that received personal information for marketing",
        RightKind::AutomatedDecision => "not to be subject to automated decisions",
    }
}

fn deadlines(d: &Deadlines, p: &Policy) -> String {
    let mut out = String::new();
    if let Some(a) = d.acknowledge {
        out.push_str(&format!("acknowledged within {a}; "));
    }
    out.push_str(&format!("answered within {}", d.answer));
    if let Some(e) = d.extension {
        out.push_str(&format!(", extendable by {e} with notice"));
    }
    if let Some(l) = &d.law {
        out.push_str(&format!(" ({})", law_name(p, l)));
    }
    out
}

fn rights(p: &Policy) -> Section {
    let Some(r) = &p.rights else {
        return section(
            "Your rights and how to exercise them",
            vec![Block::Paragraph(format!("Rights: {NOT_STATED}."))],
        );
    };
    let mut blocks = Vec::new();
    if let Some(text) = &r.text {
        blocks.extend(paragraphs(text));
    }
    let mut fields = vec![
        ("Rights".to_owned(), join(r.kinds.iter().map(|k| right_name(*k).to_owned()))),
        ("Exercised through".to_owned(), channel_names(p, &r.channels)),
        (
            "Through an agent".to_owned(),
            if r.agents {
                format!("yes, with {}", r.agent_document.as_deref().unwrap_or("a written authorisation"))
            } else {
                "no".to_owned()
            },
        ),
    ];
    for j in &p.jurisdictions {
        if let Some(d) = &j.deadlines {
            fields.push((format!("Answer deadline ({})", j.name), deadlines(d, p)));
        }
    }
    blocks.push(Block::Fields(fields));
    if let Some(v) = &r.verification {
        blocks.extend(paragraphs(v));
    }
    if !r.limits.is_empty() {
        blocks.push(Block::List(r.limits.clone()));
    }
    if let Some(home) = p.jurisdiction(&p.meta.jurisdiction) {
        blocks.push(Block::Subheading(home.name.clone()));
        blocks.extend(jurisdiction(p, home));
    }
    section("Your rights and how to exercise them", blocks)
}

fn safety(p: &Policy) -> Section {
    let measures: Vec<(String, String)> = p
        .safety
        .iter()
        .map(|s| {
            let kind = match s.kind {
                SafetyKind::Managerial => "Managerial measures",
                SafetyKind::Technical => "Technical measures",
                SafetyKind::Physical => "Physical measures",
            };
            (kind.to_owned(), s.measures.join("; "))
        })
        .collect();
    let mut blocks = Vec::new();
    if !measures.is_empty() {
        blocks.push(Block::Fields(measures));
    }
    if !p.roles.is_empty() {
        blocks.push(Block::Subheading("Who may access personal information".to_owned()));
        blocks.push(Block::Table {
            head: vec!["Role".to_owned(), "Scope".to_owned(), "May use for".to_owned(), "Notes".to_owned()],
            rows: p
                .roles
                .iter()
                .map(|r| {
                    let mut notes = vec![r.description.clone()];
                    if r.single {
                        notes.push("exactly one holder".to_owned());
                    }
                    if !r.transferable_to.is_empty() {
                        notes.push(format!("may be handed to: {}", role_names(p, &r.transferable_to)));
                    }
                    let privilege = |ids: &[Id]| {
                        join(ids.iter().map(|id| p.privilege(id).map_or_else(|| id.to_string(), |x| x.name.clone())))
                    };
                    if !r.privileges.is_empty() {
                        notes.push(format!("holds: {}", privilege(&r.privileges)));
                    }
                    if !r.grantable.is_empty() {
                        notes.push(format!("may be granted: {}", privilege(&r.grantable)));
                    }
                    if !r.operations.is_empty() {
                        notes.push(format!(
                            "may: {}",
                            join(r.operations.iter().map(|o| operation_words(*o).to_owned()))
                        ));
                    }
                    let scope = match r.scope {
                        Scope::Platform => "platform",
                        Scope::Service => "each service",
                    };
                    vec![r.name.clone(), scope.to_owned(), purpose_names(p, &r.purposes), notes.join("; ")]
                })
                .collect(),
        });
    }
    if blocks.is_empty() {
        blocks.push(Block::Paragraph(format!("Safety measures: {NOT_STATED}.")));
    }
    section("Measures to secure personal information", blocks)
}

/// An operation of a staff role, in words.
fn operation_words(o: Operation) -> &'static str {
    match o {
        Operation::ReadMembers => "read members' information",
        Operation::EditMembers => "correct members' information",
        Operation::ManageStaff => "invite and disable staff",
        Operation::Settings => "change settings",
        Operation::Audit => "read the audit log",
        Operation::ReadDormant => "see dormant members' details",
        Operation::AmendPolicy => "publish amendments of this policy",
        Operation::HandleRequests => "work members' rights requests, complaints and inquiries",
    }
}

fn cookies(p: &Policy) -> Section {
    let Some(c) = &p.cookies else {
        return section("Cookies and automatic collection", vec![Block::Paragraph(format!("Cookies: {NOT_STATED}."))]);
    };
    let mut blocks = paragraphs(&c.text);
    blocks.push(Block::Table {
        head: vec!["Cookie category".to_owned(), "What it does".to_owned(), "Your choice".to_owned()],
        rows: c
            .categories
            .iter()
            .map(|x| {
                let choice = if x.necessary {
                    "always on (strictly necessary)".to_owned()
                } else if c.gpc_opts_out.contains(&x.id) {
                    "off until you allow it; a Global Privacy Control signal keeps it off".to_owned()
                } else {
                    "off until you allow it".to_owned()
                };
                vec![x.name.clone(), x.description.clone(), choice]
            })
            .collect(),
    });
    if !c.browsers.is_empty() {
        blocks.push(Block::Subheading("Configuring cookies in your browser".to_owned()));
        blocks.push(Block::List(c.browsers.iter().map(|b| format!("{}: {}", b.name, b.instructions)).collect()));
    }
    if let Some(text) = &c.refusal_effect {
        blocks.extend(paragraphs(text));
    }
    section("Cookies and automatic collection", blocks)
}

fn officer(p: &Policy) -> Section {
    let Some(o) = &p.officer else {
        return section(
            "The person in charge of personal information protection",
            vec![Block::Paragraph(format!("Privacy officer: {NOT_STATED}."))],
        );
    };
    let mut blocks = Vec::new();
    if let Some(text) = &o.text {
        blocks.extend(paragraphs(text));
    }
    let stated = |v: &Option<String>| v.clone().unwrap_or_else(|| NOT_STATED.to_owned());
    blocks.push(Block::Subheading(o.title.clone()));
    blocks.push(Block::Fields(vec![
        ("Name".to_owned(), stated(&o.name)),
        ("Department".to_owned(), stated(&o.department)),
        ("Phone".to_owned(), stated(&o.phone)),
        ("E-mail".to_owned(), stated(&o.email)),
    ]));
    section(&o.title, blocks)
}

fn remedies(p: &Policy) -> Section {
    let Some(r) = &p.remedies else {
        return section(
            "Remedies for infringement of rights",
            vec![Block::Paragraph(format!("Remedies: {NOT_STATED}."))],
        );
    };
    let mut blocks = Vec::new();
    if let Some(text) = &r.text {
        blocks.extend(paragraphs(text));
    }
    blocks.push(Block::List(
        r.agencies
            .iter()
            .map(|a| {
                let mut line = a.name.clone();
                let contact: Vec<String> = a.phone.iter().chain(&a.website).cloned().collect();
                if !contact.is_empty() {
                    line.push_str(&format!(" ({})", contact.join(", ")));
                }
                line
            })
            .collect(),
    ));
    section("Remedies for infringement of rights", blocks)
}

fn children(p: &Policy) -> Section {
    let mut blocks = Vec::new();
    match &p.children {
        Some(c) => {
            if let Some(text) = &c.text {
                blocks.extend(paragraphs(text));
            }
            blocks.push(Block::Fields(vec![("Minimum age".to_owned(), format!("{} years", c.minimum_age))]));
        }
        None => blocks.push(Block::Paragraph(format!("Minimum age: {NOT_STATED}."))),
    }
    let overrides: Vec<String> =
        p.jurisdictions.iter().filter_map(|j| j.minimum_age.map(|a| format!("{}: {a} years", j.name))).collect();
    if !overrides.is_empty() {
        blocks.push(Block::List(overrides));
    }
    section("Children's personal information", blocks)
}

fn change_name(c: ChangeKind) -> &'static str {
    match c {
        ChangeKind::NewItems => "new items of personal information collected",
        ChangeKind::NewPurposes => "new purposes",
        ChangeKind::ChangedPurposes => "changed purposes or use",
        ChangeKind::NewThirdParties => "new third parties",
        ChangeKind::NewProcessors => "new processors",
        ChangeKind::ChangedProcessors => "changed processors or duties",
        ChangeKind::NewTransfers => "new transfers abroad",
        ChangeKind::ChangedRetention => "changed retention",
    }
}

fn notice(s: Option<Span>) -> String {
    s.map_or_else(|| NOT_STATED.to_owned(), |s| format!("at least {s} before the change takes effect"))
}

fn amendments(p: &Policy) -> Section {
    let Some(a) = &p.amendments else {
        return section(
            "Amendments to this policy",
            vec![Block::Paragraph(format!("Notice of amendments: {NOT_STATED}."))],
        );
    };
    let mut blocks = Vec::new();
    if let Some(text) = &a.text {
        blocks.extend(paragraphs(text));
    }
    let mut fields = vec![("Announced on".to_owned(), a.board.clone()), ("Notice".to_owned(), notice(a.notice))];
    if a.significant_notice.is_some() {
        fields.push(("Notice of significant changes".to_owned(), notice(a.significant_notice)));
    }
    if !a.significant_changes.is_empty() {
        fields.push((
            "Significant changes are".to_owned(),
            join(a.significant_changes.iter().map(|c| change_name(*c).to_owned())),
        ));
    }
    blocks.push(Block::Fields(fields));
    section("Amendments to this policy", blocks)
}

fn annex(p: &Policy, j: &Jurisdiction) -> Section {
    let title = match &j.annex {
        Some(label) => format!("Annex {label}. {}", j.name),
        None => format!("Annex. {}", j.name),
    };
    Section { title, blocks: jurisdiction(p, j) }
}

/// What a policy says for one jurisdiction: its text and its facts.
fn jurisdiction(p: &Policy, j: &Jurisdiction) -> Vec<Block> {
    let mut blocks = Vec::new();
    if let Some(text) = &j.text {
        blocks.extend(paragraphs(text));
    }
    let mut fields = vec![("Applies to residents of".to_owned(), join(j.countries.iter().map(Country::to_string)))];
    if !j.rights.is_empty() {
        fields.push(("Rights".to_owned(), join(j.rights.iter().map(|r| right_name(*r).to_owned()))));
    }
    if let Some(d) = &j.deadlines {
        fields.push(("Answer deadline".to_owned(), deadlines(d, p)));
    }
    if let Some(m) = &j.transfer_basis {
        fields.push(("Transfer basis".to_owned(), mechanism(m)));
    }
    if let Some(sells) = j.sells_personal_information {
        fields.push(("Sale of personal information".to_owned(), if sells { "yes" } else { "not sold" }.to_owned()));
    }
    if let Some(age) = j.minimum_age {
        fields.push(("Minimum age".to_owned(), format!("{age} years")));
    }
    blocks.push(Block::Fields(fields));
    blocks
}
