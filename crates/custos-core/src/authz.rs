//! The one access decision: who may do what to whom, for which purpose, and
//! which items they get back. Every operation of the engine asks [`decide`]
//! before it touches personal data, and audits the answer either way.
//!
//! Invariants:
//! - an actor scoped to one service never reaches another service's data,
//!   and that denial is [`Denied::NotFound`], the answer for a missing
//!   object: "forbidden" and "does not exist" cannot be told apart;
//! - member data is read only for a purpose the actor may use and the
//!   policy declares, and only the purpose's items ([`readable_items`]);
//! - a dormant member's details go only to holders of `read_dormant`;
//!   everyone else allowed to read gets the row masked (no item values);
//! - what staff may do comes from their role (and privileges) in the
//!   policy, never from code.

use std::fmt;

use crate::access::{ReadDenied, readable_items};
use crate::policy::Policy;
use crate::policy::model::{Id, Operation as RoleOp, Scope};

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// No credential, or one that did not verify.
    Anonymous,
    /// A platform API key: `service` is its scope (`None`: the platform),
    /// `purposes` the purposes it was created for.
    ApiKey { service: Option<&'a str>, purposes: &'a [String] },
    /// A staff member with a live session, holding `role` (an id of the
    /// policy's roles) in `service` (`None` for a platform role) with the
    /// privileges granted to them.
    Staff { role: &'a str, service: Option<&'a str>, privileges: &'a [String] },
}

/// What is asked. Each variant is one kind of act; the HTTP routes and CLI
/// commands map onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    CreateService,
    CreateSubject,
    ReadSubject,
    LookupSubject,
    ListSubjects,
    CorrectSubject,
    RecordActivity,
    AddRecord,
    ListRecords,
    /// Delete a member's account: their profile is destroyed at once.
    DeleteSubject,
    /// Record a grant or a withdrawal in a member's consent ledger.
    RecordConsent,
    /// Read a member's consent ledger and current consents.
    ReadConsents,
    /// Checkpoints and proofs of the audit log.
    ReadAudit,
    /// Signing a checkpoint now: platform API keys only.
    IssueCheckpoint,
    InviteStaff,
    DisableStaff,
    GrantPrivilege,
    /// Hand a single-holder role (the head admin) to another staff member.
    TransferRole,
    ChangeSettings,
    /// Publish a new version of the policy, announced ahead of its date.
    PublishAmendment,
    /// File a rights request for a member (the platform's backend relaying
    /// it, or staff logging one received by e-mail, fax, phone or letter).
    FileRequest,
    /// Work the rights-request queue: read requests, verify an agent's
    /// letter, assign, extend, deny, fulfil. Staff only.
    HandleRequest,
    /// Provide a member's data to a third party on a lawful basis: staff
    /// who work the queue (`handle_requests`) only, each provision on record.
    Provide,
    /// Hand a member's data to a processor for its declared duty (an SMS
    /// through the SMS provider): the platform's backend (API keys) only.
    HandOver,
}

impl Operation {
    pub const ALL: &'static [Operation] = &[
        Operation::CreateService,
        Operation::CreateSubject,
        Operation::ReadSubject,
        Operation::LookupSubject,
        Operation::ListSubjects,
        Operation::CorrectSubject,
        Operation::RecordActivity,
        Operation::AddRecord,
        Operation::ListRecords,
        Operation::DeleteSubject,
        Operation::RecordConsent,
        Operation::ReadConsents,
        Operation::ReadAudit,
        Operation::IssueCheckpoint,
        Operation::InviteStaff,
        Operation::DisableStaff,
        Operation::GrantPrivilege,
        Operation::TransferRole,
        Operation::ChangeSettings,
        Operation::PublishAmendment,
        Operation::FileRequest,
        Operation::HandleRequest,
        Operation::Provide,
        Operation::HandOver,
    ];

    /// The name written to the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CreateService => "service_create",
            Operation::CreateSubject => "collect",
            Operation::ReadSubject => "read",
            Operation::LookupSubject => "lookup",
            Operation::ListSubjects => "list",
            Operation::CorrectSubject => "correct",
            Operation::RecordActivity => "activity",
            Operation::AddRecord => "record_add",
            Operation::ListRecords => "record_read",
            Operation::DeleteSubject => "erase",
            Operation::RecordConsent => "consent",
            Operation::ReadConsents => "consent_read",
            Operation::ReadAudit => "audit_read",
            Operation::IssueCheckpoint => "checkpoint",
            Operation::InviteStaff => "staff_invite",
            Operation::DisableStaff => "staff_disable",
            Operation::GrantPrivilege => "privilege_grant",
            Operation::TransferRole => "role_transfer",
            Operation::ChangeSettings => "settings_change",
            Operation::PublishAmendment => "policy_amend",
            Operation::FileRequest => "request_file",
            Operation::HandleRequest => "request_handle",
            Operation::Provide => "provide",
            Operation::HandOver => "hand_over",
        }
    }

    /// Whether the act reads personal items, so that a purpose is needed.
    pub fn reads_items(self) -> bool {
        matches!(self, Operation::ReadSubject | Operation::LookupSubject | Operation::ListRecords | Operation::HandOver)
    }

    /// The role operation a staff member needs for this act.
    fn needs(self) -> RoleOp {
        match self {
            Operation::ReadSubject
            | Operation::LookupSubject
            | Operation::ListSubjects
            | Operation::ListRecords
            | Operation::ReadConsents => RoleOp::ReadMembers,
            Operation::CorrectSubject | Operation::RecordActivity | Operation::RecordConsent => RoleOp::EditMembers,
            Operation::ReadAudit | Operation::IssueCheckpoint => RoleOp::Audit,
            Operation::InviteStaff | Operation::DisableStaff | Operation::GrantPrivilege => RoleOp::ManageStaff,
            Operation::ChangeSettings => RoleOp::Settings,
            Operation::PublishAmendment => RoleOp::AmendPolicy,
            Operation::FileRequest | Operation::HandleRequest | Operation::Provide => RoleOp::HandleRequests,
            // Only the holder of a single role hands it over; checked apart.
            Operation::TransferRole => RoleOp::ManageStaff,
            // Services, members and records are created by the platform's
            // backend (API keys), never by staff: no role operation allows it.
            Operation::CreateService | Operation::CreateSubject | Operation::AddRecord | Operation::HandOver => {
                RoleOp::Settings
            }
            // Refused to staff above: they erase through a rights request.
            Operation::DeleteSubject => RoleOp::EditMembers,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine knows of the member concerned, once it has read the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectFacts<'a> {
    /// `None`: a platform-level subject (operators, not members of a service).
    pub service: Option<&'a str>,
    pub dormant: bool,
    /// The account was deleted: only the records kept under a statutory
    /// hold remain, readable for the hold's legal purpose.
    pub deleted: bool,
}

/// The object of the act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Nothing in particular (creating a service, the audit log).
    None,
    /// Something in a service, or at platform level (`None`): a listing, a
    /// look-up, a staff member, the service's settings.
    Scope(Option<&'a str>),
    /// A member found by id. `Missing` when no such member exists.
    Subject(SubjectFacts<'a>),
    Missing,
}

/// One question to [`decide`].
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub actor: Actor<'a>,
    pub operation: Operation,
    pub target: Target<'a>,
    /// The purpose named, for operations that read items.
    pub purpose: Option<&'a str>,
    /// The items asked for (`None`: all the purpose allows).
    pub items: Option<&'a [String]>,
}

/// An allowed act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The items that may be returned (empty for acts that read none).
    pub items: Vec<Id>,
    /// The row may be shown but no item value: a dormant member seen by an
    /// actor without `read_dormant`.
    pub masked: bool,
}

/// Why an act was refused. `code` is part of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Unauthenticated,
    /// The object does not exist *or* the actor may not reach it.
    NotFound,
    /// The actor's role or key does not allow this kind of act.
    Forbidden,
    /// The actor may not use this purpose.
    PurposeNotAllowed(String),
    /// An act that reads items named no purpose.
    PurposeRequired,
    Read(ReadDenied),
}

impl Denied {
    pub fn code(&self) -> &'static str {
        match self {
            Denied::Unauthenticated => "unauthenticated",
            Denied::NotFound => "not_found",
            Denied::Forbidden => "forbidden",
            Denied::PurposeNotAllowed(_) => "purpose_not_allowed",
            Denied::PurposeRequired => "purpose_required",
            Denied::Read(r) => r.code(),
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Unauthenticated => f.write_str("not authenticated"),
            Denied::NotFound => f.write_str("not found"),
            Denied::Forbidden => f.write_str("this role may not do that"),
            Denied::PurposeNotAllowed(p) => write!(f, "not allowed to use purpose {p:?}"),
            Denied::PurposeRequired => f.write_str("name the purpose of the read"),
            Denied::Read(r) => r.fmt(f),
        }
    }
}

impl std::error::Error for Denied {}

/// Whether `actor` holds role operation `op` through its role or privileges.
pub fn staff_may(policy: &Policy, role: &str, privileges: &[String], op: RoleOp) -> bool {
    let Some(role) = policy.roles.iter().find(|r| r.id.as_str() == role) else {
        return false;
    };
    // A granted privilege counts only while the role may be granted it (a
    // role change does not carry over what the new role cannot hold).
    let holds = |p: &crate::policy::model::Privilege| {
        role.privileges.contains(&p.id)
            || (role.grantable.contains(&p.id) && privileges.iter().any(|held| held == p.id.as_str()))
    };
    role.operations.contains(&op) || policy.privileges.iter().filter(|p| holds(p)).any(|p| p.operations.contains(&op))
}

/// The decision. Pure: the same question always gets the same answer.
///
/// Order of checks: who (authenticated, allowed this kind of act), where
/// (scope: a mismatch is `NotFound`), then what (purpose and items), then
/// how much (dormant rows masked).
pub fn decide(policy: &Policy, request: &Request<'_>) -> Result<Allowed, Denied> {
    let op = request.operation;
    // Who: may this actor do this kind of act at all?
    let (scope, purposes): (Option<&str>, Vec<&str>) = match request.actor {
        Actor::Anonymous => return Err(Denied::Unauthenticated),
        Actor::ApiKey { service, purposes } => {
            // A service's key serves that service's members; the audit log,
            // services and staff are the platform's business.
            let platform_only = matches!(
                op,
                Operation::CreateService
                    | Operation::ReadAudit
                    | Operation::IssueCheckpoint
                    | Operation::InviteStaff
                    | Operation::DisableStaff
                    | Operation::GrantPrivilege
                    | Operation::ChangeSettings
                    | Operation::PublishAmendment
            );
            // A single-holder role is handed over by its holder only; the
            // queue is worked by staff, whose steps are each on record.
            if (platform_only && service.is_some())
                || matches!(op, Operation::TransferRole | Operation::HandleRequest | Operation::Provide)
            {
                return Err(Denied::Forbidden);
            }
            (service, purposes.iter().map(String::as_str).collect())
        }
        Actor::Staff { role, service, privileges } => {
            let Some(def) = policy.roles.iter().find(|r| r.id.as_str() == role) else {
                return Err(Denied::Forbidden);
            };
            // The role's scope and the actor's service must agree (a policy
            // edit could change a role's scope under a stored account).
            let scoped_right = match def.scope {
                Scope::Platform => service.is_none(),
                Scope::Service => service.is_some(),
            };
            // Checkpoints are signed by the platform (its key or its
            // schedule); staff, auditors included, only read the log.
            let never_staff = matches!(
                op,
                Operation::CreateService
                    | Operation::CreateSubject
                    | Operation::AddRecord
                    | Operation::IssueCheckpoint
                    | Operation::DeleteSubject
                    | Operation::HandOver
            );
            if !scoped_right || never_staff || !staff_may(policy, role, privileges, op.needs()) {
                return Err(Denied::Forbidden);
            }
            if op == Operation::TransferRole && !def.single {
                return Err(Denied::Forbidden);
            }
            // Staff of a service act only there; the audit log is the
            // platform's, so service staff never read it.
            if def.scope == Scope::Service && matches!(op, Operation::ReadAudit | Operation::IssueCheckpoint) {
                return Err(Denied::Forbidden);
            }
            (service, def.purposes.iter().map(Id::as_str).collect())
        }
    };
    // Where: a scoped actor reaches only its own service.
    let reaches = |object: Option<&str>| match (scope, object) {
        (None, _) => true,
        (Some(mine), Some(theirs)) => mine == theirs,
        (Some(_), None) => false,
    };
    let (masked, found) = match request.target {
        Target::None => (false, true),
        Target::Scope(object) => (false, reaches(object)),
        Target::Missing => (false, false),
        Target::Subject(facts) => {
            let (sees_dormant, is_key) = match request.actor {
                Actor::Staff { role, privileges, .. } => {
                    (staff_may(policy, role, privileges, RoleOp::ReadDormant), false)
                }
                _ => (false, true),
            };
            let hidden = facts.dormant && !sees_dormant;
            // Without `read_dormant` a dormant member's row shows masked on
            // a read; every other act on them is refused as if they were
            // not there, but for the platform's own backend (API keys),
            // which must find a member who logs in again (the act that
            // releases dormancy), record that activity, and keep records.
            let refused = hidden
                && match op {
                    Operation::ReadSubject | Operation::ListSubjects => false,
                    Operation::LookupSubject
                    | Operation::RecordActivity
                    | Operation::AddRecord
                    | Operation::RecordConsent
                    | Operation::DeleteSubject
                    | Operation::FileRequest => !is_key,
                    _ => true,
                };
            // Of a deleted account only held records remain.
            let gone = facts.deleted && op != Operation::ListRecords;
            (hidden, reaches(facts.service) && !refused && !gone)
        }
    };
    // What: the purpose must be declared, allowed to the actor, and cover
    // the items. Checked before the scope only for acts that name no
    // object, so a scoped actor learns nothing about another service's ids.
    let items = if op.reads_items() {
        let purpose = request.purpose.ok_or(Denied::PurposeRequired)?;
        let items = readable_items(policy, purpose, request.items).map_err(Denied::Read)?;
        if !purposes.contains(&purpose) {
            return Err(Denied::PurposeNotAllowed(purpose.to_owned()));
        }
        items
    } else {
        // An act that names a purpose without reading (recording a consent
        // to it) is still only for a purpose the actor works for.
        if let Some(purpose) = request.purpose
            && !purposes.contains(&purpose)
        {
            return Err(Denied::PurposeNotAllowed(purpose.to_owned()));
        }
        Vec::new()
    };
    if !found {
        return Err(Denied::NotFound);
    }
    Ok(Allowed { items: if masked { Vec::new() } else { items }, masked })
}

#[cfg(test)]
mod tests;
