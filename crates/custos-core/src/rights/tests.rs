//! Rights request tests against the b.stage policy: the kinds each
//! jurisdiction offers, the deadlines (calendar months, business days, leap
//! years), extensions, the state machine table, standing, and properties
//! over random dates and random step sequences.

use std::sync::LazyLock;

use jiff::ToSpan;
use jiff::civil::{Weekday, date};
use proptest::prelude::*;

use super::*;
use crate::policy::parse;

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");

fn bstage() -> Policy {
    parse(BSTAGE).expect("the bundled policy parses")
}

/// Parsed once for the property tests.
static BSTAGE_POLICY: LazyLock<Policy> = LazyLock::new(bstage);

/// The jurisdiction `id` as the policy declares it (found without the
/// function under test).
fn declared<'p>(p: &'p Policy, id: &str) -> &'p Jurisdiction {
    p.jurisdictions.iter().find(|j| j.id.as_str() == id).expect("a declared jurisdiction")
}

fn deadlines(p: &Policy, id: &str) -> Deadlines {
    declared(p, id).deadlines.clone().expect("the jurisdiction states deadlines")
}

/// 2000-01-01 plus `n` days.
fn day(n: i64) -> Date {
    date(2000, 1, 1).checked_add(n.days()).expect("a date in range")
}

/// Days from 2000-01-01 to 2099-12-31 inclusive.
const CENTURY: i64 = 36_525;

fn is_leap(y: i16) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i16, m: i8) -> i8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `(y, m)` moved `n` months ahead.
fn months_ahead(y: i16, m: i8, n: i8) -> (i16, i8) {
    let zero_based = i32::from(m) - 1 + i32::from(n);
    let y = i32::from(y) + zero_based / 12;
    (i16::try_from(y).expect("year in range"), i8::try_from(zero_based % 12 + 1).expect("month"))
}

/// Independent calendar arithmetic: `d` plus `n` months, clamped to the end
/// of a shorter month.
fn plus_months(d: Date, n: i8) -> Date {
    let (y, m) = months_ahead(d.year(), d.month(), n);
    date(y, m, d.day().min(days_in_month(y, m)))
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// Weekdays in `(from, to]`.
fn weekdays_between(from: Date, to: Date) -> u32 {
    let mut n = 0;
    let mut d = from;
    while d < to {
        d = d.tomorrow().expect("in range");
        if !is_weekend(d) {
            n += 1;
        }
    }
    n
}

/// The project convention for messages: a lower-case sentence, no
/// trailing period.
fn assert_message_convention(msg: &str) {
    let first = msg.chars().next().expect("a non-empty message");
    assert!(first.is_lowercase(), "{msg:?} starts with a lower-case letter");
    assert!(!msg.ends_with('.'), "{msg:?} ends without a period");
}

// ---------------------------------------------------------------------------
// Deadlines

#[test]
fn due_dates_follow_each_jurisdiction_span() {
    let p = bstage();
    // (jurisdiction, received, acknowledge by, answer by)
    let cases = [
        // kr: 10 calendar days, no acknowledgement deadline.
        ("kr", date(2026, 1, 30), None, date(2026, 2, 9)),
        ("kr", date(2026, 12, 25), None, date(2027, 1, 4)),
        ("kr", date(2028, 2, 25), None, date(2028, 3, 6)),
        // eea_uk_ch: 1 calendar month, clamped to the end of the month.
        ("eea_uk_ch", date(2026, 1, 31), None, date(2026, 2, 28)),
        ("eea_uk_ch", date(2028, 1, 31), None, date(2028, 2, 29)),
        ("eea_uk_ch", date(2000, 1, 30), None, date(2000, 2, 29)),
        ("eea_uk_ch", date(2100, 1, 29), None, date(2100, 2, 28)),
        ("eea_uk_ch", date(2026, 3, 31), None, date(2026, 4, 30)),
        ("eea_uk_ch", date(2026, 3, 15), None, date(2026, 4, 15)),
        ("eea_uk_ch", date(2026, 12, 31), None, date(2027, 1, 31)),
        ("eea_uk_ch", date(2026, 2, 28), None, date(2026, 3, 28)),
        // us_ca: acknowledge in 10 business days, answer in 45 calendar days.
        // 2026-01-30 is a Friday.
        ("us_ca", date(2026, 1, 30), Some(date(2026, 2, 13)), date(2026, 3, 16)),
        // Saturday and Sunday: the count starts on Monday.
        ("us_ca", date(2026, 1, 31), Some(date(2026, 2, 13)), date(2026, 3, 17)),
        ("us_ca", date(2026, 2, 1), Some(date(2026, 2, 13)), date(2026, 3, 18)),
        // Monday: two full weeks and the following Monday.
        ("us_ca", date(2026, 2, 2), Some(date(2026, 2, 16)), date(2026, 3, 19)),
        // Wednesday across the new year.
        ("us_ca", date(2025, 12, 24), Some(date(2026, 1, 7)), date(2026, 2, 7)),
    ];
    for (id, received, acknowledge, answer) in cases {
        let d = deadlines(&p, id);
        let got = due(Some(&d), received).expect("in range");
        assert_eq!(got, Due { acknowledge, answer: Some(answer) }, "{id} received {received}");
    }
}

#[test]
fn without_deadlines_nothing_is_invented() {
    assert_eq!(due(None, date(2026, 1, 30)), Ok(Due { acknowledge: None, answer: None }));
    // A jurisdiction whose deadlines were taken out of the policy.
    let mut p = bstage();
    p.jurisdictions.iter_mut().for_each(|j| j.deadlines = None);
    for j in &p.jurisdictions {
        assert_eq!(due(j.deadlines.as_ref(), date(2026, 1, 30)), Ok(Due { acknowledge: None, answer: None }));
    }
}

#[test]
fn deadlines_past_the_last_date_are_errors_not_panics() {
    let p = bstage();
    for id in ["kr", "eea_uk_ch", "us_ca"] {
        let d = deadlines(&p, id);
        assert!(due(Some(&d), date(9999, 12, 25)).is_err(), "{id}");
        assert!(due(Some(&d), date(9999, 1, 4)).is_ok(), "{id}");
    }
}

// ---------------------------------------------------------------------------
// Extension

#[test]
fn eea_extension_runs_two_calendar_months_from_the_first_deadline() {
    let p = bstage();
    let eea = deadlines(&p, "eea_uk_ch");
    let first = due(Some(&eea), date(2026, 1, 31)).unwrap();
    assert_eq!(first.answer, Some(date(2026, 2, 28)));
    // (received, first deadline, extended deadline)
    let cases = [
        (date(2026, 1, 31), date(2026, 2, 28), date(2026, 4, 28)),
        (date(2027, 12, 31), date(2028, 1, 31), date(2028, 3, 31)),
        (date(2027, 11, 30), date(2027, 12, 30), date(2028, 2, 29)),
        (date(2026, 10, 31), date(2026, 11, 30), date(2027, 1, 30)),
    ];
    for (received, answer, extended) in cases {
        let d = due(Some(&eea), received).unwrap();
        assert_eq!(d.answer, Some(answer), "received {received}");
        for status in [Status::Received, Status::Verified, Status::InProgress] {
            // Any day up to and including the first deadline.
            for today in [received, answer] {
                assert_eq!(extend(Some(&eea), status, d, false, today), Ok(extended), "{received} {status} {today}");
            }
        }
    }
}

#[test]
fn us_ca_extension_adds_45_days() {
    let p = bstage();
    let ca = deadlines(&p, "us_ca");
    let d = due(Some(&ca), date(2026, 1, 30)).unwrap();
    assert_eq!(d.answer, Some(date(2026, 3, 16)));
    assert_eq!(extend(Some(&ca), Status::InProgress, d, false, date(2026, 3, 1)), Ok(date(2026, 4, 30)));
}

#[test]
fn extension_is_refused_where_the_policy_states_none() {
    let p = bstage();
    let kr = deadlines(&p, "kr");
    let d = due(Some(&kr), date(2026, 1, 30)).unwrap();
    for status in [Status::Received, Status::Verified, Status::InProgress] {
        assert_eq!(extend(Some(&kr), status, d, false, date(2026, 2, 1)), Err(NoExtension::NotAllowed));
    }
    // No deadlines at all.
    let none = Due { acknowledge: None, answer: None };
    assert_eq!(extend(None, Status::Verified, none, false, date(2026, 2, 1)), Err(NoExtension::NotAllowed));
    // An extension span without a first deadline to run from.
    let eea = deadlines(&p, "eea_uk_ch");
    assert_eq!(extend(Some(&eea), Status::Verified, none, false, date(2026, 2, 1)), Err(NoExtension::NotAllowed));
}

#[test]
fn extension_is_granted_once() {
    let p = bstage();
    for id in ["eea_uk_ch", "us_ca"] {
        let dl = deadlines(&p, id);
        let d = due(Some(&dl), date(2026, 1, 30)).unwrap();
        assert_eq!(
            extend(Some(&dl), Status::Verified, d, true, date(2026, 2, 1)),
            Err(NoExtension::AlreadyExtended),
            "{id}"
        );
    }
}

#[test]
fn extension_must_be_announced_before_the_deadline_passes() {
    let p = bstage();
    for id in ["eea_uk_ch", "us_ca"] {
        let dl = deadlines(&p, id);
        let d = due(Some(&dl), date(2026, 1, 31)).unwrap();
        let answer_by = d.answer.unwrap();
        assert!(extend(Some(&dl), Status::Verified, d, false, answer_by).is_ok(), "{id}: on the last day");
        for late in [answer_by.tomorrow().unwrap(), date(2027, 1, 1)] {
            assert_eq!(
                extend(Some(&dl), Status::Verified, d, false, late),
                Err(NoExtension::TooLate { answer_by }),
                "{id} on {late}"
            );
        }
    }
}

#[test]
fn closed_requests_are_never_extended() {
    let p = bstage();
    for id in ["kr", "eea_uk_ch", "us_ca"] {
        let dl = deadlines(&p, id);
        let d = due(Some(&dl), date(2026, 1, 30)).unwrap();
        for status in [Status::Fulfilled, Status::Denied] {
            for extended in [false, true] {
                for today in [date(2026, 2, 1), date(2027, 1, 1)] {
                    assert_eq!(
                        extend(Some(&dl), status, d, extended, today),
                        Err(NoExtension::Closed),
                        "{id} {status} extended={extended} {today}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Which requests may be filed

#[test]
fn jurisdiction_defaults_to_the_policy_own() {
    let p = bstage();
    assert_eq!(jurisdiction(&p, None).map(|j| j.id.as_str()), Ok("kr"));
    for id in ["kr", "eea_uk_ch", "us_ca"] {
        assert_eq!(jurisdiction(&p, Some(id)).map(|j| j.id.as_str()), Ok(id));
    }
    for id in ["xx", "", "KR", "eea"] {
        assert_eq!(jurisdiction(&p, Some(id)).map(|j| j.id.as_str()), Err(Refused::UnknownJurisdiction(id.into())));
    }
    // The default follows `meta.jurisdiction`, not the first one listed.
    let mut q = bstage();
    q.meta.jurisdiction = declared(&p, "us_ca").id.clone();
    assert_eq!(jurisdiction(&q, None).map(|j| j.id.as_str()), Ok("us_ca"));
}

/// Every kind in every b.stage jurisdiction. The general `[rights]`
/// (access, correction, deletion, restriction) count everywhere, so only the
/// Californian right to know is missing outside California.
#[test]
fn kinds_offered_per_jurisdiction() {
    let p = bstage();
    let all_but_know: &[Kind] = &[
        Kind::Access,
        Kind::Export,
        Kind::Correction,
        Kind::Deletion,
        Kind::Restriction,
        Kind::ObjectMarketing,
        Kind::OptOutSale,
        Kind::Complaint,
        Kind::Inquiry,
    ];
    let expected: &[(&str, &[Kind])] = &[("kr", all_but_know), ("eea_uk_ch", all_but_know), ("us_ca", Kind::ALL)];
    for (id, offered) in expected {
        let j = declared(&p, id);
        for kind in Kind::ALL {
            let got = check(&p, j, *kind, "email", false);
            if offered.contains(kind) {
                assert_eq!(got, Ok(()), "{kind} in {id}");
            } else {
                assert_eq!(got, Err(Refused::NotOffered { kind: *kind, jurisdiction: (*id).into() }), "{kind} in {id}");
            }
        }
    }
}

/// Without the general `[rights]`, only the jurisdiction's own list counts.
#[test]
fn kinds_offered_by_the_jurisdiction_alone() {
    let mut p = bstage();
    p.rights = None;
    let not_offered = |kind: Kind, id: &str| Err(Refused::NotOffered { kind, jurisdiction: id.into() });
    let cases: &[(&str, Kind, Result<(), Refused>)] = &[
        ("kr", Kind::Access, Ok(())),
        ("kr", Kind::Correction, Ok(())),
        ("kr", Kind::Restriction, Ok(())),
        ("kr", Kind::Know, not_offered(Kind::Know, "kr")),
        ("eea_uk_ch", Kind::Export, Ok(())),
        ("eea_uk_ch", Kind::Know, not_offered(Kind::Know, "eea_uk_ch")),
        // California: "access" is the right to know.
        ("us_ca", Kind::Access, Ok(())),
        ("us_ca", Kind::Know, Ok(())),
        ("us_ca", Kind::Deletion, Ok(())),
        ("us_ca", Kind::Correction, not_offered(Kind::Correction, "us_ca")),
        ("us_ca", Kind::Restriction, not_offered(Kind::Restriction, "us_ca")),
    ];
    for (id, kind, expected) in cases {
        assert_eq!(&check(&p, declared(&p, id), *kind, "writing", false), expected, "{kind} in {id}");
    }
    // Marketing objection, opt-out of sale, complaints and inquiries need no
    // right at all, even in a jurisdiction that lists none.
    let mut bare = declared(&p, "kr").clone();
    bare.rights.clear();
    for kind in [Kind::ObjectMarketing, Kind::OptOutSale, Kind::Complaint, Kind::Inquiry] {
        assert_eq!(check(&p, &bare, kind, "writing", false), Ok(()), "{kind}");
    }
    for kind in [Kind::Access, Kind::Export, Kind::Correction, Kind::Deletion, Kind::Restriction, Kind::Know] {
        assert_eq!(check(&p, &bare, kind, "writing", false), not_offered(kind, "kr"), "{kind}");
    }
}

#[test]
fn requests_come_through_declared_channels_only() {
    let p = bstage();
    let kr = declared(&p, "kr");
    for channel in ["web_page", "email", "fax", "telephone", "writing", "other_means"] {
        assert_eq!(check(&p, kr, Kind::Access, channel, false), Ok(()), "{channel}");
    }
    for channel in ["carrier_pigeon", "", "Email", "e-mail", " email"] {
        for kind in Kind::ALL {
            assert_eq!(
                check(&p, kr, *kind, channel, false),
                Err(Refused::UnknownChannel(channel.into())),
                "{kind} via {channel:?}"
            );
        }
    }
}

#[test]
fn agents_are_accepted_only_where_the_policy_says_so() {
    let p = bstage();
    for id in ["kr", "eea_uk_ch", "us_ca"] {
        assert_eq!(check(&p, declared(&p, id), Kind::Deletion, "writing", true), Ok(()), "{id}");
    }

    let mut no_agents = bstage();
    no_agents.rights.as_mut().expect("b.stage states [rights]").agents = false;
    for id in ["kr", "eea_uk_ch", "us_ca"] {
        let j = declared(&no_agents, id);
        for kind in [Kind::Access, Kind::Deletion, Kind::Complaint, Kind::OptOutSale] {
            assert_eq!(check(&no_agents, j, kind, "writing", true), Err(Refused::NoAgents), "{kind} in {id}");
            assert_eq!(check(&no_agents, j, kind, "writing", false), Ok(()), "{kind} in {id}, in person");
        }
    }

    // No [rights] at all: nothing says agents are accepted.
    let mut silent = bstage();
    silent.rights = None;
    assert_eq!(check(&silent, declared(&silent, "kr"), Kind::Access, "writing", true), Err(Refused::NoAgents));
}

#[test]
fn kinds_and_statuses_round_trip_through_their_names() {
    for kind in Kind::ALL {
        assert_eq!(Kind::parse(kind.as_str()), Some(*kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    for status in Status::ALL {
        assert_eq!(Status::parse(status.as_str()), Some(*status));
        assert_eq!(status.to_string(), status.as_str());
    }
    for bad in ["", "Access", "opt-out-sale", "portability", "closed"] {
        assert_eq!(Kind::parse(bad), None, "{bad}");
        assert_eq!(Status::parse(bad), None, "{bad}");
    }
    let mut names: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 10);
}

#[test]
fn only_requests_about_own_data_need_verification() {
    for kind in Kind::ALL {
        let expected = !matches!(kind, Kind::Complaint | Kind::Inquiry);
        assert_eq!(kind.needs_verification(), expected, "{kind}");
    }
}

// ---------------------------------------------------------------------------
// State machine

/// The whole transition table; `None` is a refused step.
type Row = (Status, [(Step, Option<Status>); 4]);

const TABLE: &[Row] = &[
    (
        Status::Received,
        [
            (Step::Verify, Some(Status::Verified)),
            (Step::Assign, None),
            (Step::Fulfil, None),
            (Step::Deny, Some(Status::Denied)),
        ],
    ),
    (
        Status::Verified,
        [
            (Step::Verify, None),
            (Step::Assign, Some(Status::InProgress)),
            (Step::Fulfil, Some(Status::Fulfilled)),
            (Step::Deny, Some(Status::Denied)),
        ],
    ),
    (
        Status::InProgress,
        [
            (Step::Verify, None),
            (Step::Assign, Some(Status::InProgress)),
            (Step::Fulfil, Some(Status::Fulfilled)),
            (Step::Deny, Some(Status::Denied)),
        ],
    ),
    (Status::Fulfilled, [(Step::Verify, None), (Step::Assign, None), (Step::Fulfil, None), (Step::Deny, None)]),
    (Status::Denied, [(Step::Verify, None), (Step::Assign, None), (Step::Fulfil, None), (Step::Deny, None)]),
];

#[test]
fn transition_table_is_exactly_as_designed() {
    let mut seen = 0;
    for (from, row) in TABLE {
        for (step, to) in row {
            let expected = to.ok_or(InvalidStep { from: *from, step: *step });
            assert_eq!(next(*from, *step), expected, "{from} --{}-->", step.as_str());
            seen += 1;
        }
    }
    // The table covers every status and every step.
    assert_eq!(seen, Status::ALL.len() * Step::ALL.len());
    for status in Status::ALL {
        assert!(TABLE.iter().any(|(s, _)| s == status), "{status}");
    }
    for step in Step::ALL {
        assert!(TABLE.iter().all(|(_, row)| row.iter().any(|(s, _)| s == step)), "{}", step.as_str());
    }
}

#[test]
fn closed_means_fulfilled_or_denied() {
    for status in Status::ALL {
        assert_eq!(status.is_closed(), matches!(status, Status::Fulfilled | Status::Denied), "{status}");
    }
}

// ---------------------------------------------------------------------------
// Standing

#[test]
fn standing_around_the_deadline() {
    let answer_by = Some(date(2026, 3, 16));
    let ack_by = Some(date(2026, 2, 13));
    // (today, acknowledged, overdue, acknowledgement overdue, days left)
    let cases = [
        (date(2026, 1, 30), false, false, false, Some(45)),
        (date(2026, 2, 13), false, false, false, Some(31)),
        (date(2026, 2, 14), false, false, true, Some(30)),
        (date(2026, 2, 14), true, false, false, Some(30)),
        (date(2026, 3, 16), true, false, false, Some(0)),
        (date(2026, 3, 17), true, true, false, Some(-1)),
        (date(2027, 3, 17), false, true, true, Some(-366)),
    ];
    for (today, acknowledged, overdue, acknowledgement_overdue, days_left) in cases {
        assert_eq!(
            standing(Status::InProgress, answer_by, ack_by, acknowledged, today),
            Standing { overdue, acknowledgement_overdue, days_left },
            "{today} acknowledged={acknowledged}"
        );
    }
    // Long deadlines are counted in days, not in months or years.
    assert_eq!(standing(Status::Verified, Some(date(2027, 1, 1)), None, false, date(2026, 1, 1)).days_left, Some(365));
    // No deadline: never overdue, nothing to count.
    assert_eq!(
        standing(Status::Received, None, None, false, date(2026, 1, 1)),
        Standing { overdue: false, acknowledgement_overdue: false, days_left: None }
    );
}

// ---------------------------------------------------------------------------
// Messages

#[test]
fn messages_are_lower_case_sentences_without_a_period() {
    let cases = [
        (
            Refused::NotOffered { kind: Kind::Know, jurisdiction: "kr".into() }.to_string(),
            r#"the policy offers no know request in jurisdiction "kr""#,
        ),
        (Refused::UnknownChannel("pigeon".into()).to_string(), r#"the policy declares no channel "pigeon""#),
        (Refused::UnknownJurisdiction("xx".into()).to_string(), r#"the policy declares no jurisdiction "xx""#),
        (Refused::NoAgents.to_string(), "the policy does not accept requests through an agent"),
        (NoExtension::AlreadyExtended.to_string(), "the request was extended already"),
        (
            NoExtension::TooLate { answer_by: date(2026, 2, 28) }.to_string(),
            "the deadline (2026-02-28) has passed; an extension must be announced before it",
        ),
        (
            InvalidStep { from: Status::Received, step: Step::Fulfil }.to_string(),
            "cannot fulfil a request that is received: the requester is not verified yet",
        ),
        (
            InvalidStep { from: Status::Verified, step: Step::Verify }.to_string(),
            "cannot verify a request that is verified: the requester is verified already",
        ),
        (
            InvalidStep { from: Status::Denied, step: Step::Deny }.to_string(),
            "cannot deny a request that is denied: the request is closed",
        ),
    ];
    for (got, expected) in &cases {
        assert_eq!(got, expected);
    }

    let mut all: Vec<String> = vec![
        Refused::UnknownJurisdiction("xx".into()).to_string(),
        Refused::NotOffered { kind: Kind::Know, jurisdiction: "eea_uk_ch".into() }.to_string(),
        Refused::UnknownChannel("pigeon".into()).to_string(),
        Refused::NoAgents.to_string(),
        NoExtension::NotAllowed.to_string(),
        NoExtension::AlreadyExtended.to_string(),
        NoExtension::Closed.to_string(),
        NoExtension::TooLate { answer_by: date(2026, 2, 28) }.to_string(),
    ];
    for status in Status::ALL {
        for step in Step::ALL {
            if let Err(e) = next(*status, *step) {
                all.push(e.to_string());
            }
        }
    }
    for msg in &all {
        assert_message_convention(msg);
    }
}

// ---------------------------------------------------------------------------
// Properties

fn any_step() -> impl Strategy<Value = Step> {
    prop::sample::select(Step::ALL)
}

fn any_status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// From receipt, any sequence of steps: a closed request never changes,
    /// nothing is fulfilled before a verify step, nothing returns to
    /// received, and a refused step leaves the status as it was.
    #[test]
    fn random_step_sequences_keep_the_invariants(steps in prop::collection::vec(any_step(), 0..24)) {
        let mut status = Status::Received;
        let mut verified = false;
        for step in steps {
            let before = status;
            match next(status, step) {
                Ok(to) => {
                    prop_assert!(!before.is_closed(), "{before} --{}--> {to}: a closed request changed", step.as_str());
                    prop_assert_ne!(to, Status::Received);
                    if step == Step::Verify {
                        verified = true;
                    }
                    if to == Status::Fulfilled {
                        prop_assert!(verified, "fulfilled without a verify step");
                    }
                    if matches!(to, Status::Verified | Status::InProgress) {
                        prop_assert!(verified, "{to} without a verify step");
                    }
                    status = to;
                }
                Err(e) => {
                    prop_assert_eq!(e, InvalidStep { from: before, step });
                }
            }
            if before.is_closed() {
                prop_assert_eq!(status, before);
            }
        }
    }

    /// Standing against independently computed expectations.
    #[test]
    fn standing_matches_the_dates(
        status in any_status(),
        today in 0i64..CENTURY,
        answer_by in prop::option::of(0i64..CENTURY),
        acknowledge_by in prop::option::of(0i64..CENTURY),
        acknowledged in any::<bool>(),
    ) {
        let got = standing(status, answer_by.map(day), acknowledge_by.map(day), acknowledged, day(today));
        if status.is_closed() {
            prop_assert_eq!(got, Standing { overdue: false, acknowledgement_overdue: false, days_left: None });
        } else {
            prop_assert_eq!(got.overdue, answer_by.is_some_and(|a| today > a));
            prop_assert_eq!(got.days_left, answer_by.map(|a| a - today));
            prop_assert_eq!(got.acknowledgement_overdue, !acknowledged && acknowledge_by.is_some_and(|a| today > a));
        }
    }

    /// Standing near the deadline: the narrow window where off-by-one
    /// mistakes live.
    #[test]
    fn standing_near_the_deadline(status in any_status(), received in 0i64..CENTURY - 100, offset in -3i64..60) {
        let ca = deadlines(&BSTAGE_POLICY, "us_ca");
        let d = due(Some(&ca), day(received)).unwrap();
        let today = day(received + offset);
        let s = standing(status, d.answer, d.acknowledge, false, today);
        prop_assert_eq!(s.overdue, !status.is_closed() && offset > 45);
        prop_assert_eq!(s.days_left, (!status.is_closed()).then_some(45 - offset));
        prop_assert_eq!(s.acknowledgement_overdue, !status.is_closed() && today > d.acknowledge.unwrap());
        prop_assert!(!(status.is_closed() && (s.overdue || s.acknowledgement_overdue)));
    }

    /// One month in eea_uk_ch lands in the next calendar month, on the same
    /// day or the last day of that month; the extension is two more
    /// calendar months from there.
    #[test]
    fn eea_month_is_a_calendar_month(received in 0i64..CENTURY) {
        let eea = deadlines(&BSTAGE_POLICY, "eea_uk_ch");
        let r = day(received);
        let d = due(Some(&eea), r).unwrap();
        prop_assert_eq!(d.acknowledge, None);
        let answer = d.answer.unwrap();
        let (y, m) = months_ahead(r.year(), r.month(), 1);
        prop_assert_eq!((answer.year(), answer.month()), (y, m));
        prop_assert_eq!(answer.day(), r.day().min(days_in_month(y, m)));
        prop_assert_eq!(answer, plus_months(r, 1));

        let extended = extend(Some(&eea), Status::Verified, d, false, r).unwrap();
        prop_assert_eq!(extended, plus_months(answer, 2));
        prop_assert_eq!(extend(Some(&eea), Status::Verified, d, false, answer), Ok(extended));
        prop_assert_eq!(
            extend(Some(&eea), Status::Verified, d, false, answer.tomorrow().unwrap()),
            Err(NoExtension::TooLate { answer_by: answer })
        );
    }

    /// California: the acknowledgement deadline is a weekday with exactly
    /// ten weekdays after receipt up to it; the answer is 45 calendar days
    /// later, 90 with the extension.
    #[test]
    fn us_ca_counts_business_and_calendar_days(received in 0i64..CENTURY) {
        let ca = deadlines(&BSTAGE_POLICY, "us_ca");
        let r = day(received);
        let d = due(Some(&ca), r).unwrap();
        let ack = d.acknowledge.unwrap();
        prop_assert!(!is_weekend(ack), "{ack} is a {:?}", ack.weekday());
        prop_assert!(ack > r);
        prop_assert_eq!(weekdays_between(r, ack), 10);
        prop_assert!(ack <= day(received + 14));
        prop_assert_eq!(d.answer, Some(day(received + 45)));
        prop_assert_eq!(extend(Some(&ca), Status::InProgress, d, false, r), Ok(day(received + 90)));
    }

    /// Korea: 10 calendar days, weekends included, no acknowledgement, no
    /// extension.
    #[test]
    fn kr_counts_calendar_days(received in 0i64..CENTURY, status in any_status()) {
        let kr = deadlines(&BSTAGE_POLICY, "kr");
        let d = due(Some(&kr), day(received)).unwrap();
        prop_assert_eq!(d, Due { acknowledge: None, answer: Some(day(received + 10)) });
        let expected = if status.is_closed() { NoExtension::Closed } else { NoExtension::NotAllowed };
        prop_assert_eq!(extend(Some(&kr), status, d, false, day(received)), Err(expected));
    }
}
