//! The consent ledger's meaning: a subject's current consent to a purpose,
//! derived from the append-only ledger and the policy versions in force
//! since, never stored on its own.
//!
//! Rules:
//! - the latest entry for a purpose decides; no entry means no consent
//!   (nothing is pre-ticked);
//! - a grant holds while every policy version that came into force after the
//!   one it was given under left the purpose's scope unchanged
//!   ([`scope_widened`]); once one widened it, the grant needs renewal,
//!   even if a later version narrows it again: the member agreed to what
//!   they were shown, and a new use was announced since;
//! - a grant under a version the history does not know needs renewal too.

use crate::policy::Policy;
use crate::policy::diff::purpose_widened;
use crate::policy::model::ConsentMode;

/// One entry of the ledger, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub purpose: &'a str,
    pub granted: bool,
    /// The version of the policy in force when it was given.
    pub policy_version: &'a str,
}

/// A subject's consent to one purpose now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Never given.
    NotGiven,
    Granted,
    Withdrawn,
    /// Given under a version whose scope for the purpose was widened since.
    NeedsRenewal,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::NotGiven => "not_given",
            State::Granted => "granted",
            State::Withdrawn => "withdrawn",
            State::NeedsRenewal => "needs_renewal",
        }
    }

    /// Whether an opt-in purpose may be used on the strength of this
    /// consent: only with a current grant.
    pub fn permits_use(self) -> bool {
        self == State::Granted
    }

    /// Whether a purpose taking consent in `mode` may be used: an opt-in
    /// purpose needs a current grant; an opt-out purpose is used until the
    /// subject objects (withdraws), or until it widened since an explicit
    /// grant (the subject agreed to less). Never asked is allowed for an
    /// opt-out purpose: that is what opting out means.
    pub fn permits(self, mode: ConsentMode) -> bool {
        match mode {
            ConsentMode::OptIn => self.permits_use(),
            ConsentMode::OptOut => matches!(self, State::Granted | State::NotGiven),
        }
    }
}

/// Whether `purpose` reaches further in `after` than in `before`: the
/// purpose itself widened ([`purpose_widened`]), one of its items means
/// something else now (another type or category, special or not), or its
/// data goes to a recipient or abroad where it did not (a third party
/// receiving for the purpose, a transfer or processor carrying one of its
/// items).
pub fn scope_widened(before: &Policy, after: &Policy, purpose: &str) -> bool {
    let (Some(old), Some(new)) = (before.purpose_by_str(purpose), after.purpose_by_str(purpose)) else {
        // Gone and back again is a new purpose; gone for good is no use.
        return true;
    };
    if purpose_widened(old, new) {
        return true;
    }
    let item_changed = new.items.iter().any(|id| before.item(id) != after.item(id));
    let uses = |items: &[crate::policy::model::Id]| items.iter().any(|i| new.items.contains(i));
    let recipients = |p: &Policy| -> Vec<crate::policy::model::Recipient> {
        p.third_parties
            .iter()
            .flat_map(|t| t.recipients.iter())
            .filter(|r| r.purposes.iter().any(|x| x.as_str() == purpose))
            .cloned()
            .collect()
    };
    let new_recipient = recipients(after).iter().any(|r| !recipients(before).contains(r));
    let new_transfer = after.transfers.iter().filter(|t| uses(&t.items)).any(|t| !before.transfers.contains(t));
    let new_processor = after.processors.iter().filter(|p| uses(&p.items)).any(|p| !before.processors.contains(p));
    item_changed || new_recipient || new_transfer || new_processor
}

/// The state of `purpose` given the `ledger` and the `history` of policy
/// versions in the order they came into force (the last is current).
pub fn state(ledger: &[Entry<'_>], purpose: &str, history: &[&Policy]) -> State {
    let Some(last) = ledger.iter().rev().find(|e| e.purpose == purpose) else {
        return State::NotGiven;
    };
    if !last.granted {
        return State::Withdrawn;
    }
    let Some(given) = history.iter().position(|p| p.meta.version == last.policy_version) else {
        return State::NeedsRenewal;
    };
    let widened = history[given..].windows(2).any(|pair| scope_widened(pair[0], pair[1], purpose));
    if widened { State::NeedsRenewal } else { State::Granted }
}

#[cfg(test)]
mod tests;
