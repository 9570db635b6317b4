//! Prints a `Document` as CommonMark. Every string from the policy file is
//! escaped, so a name like `*bold*` or `<script>` prints literally.

use super::document::{Block, Document};

pub(super) fn print(doc: &Document) -> String {
    let mut out = String::new();
    out.push_str(&format!("# {}\n\n", heading(&doc.title)));
    blocks(&mut out, &doc.intro);
    for section in &doc.sections {
        out.push_str(&format!("## {}\n\n", heading(&section.title)));
        blocks(&mut out, &section.blocks);
    }
    if !doc.outro.is_empty() {
        out.push_str("---\n\n");
        blocks(&mut out, &doc.outro);
    }
    // One trailing newline, whatever the last block printed.
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

fn blocks(out: &mut String, blocks: &[Block]) {
    for block in blocks {
        match block {
            Block::Subheading(text) => out.push_str(&format!("### {}\n\n", heading(text))),
            Block::Paragraph(text) => out.push_str(&format!("{}\n\n", inline(text))),
            Block::List(lines) => {
                for line in lines {
                    out.push_str(&format!("- {}\n", inline(line)));
                }
                out.push('\n');
            }
            Block::Fields(fields) => {
                for (label, value) in fields {
                    out.push_str(&format!("- **{}:** {}\n", inline(label), inline(value)));
                }
                out.push('\n');
            }
            Block::Table { head, rows } => {
                out.push_str(&format!("| {} |\n", head.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for row in rows {
                    out.push_str(&format!("| {} |\n", row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")));
                }
                out.push('\n');
            }
        }
    }
}

/// Escapes Markdown syntax and folds line breaks into spaces (a paragraph
/// is one line; blank lines were already split into separate paragraphs).
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (i, c) in folded.chars().enumerate() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            // A list marker or ordered-list number at the start of a line.
            '-' | '+' | '=' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    // "1. foo" at the start would become an ordered list.
    if let Some(dot) = out.find(". ")
        && dot > 0
        && out[..dot].chars().all(|c| c.is_ascii_digit())
        && dot < 10
        && !out.starts_with('\\')
    {
        out.insert(dot, '\\');
    }
    out
}

/// Headings cannot start a list, so only inline syntax needs escaping.
fn heading(text: &str) -> String {
    let escaped = inline(text);
    match escaped.find("\\. ") {
        Some(dot) if escaped[..dot].chars().all(|c| c.is_ascii_digit()) => {
            format!("{}{}", &escaped[..dot], &escaped[dot + 1..])
        }
        _ => escaped,
    }
}

fn cell(text: &str) -> String {
    let escaped = inline(text);
    if escaped.is_empty() { " ".to_owned() } else { escaped }
}

#[cfg(test)]
mod tests {
    use super::inline;

    #[test]
    fn markdown_syntax_in_policy_strings_prints_literally() {
        assert_eq!(inline("*bold* _x_ [a](b) <script>"), r"\*bold\* \_x\_ \[a\](b) \<script\>");
        assert_eq!(inline("- not a list"), r"\- not a list");
        assert_eq!(inline("1. not a list"), r"1\. not a list");
        assert_eq!(inline("a | b"), r"a \| b");
        assert_eq!(inline("two\nlines"), "two lines");
    }
}
