//! The readable page of a request's answer (`?format=html`): the same
//! content as the JSON, as a self-contained HTML document (no script, no
//! external style or font), every value escaped.

use custos_core::policy::Policy;
use custos_core::policy::render::escape_html as esc;
use serde_json::Value;

/// A JSON value as short text.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A table of the `columns` of each object in `rows`.
fn table(out: &mut String, caption: &str, rows: &[Value], columns: &[(&str, &str)]) {
    out.push_str(&format!("<section><h2>{}</h2>", esc(caption)));
    if rows.is_empty() {
        out.push_str("<p>None.</p></section>");
        return;
    }
    out.push_str("<table><thead><tr>");
    for (_, head) in columns {
        out.push_str(&format!("<th scope=\"col\">{}</th>", esc(head)));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (key, _) in columns {
            out.push_str(&format!("<td>{}</td>", esc(&plain(row.get(*key).unwrap_or(&Value::Null)))));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The page for request `id` whose answer is `value`.
pub(super) fn render(policy: &Policy, id: &str, value: &Value) -> String {
    let mut body = String::new();
    if let Some(p) = value.get("package") {
        let subject = p.get("subject").unwrap_or(&Value::Null);
        body.push_str(&format!(
            "<p>Everything {} holds about member <code>{}</code>, as of {} (policy version {}).</p>",
            esc(&plain(p.get("controller").unwrap_or(&Value::Null))),
            esc(&plain(subject.get("id").unwrap_or(&Value::Null))),
            esc(&plain(p.get("generated_at").unwrap_or(&Value::Null))),
            esc(&plain(p.get("policy_version").unwrap_or(&Value::Null))),
        ));
        table(
            &mut body,
            "Your information",
            list(p.get("items").unwrap_or(&Value::Null)),
            &[
                ("name", "Item"),
                ("value", "Value"),
                ("purposes", "Used for"),
                ("source", "Source"),
                ("collected_at", "Collected"),
                ("retention", "Kept"),
            ],
        );
        table(
            &mut body,
            "Records kept by law",
            list(p.get("records").unwrap_or(&Value::Null)),
            &[
                ("name", "Record"),
                ("record_date", "Date"),
                ("content", "Content"),
                ("law", "Law"),
                ("kept_until", "Kept until"),
            ],
        );
        table(
            &mut body,
            "Consents",
            list(p.get("consents").unwrap_or(&Value::Null)),
            &[
                ("purpose", "Purpose"),
                ("granted", "Granted"),
                ("channel", "Channel"),
                ("policy_version", "Policy version"),
                ("at", "When"),
            ],
        );
        table(
            &mut body,
            "Provided to third parties",
            list(p.get("provisions").unwrap_or(&Value::Null)),
            &[("recipient", "Recipient"), ("items", "Items"), ("purpose", "For"), ("basis", "Basis"), ("at", "When")],
        );
        // A transfer's country and basis, flattened into the row.
        let transfers: Vec<Value> = list(p.get("transfers").unwrap_or(&Value::Null))
            .iter()
            .map(|t| {
                let mut row = t.clone();
                if let (Some(obj), Some(tr)) = (row.as_object_mut(), t.get("transfer").filter(|v| !v.is_null())) {
                    obj.insert(
                        "abroad".into(),
                        Value::String(format!("{} ({})", plain(&tr["country"]), plain(&tr["basis"]))),
                    );
                }
                row
            })
            .collect();
        table(
            &mut body,
            "Handed to processors",
            &transfers,
            &[
                ("name", "Processor"),
                ("duty", "Duty"),
                ("items", "Items"),
                ("abroad", "Transfer abroad"),
                ("at", "When"),
            ],
        );
        table(
            &mut body,
            "Processing restricted at your request",
            list(p.get("restrictions").unwrap_or(&Value::Null)),
            &[("purpose", "Purpose"), ("request", "Request")],
        );
    } else {
        body.push_str("<section><h2>Answer</h2><dl>");
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                body.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(&k.replace('_', " ")), esc(&plain(v))));
            }
        }
        body.push_str("</dl></section>");
    }
    format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}: request {id}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;line-height:1.4}}\
         table{{border-collapse:collapse;width:100%;margin-bottom:1rem}}th,td{{border:1px solid #999;padding:.3rem;text-align:left;vertical-align:top}}\
         caption,h2{{text-align:left}}</style></head>\
         <body><main><h1>{title}: request <code>{id}</code></h1>{body}</main></body></html>\n",
        lang = esc(&policy.meta.language),
        title = esc(&policy.meta.title),
        id = esc(id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        let policy = custos_core::policy::parse(crate::config::BUNDLED_POLICY).unwrap();
        let value = serde_json::json!({ "package": {
            "controller": "<b>", "generated_at": "t", "policy_version": "v",
            "subject": { "id": "sub_<x>" },
            "items": [{ "name": "Name", "value": "<script>alert(1)</script>", "purposes": ["a&b"], "source": "s",
                        "collected_at": "c", "retention": "\"r\"" }],
            "records": [], "consents": [], "restrictions": [] } });
        let page = render(&policy, "req_<1>", &value);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("a&amp;b"));
        assert!(page.contains("req_&lt;1&gt;"));
        assert!(page.contains("sub_&lt;x&gt;"));
        assert!(!page.contains("<b>"));
    }
}
