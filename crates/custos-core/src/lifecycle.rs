//! The lifecycle plans: what the policy's retention rules do to a member or
//! a record at a given moment. Pure: `now`, the policy and the candidates
//! in, the steps out; the engine executes them, and `custos simulate` runs
//! the same functions forward in time without executing anything.
//!
//! Dormancy (a policy's `[retention.dormancy]`):
//! - the threshold is the last counted activity plus `inactive_for`
//!   (calendar arithmetic on the UTC date, the time of day kept);
//! - with `notice_before`, a notice is due from `threshold - notice_before`,
//!   once per inactivity period (a notice older than the last activity is
//!   stale), and the member becomes dormant at the later of the threshold
//!   and `notice + notice_before`: a late notice still gives the full lead
//!   time, so dormancy never starts before the member could react;
//! - a dormant member is destroyed at `dormant_at + destroy_after`;
//! - a member of a kind the rule does not cover, or holding an exempt role,
//!   is never made dormant; one already dormant is destroyed on time.
//!
//! Statutory holds (`[[record_classes]]`): a record expires on its start
//! date plus the class's span; it is destroyed on that date and is not
//! readable on or after it. Hold keys are cut per subject, class and
//! month of the record date ([`hold_bucket`]), so a key is destroyed on the
//! day the last record it could hold expires.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;

use crate::policy::model::{Dormancy, RecordClass, RecordStart};
use crate::policy::span::Span;

/// `at` plus `span` in calendar terms on the UTC date, the time of day
/// kept. Saturates at the last representable instant.
pub fn add_span(at: Timestamp, span: Span) -> Timestamp {
    shift(at, span, true)
}

/// `at` minus `span` (see [`add_span`]).
pub fn sub_span(at: Timestamp, span: Span) -> Timestamp {
    shift(at, span, false)
}

fn shift(at: Timestamp, span: Span, forward: bool) -> Timestamp {
    let dt = Offset::UTC.to_datetime(at);
    let date = if forward { span.after(dt.date()) } else { span.before(dt.date()) };
    match date {
        Ok(d) => Offset::UTC.to_timestamp(DateTime::from_parts(d, dt.time())).unwrap_or(if forward {
            Timestamp::MAX
        } else {
            Timestamp::MIN
        }),
        Err(_) if forward => Timestamp::MAX,
        Err(_) => Timestamp::MIN,
    }
}

/// The UTC calendar date of an instant.
pub fn utc_date(at: Timestamp) -> Date {
    Offset::UTC.to_datetime(at).date()
}

/// Where a member stands, as the lifecycle sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Dormant,
}

/// A member the dormancy plan looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub status: Status,
    pub last_activity: Timestamp,
    /// When the dormancy notice for the current period was queued.
    pub notified_at: Option<Timestamp>,
    /// When the member was moved to the dormant store.
    pub dormant_at: Option<Timestamp>,
    /// The staff roles the person holds (a head admin's member account).
    pub roles: &'a [String],
}

/// What is due for one member now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Queue the dormancy notice; the member becomes dormant on `dormant_on`
    /// unless they are active before.
    Notify { dormant_on: Timestamp },
    /// Move the member to the dormant store.
    MakeDormant,
    /// Destroy the dormant member (`since`: when destruction was due).
    Destroy { since: Timestamp },
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Notify { .. } => "notify",
            Step::MakeDormant => "dormant",
            Step::Destroy { .. } => "destroy",
        }
    }
}

/// Whether the dormancy rule covers this member at all.
pub fn covered(rule: &Dormancy, kind: &str, roles: &[String]) -> bool {
    let kind_ok = rule.subject_kinds.is_empty() || rule.subject_kinds.iter().any(|k| k.as_str() == kind);
    let exempt = rule.exempt_roles.iter().any(|r| roles.iter().any(|held| held == r.as_str()));
    kind_ok && !exempt
}

/// The moment inactivity turns into dormancy, ignoring notices.
pub fn threshold(rule: &Dormancy, last_activity: Timestamp) -> Timestamp {
    add_span(last_activity, rule.inactive_for)
}

/// The notice of the current period, if one was queued since the last
/// activity.
fn current_notice(member: &Member<'_>) -> Option<Timestamp> {
    member.notified_at.filter(|n| *n >= member.last_activity)
}

/// When the member becomes dormant, given the notice state now.
fn dormant_on(rule: &Dormancy, member: &Member<'_>, notice: Option<Timestamp>) -> Timestamp {
    let threshold = threshold(rule, member.last_activity);
    match (rule.notice_before, notice) {
        (Some(lead), Some(sent)) => threshold.max(add_span(sent, lead)),
        _ => threshold,
    }
}

/// The step due for `member` at `now`, if any.
pub fn step(rule: &Dormancy, member: &Member<'_>, now: Timestamp) -> Option<Step> {
    match member.status {
        // An exemption keeps a member from becoming dormant; one who is
        // dormant already (exempted later) is still destroyed on time.
        Status::Active if !covered(rule, member.kind, member.roles) => None,
        Status::Active => {
            let notice = current_notice(member);
            if let Some(lead) = rule.notice_before
                && notice.is_none()
            {
                let due = sub_span(threshold(rule, member.last_activity), lead);
                return (now >= due).then(|| Step::Notify { dormant_on: dormant_on(rule, member, Some(now)) });
            }
            (now >= dormant_on(rule, member, notice)).then_some(Step::MakeDormant)
        }
        Status::Dormant => {
            let since = add_span(member.dormant_at?, rule.destroy_after);
            (now >= since).then_some(Step::Destroy { since })
        }
    }
}

/// One member's future if nothing happens to them: the dates of each step
/// from `now` on (for `custos simulate`).
pub fn forecast(rule: &Dormancy, member: &Member<'_>, now: Timestamp) -> Vec<(Timestamp, Step)> {
    let mut out = Vec::new();
    let mut m = *member;
    let mut at = now;
    // At most three steps: notify, dormant, destroy.
    for _ in 0..3 {
        let next = next_moment(rule, &m, at);
        let Some(when) = next else { break };
        let Some(s) = step(rule, &m, when) else { break };
        out.push((when, s));
        match s {
            Step::Notify { .. } => m.notified_at = Some(when),
            Step::MakeDormant => {
                m.status = Status::Dormant;
                m.dormant_at = Some(when);
            }
            Step::Destroy { .. } => break,
        }
        at = when;
    }
    out
}

/// The earliest moment at or after `now` when a step is due.
fn next_moment(rule: &Dormancy, member: &Member<'_>, now: Timestamp) -> Option<Timestamp> {
    if member.status == Status::Active && !covered(rule, member.kind, member.roles) {
        return None;
    }
    let due = match member.status {
        Status::Active => {
            let notice = current_notice(member);
            match (rule.notice_before, notice) {
                (Some(lead), None) => sub_span(threshold(rule, member.last_activity), lead),
                _ => dormant_on(rule, member, notice),
            }
        }
        Status::Dormant => add_span(member.dormant_at?, rule.destroy_after),
    };
    Some(due.max(now))
}

/// The date a record expires: on and after it, it is destroyed and never
/// read. `deleted_on`: the day the account was deleted, if it was. `None`
/// when the record does not expire yet (a hold counted from an account
/// deletion that has not happened).
pub fn record_expires(class: &RecordClass, record_date: Date, deleted_on: Option<Date>) -> Option<Date> {
    let start = match class.from {
        // A record carries one date; for a contract it is the contract's end.
        RecordStart::RecordDate | RecordStart::ContractEnd => record_date,
        RecordStart::RecordYearEnd => Date::new(record_date.year(), 12, 31).ok()?,
        RecordStart::AccountDeletion => deleted_on?,
    };
    Some(class.retain_for.after(start).unwrap_or(Date::MAX))
}

/// Whether a record is past its hold on `today`.
pub fn record_expired(class: &RecordClass, record_date: Date, deleted_on: Option<Date>, today: Date) -> bool {
    record_expires(class, record_date, deleted_on).is_some_and(|e| e <= today)
}

/// For classes counted from the record's own date: the latest record date
/// that is expired on `today` (every record dated on or before it is; none
/// after). `None` for classes counted from an account deletion.
///
/// Expiry is monotonic in the record date (calendar addition clamps to
/// month ends but never goes back), so the cut-off is found by stepping
/// from an estimate.
pub fn record_cutoff(class: &RecordClass, today: Date) -> Option<Date> {
    if class.from == RecordStart::AccountDeletion {
        return None;
    }
    let expired = |d: Date| record_expired(class, d, None, today);
    let mut d = class.retain_for.before(today).unwrap_or(Date::MIN);
    while let Ok(next) = d.tomorrow() {
        if !expired(next) {
            break;
        }
        d = next;
    }
    while !expired(d) {
        match d.yesterday() {
            Ok(prev) => d = prev,
            Err(_) => return None,
        }
    }
    Some(d)
}

/// For classes counted from an account deletion: the latest deletion date
/// whose records are expired on `today`.
pub fn deletion_cutoff(class: &RecordClass, today: Date) -> Option<Date> {
    if class.from != RecordStart::AccountDeletion {
        return None;
    }
    let mut d = class.retain_for.before(today).ok()?;
    let expired = |d: Date| record_expired(class, d, Some(d), today);
    while let Ok(next) = d.tomorrow() {
        if !expired(next) {
            break;
        }
        d = next;
    }
    while !expired(d) {
        d = d.yesterday().ok()?;
    }
    Some(d)
}

/// The key bucket of a record: one data key per subject, class and month
/// of the record date (`hold:<class>:<YYYY-MM>`); for holds counted from an
/// account deletion, one per subject and class (`hold:<class>`), since all
/// of them expire together.
pub fn hold_scope(class: &RecordClass, record_date: Date) -> String {
    match class.from {
        RecordStart::AccountDeletion => format!("hold:{}", class.id),
        _ => format!("hold:{}:{:04}-{:02}", class.id, record_date.year(), record_date.month()),
    }
}

/// The last bucket (`YYYY-MM`) whose every record is expired once
/// `cutoff` is: the cut-off's month if it is the month's last day, else
/// the month before.
pub fn last_expired_bucket(cutoff: Date) -> Option<String> {
    let month_end = cutoff.last_of_month();
    let month = if cutoff == month_end { cutoff } else { cutoff.first_of_month().yesterday().ok()? };
    Some(format!("{:04}-{:02}", month.year(), month.month()))
}

#[cfg(test)]
mod tests;
