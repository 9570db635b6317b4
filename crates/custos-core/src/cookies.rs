//! Cookie consent's meaning (DESIGN clause 8: opt-in per category,
//! recorded; browser signals honoured): the effective state of every cookie
//! category the policy declares, derived from a visitor's (or member's)
//! append-only ledger of choices and from Global Privacy Control, never
//! stored on its own.
//!
//! Rules, per category:
//! - a strictly necessary category is always on; it takes no choice (a
//!   choice to turn it on is accepted and changes nothing, one to turn it
//!   off is refused);
//! - a category the policy lists in `gpc_opts_out` is off whenever the
//!   request carries GPC (`Sec-GPC: 1`), whatever was chosen before: the
//!   signal overrides a grant. The signal is recorded in the ledger as an
//!   opt-out entry of its own ([`gpc_signals_to_record`]), so the category
//!   stays off after it until the visitor chooses again;
//! - any other category follows the latest entry for it; with none it is
//!   off (nothing is pre-ticked).
//!
//! A choice naming a category the policy does not declare is refused, and
//! so is the whole call: nothing of it is recorded.

use crate::policy::model::{CookieCategory, Cookies, Id};

/// The most choices one call may carry.
pub const MAX_CHOICES: usize = 64;

/// What an entry of the ledger records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A choice the visitor made.
    Choice,
    /// A GPC signal received: an opt-out of a `gpc_opts_out` category.
    Gpc,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Choice => "choice",
            Source::Gpc => "gpc",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "choice" => Some(Source::Choice),
            "gpc" => Some(Source::Gpc),
            _ => None,
        }
    }
}

/// One entry of a ledger, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub category: &'a str,
    pub granted: bool,
    pub source: Source,
    /// Whether the request that made the entry carried GPC.
    pub gpc: bool,
}

/// Why a category is on or off now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// Strictly necessary: always on.
    Necessary,
    /// The latest choice.
    Choice,
    /// A GPC signal, now or recorded since the latest choice.
    Gpc,
    /// No choice yet: off.
    NotChosen,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Necessary => "necessary",
            Basis::Choice => "choice",
            Basis::Gpc => "gpc",
            Basis::NotChosen => "not_chosen",
        }
    }
}

/// The state of one category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CategoryState<'p> {
    pub category: &'p CookieCategory,
    /// Whether the policy lists it in `gpc_opts_out`.
    pub gpc_opt_out: bool,
    pub granted: bool,
    pub basis: Basis,
}

fn gpc_listed(cookies: &Cookies, id: &Id) -> bool {
    cookies.gpc_opts_out.contains(id)
}

/// The state of every category of `cookies` (in the policy's order), given
/// the `ledger` and whether the current request carries GPC. A policy
/// without a `[cookies]` section has no categories.
pub fn states<'p>(cookies: Option<&'p Cookies>, ledger: &[Entry<'_>], gpc: bool) -> Vec<CategoryState<'p>> {
    let Some(cookies) = cookies else { return Vec::new() };
    cookies
        .categories
        .iter()
        .map(|category| {
            let gpc_opt_out = gpc_listed(cookies, &category.id);
            let (granted, basis) = if category.necessary {
                (true, Basis::Necessary)
            } else if gpc_opt_out && gpc {
                (false, Basis::Gpc)
            } else {
                match ledger.iter().rev().find(|e| e.category == category.id.as_str()) {
                    None => (false, Basis::NotChosen),
                    Some(e) if e.source == Source::Gpc => (false, Basis::Gpc),
                    Some(e) => (e.granted, Basis::Choice),
                }
            };
            CategoryState { category, gpc_opt_out, granted, basis }
        })
        .collect()
}

/// The categories whose GPC opt-out must be appended to the ledger now:
/// when the request carries GPC, every `gpc_opts_out` category whose latest
/// entry is not already such an opt-out. Empty without GPC.
pub fn gpc_signals_to_record<'p>(cookies: Option<&'p Cookies>, ledger: &[Entry<'_>], gpc: bool) -> Vec<&'p Id> {
    let Some(cookies) = cookies.filter(|_| gpc) else { return Vec::new() };
    cookies
        .gpc_opts_out
        .iter()
        .filter(|id| {
            let latest = ledger.iter().rev().find(|e| e.category == id.as_str());
            !latest.is_some_and(|e| e.source == Source::Gpc)
        })
        .collect()
}

/// Whether the ledger holds a GPC signal: the visitor said "do not sell or
/// share" at least once.
pub fn gpc_recorded(ledger: &[Entry<'_>]) -> bool {
    ledger.iter().any(|e| e.gpc)
}

/// What is wrong with one choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// More than [`MAX_CHOICES`] in one call.
    TooMany,
    /// The key is not shaped like a category id (it is not repeated: it
    /// may be anything).
    NotAnId,
    /// The policy declares no such category.
    Unknown(Id),
    /// A strictly necessary category cannot be turned off.
    Necessary(Id),
    /// The same category twice in one call.
    Twice(Id),
}

impl Problem {
    /// The category it is about, when the key was an id.
    pub fn category(&self) -> Option<&Id> {
        match self {
            Problem::TooMany | Problem::NotAnId => None,
            Problem::Unknown(id) | Problem::Necessary(id) | Problem::Twice(id) => Some(id),
        }
    }

    pub fn message(&self) -> String {
        match self {
            Problem::TooMany => format!("at most {MAX_CHOICES} choices in one call"),
            Problem::NotAnId => {
                "a category is an id of the policy (lower-case letters, digits and '_', starting with a letter)"
                    .to_owned()
            }
            Problem::Unknown(id) => format!("the policy declares no cookie category {:?}", id.as_str()),
            Problem::Necessary(id) => {
                format!("cookie category {:?} is strictly necessary and cannot be turned off", id.as_str())
            }
            Problem::Twice(id) => format!("cookie category {:?} is chosen twice", id.as_str()),
        }
    }
}

/// Checks a call's choices against the policy and returns those to record:
/// every choice but the grants of strictly necessary categories (always
/// on, nothing to record). Any problem refuses the whole call.
pub fn check_choices<'c>(
    cookies: Option<&Cookies>,
    choices: &'c [(String, bool)],
) -> Result<Vec<(&'c str, bool)>, Vec<Problem>> {
    if choices.len() > MAX_CHOICES {
        return Err(vec![Problem::TooMany]);
    }
    let mut problems = Vec::new();
    let mut keep = Vec::with_capacity(choices.len());
    for (i, (key, granted)) in choices.iter().enumerate() {
        let Ok(id) = Id::parse(key) else {
            problems.push(Problem::NotAnId);
            continue;
        };
        if choices[..i].iter().any(|(k, _)| k == key) {
            problems.push(Problem::Twice(id));
            continue;
        }
        match cookies.and_then(|c| c.categories.iter().find(|x| x.id == id)) {
            None => problems.push(Problem::Unknown(id)),
            Some(c) if c.necessary && !granted => problems.push(Problem::Necessary(id)),
            Some(c) if c.necessary => {}
            Some(_) => keep.push((key.as_str(), *granted)),
        }
    }
    if problems.is_empty() { Ok(keep) } else { Err(problems) }
}

#[cfg(test)]
mod tests;
