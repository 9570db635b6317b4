//! Rights requests as pure rules: which kinds a jurisdiction offers, the
//! deadlines a request runs against, and the state machine every request
//! follows from receipt to answer.
//!
//! Invariants:
//! - a request is answered (fulfilled) only once its requester is verified;
//!   a closed request (fulfilled or denied) never changes again;
//! - deadlines are calendar dates in UTC computed from the day of receipt
//!   with the policy's spans ("1 month" from 31 January is 28 or 29
//!   February; business days skip weekends); a deadline the policy does not
//!   state is absent, never invented;
//! - an extension is allowed once, only where the policy states one, and
//!   runs from the end of the first deadline.

use std::fmt;

use jiff::civil::Date;

use crate::policy::Policy;
use crate::policy::model::{Deadlines, Jurisdiction, RightKind};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Perusal: everything held about the member, with purpose, source and
    /// retention.
    Access,
    /// Portability: the same, as a machine-readable download.
    Export,
    Correction,
    Deletion,
    /// Cessation of processing, for named purposes or all.
    Restriction,
    /// Objection to marketing: every marketing consent withdrawn.
    ObjectMarketing,
    /// California: opt-out of sale or sharing.
    OptOutSale,
    /// California: the right to know (categories, sources, purposes,
    /// recipients; third parties that received data for marketing in the
    /// preceding calendar year).
    Know,
    /// A complaint (clause 9), kept as the policy says.
    Complaint,
    /// An inquiry (clauses 1 and 2).
    Inquiry,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::Access,
        Kind::Export,
        Kind::Correction,
        Kind::Deletion,
        Kind::Restriction,
        Kind::ObjectMarketing,
        Kind::OptOutSale,
        Kind::Know,
        Kind::Complaint,
        Kind::Inquiry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Export => "export",
            Kind::Correction => "correction",
            Kind::Deletion => "deletion",
            Kind::Restriction => "restriction",
            Kind::ObjectMarketing => "object_marketing",
            Kind::OptOutSale => "opt_out_sale",
            Kind::Know => "know",
            Kind::Complaint => "complaint",
            Kind::Inquiry => "inquiry",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Whether the request is about a member's own data, so that the
    /// requester must be shown to be that member (or their agent) before
    /// it is answered. Complaints and inquiries are not.
    pub fn needs_verification(self) -> bool {
        !matches!(self, Kind::Complaint | Kind::Inquiry)
    }

    /// Whether answering needs no one's judgment (the package of what is
    /// held): the platform's backend that filed such a request for its
    /// signed-in member may fulfil it and fetch the answer itself.
    pub fn self_service(self) -> bool {
        matches!(self, Kind::Access | Kind::Export | Kind::Know)
    }

    /// The rights of the policy that grant this kind; empty when no right
    /// is needed (withdrawing consent, complaining and asking are always
    /// possible, and a policy that sells nothing still records an opt-out).
    fn grounded_in(self) -> &'static [RightKind] {
        match self {
            Kind::Access => &[RightKind::Access, RightKind::Know],
            Kind::Export => &[RightKind::Portability, RightKind::Access, RightKind::Know],
            Kind::Correction => &[RightKind::Correction],
            Kind::Deletion => &[RightKind::Deletion],
            Kind::Restriction => &[RightKind::Restriction],
            Kind::Know => &[RightKind::Know, RightKind::MarketingDisclosure],
            Kind::ObjectMarketing | Kind::OptOutSale | Kind::Complaint | Kind::Inquiry => &[],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request cannot be filed as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    UnknownJurisdiction(String),
    /// Neither the jurisdiction nor the policy's general rights offer it.
    NotOffered {
        kind: Kind,
        jurisdiction: String,
    },
    /// The channel is not one the policy declares.
    UnknownChannel(String),
    /// The policy does not accept requests through an agent.
    NoAgents,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::UnknownJurisdiction(j) => write!(f, "the policy declares no jurisdiction {j:?}"),
            Refused::NotOffered { kind, jurisdiction } => {
                write!(f, "the policy offers no {kind} request in jurisdiction {jurisdiction:?}")
            }
            Refused::UnknownChannel(c) => write!(f, "the policy declares no channel {c:?}"),
            Refused::NoAgents => f.write_str("the policy does not accept requests through an agent"),
        }
    }
}

/// The jurisdiction a request runs under: the one named, or the policy's
/// own (`meta.jurisdiction`).
pub fn jurisdiction<'p>(policy: &'p Policy, named: Option<&str>) -> Result<&'p Jurisdiction, Refused> {
    let id = named.unwrap_or(policy.meta.jurisdiction.as_str());
    policy.jurisdictions.iter().find(|j| j.id.as_str() == id).ok_or_else(|| Refused::UnknownJurisdiction(id.to_owned()))
}

/// Whether a request of `kind` through `channel` (by an agent or not) may
/// be filed under `jurisdiction`. The policy's general `[rights]` count for
/// its own jurisdiction; another jurisdiction's list counts for its
/// residents, added to the general ones.
pub fn check(
    policy: &Policy,
    jurisdiction: &Jurisdiction,
    kind: Kind,
    channel: &str,
    by_agent: bool,
) -> Result<(), Refused> {
    if !policy.channels.iter().any(|c| c.id.as_str() == channel) {
        return Err(Refused::UnknownChannel(channel.to_owned()));
    }
    if by_agent && !policy.rights.as_ref().is_some_and(|r| r.agents) {
        return Err(Refused::NoAgents);
    }
    let needs = kind.grounded_in();
    if needs.is_empty() {
        return Ok(());
    }
    let general = policy.rights.as_ref().map(|r| r.kinds.as_slice()).unwrap_or(&[]);
    let offered = needs.iter().any(|n| jurisdiction.rights.contains(n) || general.contains(n));
    if offered { Ok(()) } else { Err(Refused::NotOffered { kind, jurisdiction: jurisdiction.id.as_str().to_owned() }) }
}

/// The deadlines of one request, as UTC calendar dates: the last day on
/// which the act is on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Acknowledge receipt by (California: 10 business days).
    pub acknowledge: Option<Date>,
    /// Answer by; `None` when the policy states no deadline.
    pub answer: Option<Date>,
}

/// The deadlines of a request received on `received` under `deadlines`.
/// Errors only past the year 9999.
pub fn due(deadlines: Option<&Deadlines>, received: Date) -> Result<Due, String> {
    let Some(d) = deadlines else { return Ok(Due { acknowledge: None, answer: None }) };
    let acknowledge = d.acknowledge.map(|s| s.after(received)).transpose()?;
    Ok(Due { acknowledge, answer: Some(d.answer.after(received)?) })
}

/// Why a request cannot be extended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoExtension {
    /// The jurisdiction's deadlines state no extension (or no deadline).
    NotAllowed,
    AlreadyExtended,
    Closed,
    /// The first deadline has passed: an extension must be announced
    /// before it.
    TooLate {
        answer_by: Date,
    },
}

impl fmt::Display for NoExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoExtension::NotAllowed => f.write_str("the policy allows no extension in this jurisdiction"),
            NoExtension::AlreadyExtended => f.write_str("the request was extended already"),
            NoExtension::Closed => f.write_str("the request is closed"),
            NoExtension::TooLate { answer_by } => {
                write!(f, "the deadline ({answer_by}) has passed; an extension must be announced before it")
            }
        }
    }
}

/// The new answer deadline when the request is extended on `today`: the
/// extension span after the first deadline.
pub fn extend(
    deadlines: Option<&Deadlines>,
    status: Status,
    due: Due,
    extended: bool,
    today: Date,
) -> Result<Date, NoExtension> {
    if status.is_closed() {
        return Err(NoExtension::Closed);
    }
    if extended {
        return Err(NoExtension::AlreadyExtended);
    }
    let (Some(span), Some(answer_by)) = (deadlines.and_then(|d| d.extension), due.answer) else {
        return Err(NoExtension::NotAllowed);
    };
    if today > answer_by {
        return Err(NoExtension::TooLate { answer_by });
    }
    span.after(answer_by).map_err(|_| NoExtension::NotAllowed)
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Filed; the requester is not verified yet.
    Received,
    /// The requester is shown to be the member (or their agent, with a
    /// letter of attorney a staff member checked).
    Verified,
    /// A staff member works on it.
    InProgress,
    Fulfilled,
    Denied,
}

impl Status {
    pub const ALL: &'static [Status] =
        &[Status::Received, Status::Verified, Status::InProgress, Status::Fulfilled, Status::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Verified => "verified",
            Status::InProgress => "in_progress",
            Status::Fulfilled => "fulfilled",
            Status::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    pub fn is_closed(self) -> bool {
        matches!(self, Status::Fulfilled | Status::Denied)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step taken on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// The requester's identity (or the agent's letter) is established.
    Verify,
    /// A staff member takes it (or it is handed to another).
    Assign,
    Fulfil,
    Deny,
}

impl Step {
    pub const ALL: &'static [Step] = &[Step::Verify, Step::Assign, Step::Fulfil, Step::Deny];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Verify => "verify",
            Step::Assign => "assign",
            Step::Fulfil => "fulfil",
            Step::Deny => "deny",
        }
    }
}

/// A step the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidStep {
    pub from: Status,
    pub step: Step,
}

impl fmt::Display for InvalidStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match (self.from, self.step) {
            (s, _) if s.is_closed() => "the request is closed",
            (Status::Received, Step::Fulfil | Step::Assign) => "the requester is not verified yet",
            (_, Step::Verify) => "the requester is verified already",
            _ => "not a step from here",
        };
        write!(f, "cannot {} a request that is {}: {why}", self.step.as_str(), self.from)
    }
}

/// The state machine: where `step` takes a request that is `from`.
///
/// ```text
/// received --verify--> verified --assign--> in_progress --fulfil--> fulfilled
///     |                    |  \--fulfil--> fulfilled     |  ^ assign (hand over)
///     \--deny--> denied <--+-------------------deny------+
/// ```
pub fn next(from: Status, step: Step) -> Result<Status, InvalidStep> {
    let to = match (from, step) {
        (Status::Received, Step::Verify) => Status::Verified,
        (Status::Verified | Status::InProgress, Step::Assign) => Status::InProgress,
        (Status::Verified | Status::InProgress, Step::Fulfil) => Status::Fulfilled,
        (Status::Received | Status::Verified | Status::InProgress, Step::Deny) => Status::Denied,
        _ => return Err(InvalidStep { from, step }),
    };
    Ok(to)
}

/// Where a request stands against its deadlines on `today`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Open past its (possibly extended) answer deadline.
    pub overdue: bool,
    /// Not acknowledged, past the acknowledgement deadline.
    pub acknowledgement_overdue: bool,
    /// Days left to the answer deadline (negative: days late); `None`
    /// without a deadline or once closed.
    pub days_left: Option<i64>,
}

/// The request's standing on `today`. `answer_by` is the deadline in force
/// (the extended one after an extension).
pub fn standing(
    status: Status,
    answer_by: Option<Date>,
    acknowledge_by: Option<Date>,
    acknowledged: bool,
    today: Date,
) -> Standing {
    if status.is_closed() {
        return Standing { overdue: false, acknowledgement_overdue: false, days_left: None };
    }
    let days_left = answer_by.and_then(|d| today.until(d).ok()).map(|s| i64::from(s.get_days()));
    Standing {
        overdue: answer_by.is_some_and(|d| today > d),
        acknowledgement_overdue: !acknowledged && acknowledge_by.is_some_and(|d| today > d),
        days_left,
    }
}

/// The purpose every restriction covers ("cease all processing").
pub const ALL_PURPOSES: &str = "*";

/// Whether processing a member's data for `purpose` is restricted by the
/// live restrictions `restricted` (purpose ids, or [`ALL_PURPOSES`]). A
/// restriction of everything leaves the purposes that rest on a legal
/// obligation (statutory retention): the law that keeps the data also
/// keeps its use for that purpose, as the policy's limits say.
pub fn restricted(policy: &Policy, restricted: &[String], purpose: &str) -> bool {
    if restricted.iter().any(|r| r == purpose) {
        return true;
    }
    let legal = policy.purpose_by_str(purpose).is_some_and(|p| {
        !p.bases.is_empty() && p.bases.iter().all(|b| b.kind == crate::policy::model::BasisKind::LegalObligation)
    });
    restricted.iter().any(|r| r == ALL_PURPOSES) && !legal
}

#[cfg(test)]
mod tests;
