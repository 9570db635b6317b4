//! Policy as code: the privacy policy a platform publishes, as a file the
//! engine enforces and renders back as the published text.
//!
//! Parsing is two-staged. `raw` mirrors the TOML and refuses unknown keys;
//! `convert` checks everything else (references, spans, dates, the policy's
//! own rules) and builds the domain model in `model`. Every problem names its
//! key path and line. `render` turns a policy into Markdown or HTML and `diff`
//! compares two versions and says whether the amendment is significant.

use std::fmt;

mod convert;
pub mod diff;
pub mod model;
pub mod raw;
pub mod render;
mod source;
pub mod span;
mod unconvert;

pub use model::Policy;
pub use source::{KeyPath, Segment};
pub use span::Span;

/// Policy files larger than this are refused before parsing: the b.stage
/// policy is about 20 KiB, and a parser should not be handed megabytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// Deepest nesting of arrays and inline tables accepted, checked before the
/// TOML parser runs so that hostile input cannot exhaust the stack.
pub const MAX_NESTING: usize = 32;

/// One thing wrong with a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: KeyPath,
    /// 1-based line in the file, when the file was readable enough to tell.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a policy file was refused: every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem{} in the policy file", problems.len(), if problems.len() == 1 { "" } else { "s" })]
pub struct PolicyError {
    pub problems: Vec<Problem>,
}

impl PolicyError {
    fn single(path: KeyPath, line: Option<usize>, message: impl Into<String>) -> PolicyError {
        PolicyError { problems: vec![Problem { path, line, message: message.into() }] }
    }
}

/// Parses and validates a policy file given as bytes (it must be UTF-8).
pub fn parse_bytes(bytes: &[u8]) -> Result<Policy, PolicyError> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(too_large(bytes.len()));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(PolicyError::single(
                KeyPath::root(),
                Some(line),
                format!("the file is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()),
            ))
        }
    }
}

/// Parses and validates a policy file.
pub fn parse(text: &str) -> Result<Policy, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(too_large(text.len()));
    }
    let map = source::SourceMap::new(text);
    if let Some(offset) = nesting_too_deep(text) {
        let line = map.line_of_offset(offset);
        return Err(PolicyError::single(
            KeyPath::root(),
            Some(line),
            format!("arrays or inline tables are nested more than {MAX_NESTING} deep"),
        ));
    }
    let raw: raw::RawPolicy = toml::from_str(text).map_err(|e| {
        let (path, line) = match e.span() {
            Some(span) => (map.path_at(span.start), Some(map.line_of_offset(span.start))),
            None => (KeyPath::root(), None),
        };
        PolicyError::single(path, line, first_line(e.message()).replace("expected i64", "expected an integer"))
    })?;
    convert::from_raw(&raw).map_err(|problems| {
        let mut problems: Vec<Problem> =
            problems.into_iter().map(|(path, message)| Problem { line: map.line_of(&path), path, message }).collect();
        problems.sort_by_key(|p| p.line.unwrap_or(0));
        PolicyError { problems }
    })
}

/// Writes a valid policy back as TOML that `parse` reads to an equal policy.
pub fn to_toml(policy: &Policy) -> String {
    let raw = unconvert::to_raw(policy);
    // Serialising plain structs of strings, integers, booleans, dates and
    // arrays cannot fail; a failure here is a bug in `raw`, not bad input.
    toml::to_string_pretty(&raw).expect("a raw policy always serialises")
}

fn too_large(len: usize) -> PolicyError {
    PolicyError::single(
        KeyPath::root(),
        None,
        format!("the file is {len} bytes; policy files are limited to {MAX_POLICY_BYTES} bytes"),
    )
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_owned()
}

/// Finds the first place where `[` or `{` open more than `MAX_NESTING` deep
/// outside strings and comments. Table headers (`[a]`, `[[a]]`) only reach a
/// depth of two, so they never trip it.
fn nesting_too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            quote @ (b'"' | b'\'') => {
                let triple = bytes[i..].starts_with(if quote == b'"' { b"\"\"\"" } else { b"'''" });
                i += if triple { 3 } else { 1 };
                loop {
                    if i >= bytes.len() {
                        return None;
                    }
                    if quote == b'"' && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if !triple && bytes[i] == b'\n' {
                        break;
                    }
                    if bytes[i] == quote {
                        if !triple {
                            break;
                        }
                        if bytes[i..].starts_with(if quote == b'"' { b"\"\"\"" } else { b"'''" }) {
                            i += 2;
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests;
