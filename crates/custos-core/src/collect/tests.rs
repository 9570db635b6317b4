//! Collection checks against the bundled b.stage policy: accepted writes,
//! every refusal with its code, normal forms, and the age rule.

use std::sync::LazyLock;

use jiff::civil::{Date, date};
use proptest::prelude::*;

use super::{
    ASSIGNED_COUNTRIES, Collected, ErrorCode, FieldError, age_in_years, check_collection, is_assigned_country,
    normalise,
};
use crate::policy::model::Id;
use crate::policy::{Policy, parse};

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");

const TODAY: Date = date(2024, 2, 28);

const SIGNUP: &str = "business_operator_signup";
const CREATION: &str = "non_business_operator_service_creation";

fn policy(text: &str) -> Policy {
    parse(text).unwrap_or_else(|e| panic!("{:?}", e.problems))
}

fn bstage() -> Policy {
    policy(BSTAGE)
}

fn owned(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

const VALID_SIGNUP: &[(&str, &str)] = &[
    ("name", "  Alice Kim "),
    ("email", "  Alice@Example.COM "),
    ("mobile_phone", "010-1234-5678"),
    ("password", "correct horse battery"),
];

const VALID_CREATION: &[(&str, &str)] = &[("name", "Alice Kim"), ("date_of_birth", "2000-05-17"), ("country", "KR")];

/// `base` with `item` replaced by `value` (or removed when `None`), or
/// appended when it is not in `base`.
fn with(base: &[(&str, &str)], item: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut items = owned(base);
    match (items.iter().position(|(k, _)| k == item), value) {
        (Some(i), Some(v)) => items[i].1 = v.to_owned(),
        (Some(i), None) => {
            items.remove(i);
        }
        (None, Some(v)) => items.push((item.to_owned(), v.to_owned())),
        (None, None) => {}
    }
    items
}

fn id(s: &str) -> Id {
    Id::parse(s).unwrap()
}

#[test]
fn accepts_a_business_operator_signup_in_normal_form() {
    let collected = check_collection(&bstage(), SIGNUP, "business_operator", &owned(VALID_SIGNUP), TODAY).unwrap();
    let expected = [
        ("name", "Alice Kim", None),
        ("email", "alice@example.com", Some("alice@example.com")),
        ("mobile_phone", "+821012345678", Some("+821012345678")),
        ("password", "correct horse battery", None),
    ];
    let expected: Vec<Collected> = expected
        .iter()
        .map(|(item, value, index)| Collected {
            item: id(item),
            value: (*value).to_owned(),
            index_value: index.map(str::to_owned),
        })
        .collect();
    assert_eq!(collected, expected);
}

#[test]
fn returns_items_in_the_points_order_whatever_the_order_given() {
    let mut items = owned(VALID_SIGNUP);
    items.reverse();
    let collected = check_collection(&bstage(), SIGNUP, "business_operator", &items, TODAY).unwrap();
    let order: Vec<&str> = collected.iter().map(|c| c.item.as_str()).collect();
    assert_eq!(order, ["name", "email", "mobile_phone", "password"]);
}

#[test]
fn accepts_a_service_creation_with_optional_and_generated_points() {
    let policy = bstage();
    let collected =
        check_collection(&policy, CREATION, "non_business_operator", &owned(VALID_CREATION), TODAY).unwrap();
    assert_eq!(collected.len(), 3);
    assert!(collected.iter().all(|c| c.index_value.is_none()));

    let generated = [("ip_address", "2001:db8::1"), ("device_info", "iPhone15,2; iOS 17.3")];
    let collected =
        check_collection(&policy, "automatic_generation", "service_member", &owned(&generated), TODAY).unwrap();
    assert_eq!(collected.len(), 2);
}

/// (case, point, subject kind, items, expected (field, code) in order)
type Case = (&'static str, &'static str, &'static str, Vec<(String, String)>, Vec<(&'static str, ErrorCode)>);

fn refusal_cases() -> Vec<Case> {
    use ErrorCode::*;
    let long_email = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long_email.len(), 255);
    let long_text = "x".repeat(super::MAX_TEXT_BYTES + 1);
    let s = |base, item, value| with(base, item, Some(value));
    let bo = "business_operator";
    let nbo = "non_business_operator";
    vec![
        ("unknown item", SIGNUP, bo, s(VALID_SIGNUP, "nickname", "ally"), vec![("items.nickname", UnknownItem)]),
        (
            "declared item this point does not collect",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "company_name", "Acme Ltd"),
            vec![("items.company_name", NotCollectedHere)],
        ),
        (
            "generated item at sign-up",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "ip_address", "192.0.2.7"),
            vec![("items.ip_address", NotCollectedHere)],
        ),
        (
            "missing required",
            SIGNUP,
            bo,
            with(VALID_SIGNUP, "password", None),
            vec![("items.password", MissingRequired)],
        ),
        (
            "duplicate item",
            SIGNUP,
            bo,
            {
                let mut items = owned(VALID_SIGNUP);
                items.push(("email".to_owned(), "other@example.com".to_owned()));
                items
            },
            vec![("items.email", DuplicateItem)],
        ),
        ("e-mail without domain", SIGNUP, bo, s(VALID_SIGNUP, "email", "alice@"), vec![("items.email", InvalidFormat)]),
        (
            "e-mail with display name",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "email", "Alice <alice@example.com>"),
            vec![("items.email", InvalidFormat)],
        ),
        (
            "e-mail without a dot in the domain",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "email", "alice@localhost"),
            vec![("items.email", InvalidFormat)],
        ),
        ("e-mail of 255 bytes", SIGNUP, bo, s(VALID_SIGNUP, "email", &long_email), vec![("items.email", TooLong)]),
        ("empty e-mail", SIGNUP, bo, s(VALID_SIGNUP, "email", "   "), vec![("items.email", Empty)]),
        (
            "phone too short",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "mobile_phone", "12345"),
            vec![("items.mobile_phone", InvalidFormat)],
        ),
        (
            "phone with letters",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "mobile_phone", "010-CALL-ME"),
            vec![("items.mobile_phone", InvalidFormat)],
        ),
        (
            "phone with an extension",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "mobile_phone", "+1 650 253 0000 ext. 12"),
            vec![("items.mobile_phone", InvalidFormat)],
        ),
        (
            "phone not assigned in its country",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "mobile_phone", "+82 10 1234"),
            vec![("items.mobile_phone", InvalidFormat)],
        ),
        ("password too short", SIGNUP, bo, s(VALID_SIGNUP, "password", "hunter2"), vec![("items.password", TooShort)]),
        (
            "password too long",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "password", &"p".repeat(1025)),
            vec![("items.password", TooLong)],
        ),
        ("blank name", SIGNUP, bo, s(VALID_SIGNUP, "name", " \t "), vec![("items.name", Empty)]),
        (
            "name with a control character",
            SIGNUP,
            bo,
            s(VALID_SIGNUP, "name", "Alice\u{7}Kim"),
            vec![("items.name", InvalidFormat)],
        ),
        ("name too long", SIGNUP, bo, s(VALID_SIGNUP, "name", &long_text), vec![("items.name", TooLong)]),
        (
            "date with slashes",
            CREATION,
            nbo,
            s(VALID_CREATION, "date_of_birth", "2000/05/17"),
            vec![("items.date_of_birth", InvalidFormat)],
        ),
        (
            "date that does not exist",
            CREATION,
            nbo,
            s(VALID_CREATION, "date_of_birth", "2001-02-29"),
            vec![("items.date_of_birth", InvalidFormat)],
        ),
        (
            "date with spaces around it",
            CREATION,
            nbo,
            s(VALID_CREATION, "date_of_birth", " 2000-05-17"),
            vec![("items.date_of_birth", InvalidFormat)],
        ),
        (
            "date in the future",
            CREATION,
            nbo,
            s(VALID_CREATION, "date_of_birth", "2024-02-29"),
            vec![("items.date_of_birth", FutureDate)],
        ),
        (
            "country in lower case",
            CREATION,
            nbo,
            s(VALID_CREATION, "country", "kr"),
            vec![("items.country", InvalidFormat)],
        ),
        (
            "country not assigned",
            CREATION,
            nbo,
            s(VALID_CREATION, "country", "UK"),
            vec![("items.country", InvalidFormat)],
        ),
        (
            "country name instead of code",
            CREATION,
            nbo,
            s(VALID_CREATION, "country", "Korea"),
            vec![("items.country", InvalidFormat)],
        ),
        (
            "under 19 at service creation",
            CREATION,
            nbo,
            s(VALID_CREATION, "date_of_birth", "2005-03-01"),
            vec![("items.date_of_birth", UnderAge)],
        ),
        (
            "unknown collection point",
            "newsletter_signup",
            bo,
            owned(VALID_SIGNUP),
            vec![("collection_point", UnknownCollectionPoint)],
        ),
        ("unknown subject kind", SIGNUP, "visitor", owned(VALID_SIGNUP), vec![("kind", UnknownSubjectKind)]),
        (
            "subject kind the point does not collect from",
            SIGNUP,
            "service_member",
            owned(VALID_SIGNUP),
            vec![("kind", WrongSubjectKind)],
        ),
        (
            "several problems together",
            SIGNUP,
            "service_member",
            {
                let mut items = with(VALID_SIGNUP, "password", None);
                items.insert(0, ("shoe_size".to_owned(), "41".to_owned()));
                items.push(("email".to_owned(), "again@example.com".to_owned()));
                items.push(("mobile_phone".to_owned(), "010-1234-5678".to_owned()));
                items.retain(|(k, _)| k != "name");
                items.push(("name".to_owned(), "\u{0}".to_owned()));
                items.push(("company_name".to_owned(), "Acme Ltd".to_owned()));
                items
            },
            vec![
                ("kind", WrongSubjectKind),
                ("items.shoe_size", UnknownItem),
                ("items.email", DuplicateItem),
                ("items.mobile_phone", DuplicateItem),
                ("items.name", InvalidFormat),
                ("items.company_name", NotCollectedHere),
                ("items.password", MissingRequired),
            ],
        ),
        (
            "format errors and the age check together",
            CREATION,
            nbo,
            vec![
                ("name".to_owned(), "Alice Kim".to_owned()),
                ("date_of_birth".to_owned(), "2010-01-01".to_owned()),
                ("country".to_owned(), "Korea".to_owned()),
            ],
            vec![("items.country", InvalidFormat), ("items.date_of_birth", UnderAge)],
        ),
    ]
}

#[test]
fn refuses_with_every_problem_and_its_code() {
    let policy = bstage();
    for (case, point, subject_kind, items, expected) in refusal_cases() {
        let errors = match check_collection(&policy, point, subject_kind, &items, TODAY) {
            Ok(collected) => panic!("{case}: accepted {collected:?}"),
            Err(errors) => errors,
        };
        let got: Vec<(&str, ErrorCode)> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(got, expected, "{case}: {errors:#?}");
    }
}

/// The security rule: a message names the item and what was expected, and
/// never repeats what was submitted.
#[test]
fn messages_never_contain_a_submitted_value() {
    let policy = bstage();
    for (case, point, subject_kind, items, _) in refusal_cases() {
        let errors = check_collection(&policy, point, subject_kind, &items, TODAY).unwrap_err();
        for error in &errors {
            assert_well_formed(case, error);
            for (item, value) in &items {
                let value = value.trim();
                // Ids are echoed by design; values of two characters or fewer
                // ("41") are too short to tell apart from the message's words.
                if value.chars().count() > 2 && value != item {
                    assert!(!error.message.contains(value), "{case}: {:?} repeats {value:?}", error.message);
                    assert!(!error.field.contains(value), "{case}: {:?} repeats {value:?}", error.field);
                }
            }
        }
    }
}

fn assert_well_formed(case: &str, error: &FieldError) {
    let message = &error.message;
    assert!(!message.ends_with('.'), "{case}: {message:?} ends with a period");
    assert!(!message.starts_with(|c: char| c.is_uppercase()), "{case}: {message:?} is not lower-case");
    if let Some(item) = error.field.strip_prefix("items.") {
        assert!(message.contains(&format!("{item:?}")), "{case}: {message:?} does not name {item}");
    }
}

/// (point, subject kind, the one item changed in the point's valid write,
/// expected message)
type MessageCase = (&'static str, &'static str, (&'static str, &'static str), &'static str);

#[test]
fn messages_say_what_was_expected() {
    let policy = bstage();
    let cases: &[MessageCase] = &[
        (
            SIGNUP,
            "business_operator",
            ("email", "alice@"),
            "item \"email\" must be an e-mail address of the form name@example.com",
        ),
        (
            SIGNUP,
            "business_operator",
            ("mobile_phone", "12345"),
            "item \"mobile_phone\" must be a valid phone number: + and the country code, or a number of KR",
        ),
        (SIGNUP, "business_operator", ("password", "hunter2"), "item \"password\" must be at least 8 characters long"),
        (
            SIGNUP,
            "business_operator",
            ("company_name", "Acme Ltd"),
            "item \"company_name\" is not collected at collection point \"business_operator_signup\" (it collects \"name\", \"email\", \"mobile_phone\", \"password\")",
        ),
        (
            SIGNUP,
            "business_operator",
            ("nickname", "ally"),
            "unknown item \"nickname\": the policy declares no such item",
        ),
        (
            CREATION,
            "non_business_operator",
            ("date_of_birth", "2000/05/17"),
            "item \"date_of_birth\" must be a date written YYYY-MM-DD",
        ),
        (
            CREATION,
            "non_business_operator",
            ("date_of_birth", "2001-02-29"),
            "item \"date_of_birth\" must be a real calendar date (YYYY-MM-DD)",
        ),
        (
            CREATION,
            "non_business_operator",
            ("date_of_birth", "2030-01-01"),
            "item \"date_of_birth\" must not be later than today (2024-02-28)",
        ),
        (
            CREATION,
            "non_business_operator",
            ("date_of_birth", "2010-01-01"),
            "item \"date_of_birth\" gives an age below the minimum age of 19 years",
        ),
        (
            CREATION,
            "non_business_operator",
            ("country", "kr"),
            "item \"country\" must be written in upper case (an ISO 3166-1 alpha-2 code such as KR)",
        ),
    ];
    for (point, subject_kind, change, expected) in cases {
        let base = if *point == SIGNUP { VALID_SIGNUP } else { VALID_CREATION };
        let (item, value) = *change;
        let errors = check_collection(&policy, point, subject_kind, &with(base, item, Some(value)), TODAY).unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, [*expected]);
    }

    let errors =
        check_collection(&policy, SIGNUP, "service_member", &with(VALID_SIGNUP, "password", None), TODAY).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "kind: collection point \"business_operator_signup\" does not collect from subject kind \"service_member\" (it collects from \"business_operator\")",
            "items.password: item \"password\" is required at collection point \"business_operator_signup\"",
        ]
    );
}

#[test]
fn hostile_names_are_escaped_and_shortened() {
    let long = format!("x\n{}", "y".repeat(500));
    let items = vec![(long.clone(), "v".to_owned())];
    let errors = check_collection(&bstage(), &long, "business_operator", &items, TODAY).unwrap_err();
    for error in &errors {
        assert!(error.message.len() < 200, "{error}");
        assert!(!error.message.contains('\n'), "{error}");
        assert!(!error.field.contains('\n'), "{error}");
        assert!(error.field.chars().count() < 80, "{error}");
    }
}

#[test]
fn normalises_email_phone_and_trimmed_text() {
    let policy = bstage();
    let cases = [
        ("email", "  Alice@Example.COM ", "alice@example.com"),
        ("email", "bob.smith+news@example.co.kr", "bob.smith+news@example.co.kr"),
        ("mobile_phone", "010-1234-5678", "+821012345678"),
        ("mobile_phone", "01012345678", "+821012345678"),
        ("mobile_phone", "+82 10-1234-5678", "+821012345678"),
        ("mobile_phone", "+1 650 253 0000", "+16502530000"),
        ("mobile_phone", "+1 (650) 253-0000", "+16502530000"),
        ("name", "  Alice  Kim\n", "Alice  Kim"),
        ("password", "  spaces count  ", "  spaces count  "),
        ("date_of_birth", "2000-05-17", "2000-05-17"),
    ];
    for (item, raw, expected) in cases {
        let item = policy.item(&id(item)).unwrap();
        assert_eq!(normalise(&policy, item, raw).as_deref(), Ok(expected), "{raw:?}");
    }
}

#[test]
fn a_number_without_plus_needs_a_home_country() {
    // Validation refuses a jurisdiction without countries, so this policy is
    // edited in the model: with no home country there is no region to read a
    // national number in; international numbers still work.
    let mut policy = bstage();
    policy.jurisdictions.iter_mut().filter(|j| j.id.as_str() == "kr").for_each(|j| j.countries.clear());
    let phone = policy.item(&id("mobile_phone")).unwrap();
    let error = normalise(&policy, phone, "010-1234-5678").unwrap_err();
    assert_eq!(
        error.message,
        "item \"mobile_phone\" must be a valid phone number starting with + and the country code"
    );
    assert_eq!(normalise(&policy, phone, "+82 10 1234 5678").as_deref(), Ok("+821012345678"));
}

/// (date of birth, today, accepted at the 19+ service creation)
const AGE_CASES: &[(Date, Date, bool)] = &[
    (date(2005, 2, 28), date(2024, 2, 28), true),  // 19 today
    (date(2005, 3, 1), date(2024, 2, 28), false),  // 19 tomorrow
    (date(2005, 2, 28), date(2024, 2, 27), false), // 19 tomorrow
    (date(2004, 2, 29), date(2023, 2, 28), false), // born 29 Feb: 19 on 1 March in a common year
    (date(2004, 2, 29), date(2023, 3, 1), true),
    (date(2005, 2, 28), date(2024, 2, 29), true), // leap day after the birthday
    (date(1950, 1, 1), date(2024, 2, 28), true),
];

#[test]
fn refuses_under_19_at_service_creation() {
    let policy = bstage();
    for &(born, today, accepted) in AGE_CASES {
        let items = with(VALID_CREATION, "date_of_birth", Some(&born.to_string()));
        let result = check_collection(&policy, CREATION, "non_business_operator", &items, today);
        match (accepted, result) {
            (true, Ok(_)) => {}
            (false, Err(errors)) => {
                let codes: Vec<ErrorCode> = errors.iter().map(|e| e.code).collect();
                assert_eq!(codes, [ErrorCode::UnderAge], "born {born}, today {today}");
            }
            (_, result) => panic!("born {born}, today {today}: {result:?}"),
        }
    }
}

#[test]
fn counts_age_in_full_calendar_years() {
    let cases = [
        (date(2005, 2, 28), date(2024, 2, 28), 19),
        (date(2005, 3, 1), date(2024, 2, 28), 18),
        (date(2004, 2, 29), date(2023, 2, 28), 18),
        (date(2004, 2, 29), date(2023, 3, 1), 19),
        (date(2004, 2, 29), date(2024, 2, 28), 19),
        (date(2004, 2, 29), date(2024, 2, 29), 20),
        (date(2024, 2, 28), date(2024, 2, 28), 0),
        (date(2024, 2, 29), date(2024, 2, 28), -1),
    ];
    for (born, today, age) in cases {
        assert_eq!(age_in_years(born, today), age, "born {born}, today {today}");
    }
}

#[test]
fn a_jurisdictions_minimum_age_applies_to_its_countries() {
    // An edit of the b.stage policy: members in the EEA may join from 16.
    let text = BSTAGE.replacen("annex = \"A\"\n", "annex = \"A\"\nminimum_age = 16\n", 1);
    let policy = policy(&text);
    let seventeen = "2006-06-01";
    for (country, accepted) in [("DE", true), ("GB", true), ("KR", false), ("JP", false)] {
        let items = owned(&[("name", "Alice Kim"), ("date_of_birth", seventeen), ("country", country)]);
        let result = check_collection(&policy, CREATION, "non_business_operator", &items, TODAY);
        assert_eq!(result.is_ok(), accepted, "{country}: {result:?}");
        if let Err(errors) = result {
            assert_eq!(errors[0].message, "item \"date_of_birth\" gives an age below the minimum age of 19 years");
        }
    }
}

#[test]
fn collected_debug_hides_values() {
    let collected = check_collection(&bstage(), SIGNUP, "business_operator", &owned(VALID_SIGNUP), TODAY).unwrap();
    let shown = format!("{collected:?}");
    for (_, value) in VALID_SIGNUP {
        assert!(!shown.contains(value.trim()), "{shown}");
    }
    assert!(!shown.contains("alice@example.com") && !shown.contains("+8210"), "{shown}");
    assert!(shown.contains("mobile_phone"), "{shown}");
}

#[test]
fn error_codes_are_stable() {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "unknown_collection_point",
            "unknown_subject_kind",
            "wrong_subject_kind",
            "unknown_item",
            "not_collected_here",
            "missing_required",
            "duplicate_item",
            "invalid_format",
            "empty",
            "too_short",
            "too_long",
            "future_date",
            "under_age",
            "not_allowed",
        ]
    );
}

#[test]
fn country_list_is_sorted_complete_and_covers_the_policy() {
    assert!(ASSIGNED_COUNTRIES.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    assert!(ASSIGNED_COUNTRIES.iter().all(|c| c.len() == 2 && c.chars().all(|c| c.is_ascii_uppercase())));
    for code in ["KR", "US", "GB", "DE", "AX", "SS", "BQ", "CW", "SX"] {
        assert!(is_assigned_country(code), "{code}");
    }
    for code in ["UK", "EU", "XK", "AN", "kr", "", "KOR"] {
        assert!(!is_assigned_country(code), "{code}");
    }
    for jurisdiction in &bstage().jurisdictions {
        for country in &jurisdiction.countries {
            assert!(is_assigned_country(country.as_str()), "{}: {country}", jurisdiction.id);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Bad input never panics, and a refusal never repeats the value: any
    /// string, phone-like, e-mail-like, date-like or arbitrary, for any item.
    #[test]
    fn any_value_is_checked_without_panic_or_echo(
        item in prop::sample::select(vec![
            "name", "email", "mobile_phone", "password", "date_of_birth", "country", "ip_address", "device_info",
        ]),
        value in prop_oneof![
            "[0-9+() .-]{0,40}",
            "\\+[0-9]{1,3}[0-9 ]{0,30}",
            "[a-zA-Z0-9.+_-]{0,20}@[a-zA-Z0-9.-]{0,20}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}",
            ".{0,60}",
        ],
    ) {
        static POLICY: LazyLock<Policy> = LazyLock::new(bstage);
        let declared = POLICY.item(&id(item)).unwrap();
        if let Err(error) = normalise(&POLICY, declared, &value) {
            let value = value.trim();
            prop_assert!(value.chars().count() <= 2 || !error.message.contains(value), "{:?}", error.message);
        }
    }
}
