use proptest::prelude::*;

use super::*;
use crate::policy::{Policy, parse};

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");

fn bstage() -> Policy {
    parse(BSTAGE).expect("the bundled policy parses")
}

fn rule() -> Dormancy {
    bstage().retention.dormancy.expect("b.stage declares dormancy")
}

fn class(id: &str) -> RecordClass {
    bstage().record_class_by_str(id).cloned().expect("declared class")
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

fn date(s: &str) -> Date {
    s.parse().expect("a date")
}

fn member<'a>(last: &str, roles: &'a [String]) -> Member<'a> {
    Member {
        id: "sub_1",
        kind: "business_operator",
        status: Status::Active,
        last_activity: ts(last),
        notified_at: None,
        dormant_at: None,
        roles,
    }
}

#[test]
fn notice_comes_thirty_days_before_the_year_is_up() {
    let rule = rule();
    let m = member("2025-03-10T09:30:00Z", &[]);
    assert_eq!(step(&rule, &m, ts("2026-02-07T09:29:59Z")), None);
    assert_eq!(
        step(&rule, &m, ts("2026-02-08T09:30:00Z")),
        Some(Step::Notify { dormant_on: ts("2026-03-10T09:30:00Z") })
    );
}

#[test]
fn dormancy_waits_for_the_threshold_and_the_full_notice() {
    let rule = rule();
    let mut m = member("2025-03-10T09:30:00Z", &[]);
    m.notified_at = Some(ts("2026-02-08T09:30:00Z"));
    assert_eq!(step(&rule, &m, ts("2026-03-10T09:29:59Z")), None);
    assert_eq!(step(&rule, &m, ts("2026-03-10T09:30:00Z")), Some(Step::MakeDormant));
    // A notice sent late (the job did not run) still gives 30 days.
    m.notified_at = Some(ts("2026-03-01T00:00:00Z"));
    assert_eq!(step(&rule, &m, ts("2026-03-30T23:59:59Z")), None);
    assert_eq!(step(&rule, &m, ts("2026-03-31T00:00:00Z")), Some(Step::MakeDormant));
}

#[test]
fn a_notice_from_before_the_last_activity_does_not_count() {
    let rule = rule();
    let mut m = member("2026-03-01T00:00:00Z", &[]);
    m.notified_at = Some(ts("2026-02-08T09:30:00Z"));
    // A year after the new activity, a new notice is due first.
    assert!(matches!(step(&rule, &m, ts("2027-03-01T00:00:00Z")), Some(Step::Notify { .. })));
}

#[test]
fn a_dormant_member_is_destroyed_three_years_later() {
    let rule = rule();
    let mut m = member("2025-03-10T09:30:00Z", &[]);
    m.status = Status::Dormant;
    m.dormant_at = Some(ts("2026-03-10T09:30:00Z"));
    assert_eq!(step(&rule, &m, ts("2029-03-10T09:29:59Z")), None);
    assert_eq!(step(&rule, &m, ts("2029-03-10T09:30:00Z")), Some(Step::Destroy { since: ts("2029-03-10T09:30:00Z") }));
}

#[test]
fn the_head_admin_is_never_dormant() {
    let rule = rule();
    let roles = vec!["head_admin".to_owned()];
    let m = member("2000-01-01T00:00:00Z", &roles);
    assert_eq!(step(&rule, &m, ts("2026-11-26T00:00:00Z")), None);
    assert!(forecast(&rule, &m, ts("2026-11-26T00:00:00Z")).is_empty());
    let admin = vec!["admin".to_owned()];
    let m = member("2000-01-01T00:00:00Z", &admin);
    assert!(step(&rule, &m, ts("2026-11-26T00:00:00Z")).is_some());
}

#[test]
fn leap_day_and_month_end_spans_clamp() {
    let rule = rule();
    // 2024-02-29 plus one year is 2025-02-28.
    let m = member("2024-02-29T12:00:00Z", &[]);
    let mut notified = m;
    notified.notified_at = Some(ts("2025-01-29T12:00:00Z"));
    assert_eq!(step(&rule, &notified, ts("2025-02-28T11:59:59Z")), None);
    assert_eq!(step(&rule, &notified, ts("2025-02-28T12:00:00Z")), Some(Step::MakeDormant));
    // 3 months from 2025-11-30 is 2026-02-28; from a leap year's 11-30, 02-29.
    let visits = class("service_visitation_records");
    assert_eq!(record_expires(&visits, date("2025-11-30"), None), Some(date("2026-02-28")));
    assert_eq!(record_expires(&visits, date("2023-11-30"), None), Some(date("2024-02-29")));
    assert_eq!(record_expires(&visits, date("2026-01-31"), None), Some(date("2026-04-30")));
    let payments = class("payment_supply_records");
    assert_eq!(record_expires(&payments, date("2024-02-29"), None), Some(date("2029-02-28")));
}

#[test]
fn the_forecast_lists_notice_dormancy_and_destruction() {
    let rule = rule();
    let m = member("2025-03-10T09:30:00Z", &[]);
    let steps = forecast(&rule, &m, ts("2025-06-01T00:00:00Z"));
    assert_eq!(
        steps,
        vec![
            (ts("2026-02-08T09:30:00Z"), Step::Notify { dormant_on: ts("2026-03-10T09:30:00Z") }),
            (ts("2026-03-10T09:30:00Z"), Step::MakeDormant),
            (ts("2029-03-10T09:30:00Z"), Step::Destroy { since: ts("2029-03-10T09:30:00Z") }),
        ]
    );
}

#[test]
fn cutoffs_and_buckets() {
    let visits = class("service_visitation_records");
    // On 2026-05-31, a visit record dated 2026-02-28 (expires 05-28) is
    // gone; one dated 03-01 expires 06-01, after today.
    let cutoff = record_cutoff(&visits, date("2026-05-31")).unwrap();
    assert_eq!(cutoff, date("2026-02-28"));
    assert!(record_expired(&visits, date("2026-02-28"), None, date("2026-05-31")));
    assert!(!record_expired(&visits, date("2026-03-01"), None, date("2026-05-31")));
    assert_eq!(last_expired_bucket(cutoff).as_deref(), Some("2026-02"));
    assert_eq!(last_expired_bucket(date("2026-02-27")).as_deref(), Some("2026-01"));
    assert_eq!(hold_scope(&visits, date("2026-02-03")), "hold:service_visitation_records:2026-02");
}

fn span_strategy() -> impl Strategy<Value = Span> {
    (1u32..40, 0usize..4).prop_map(|(n, u)| {
        let unit = [
            crate::policy::span::Unit::Days,
            crate::policy::span::Unit::Weeks,
            crate::policy::span::Unit::Months,
            crate::policy::span::Unit::Years,
        ][u];
        Span::new(n, unit).unwrap()
    })
}

fn day_strategy() -> impl Strategy<Value = Date> {
    (0i64..20_000).prop_map(|n| date("2000-01-01").checked_add(jiff::Span::new().days(n)).unwrap())
}

proptest! {
    /// The cut-off splits record dates exactly: every record dated on or
    /// before it is expired, the day after is not. So a sweep by cut-off
    /// leaves nothing readable past its hold, and takes nothing early.
    #[test]
    fn cutoff_is_exact(span in span_strategy(), today in day_strategy(), year_end in any::<bool>()) {
        let mut c = class("payment_supply_records");
        c.retain_for = span;
        if year_end {
            c.from = RecordStart::RecordYearEnd;
        }
        let cutoff = record_cutoff(&c, today).unwrap();
        prop_assert!(record_expired(&c, cutoff, None, today));
        prop_assert!(!record_expired(&c, cutoff.tomorrow().unwrap(), None, today));
        // Every record in an expired bucket is expired.
        if let Some(bucket) = last_expired_bucket(cutoff) {
            let (y, m) = bucket.split_once('-').unwrap();
            let last = Date::new(y.parse().unwrap(), m.parse().unwrap(), 1).unwrap().last_of_month();
            prop_assert!(record_expired(&c, last, None, today));
        }
    }

    /// Dormancy never starts before the threshold, and never without the
    /// full notice period; an exempt member never gets a step; running the
    /// plan again after executing a step gives no new step at that moment.
    #[test]
    fn dormancy_properties(
        last_days in 0i64..3_000,
        notice_offset in proptest::option::of(0i64..800),
        now_days in 0i64..4_000,
        exempt in any::<bool>(),
    ) {
        let rule = rule();
        let base = ts("2020-01-01T08:00:00Z");
        let last = base.checked_add(jiff::Span::new().hours(24 * last_days)).unwrap();
        let now = base.checked_add(jiff::Span::new().hours(24 * now_days)).unwrap();
        let roles = if exempt { vec!["head_admin".to_owned()] } else { Vec::new() };
        let mut m = Member {
            id: "s",
            kind: "service_member",
            status: Status::Active,
            last_activity: last,
            notified_at: notice_offset.map(|d| last.checked_add(jiff::Span::new().hours(24 * d)).unwrap()),
            dormant_at: None,
            roles: &roles,
        };
        let s = step(&rule, &m, now);
        if exempt {
            prop_assert_eq!(s, None);
        }
        if s == Some(Step::MakeDormant) {
            prop_assert!(now >= threshold(&rule, last));
            let notice = m.notified_at.expect("a notice came first");
            prop_assert!(now >= add_span(notice, rule.notice_before.unwrap()));
        }
        // Executing the step and planning again at the same moment: nothing.
        match s {
            Some(Step::Notify { .. }) => m.notified_at = Some(now),
            Some(Step::MakeDormant) => { m.status = Status::Dormant; m.dormant_at = Some(now); }
            _ => {}
        }
        if matches!(s, Some(Step::Notify { .. } | Step::MakeDormant)) {
            prop_assert_eq!(step(&rule, &m, now), None);
        }
    }
}
