//! The validated policy: domain types the engine and the renderer rely on.
//!
//! A `Policy` only exists after `convert::from_raw` has checked every
//! reference, span and date, so code that holds one never re-checks: an
//! `ItemId` in a purpose names a declared item, a `Span` is positive, a
//! consent-based purpose has a way to withdraw. Lists keep the order of the
//! file, which is the order of the rendered text.

use std::fmt;

use jiff::civil::Date;

use super::span::Span;

/// An identifier from a policy file: `[a-z][a-z0-9_]*`, at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(String);

impl Id {
    pub const MAX_LEN: usize = 64;

    /// Checks the shape of an identifier; the message names what is wrong.
    pub fn parse(s: &str) -> Result<Id, String> {
        if s.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if s.len() > Id::MAX_LEN {
            return Err(format!("is longer than {} characters", Id::MAX_LEN));
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !first_ok || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(format!("{s:?} is not an id (lower-case letters, digits and '_', starting with a letter)"));
        }
        Ok(Id(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country(String);

impl Country {
    pub fn parse(s: &str) -> Result<Country, String> {
        if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Country(s.to_owned()))
        } else {
            Err(format!("{s:?} is not an ISO 3166-1 alpha-2 country code"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a closed vocabulary of policy keywords: the enum, its TOML
/// spelling, and the list used in error messages.
macro_rules! keywords {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<$name, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "{s:?} is not one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keywords!(ContactKind { Email = "email", Phone = "phone", Fax = "fax", Postal = "postal", Web = "web" });
keywords!(ChannelKind {
    Web = "web", Email = "email", Fax = "fax", Phone = "phone", Writing = "writing",
    InPerson = "in_person", Other = "other",
});
keywords!(Scope { Platform = "platform", Service = "service" });
keywords!(
    /// What a staff role (or a privilege) lets its holder do in Custos.
    /// Member data is further limited to the role's purposes and scope.
    Operation {
        ReadMembers = "read_members", EditMembers = "edit_members", ManageStaff = "manage_staff",
        Settings = "settings", Audit = "audit", ReadDormant = "read_dormant", AmendPolicy = "amend_policy",
        HandleRequests = "handle_requests",
    }
);
keywords!(ItemType {
    Text = "text", Email = "email", Phone = "phone", Date = "date", Country = "country",
    Password = "password", File = "file", Log = "log", IpAddress = "ip_address",
    Cookie = "cookie", Device = "device", Record = "record",
});
keywords!(
    /// How a unique identifier is normalised before it is blind-indexed.
    NormalForm { Trim = "trim", Email = "email", E164 = "e164" }
);
keywords!(BasisKind {
    Consent = "consent", ExplicitConsent = "explicit_consent", Contract = "contract",
    LegalObligation = "legal_obligation", VitalInterest = "vital_interest",
    PublicTask = "public_task", LegitimateInterest = "legitimate_interest",
});
keywords!(ConsentMode { OptIn = "opt_in", OptOut = "opt_out" });
keywords!(SourceKind {
    DirectEntry = "direct_entry", CustomerCentre = "customer_centre", Partner = "partner",
    Generated = "generated",
});
keywords!(Trigger {
    AccountDeletion = "account_deletion", LastActivity = "last_activity",
    RecordDate = "record_date", ContractEnd = "contract_end",
    ConsentWithdrawal = "consent_withdrawal", PurposeFulfilled = "purpose_fulfilled",
});
keywords!(RetentionAction { Destroy = "destroy", Separate = "separate", Notify = "notify" });
keywords!(Medium { Paper = "paper", Electronic = "electronic" });
keywords!(RecordStart {
    RecordDate = "record_date", RecordYearEnd = "record_year_end", AccountDeletion = "account_deletion",
    ContractEnd = "contract_end",
});
keywords!(MechanismKind {
    Adequacy = "adequacy", StandardContractualClauses = "standard_contractual_clauses",
    BindingCorporateRules = "binding_corporate_rules", Certification = "certification",
    Consent = "consent", Contract = "contract", Other = "other",
});
keywords!(RightKind {
    Access = "access", Correction = "correction", Deletion = "deletion",
    Restriction = "restriction", Portability = "portability", Objection = "objection",
    OptOutSale = "opt_out_sale", Know = "know", MarketingDisclosure = "marketing_disclosure",
    AutomatedDecision = "automated_decision",
});
keywords!(SafetyKind { Managerial = "managerial", Technical = "technical", Physical = "physical" });
keywords!(
    /// The kinds of amendment a policy may call significant (longer notice).
    ChangeKind {
        NewItems = "new_items", NewPurposes = "new_purposes", ChangedPurposes = "changed_purposes",
        NewThirdParties = "new_third_parties", NewProcessors = "new_processors",
        ChangedProcessors = "changed_processors", NewTransfers = "new_transfers",
        ChangedRetention = "changed_retention",
    }
);

impl BasisKind {
    pub fn is_consent(self) -> bool {
        matches!(self, BasisKind::Consent | BasisKind::ExplicitConsent)
    }
}

/// A whole, validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub meta: Meta,
    pub controller: Controller,
    pub channels: Vec<Channel>,
    pub laws: Vec<Law>,
    pub jurisdictions: Vec<Jurisdiction>,
    pub subject_kinds: Vec<SubjectKind>,
    pub categories: Vec<Category>,
    pub items: Vec<Item>,
    pub purposes: Vec<Purpose>,
    pub sources: Vec<Source>,
    pub events: Vec<Event>,
    pub collection_points: Vec<CollectionPoint>,
    pub privileges: Vec<Privilege>,
    pub roles: Vec<Role>,
    pub retention: Retention,
    pub record_classes: Vec<RecordClass>,
    pub third_parties: Option<ThirdParties>,
    pub entrustment: Option<Entrustment>,
    pub processors: Vec<Processor>,
    pub transfers: Vec<Transfer>,
    pub rights: Option<Rights>,
    pub safety: Vec<Safety>,
    pub cookies: Option<Cookies>,
    pub officer: Option<Officer>,
    pub remedies: Option<Remedies>,
    pub children: Option<Children>,
    pub amendments: Option<Amendments>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub id: Id,
    pub version: String,
    pub title: String,
    pub language: String,
    pub jurisdiction: Id,
    pub notice_date: Date,
    pub effective_date: Date,
    pub preamble: Option<String>,
    pub annex_preamble: Option<String>,
    pub closing: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    pub name: String,
    pub service: String,
    pub address: Option<String>,
    pub contacts: Vec<Contact>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub kind: ContactKind,
    pub value: String,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: Id,
    pub name: String,
    pub kind: ChannelKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Law {
    pub id: Id,
    pub name: String,
    pub jurisdiction: Option<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Jurisdiction {
    pub id: Id,
    pub name: String,
    pub countries: Vec<Country>,
    pub annex: Option<String>,
    pub text: Option<String>,
    pub rights: Vec<RightKind>,
    pub minimum_age: Option<u8>,
    pub sells_personal_information: Option<bool>,
    pub transfer_basis: Option<Mechanism>,
    pub deadlines: Option<Deadlines>,
}

/// How long a controller has to answer a rights request.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadlines {
    pub acknowledge: Option<Span>,
    pub answer: Span,
    pub extension: Option<Span>,
    pub law: Option<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mechanism {
    pub kind: MechanismKind,
    pub description: Option<String>,
    pub date: Option<Date>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubjectKind {
    pub id: Id,
    pub name: String,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub id: Id,
    pub name: String,
    pub special: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: Id,
    pub name: String,
    pub category: Id,
    pub kind: ItemType,
    pub unique: bool,
    pub normal_form: Option<NormalForm>,
    pub generated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Purpose {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub bases: Vec<Basis>,
    pub items: Vec<Id>,
    pub consent: Option<ConsentRule>,
}

impl Purpose {
    /// True when the purpose may only be used with the member's current consent.
    pub fn needs_opt_in(&self) -> bool {
        self.consent.as_ref().is_some_and(|c| c.mode == ConsentMode::OptIn)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Basis {
    pub kind: BasisKind,
    pub law: Option<Id>,
    pub citation: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsentRule {
    pub mode: ConsentMode,
    pub withdraw_via: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: Id,
    pub kind: SourceKind,
    pub description: String,
    pub channels: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Id,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CollectionPoint {
    pub id: Id,
    pub name: String,
    pub subject_kinds: Vec<Id>,
    pub required: Vec<Id>,
    pub optional: Vec<Id>,
    pub purposes: Vec<Id>,
    pub sources: Vec<Id>,
    pub age_check: bool,
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Privilege {
    pub id: Id,
    pub name: String,
    pub description: String,
    /// What holding the privilege adds to a role.
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: Id,
    pub name: String,
    pub scope: Scope,
    pub description: String,
    pub purposes: Vec<Id>,
    pub single: bool,
    pub transferable_to: Vec<Id>,
    pub privileges: Vec<Id>,
    pub grantable: Vec<Id>,
    /// What holders may do; nothing when empty.
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Retention {
    pub principle: Option<String>,
    pub rules: Vec<RetentionRule>,
    pub dormancy: Option<Dormancy>,
    pub destruction: Vec<Destruction>,
}

/// When a retention rule acts, measured from its trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    WithoutDelay,
    After(Span),
    /// The policy states criteria, not a span: a documented, manual decision.
    Criteria(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetentionRule {
    pub id: Id,
    pub description: String,
    pub trigger: Trigger,
    pub action: RetentionAction,
    pub timing: Timing,
    pub subject_kinds: Vec<Id>,
    pub exempt_roles: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dormancy {
    pub description: String,
    pub inactive_for: Span,
    pub activity: Vec<Id>,
    pub notice_before: Option<Span>,
    pub notice_via: Vec<Id>,
    pub destroy_after: Span,
    pub released_by: Vec<Id>,
    pub subject_kinds: Vec<Id>,
    pub exempt_roles: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Destruction {
    pub medium: Medium,
    pub method: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordClass {
    pub id: Id,
    pub name: String,
    pub law: Id,
    pub retain_for: Span,
    pub read_purpose: Id,
    pub from: RecordStart,
    /// Purposes that may read these records while the account exists.
    pub purposes: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThirdParties {
    pub statement: String,
    pub allowed_bases: Vec<BasisKind>,
    pub sells_personal_information: Option<bool>,
    pub recipients: Vec<Recipient>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    pub id: Id,
    pub name: String,
    pub purposes: Vec<Id>,
    pub items: Vec<Id>,
    pub country: Option<Country>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entrustment {
    pub safeguards: Option<String>,
    pub change_notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Processor {
    pub id: Id,
    pub name: String,
    pub duty: String,
    /// Items the duty covers; empty when the policy does not say.
    pub items: Vec<Id>,
    pub country: Option<Country>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub id: Id,
    pub recipient: String,
    pub country: Country,
    pub items: Vec<Id>,
    pub purpose: String,
    pub retention: String,
    pub timing: String,
    pub method: String,
    pub contact: Option<String>,
    pub processor: Option<Id>,
    pub mechanism: Option<Mechanism>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rights {
    pub kinds: Vec<RightKind>,
    pub channels: Vec<Id>,
    pub agents: bool,
    pub agent_document: Option<String>,
    pub text: Option<String>,
    pub verification: Option<String>,
    pub limits: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Safety {
    pub kind: SafetyKind,
    pub measures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cookies {
    pub text: String,
    pub refusal_effect: Option<String>,
    pub gpc_opts_out: Vec<Id>,
    pub categories: Vec<CookieCategory>,
    pub browsers: Vec<Browser>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CookieCategory {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub necessary: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Browser {
    pub name: String,
    pub instructions: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Officer {
    pub title: String,
    pub name: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Remedies {
    pub text: Option<String>,
    pub agencies: Vec<Agency>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Agency {
    pub name: String,
    pub phone: Option<String>,
    pub website: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    pub minimum_age: u8,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Amendments {
    pub board: String,
    /// `None` when the policy states no notice period.
    pub notice: Option<Span>,
    pub significant_notice: Option<Span>,
    pub significant_changes: Vec<ChangeKind>,
    pub text: Option<String>,
}

impl Amendments {
    /// The notice an amendment needs: the longer one when it is significant
    /// and the policy gives one, else the ordinary notice.
    pub fn required_notice(&self, significant: bool) -> Option<Span> {
        if significant { self.significant_notice.or(self.notice) } else { self.notice }
    }
}

/// Look-ups by id. Validation guarantees that every id held in a `Policy`
/// resolves, so these return `Option` only for ids from outside the policy.
impl Policy {
    pub fn item(&self, id: &Id) -> Option<&Item> {
        self.items.iter().find(|x| &x.id == id)
    }
    pub fn purpose(&self, id: &Id) -> Option<&Purpose> {
        self.purposes.iter().find(|x| &x.id == id)
    }
    pub fn channel(&self, id: &Id) -> Option<&Channel> {
        self.channels.iter().find(|x| &x.id == id)
    }
    pub fn law(&self, id: &Id) -> Option<&Law> {
        self.laws.iter().find(|x| &x.id == id)
    }
    pub fn jurisdiction(&self, id: &Id) -> Option<&Jurisdiction> {
        self.jurisdictions.iter().find(|x| &x.id == id)
    }
    pub fn subject_kind(&self, id: &Id) -> Option<&SubjectKind> {
        self.subject_kinds.iter().find(|x| &x.id == id)
    }
    pub fn category(&self, id: &Id) -> Option<&Category> {
        self.categories.iter().find(|x| &x.id == id)
    }
    pub fn source(&self, id: &Id) -> Option<&Source> {
        self.sources.iter().find(|x| &x.id == id)
    }
    pub fn event(&self, id: &Id) -> Option<&Event> {
        self.events.iter().find(|x| &x.id == id)
    }
    pub fn role(&self, id: &Id) -> Option<&Role> {
        self.roles.iter().find(|x| &x.id == id)
    }
    pub fn privilege(&self, id: &Id) -> Option<&Privilege> {
        self.privileges.iter().find(|x| &x.id == id)
    }
    pub fn processor(&self, id: &Id) -> Option<&Processor> {
        self.processors.iter().find(|x| &x.id == id)
    }
    /// Look-ups by a string from outside the policy (a request).
    pub fn item_by_str(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|x| x.id.as_str() == id)
    }
    pub fn purpose_by_str(&self, id: &str) -> Option<&Purpose> {
        self.purposes.iter().find(|x| x.id.as_str() == id)
    }
    pub fn record_class_by_str(&self, id: &str) -> Option<&RecordClass> {
        self.record_classes.iter().find(|x| x.id.as_str() == id)
    }
    pub fn cookie_category(&self, id: &Id) -> Option<&CookieCategory> {
        self.cookies.as_ref()?.categories.iter().find(|x| &x.id == id)
    }
}
