//! Renders a policy as the published privacy policy, in Markdown or HTML.
//!
//! `document` builds one neutral outline (headings, paragraphs, lists,
//! tables) from the policy; `markdown` and `html` only print it and escape
//! every string that came from the file. Rendering is infallible: a policy
//! that validated always renders.

mod document;
mod html;
mod markdown;

use std::fmt;
use std::str::FromStr;

use super::model::Policy;

pub use document::{Block, Document, Section};
pub use html::escape as escape_html;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "markdown" | "md" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            _ => Err(format!("{s:?} is not a format (markdown or html)")),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Markdown => "markdown",
            Format::Html => "html",
        })
    }
}

/// The published policy text in `format`.
pub fn render(policy: &Policy, format: Format) -> String {
    let doc = document::build(policy);
    match format {
        Format::Markdown => markdown::print(&doc),
        Format::Html => html::print(&doc),
    }
}
