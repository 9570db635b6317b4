//! Purpose-bound read decisions against the bundled b.stage policy.

use super::{ReadDenied, readable_items};
use crate::policy::{Policy, parse};

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");

fn bstage() -> Policy {
    parse(BSTAGE).unwrap_or_else(|e| panic!("{:?}", e.problems))
}

fn names(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// (purpose, requested items, expected items or refusal)
type ReadCase = (&'static str, Option<&'static [&'static str]>, Result<&'static [&'static str], ReadDenied>);

#[test]
fn decides_what_a_purpose_may_read() {
    let policy = bstage();
    let cases: &[ReadCase] = &[
        (
            "marketing",
            None,
            Ok(&[
                "name",
                "email",
                "mobile_phone",
                "date_of_birth",
                "country",
                "service_usage_log",
                "visitation_log",
                "cookie",
                "device_info",
            ]),
        ),
        // The purpose's order, whatever the order asked; repeats collapse.
        ("marketing", Some(&["email", "name", "email"]), Ok(&["name", "email"])),
        ("statutory_retention", Some(&["purchase_history"]), Ok(&["purchase_history"])),
        ("marketing", Some(&[]), Ok(&[])),
        ("sales", None, Err(ReadDenied::UnknownPurpose("sales".to_owned()))),
        ("sales", Some(&["email"]), Err(ReadDenied::UnknownPurpose("sales".to_owned()))),
        (
            "marketing",
            Some(&["name", "password", "inquiry_body", "password"]),
            Err(ReadDenied::ItemsNotAllowed(names(&["password", "inquiry_body"]))),
        ),
        ("inquiries", Some(&["shoe_size", "name"]), Err(ReadDenied::UnknownItems(names(&["shoe_size"])))),
        // An unknown item is reported before an item the purpose may not use.
        ("inquiries", Some(&["password", "shoe_size"]), Err(ReadDenied::UnknownItems(names(&["shoe_size"])))),
    ];
    for (purpose, requested, expected) in cases {
        let requested = requested.map(names);
        let got = readable_items(&policy, purpose, requested.as_deref());
        let got = got.map(|ids| ids.iter().map(|id| id.as_str().to_owned()).collect::<Vec<_>>());
        let expected = expected.clone().map(names);
        assert_eq!(got, expected, "{purpose} {requested:?}");
    }
}

#[test]
fn refusals_have_codes_and_precise_messages() {
    let cases = [
        (ReadDenied::UnknownPurpose("sales".to_owned()), "unknown_purpose", "unknown purpose \"sales\""),
        (
            ReadDenied::ItemsNotAllowed(names(&["password"])),
            "items_not_allowed",
            "the purpose does not allow reading item \"password\"",
        ),
        (
            ReadDenied::ItemsNotAllowed(names(&["password", "inquiry_body"])),
            "items_not_allowed",
            "the purpose does not allow reading items \"password\", \"inquiry_body\"",
        ),
        (
            ReadDenied::UnknownItems(names(&["shoe_size"])),
            "unknown_items",
            "unknown item \"shoe_size\": the policy declares no such item",
        ),
        (
            ReadDenied::UnknownItems(names(&["a\nb"])),
            "unknown_items",
            "unknown item \"a\\nb\": the policy declares no such item",
        ),
    ];
    for (denied, code, message) in cases {
        assert_eq!(denied.code(), code);
        assert_eq!(denied.to_string(), message);
    }
}
