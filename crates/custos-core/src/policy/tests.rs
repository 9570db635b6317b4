//! Properties of the whole pipeline: valid policies survive parse → write →
//! parse unchanged, always render, and the committed rendering of the b.stage
//! policy is exactly what the renderer produces today.

use expect_test::expect_file;
use proptest::prelude::*;

use super::render::{Format, render};
use super::{parse, to_toml};

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");
const EXAMPLE_EU: &str = include_str!("../../../../policies/example-eu.toml");

#[test]
fn bundled_policies_are_valid() {
    for (name, text) in [("bstage", BSTAGE), ("example-eu", EXAMPLE_EU)] {
        if let Err(e) = parse(text) {
            let problems: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
            panic!("{name}: {}", problems.join("\n"));
        }
    }
}

/// The committed `policies/bstage.md` and `.html` are regenerated from
/// `policies/bstage.toml`; any difference fails. `UPDATE_EXPECT=1 cargo test`
/// rewrites them after a deliberate change.
#[test]
fn rendered_bstage_policy_matches_the_committed_files() {
    let policy = parse(BSTAGE).unwrap();
    expect_file!["../../../../policies/bstage.md"].assert_eq(&render(&policy, Format::Markdown));
    expect_file!["../../../../policies/bstage.html"].assert_eq(&render(&policy, Format::Html));
}

/// Every structured fact of the seed appears in the rendered text.
#[test]
fn rendered_bstage_policy_states_every_fact_of_the_seed() {
    let policy = parse(BSTAGE).unwrap();
    let md = render(&policy, Format::Markdown);
    let facts = [
        // clause 2: items per collection point
        "Upon signing up: (Required) Name, E-mail address, Mobile phone number, Password",
        "Upon service inquiries: (Required) Name, Name of the company, E-mail address, (Voluntary) Information written by the User in the body of the inquiry email, Attached files",
        "Upon creation of a service: (Required) Name, Date of birth, Country",
        "Service usage logs, Visitation logs, Abusive usage logs, IP addresses, Cookies, Device information",
        // clause 1: purposes
        "### Member management",
        "### Utilization of the Services and calculation of the fees for usage",
        "### Use in marketing and advertisements",
        "### Management of Inquiries",
        "opt-in: used only with your prior consent",
        // clause 3: retention with laws
        "when a member deletes their account. (destroyed without delay)",
        "for 1 year is stored separately (notified 30 days before, by E-mail), and destroyed 3 years after that",
        "Never applied to: Head admin.",
        "| Records on contracts and cancellation of subscriptions | 5 years from the record's date | Act on the Consumer Protection in Electronic Commerce, etc. |",
        "| Records on payments and supply of the goods, etc. | 5 years from the record's date |",
        "| Records on processing customer complaints or disputes | 3 years from the record's date |",
        "| Records on labeling and advertisements | 6 months from the record's date |",
        "| 5 years from the record's date | Framework Act on National Taxes |",
        "| Service visitation records | 3 months from the record's date | Protection of Communications Secrets Act |",
        "shred with a shredder or incinerate",
        "repeated overwriting to render the data irrecoverable",
        // clause 4
        "consent, legal obligation, vital interest (danger to life or safety)",
        // clause 5: processors and the transfer
        "| Amazon Web Services, Inc. | Operation and management of cloud servers to provide the Services |",
        "| MongoDB, inc. | Operation and management of cloud DB infra to provide the Services |",
        "| CJ OliveNetworks Co., Ltd. | SMS text message services |",
        "| Sendbird Korea | Provision of technology and support for chatting and sharing services |",
        "| TriangleWide | development and maintenance |",
        "- **Recipient:** bemyfriends Inc.",
        "- **Country:** US",
        "- **Items transferred:** E-mail address, Name, Mobile phone number, Visitation logs, Service use information, Inquiry history, Purchase history",
        "- **Purpose of transfer:** Overseas Customer management and PG service linkage/settlement",
        "- **Retention and use period:** Retained during the service period",
        // clause 6
        "- **Through an agent:** yes, with letter of attorney",
        "In writing, E-mail, Facsimile (FAX), Other means of communications",
        // clause 9: the officer
        "- **Department:** Information Security Team",
        "- **Phone:** 1670-6010",
        // clause 10
        "Personal Information Dispute Mediation Committee (1833-6972)",
        "Personal Information Infringement Report Center (118)",
        "Supreme Prosecutors' Office (1301)",
        "National Police Agency (182)",
        // clause 11
        "- **Minimum age:** 19 years",
        // clause 12
        "- **Notice:** at least 7 days before the change takes effect",
        "- **Notice of significant changes:** at least 30 days before the change takes effect",
        // annexes
        "## Annex A. European Economic Area, the UK and Switzerland",
        "- **Transfer basis:** adequacy decision",
        "## Annex B. California",
        "- **Sale of personal information:** not sold",
        "- **Notice date:** February 21, 2023",
        "- **Effective date:** February 28, 2023",
    ];
    let missing: Vec<&str> = facts.iter().copied().filter(|f| !md.contains(f)).collect();
    assert!(missing.is_empty(), "missing from the rendered policy:\n{}", missing.join("\n"));
    for n in 1..=12 {
        assert!(md.contains(&format!("\n## {n}. ")), "section {n} missing");
    }
}

#[test]
fn bundled_policies_round_trip_through_toml() {
    for text in [BSTAGE, EXAMPLE_EU] {
        let policy = parse(text).unwrap();
        let written = to_toml(&policy);
        let again = parse(&written).unwrap_or_else(|e| panic!("{e}: {:?}\n{written}", e.problems));
        assert_eq!(policy, again);
    }
}

/// Keys whose string values are free prose or names in every table of the
/// format: replacing them with any non-blank text keeps a policy valid.
const PROSE_KEYS: &[&str] = &[
    "title",
    "preamble",
    "annex_preamble",
    "closing",
    "name",
    "description",
    "text",
    "statement",
    "duty",
    "label",
    "instructions",
    "board",
    "verification",
    "safeguards",
    "change_notice",
    "principle",
    "agent_document",
    "recipient",
    "contact",
    "phone",
    "website",
    "department",
    "address",
    "service",
    "version",
    "citation",
    "refusal_effect",
    "timing",
    "method",
    "value",
];

/// Spans that no validation rule compares with another span.
const FREE_SPAN_KEYS: &[&str] = &["retain_for", "answer", "extension", "acknowledge", "destroy_after"];

fn prose() -> impl Strategy<Value = String> {
    // Any printable text, including TOML and Markdown syntax, quotes,
    // backslashes, non-ASCII and line breaks; never blank.
    proptest::string::string_regex("[a-zA-Z0-9 \"'\\\\#\\[\\]{}<>&*_|=\\-.,;:/ü한글\u{1F600}\n\t]{0,40}")
        .unwrap()
        .prop_map(|s| format!("x{s}"))
}

fn span_text() -> impl Strategy<Value = String> {
    (1u32..=400, prop::sample::select(vec!["day", "days", "business days", "week", "months", "year", "years"]))
        .prop_map(|(n, unit)| format!("{n} {unit}"))
}

struct Mutations {
    texts: Vec<String>,
    spans: Vec<String>,
    notice_date: jiff::civil::Date,
    extra_days: i64,
}

fn mutate(value: &mut toml::Value, key: Option<&str>, parent: Option<&str>, m: &Mutations, n: &mut usize) {
    let mut next = |list: &Vec<String>| {
        *n += 1;
        list[*n % list.len()].clone()
    };
    match value {
        toml::Value::String(s) => {
            let Some(key) = key else { return };
            // `notice` is prose on a collection point but a span under [amendments].
            if PROSE_KEYS.contains(&key) || (key == "notice" && parent != Some("amendments")) {
                *s = next(&m.texts);
            } else if FREE_SPAN_KEYS.contains(&key) {
                *s = next(&m.spans);
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                // Arrays of prose (limits, measures) take the array's key.
                let k = if matches!(key, Some("limits" | "measures")) { key } else { None };
                mutate(item, k, key, m, n);
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                mutate(v, Some(k), key, m, n);
            }
        }
        _ => {}
    }
}

fn toml_date(d: jiff::civil::Date) -> toml::Value {
    toml::Value::Datetime(toml::value::Datetime {
        date: Some(toml::value::Date { year: d.year() as u16, month: d.month() as u8, day: d.day() as u8 }),
        time: None,
        offset: None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any valid policy — the bundled ones with every prose field, free
    /// span and date replaced at random — survives parse → to_toml → parse
    /// unchanged and renders in both formats.
    #[test]
    fn valid_policies_round_trip_and_render(
        base in prop::sample::select(vec![BSTAGE, EXAMPLE_EU]),
        texts in prop::collection::vec(prose(), 1..40),
        spans in prop::collection::vec(span_text(), 1..10),
        day in 0i64..(365 * 80),
        extra_days in 30i64..400,
    ) {
        let notice_date = jiff::civil::date(1990, 1, 1).checked_add(jiff::Span::new().days(day)).unwrap();
        let m = Mutations { texts, spans, notice_date, extra_days };
        let mut value: toml::Value = toml::from_str(base).unwrap();
        let mut n = 0;
        mutate(&mut value, None, None, &m, &mut n);
        let meta = value.get_mut("policy").and_then(toml::Value::as_table_mut).unwrap();
        meta.insert("notice_date".into(), toml_date(m.notice_date));
        let effective = m.notice_date.checked_add(jiff::Span::new().days(m.extra_days)).unwrap();
        meta.insert("effective_date".into(), toml_date(effective));
        let text = toml::to_string(&value).unwrap();

        let policy = match parse(&text) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{:?}\n{text}", e.problems))),
        };
        let again = parse(&to_toml(&policy)).map_err(|e| TestCaseError::fail(format!("{:?}", e.problems)))?;
        prop_assert_eq!(&policy, &again);

        let html = render(&policy, Format::Html);
        let md = render(&policy, Format::Markdown);
        prop_assert!(html.starts_with("<!DOCTYPE html>"));
        prop_assert!(!html.contains("<script"), "policy text must never become markup");
        let annexes = policy.jurisdictions.iter().filter(|j| j.id != policy.meta.jurisdiction).count();
        let expected = 12 + annexes + usize::from(policy.meta.annex_preamble.is_some());
        prop_assert_eq!(html.matches("<section ").count(), expected);
        prop_assert_eq!(md.matches("\n## ").count(), expected);
    }

    /// Random text never panics the parser.
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = parse(&text);
    }

    /// Small edits of a valid file either parse or give problems that all
    /// carry a line inside the file.
    #[test]
    fn damaged_policies_give_located_problems(cut in 0usize..BSTAGE.len(), len in 1usize..40) {
        let end = (cut + len).min(BSTAGE.len());
        if !BSTAGE.is_char_boundary(cut) || !BSTAGE.is_char_boundary(end) {
            return Ok(());
        }
        let damaged = format!("{}{}", &BSTAGE[..cut], &BSTAGE[end..]);
        if let Err(e) = parse(&damaged) {
            prop_assert!(!e.problems.is_empty());
            let lines = damaged.lines().count() + 1;
            for p in &e.problems {
                prop_assert!(p.line.is_some_and(|l| l >= 1 && l <= lines), "{p}");
            }
        }
    }
}
