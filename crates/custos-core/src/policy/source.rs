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
        // Recover what can be read of a broken file, so that even a syntax
        // error is reported with the key path it sits in.
        SourceMap { text, root: Some(DeTable::parse_recoverable(text).0) }
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

    /// The key path at `offset`: the narrowest key or value covering it, else
    /// the last key before it (an error inside a table body belongs to the
    /// key it follows).
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        let Some(root) = self.root.as_ref() else { return KeyPath::root() };
        let mut nodes = Vec::new();
        flatten(root.get_ref(), &KeyPath::root(), &mut nodes);
        // Narrowest span first; on a tie (an array of tables and its first
        // element share the header's span) the deeper path wins.
        let covering = nodes
            .iter()
            .filter(|(span, _)| covers(span, offset))
            .min_by_key(|(span, path)| (span.end - span.start, std::cmp::Reverse(path.segments().len())));
        let before = || {
            nodes
                .iter()
                .filter(|(span, _)| span.start <= offset)
                .max_by_key(|(span, path)| (span.start, path.segments().len()))
        };
        covering.or_else(before).map(|(_, path)| path.clone()).unwrap_or_default()
    }
}

/// Every key, value and array element of `table` with its span and path.
fn flatten(table: &DeTable<'_>, base: &KeyPath, out: &mut Vec<(Range<usize>, KeyPath)>) {
    for (k, v) in table.iter() {
        let path = base.key(k.get_ref());
        out.push((k.span(), path.clone()));
        flatten_value(v, &path, out);
    }
}

fn flatten_value(value: &Spanned<DeValue<'_>>, path: &KeyPath, out: &mut Vec<(Range<usize>, KeyPath)>) {
    out.push((value.span(), path.clone()));
    match value.get_ref() {
        DeValue::Table(t) => flatten(t, path, out),
        DeValue::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                flatten_value(element, &path.index(i), out);
            }
        }
        _ => {}
    }
}

fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn first_line_span(span: Range<usize>) -> Range<usize> {
    span.start..span.start
}
