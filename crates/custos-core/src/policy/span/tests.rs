use jiff::civil::{Date, date};

use super::{Span, Unit};

fn span(s: &str) -> Span {
    s.parse().unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

#[test]
fn parses_and_prints_every_unit() {
    for (text, printed) in [
        ("1 day", "1 day"),
        ("7 days", "7 days"),
        ("10 business days", "10 business days"),
        ("1 business day", "1 business day"),
        ("2 weeks", "2 weeks"),
        ("6 months", "6 months"),
        ("1 year", "1 year"),
        ("5 years", "5 years"),
        ("  3 months ", "3 months"),
    ] {
        assert_eq!(span(text).to_string(), printed);
    }
}

#[test]
fn refuses_zero_negative_and_malformed_spans() {
    let cases = [
        ("0 days", "\"0 days\": a span must be longer than zero"),
        ("-1 years", "\"-1 years\" is negative: a span must be longer than zero"),
        ("10001 days", "\"10001 days\": a span of more than 10000 units is not accepted"),
        ("99999999999 days", "\"99999999999 days\": a span of more than 10000 units is not accepted"),
        (
            "seven days",
            "\"seven days\" is not a span (write a whole number and a unit: \"7 days\", \"10 business days\", \"2 weeks\", \"6 months\", \"5 years\")",
        ),
        (
            "7",
            "\"7\" is not a span (write a whole number and a unit: \"7 days\", \"10 business days\", \"2 weeks\", \"6 months\", \"5 years\")",
        ),
        (
            "7 fortnights",
            "\"7 fortnights\" is not a span (write a whole number and a unit: \"7 days\", \"10 business days\", \"2 weeks\", \"6 months\", \"5 years\")",
        ),
        (
            "1.5 years",
            "\"1.5 years\" is not a span (write a whole number and a unit: \"7 days\", \"10 business days\", \"2 weeks\", \"6 months\", \"5 years\")",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(text.parse::<Span>().unwrap_err(), message, "for {text:?}");
    }
}

/// Calendar arithmetic: months clamp to the end of shorter months, leap days
/// are honoured, and years from a leap day land on 28 February.
#[test]
fn adds_calendar_spans() {
    let cases: [(&str, Date, Date); 10] = [
        ("7 days", date(2023, 2, 21), date(2023, 2, 28)),
        ("7 days", date(2023, 2, 25), date(2023, 3, 4)),
        ("7 days", date(2024, 2, 25), date(2024, 3, 3)),
        ("30 days", date(2024, 2, 1), date(2024, 3, 2)),
        ("1 month", date(2024, 1, 31), date(2024, 2, 29)),
        ("1 month", date(2023, 1, 31), date(2023, 2, 28)),
        ("3 months", date(2024, 11, 30), date(2025, 2, 28)),
        ("1 year", date(2024, 2, 29), date(2025, 2, 28)),
        ("4 years", date(2024, 2, 29), date(2028, 2, 29)),
        ("2 weeks", date(2023, 12, 25), date(2024, 1, 8)),
    ];
    for (s, from, to) in cases {
        assert_eq!(span(s).after(from).unwrap(), to, "{from} + {s}");
    }
}

#[test]
fn business_days_skip_weekends() {
    // 2024-03-01 is a Friday.
    assert_eq!(span("1 business day").after(date(2024, 3, 1)).unwrap(), date(2024, 3, 4));
    assert_eq!(span("10 business days").after(date(2024, 3, 1)).unwrap(), date(2024, 3, 15));
    assert_eq!(span("10 business days").before(date(2024, 3, 15)).unwrap(), date(2024, 3, 1));
    // Starting on a Saturday, the first business day is Monday.
    assert_eq!(span("1 business day").after(date(2024, 3, 2)).unwrap(), date(2024, 3, 4));
}

#[test]
fn subtracts_calendar_spans() {
    assert_eq!(span("30 days").before(date(2024, 3, 1)).unwrap(), date(2024, 1, 31));
    assert_eq!(span("1 month").before(date(2024, 3, 31)).unwrap(), date(2024, 2, 29));
}

#[test]
fn arithmetic_past_the_supported_range_is_an_error_not_a_panic() {
    let s = Span::new(10_000, Unit::Years).unwrap();
    assert!(s.after(date(9000, 1, 1)).is_err());
    assert!(s.before(date(-9000, 1, 1)).is_err());
}
