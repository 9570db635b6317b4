//! Purpose-bound reads: which items a read made for a purpose may return, as
//! a pure function of the policy.
//!
//! Invariant: a read returns only items its purpose declares. A request for
//! anything else is refused as a whole, never silently narrowed, so the caller
//! learns that it asked for more than the purpose allows.

use std::collections::HashSet;
use std::fmt;

use crate::collect::{quoted, quoted_list};
use crate::policy::Policy;
use crate::policy::model::Id;

/// Why a read was refused. `code` is part of the API and never changes for
/// an existing variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadDenied {
    /// The purpose named is not one of the policy's purposes.
    UnknownPurpose(String),
    /// Items the policy declares but the purpose may not use, in the order
    /// requested.
    ItemsNotAllowed(Vec<String>),
    /// Items the policy does not declare, in the order requested.
    UnknownItems(Vec<String>),
}

impl ReadDenied {
    pub fn code(&self) -> &'static str {
        match self {
            ReadDenied::UnknownPurpose(_) => "unknown_purpose",
            ReadDenied::ItemsNotAllowed(_) => "items_not_allowed",
            ReadDenied::UnknownItems(_) => "unknown_items",
        }
    }
}

impl fmt::Display for ReadDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |items: &[String]| if items.len() == 1 { "" } else { "s" };
        match self {
            ReadDenied::UnknownPurpose(purpose) => write!(f, "unknown purpose {}", quoted(purpose)),
            ReadDenied::ItemsNotAllowed(items) => write!(
                f,
                "the purpose does not allow reading item{} {}",
                plural(items),
                quoted_list(items.iter().map(String::as_str))
            ),
            ReadDenied::UnknownItems(items) => write!(
                f,
                "unknown item{} {}: the policy declares no such item",
                plural(items),
                quoted_list(items.iter().map(String::as_str))
            ),
        }
    }
}

impl std::error::Error for ReadDenied {}

/// The items a read for `purpose` returns.
///
/// With no `requested` list, every item of the purpose; with one, the
/// requested items in the purpose's order (repeats collapse, an empty list
/// reads nothing). Unknown items are reported before items the purpose may
/// not use: they are a mistake of the caller, not a question of permission.
pub fn readable_items(policy: &Policy, purpose: &str, requested: Option<&[String]>) -> Result<Vec<Id>, ReadDenied> {
    let Some(purpose_def) = policy.purposes.iter().find(|p| p.id.as_str() == purpose) else {
        return Err(ReadDenied::UnknownPurpose(purpose.to_owned()));
    };
    let Some(requested) = requested else {
        return Ok(purpose_def.items.clone());
    };
    let declared = |name: &str| policy.items.iter().any(|i| i.id.as_str() == name);
    let allowed = |name: &str| purpose_def.items.iter().any(|id| id.as_str() == name);
    let unknown = distinct(requested.iter().filter(|name| !declared(name)));
    if !unknown.is_empty() {
        return Err(ReadDenied::UnknownItems(unknown));
    }
    let refused = distinct(requested.iter().filter(|name| !allowed(name)));
    if !refused.is_empty() {
        return Err(ReadDenied::ItemsNotAllowed(refused));
    }
    Ok(purpose_def.items.iter().filter(|id| requested.iter().any(|name| name == id.as_str())).cloned().collect())
}

/// The names in order of first appearance, without repeats.
fn distinct<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen = HashSet::new();
    names.filter(|name| seen.insert(name.as_str())).cloned().collect()
}

#[cfg(test)]
mod tests;
