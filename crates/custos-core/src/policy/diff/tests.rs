//! Classification of amendments and the earliest effective date, on edits of
//! the bundled policies.

use jiff::civil::{Date, date};

use super::diff;
use crate::policy::model::ChangeKind;
use crate::policy::{Policy, parse};

const BSTAGE: &str = include_str!("../../../../../policies/bstage.toml");
const EXAMPLE_EU: &str = include_str!("../../../../../policies/example-eu.toml");

/// Replaces `from` with `to`, which must occur exactly once.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur exactly once");
    text.replacen(from, to, 1)
}

fn policy(text: &str) -> Policy {
    parse(text).unwrap_or_else(|e| panic!("{:?}", e.problems))
}

/// (name, edit of the b.stage policy, significant kinds expected)
type Case = (&'static str, fn(&str) -> String, &'static [ChangeKind]);

const CASES: &[Case] = &[
    ("no change", |t| t.to_owned(), &[]),
    (
        "new item collected at sign-up",
        |t| {
            edit(
                t,
                "required = [\"name\", \"date_of_birth\", \"country\"]",
                "required = [\"name\", \"date_of_birth\", \"country\", \"email\"]",
            )
        },
        &[ChangeKind::NewItems],
    ),
    (
        "optional item becomes required",
        |t| {
            edit(
                t,
                "required = [\"name\", \"company_name\", \"email\"]\noptional = [\"inquiry_body\", \"inquiry_attachments\"]",
                "required = [\"name\", \"company_name\", \"email\", \"inquiry_body\"]\noptional = [\"inquiry_attachments\"]",
            )
        },
        &[ChangeKind::NewItems],
    ),
    (
        "new purpose",
        |t| {
            format!(
                "{t}\n[[purposes]]\nid = \"research\"\nname = \"Research\"\ndescription = \"Statistics\"\nbases = [{{ kind = \"consent\" }}]\nconsent = {{ mode = \"opt_in\", withdraw_via = [\"email\"] }}\nitems = [\"country\"]\n"
            )
        },
        &[ChangeKind::NewPurposes],
    ),
    (
        "purpose uses a new item",
        |t| {
            edit(
                t,
                "  \"name\", \"company_name\", \"email\", \"inquiry_body\", \"inquiry_attachments\",\n  \"inquiry_history\",\n]",
                "  \"name\", \"company_name\", \"email\", \"inquiry_body\", \"inquiry_attachments\",\n  \"inquiry_history\", \"mobile_phone\",\n]",
            )
        },
        &[ChangeKind::ChangedPurposes],
    ),
    (
        "purpose described differently",
        |t| {
            edit(
                t,
                "description = \"Provision of contents, payment of service fees, sending invoices and fee collections\"",
                "description = \"Provision of contents and payment of service fees\"",
            )
        },
        &[ChangeKind::ChangedPurposes],
    ),
    // b.stage's own rule lists only items and purposes: a new processor needs
    // the ordinary notice.
    (
        "new processor (not significant under b.stage's rules)",
        |t| format!("{t}\n[[processors]]\nid = \"mailer\"\nname = \"Mailer Inc.\"\nduty = \"E-mail delivery\"\n"),
        &[],
    ),
    ("officer's phone changed", |t| edit(t, "phone = \"1670-6010\"\ntext", "phone = \"1670-6011\"\ntext"), &[]),
    ("statutory hold shortened", |t| edit(t, "retain_for = \"3 months\"", "retain_for = \"2 months\""), &[]),
];

#[test]
fn classifies_amendments_by_the_policy_in_force() {
    let old = policy(BSTAGE);
    let announced = date(2024, 1, 10);
    for (name, change, expected) in CASES {
        let new = policy(&change(BSTAGE));
        let d = diff(&old, &new, announced).unwrap();
        assert_eq!(d.significant_kinds, *expected, "{name}: {d}");
        let notice = if expected.is_empty() { 7 } else { 30 };
        assert_eq!(d.notice.map(|s| s.to_string()), Some(format!("{notice} days")), "{name}");
        assert_eq!(d.earliest_effective, announced.checked_add(jiff::Span::new().days(notice)).unwrap(), "{name}");
        if *name == "no change" {
            assert!(d.changes.is_empty(), "{d}");
        } else {
            assert!(!d.changes.is_empty(), "{name}: a change must be reported");
        }
    }
}

#[test]
fn reports_changes_in_plain_words() {
    let old = policy(BSTAGE);
    let new = policy(&edit(
        BSTAGE,
        "required = [\"name\", \"date_of_birth\", \"country\"]",
        "required = [\"name\", \"date_of_birth\", \"country\", \"email\"]",
    ));
    let d = diff(&old, &new, date(2023, 3, 1)).unwrap();
    assert_eq!(
        d.to_string(),
        "changes from version 2023-02-21 to version 2023-02-21:
  - collection point \"non_business_operator_service_creation\" now also collects email [significant: new_items]
significant: yes (new_items)
notice required: 30 days
announced: 2023-03-01
earliest effective date: 2023-03-31
the new version's effective date 2023-02-28 is too early: it may take effect on 2023-03-31 at the earliest"
    );
    assert!(!d.effective_date_allowed());
}

/// The notice is counted in calendar days across month ends and leap days.
#[test]
fn earliest_date_crosses_month_ends_and_leap_days() {
    let old = policy(BSTAGE);
    let minor = policy(&edit(BSTAGE, "phone = \"1670-6010\"\ntext", "phone = \"1670-6011\"\ntext"));
    let major = policy(&edit(
        BSTAGE,
        "required = [\"name\", \"date_of_birth\", \"country\"]",
        "required = [\"name\", \"date_of_birth\", \"country\", \"email\"]",
    ));
    let cases: [(&Policy, Date, Date); 6] = [
        (&minor, date(2024, 2, 22), date(2024, 2, 29)),
        (&minor, date(2023, 2, 22), date(2023, 3, 1)),
        (&minor, date(2023, 12, 28), date(2024, 1, 4)),
        (&major, date(2024, 1, 31), date(2024, 3, 1)),
        (&major, date(2023, 1, 31), date(2023, 3, 2)),
        (&major, date(2024, 2, 29), date(2024, 3, 30)),
    ];
    for (new, announced, earliest) in cases {
        let d = diff(&old, new, announced).unwrap();
        assert_eq!(d.earliest_effective, earliest, "announced {announced}: {d}");
    }
}

/// Another policy's rules: one 30-day notice for every amendment, and no
/// kind of change singled out as significant.
#[test]
fn applies_the_other_policys_own_rules() {
    let old = policy(EXAMPLE_EU);
    let new = policy(&format!(
        "{EXAMPLE_EU}\n[[processors]]\nid = \"mailer\"\nname = \"Mailer Inc.\"\nduty = \"E-mail delivery\"\ncountry = \"US\"\n"
    ));
    let d = diff(&old, &new, date(2024, 12, 15)).unwrap();
    assert!(d.significant_kinds.is_empty(), "{d}");
    assert!(d.changes.iter().any(|c| c.kind == Some(ChangeKind::NewProcessors)), "{d}");
    assert_eq!(d.notice.map(|s| s.to_string()).as_deref(), Some("30 days"));
    assert_eq!(d.earliest_effective, date(2025, 1, 14));
}

/// A policy that states no notice period gets none invented.
#[test]
fn no_notice_period_is_invented() {
    let without = |t: &str| {
        let start = t.find("[amendments]").unwrap();
        t[..start].to_owned()
    };
    let old = policy(&without(BSTAGE));
    let new = policy(&edit(&without(BSTAGE), "retain_for = \"3 months\"", "retain_for = \"2 months\""));
    let d = diff(&old, &new, date(2024, 5, 1)).unwrap();
    assert_eq!(d.notice, None);
    assert_eq!(d.earliest_effective, date(2024, 5, 1));
    assert!(d.to_string().contains("notice required: not stated in the policy in force"));
}
