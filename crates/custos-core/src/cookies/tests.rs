use proptest::prelude::*;

use super::*;
use crate::policy::{Policy, parse};

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");
const EXAMPLE_EU: &str = include_str!("../../../../policies/example-eu.toml");

fn bstage() -> Policy {
    parse(BSTAGE).expect("the bundled policy parses")
}

/// Categories `essential` (necessary), `analytics`, `marketing` (GPC opts
/// it out).
fn eu() -> Policy {
    parse(EXAMPLE_EU).expect("example-eu parses")
}

fn choice(category: &str, granted: bool) -> Entry<'_> {
    Entry { category, granted, source: Source::Choice, gpc: false }
}

fn gpc_entry(category: &str) -> Entry<'_> {
    Entry { category, granted: false, source: Source::Gpc, gpc: true }
}

/// `(id, granted, basis)` of every category.
fn shown(cookies: Option<&Cookies>, ledger: &[Entry<'_>], gpc: bool) -> Vec<(String, bool, &'static str)> {
    states(cookies, ledger, gpc).iter().map(|s| (s.category.id.to_string(), s.granted, s.basis.as_str())).collect()
}

fn owned(v: &[(&str, bool, &'static str)]) -> Vec<(String, bool, &'static str)> {
    v.iter().map(|(c, g, b)| ((*c).to_owned(), *g, *b)).collect()
}

#[test]
fn before_any_choice_only_the_necessary_categories_are_on() {
    let policy = bstage();
    assert_eq!(
        shown(policy.cookies.as_ref(), &[], false),
        owned(&[("required_for_operations", true, "necessary"), ("personalisation", false, "not_chosen")])
    );
    let policy = eu();
    assert_eq!(
        shown(policy.cookies.as_ref(), &[], false),
        owned(&[
            ("essential", true, "necessary"),
            ("analytics", false, "not_chosen"),
            ("marketing", false, "not_chosen")
        ])
    );
}

#[test]
fn the_latest_choice_decides() {
    let policy = eu();
    let ledger = [choice("analytics", true), choice("marketing", true), choice("analytics", false)];
    assert_eq!(
        shown(policy.cookies.as_ref(), &ledger, false),
        owned(&[("essential", true, "necessary"), ("analytics", false, "choice"), ("marketing", true, "choice")])
    );
}

#[test]
fn gpc_overrides_a_grant_of_the_listed_categories_only() {
    let policy = eu();
    let cookies = policy.cookies.as_ref();
    let ledger = [choice("analytics", true), choice("marketing", true)];
    assert_eq!(
        shown(cookies, &ledger, true),
        owned(&[("essential", true, "necessary"), ("analytics", true, "choice"), ("marketing", false, "gpc")])
    );
    let states = states(cookies, &ledger, true);
    assert_eq!(
        states.iter().filter(|s| s.gpc_opt_out).map(|s| s.category.id.as_str()).collect::<Vec<_>>(),
        ["marketing"]
    );
}

#[test]
fn a_recorded_gpc_signal_keeps_the_category_off_until_the_next_choice() {
    let policy = eu();
    let cookies = policy.cookies.as_ref();
    let mut ledger = vec![choice("marketing", true), gpc_entry("marketing")];
    assert_eq!(states(cookies, &ledger, false)[2].basis, Basis::Gpc);
    assert!(!states(cookies, &ledger, false)[2].granted);
    // A fresh choice without the signal counts again.
    ledger.push(choice("marketing", true));
    assert!(states(cookies, &ledger, false)[2].granted);
    assert!(gpc_recorded(&ledger));
    assert!(!gpc_recorded(&[choice("marketing", true)]));
}

#[test]
fn gpc_signals_are_recorded_once_per_change() {
    let policy = eu();
    let cookies = policy.cookies.as_ref();
    let ids = |v: Vec<&Id>| v.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    assert!(gpc_signals_to_record(cookies, &[], false).is_empty(), "no signal, nothing to record");
    assert_eq!(ids(gpc_signals_to_record(cookies, &[], true)), ["marketing"], "recorded even before any choice");
    assert!(gpc_signals_to_record(cookies, &[gpc_entry("marketing")], true).is_empty(), "already recorded");
    let granted_since = [gpc_entry("marketing"), choice("marketing", true)];
    assert_eq!(ids(gpc_signals_to_record(cookies, &granted_since, true)), ["marketing"]);
    // b.stage lists no category: GPC turns nothing off there.
    let policy = bstage();
    assert!(gpc_signals_to_record(policy.cookies.as_ref(), &[], true).is_empty());
    assert!(shown(policy.cookies.as_ref(), &[choice("personalisation", true)], true)[1].1);
}

#[test]
fn a_policy_without_cookies_has_no_categories_and_takes_no_choice() {
    assert!(states(None, &[], true).is_empty());
    let choices = vec![("analytics".to_owned(), true)];
    assert_eq!(check_choices(None, &choices), Err(vec![Problem::Unknown(Id::parse("analytics").unwrap())]));
}

#[test]
fn choices_are_checked_against_the_policy() {
    let policy = eu();
    let cookies = policy.cookies.as_ref();
    let c = |v: &[(&str, bool)]| v.iter().map(|(k, g)| ((*k).to_owned(), *g)).collect::<Vec<_>>();
    let id = |s: &str| Id::parse(s).unwrap();

    let ok = c(&[("analytics", true), ("marketing", false), ("essential", true)]);
    assert_eq!(check_choices(cookies, &ok), Ok(vec![("analytics", true), ("marketing", false)]));
    assert_eq!(check_choices(cookies, &[]), Ok(vec![]));

    let bad =
        c(&[("astrology", true), ("essential", false), ("analytics", true), ("analytics", false), ("Bad Key", true)]);
    let problems = check_choices(cookies, &bad).unwrap_err();
    assert_eq!(
        problems,
        [
            Problem::Unknown(id("astrology")),
            Problem::Necessary(id("essential")),
            Problem::Twice(id("analytics")),
            Problem::NotAnId
        ]
    );
    assert_eq!(problems[1].message(), r#"cookie category "essential" is strictly necessary and cannot be turned off"#);
    assert!(!Problem::NotAnId.message().contains("Bad Key"), "a key that is not an id is never repeated");

    let many: Vec<(String, bool)> = (0..=MAX_CHOICES).map(|i| (format!("c{i}"), true)).collect();
    assert_eq!(check_choices(cookies, &many), Err(vec![Problem::TooMany]));
}

fn entry_strategy() -> impl Strategy<Value = (usize, bool, bool, bool)> {
    (0..3usize, any::<bool>(), any::<bool>(), any::<bool>())
}

proptest! {
    /// Whatever the ledger: necessary categories are on, GPC-listed ones are
    /// off under GPC, and a category is on only when its latest entry is a
    /// grant the visitor chose.
    #[test]
    fn states_follow_the_rules(raw in proptest::collection::vec(entry_strategy(), 0..12), gpc in any::<bool>()) {
        let policy = eu();
        let cookies = policy.cookies.as_ref();
        let names = ["analytics", "marketing", "essential"];
        let ledger: Vec<Entry<'_>> = raw
            .iter()
            .map(|&(c, granted, is_gpc, sent)| {
                if is_gpc {
                    Entry { category: names[c], granted: false, source: Source::Gpc, gpc: true }
                } else {
                    Entry { category: names[c], granted, source: Source::Choice, gpc: sent }
                }
            })
            .collect();
        for s in states(cookies, &ledger, gpc) {
            let latest = ledger.iter().rev().find(|e| e.category == s.category.id.as_str());
            if s.category.necessary {
                prop_assert!(s.granted);
            } else if s.gpc_opt_out && gpc {
                prop_assert!(!s.granted);
            } else {
                let chosen = latest.is_some_and(|e| e.source == Source::Choice && e.granted);
                prop_assert_eq!(s.granted, chosen);
            }
        }
        // Once the signals to record are appended, nothing more is due.
        let due = gpc_signals_to_record(cookies, &ledger, gpc);
        let mut after = ledger.clone();
        after.extend(due.iter().map(|id| Entry { category: id.as_str(), granted: false, source: Source::Gpc, gpc: true }));
        prop_assert!(gpc_signals_to_record(cookies, &after, gpc).is_empty());
        if gpc {
            prop_assert!(!states(cookies, &after, false).iter().any(|s| s.gpc_opt_out && s.granted));
        }
    }
}
