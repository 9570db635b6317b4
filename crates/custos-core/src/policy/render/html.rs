//! Prints a `Document` as a standalone HTML page: no script, no external
//! stylesheet or font, every string from the policy file escaped.

use super::document::{Block, Document};

const STYLE: &str = "body{font-family:system-ui,sans-serif;line-height:1.5;max-width:52rem;margin:0 auto;padding:1rem;color:#1a1a1a}\
table{border-collapse:collapse;width:100%;margin:0 0 1rem}th,td{border:1px solid #999;padding:.3rem .5rem;text-align:left;vertical-align:top}\
dt{font-weight:600}dd{margin:0 0 .4rem 1rem}";

pub(super) fn print(doc: &Document) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n");
    out.push_str(&format!("<html lang=\"{}\">\n<head>\n", escape(&doc.language)));
    out.push_str(
        "<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    );
    out.push_str(&format!("<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n", escape(&doc.title)));
    out.push_str(&format!("<h1>{}</h1>\n", escape(&doc.title)));
    blocks(&mut out, &doc.intro);
    out.push_str("<nav aria-label=\"Contents\">\n<ol>\n");
    for (i, section) in doc.sections.iter().enumerate() {
        out.push_str(&format!("<li><a href=\"#s{}\">{}</a></li>\n", i + 1, escape(&section.title)));
    }
    out.push_str("</ol>\n</nav>\n");
    for (i, section) in doc.sections.iter().enumerate() {
        out.push_str(&format!("<section id=\"s{}\">\n<h2>{}</h2>\n", i + 1, escape(&section.title)));
        blocks(&mut out, &section.blocks);
        out.push_str("</section>\n");
    }
    if !doc.outro.is_empty() {
        out.push_str("<footer>\n");
        blocks(&mut out, &doc.outro);
        out.push_str("</footer>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn blocks(out: &mut String, blocks: &[Block]) {
    for block in blocks {
        match block {
            Block::Subheading(text) => out.push_str(&format!("<h3>{}</h3>\n", escape(text))),
            Block::Paragraph(text) => out.push_str(&format!("<p>{}</p>\n", escape(text))),
            Block::List(lines) => {
                out.push_str("<ul>\n");
                for line in lines {
                    out.push_str(&format!("<li>{}</li>\n", escape(line)));
                }
                out.push_str("</ul>\n");
            }
            Block::Fields(fields) => {
                out.push_str("<dl>\n");
                for (label, value) in fields {
                    out.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", escape(label), escape(value)));
                }
                out.push_str("</dl>\n");
            }
            Block::Table { head, rows } => {
                out.push_str("<table>\n<thead><tr>");
                for h in head {
                    out.push_str(&format!("<th scope=\"col\">{}</th>", escape(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for c in row {
                        out.push_str(&format!("<td>{}</td>", escape(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn html_in_policy_strings_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
