//! Where in the file a problem is: key paths (`purposes[2].items[0]`) and the
//! lines they sit on.
//!
//! Validation works on the raw structs, which carry no positions; it records
//! the key path of each problem instead. `SourceMap` re-reads the TOML with
//! spans and turns a key path into a line, and a parser error's byte offset
//! into a key path, so every message can name both.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path to a value in the policy file, written as in the TOML:
/// `retention.dormancy.inactive_for`, `purposes[1].bases[0].kind`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> KeyPath {
        let mut next = self.0.clone();
        next.push(Segment::Key(key.to_owned()));
        KeyPath(next)
    }

    pub fn index(&self, index: usize) -> KeyPath {
        let mut next = self.0.clone();
        next.push(Segment::Index(index));
        KeyPath(next)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The text of a policy file with the spans of its keys and values.
pub(crate) struct SourceMap<'a> {
    text: &'a str,
    root: Option<Spanned<DeTable<'a>>>,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(text: &'a str) -> SourceMap<'a> {
        SourceMap { text, root: DeTable::parse(text).ok() }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_of_offset(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// The line of the value at `path`, or of the nearest enclosing value the
    /// file has (a missing key is reported on the line of its table).
    pub(crate) fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let root = self.root.as_ref()?;
        let mut span = first_line_span(root.span());
        let mut value: Option<&DeValue<'a>> = None;
        let mut table: Option<&DeTable<'a>> = Some(root.get_ref());
        for segment in path.segments() {
            match segment {
                Segment::Key(key) => {
                    let Some(t) = table else { break };
                    let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == key.as_str()) else {
                        break;
                    };
                    // Scalars are reported at their key; tables and arrays of
                    // tables at their header, which the key span also gives.
                    span = k.span();
                    value = Some(v.get_ref());
                }
                Segment::Index(n) => {
                    let Some(DeValue::Array(array)) = value else { break };
                    let Some(element) = array.get(*n) else { break };
                    span = element.span();
                    value = Some(element.get_ref());
                }
            }
            table = match value {
                Some(DeValue::Table(t)) => Some(t),
                _ => None,
            };
        }
        Some(self.line_of_offset(span.start))
    }

    /// The deepest key path whose key or value covers `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        let Some(root) = self.root.as_ref() else { return KeyPath::root() };
        let mut path = KeyPath::root();
        let mut table = root.get_ref();
        loop {
            let mut next = None;
            for (k, v) in table.iter() {
                if covers(&k.span(), offset) {
                    return path.key(k.get_ref());
                }
                if covers(&v.span(), offset) {
                    next = Some((k.get_ref().to_string(), v));
                    break;
                }
            }
            let Some((key, value)) = next else { return path };
            path = path.key(&key);
            match descend(value, offset, &mut path) {
                Some(t) => table = t,
                None => return path,
            }
        }
    }
}

/// Walks into arrays covering `offset`, extending `path`; returns the table
/// found there, if any.
fn descend<'v, 'a>(value: &'v Spanned<DeValue<'a>>, offset: usize, path: &mut KeyPath) -> Option<&'v DeTable<'a>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        DeValue::Array(array) => {
            let (i, element) = array.iter().enumerate().find(|(_, e)| covers(&e.span(), offset))?;
            *path = path.index(i);
            descend(element, offset, path)
        }
        _ => None,
    }
}

fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn first_line_span(span: Range<usize>) -> Range<usize> {
    span.start..span.start
}
