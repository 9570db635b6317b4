//! Data minimisation at the point of collection: a write of personal data
//! checked against the policy, as a pure function.
//!
//! Invariant: a write is accepted only when every item it carries is declared
//! by the policy and collected at the named collection point, from a subject
//! kind that point collects from; every required item is there exactly once;
//! every value has the format of its item type; and, where the point checks
//! age, the subject is old enough. Anything else is refused with every problem
//! reported at once. No message ever repeats a submitted value: values are
//! personal data, and messages travel to responses and logs.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use email_address::{EmailAddress, Options};
use jiff::civil::Date;

use crate::policy::Policy;
use crate::policy::model::{CollectionPoint, Country, Id, Item, ItemType, NormalForm};

mod countries;

pub use countries::ASSIGNED_COUNTRIES;

/// Longest e-mail address accepted, in bytes (RFC 5321 path limit less the
/// angle brackets).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Shortest password accepted, in characters. The policy states no password
/// rule; this is a security floor of Custos, not a promise of the policy.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password accepted, in characters: a bound on the work of hashing.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Longest free-text value (text, log, record, device, cookie, IP address,
/// file), in bytes.
pub const MAX_TEXT_BYTES: usize = 65536;

/// Longest phone number accepted as typed, separators included, in bytes: a
/// bound on the input handed to the phone-number parser.
pub const MAX_PHONE_BYTES: usize = 64;

/// What went wrong with one field of a write. The codes are part of the API:
/// `as_str` never changes for an existing code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    UnknownCollectionPoint,
    UnknownSubjectKind,
    WrongSubjectKind,
    UnknownItem,
    /// The item is declared by the policy but this point does not collect it.
    NotCollectedHere,
    MissingRequired,
    DuplicateItem,
    InvalidFormat,
    Empty,
    TooShort,
    TooLong,
    FutureDate,
    UnderAge,
    /// A value names something the policy does not declare for this use
    /// (a source the point does not take, a purpose that needs no consent).
    NotAllowed,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::UnknownCollectionPoint,
        ErrorCode::UnknownSubjectKind,
        ErrorCode::WrongSubjectKind,
        ErrorCode::UnknownItem,
        ErrorCode::NotCollectedHere,
        ErrorCode::MissingRequired,
        ErrorCode::DuplicateItem,
        ErrorCode::InvalidFormat,
        ErrorCode::Empty,
        ErrorCode::TooShort,
        ErrorCode::TooLong,
        ErrorCode::FutureDate,
        ErrorCode::UnderAge,
        ErrorCode::NotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownCollectionPoint => "unknown_collection_point",
            ErrorCode::UnknownSubjectKind => "unknown_subject_kind",
            ErrorCode::WrongSubjectKind => "wrong_subject_kind",
            ErrorCode::UnknownItem => "unknown_item",
            ErrorCode::NotCollectedHere => "not_collected_here",
            ErrorCode::MissingRequired => "missing_required",
            ErrorCode::DuplicateItem => "duplicate_item",
            ErrorCode::InvalidFormat => "invalid_format",
            ErrorCode::Empty => "empty",
            ErrorCode::TooShort => "too_short",
            ErrorCode::TooLong => "too_long",
            ErrorCode::FutureDate => "future_date",
            ErrorCode::UnderAge => "under_age",
            ErrorCode::NotAllowed => "not_allowed",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with a write. `field` is `"collection_point"`,
/// `"kind"` or `"items.<id>"`; `message` is lower-case, names the item
/// and what was expected, and never contains a submitted value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub code: ErrorCode,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), code, message: message.into() }
    }

    fn item(item: &Item, code: ErrorCode, expected: impl fmt::Display) -> FieldError {
        FieldError::new(item_field(item.id.as_str()), code, format!("item {} {expected}", quoted(item.id.as_str())))
    }
}

/// One accepted item of a write, ready to be encrypted and stored.
///
/// `Debug` does not print the values: they are personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct Collected {
    pub item: Id,
    /// What to store: the normal form where the item has one, else the value
    /// as given.
    pub value: String,
    /// For unique items, the normal form: the input of the blind index.
    pub index_value: Option<String>,
}

impl fmt::Debug for Collected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collected")
            .field("item", &self.item)
            .field("value", &format_args!("<redacted>"))
            .field("index_value", &self.index_value.as_ref().map(|_| format_args!("<redacted>")))
            .finish()
    }
}

/// Checks a write of personal data at collection point `point` for a subject
/// of kind `subject_kind` against the policy.
///
/// `items` are (item id, value) pairs as received. On success the accepted
/// items come back in the point's order (required, then optional). On failure
/// every problem is reported, in this order: the point, the subject kind, the
/// items in the order given, missing required items in the point's order, and
/// the age check. Each submitted item gets at most one error: an unknown,
/// uncollected or repeated item is not checked further.
///
/// `today` is the date dates of birth are measured against; a date after it
/// is refused.
pub fn check_collection(
    policy: &Policy,
    point: &str,
    subject_kind: &str,
    items: &[(String, String)],
    today: Date,
) -> Result<Vec<Collected>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let point_def = policy.collection_points.iter().find(|p| p.id.as_str() == point);
    if point_def.is_none() {
        errors.push(FieldError::new(
            "collection_point",
            ErrorCode::UnknownCollectionPoint,
            format!("unknown collection point {}", quoted(point)),
        ));
    }
    if !policy.subject_kinds.iter().any(|k| k.id.as_str() == subject_kind) {
        errors.push(FieldError::new(
            "kind",
            ErrorCode::UnknownSubjectKind,
            format!("unknown subject kind {}", quoted(subject_kind)),
        ));
    } else if let Some(p) = point_def
        && !p.subject_kinds.iter().any(|k| k.as_str() == subject_kind)
    {
        errors.push(FieldError::new(
            "kind",
            ErrorCode::WrongSubjectKind,
            format!(
                "collection point {} does not collect from subject kind {} (it collects from {})",
                quoted(point),
                quoted(subject_kind),
                quoted_list(p.subject_kinds.iter().map(Id::as_str)),
            ),
        ));
    }

    let mut times: HashMap<&str, usize> = HashMap::new();
    for (id, _) in items {
        *times.entry(id.as_str()).or_default() += 1;
    }
    let mut seen = HashSet::new();
    let mut accepted: Vec<(&Item, String)> = Vec::new();
    for (id, raw) in items {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let Some(item) = policy.items.iter().find(|i| i.id.as_str() == id) else {
            errors.push(FieldError::new(
                item_field(id),
                ErrorCode::UnknownItem,
                format!("unknown item {}: the policy declares no such item", quoted(id)),
            ));
            continue;
        };
        if let Some(p) = point_def
            && !collects(p, &item.id)
        {
            errors.push(FieldError::item(
                item,
                ErrorCode::NotCollectedHere,
                format_args!(
                    "is not collected at collection point {} (it collects {})",
                    quoted(point),
                    quoted_list(p.required.iter().chain(&p.optional).map(Id::as_str)),
                ),
            ));
            continue;
        }
        let times = times[id.as_str()];
        if times > 1 {
            errors.push(FieldError::item(
                item,
                ErrorCode::DuplicateItem,
                format_args!("is given {times} times; give it once"),
            ));
            continue;
        }
        match normalise(policy, item, raw) {
            Err(e) => errors.push(e),
            Ok(value) => {
                if item.kind == ItemType::Date
                    && let Ok(date) = parse_date(&value)
                    && date > today
                {
                    errors.push(FieldError::item(
                        item,
                        ErrorCode::FutureDate,
                        format_args!("must not be later than today ({today})"),
                    ));
                    continue;
                }
                accepted.push((item, value));
            }
        }
    }

    if let Some(p) = point_def {
        for required in &p.required {
            if !seen.contains(required.as_str()) {
                errors.push(FieldError::new(
                    item_field(required.as_str()),
                    ErrorCode::MissingRequired,
                    format!("item {} is required at collection point {}", quoted(required.as_str()), quoted(point)),
                ));
            }
        }
        if p.age_check
            && let Some(error) = check_age(policy, p, &accepted, today)
        {
            errors.push(error);
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    // The point is known here: an unknown point is an error above.
    let order = point_def.map(|p| p.required.iter().chain(&p.optional).collect::<Vec<_>>()).unwrap_or_default();
    accepted.sort_by_key(|(item, _)| order.iter().position(|id| **id == item.id));
    Ok(accepted
        .into_iter()
        .map(|(item, value)| Collected {
            item: item.id.clone(),
            index_value: item.unique.then(|| value.clone()),
            value,
        })
        .collect())
}

/// Checks one value of `item` and returns what is stored for it: the normal
/// form where the item has one (`trim`: trimmed; `email`: trimmed and
/// lower-cased; `e164`: `+` country code and number), else the value as
/// given. The value's format is checked for the item's type; its relation to
/// today (a date in the future, the age) is not: see [`check_collection`].
///
/// The engine uses this to look members up by e-mail or phone: the result is
/// the input of the blind index.
pub fn normalise(policy: &Policy, item: &Item, raw: &str) -> Result<String, FieldError> {
    let value = match item.normal_form {
        Some(NormalForm::Trim) => Cow::Borrowed(raw.trim()),
        Some(NormalForm::Email) => Cow::Owned(raw.trim().to_lowercase()),
        // E.164 is the phone check's own output, below.
        Some(NormalForm::E164) | None => Cow::Borrowed(raw),
    };
    if item.kind != ItemType::Password && value.trim().is_empty() {
        return Err(FieldError::item(item, ErrorCode::Empty, "must not be empty"));
    }
    match item.kind {
        ItemType::Email => check_email(item, &value)?,
        ItemType::Phone => {
            let e164 = check_phone(policy, item, &value)?;
            if item.normal_form == Some(NormalForm::E164) {
                return Ok(e164);
            }
        }
        ItemType::Date => {
            parse_date(&value).map_err(|expected| FieldError::item(item, ErrorCode::InvalidFormat, expected))?;
        }
        ItemType::Country => check_country(item, &value)?,
        ItemType::Password => check_password(item, &value)?,
        ItemType::Text
        | ItemType::Log
        | ItemType::Record
        | ItemType::Device
        | ItemType::Cookie
        | ItemType::File
        | ItemType::IpAddress => check_text(item, &value)?,
    }
    Ok(value.into_owned())
}

/// Age in full years on `today` of someone born on `born` (negative when
/// `born` is after `today`).
///
/// The age goes up on the birthday, by the calendar: someone born on
/// 2005-02-28 is 19 on 2024-02-28. Someone born on 29 February has their
/// birthday on 1 March in a common year, so they turn 19 on 2023-03-01, not on
/// 2023-02-28 (plain date arithmetic, which clamps 29 February to the 28th,
/// would let them in a day early).
pub fn age_in_years(born: Date, today: Date) -> i32 {
    let mut age = i32::from(today.year()) - i32::from(born.year());
    let birthday = match (born.month(), born.day()) {
        (2, 29) if !today.in_leap_year() => (3, 1),
        other => other,
    };
    if (today.month(), today.day()) < birthday {
        age -= 1;
    }
    age
}

/// True when `code` is an assigned ISO 3166-1 alpha-2 code (upper case).
pub fn is_assigned_country(code: &str) -> bool {
    ASSIGNED_COUNTRIES.binary_search(&code).is_ok()
}

fn collects(point: &CollectionPoint, item: &Id) -> bool {
    point.required.contains(item) || point.optional.contains(item)
}

/// The age check of a point: the subject, whose date of birth is the point's
/// first required date item, must have reached the minimum age. Returns
/// nothing when the date of birth is missing or malformed (already reported).
fn check_age(
    policy: &Policy,
    point: &CollectionPoint,
    accepted: &[(&Item, String)],
    today: Date,
) -> Option<FieldError> {
    let birth_item = point.required.iter().filter_map(|id| policy.item(id)).find(|i| i.kind == ItemType::Date)?;
    let (_, value) = accepted.iter().find(|(item, _)| item.id == birth_item.id)?;
    let born = parse_date(value).ok()?;
    // A validated policy always has [children] when a point checks age.
    let minimum = minimum_age(policy, accepted)?;
    (age_in_years(born, today) < i32::from(minimum)).then(|| {
        FieldError::item(
            birth_item,
            ErrorCode::UnderAge,
            format_args!("gives an age below the minimum age of {minimum} years"),
        )
    })
}

/// The minimum age that applies: a jurisdiction's, when a country given in
/// the write is one of its countries (the highest, should several match),
/// else the policy's.
fn minimum_age(policy: &Policy, accepted: &[(&Item, String)]) -> Option<u8> {
    let countries: Vec<&str> =
        accepted.iter().filter(|(item, _)| item.kind == ItemType::Country).map(|(_, v)| v.as_str()).collect();
    policy
        .jurisdictions
        .iter()
        .filter(|j| j.countries.iter().any(|c| countries.contains(&c.as_str())))
        .filter_map(|j| j.minimum_age)
        .max()
        .or_else(|| policy.children.as_ref().map(|c| c.minimum_age))
}

fn check_email(item: &Item, value: &str) -> Result<(), FieldError> {
    if value.len() > MAX_EMAIL_BYTES {
        return Err(FieldError::item(
            item,
            ErrorCode::TooLong,
            format_args!("must be at most {MAX_EMAIL_BYTES} bytes"),
        ));
    }
    // Stricter than the crate's defaults: a display name ("Alice <a@b.c>")
    // would make the stored value something other than an address, a domain
    // literal ("a@[10.0.0.1]") is no way to reach a member, and a domain
    // without a dot ("a@localhost") is not on the Internet.
    let options = Options::default().without_display_text().without_domain_literal().with_required_tld();
    EmailAddress::parse_with_options(value, options).map(drop).map_err(|_| {
        FieldError::item(item, ErrorCode::InvalidFormat, "must be an e-mail address of the form name@example.com")
    })
}

/// Checks a phone number and returns it in E.164. A number without a leading
/// `+` is read as a number of the policy's home country.
fn check_phone(policy: &Policy, item: &Item, value: &str) -> Result<String, FieldError> {
    if value.len() > MAX_PHONE_BYTES {
        return Err(FieldError::item(
            item,
            ErrorCode::TooLong,
            format_args!("must be at most {MAX_PHONE_BYTES} bytes"),
        ));
    }
    // Only what people type into a phone field reaches the parser: no
    // letters, so no extensions or `tel:` parameters that E.164 would drop.
    if !value.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.')) {
        return Err(FieldError::item(
            item,
            ErrorCode::InvalidFormat,
            r#"may contain only digits, spaces, "+", "-", "(", ")" and ".""#,
        ));
    }
    let home = home_country(policy);
    let region = home.and_then(|c| c.as_str().parse::<phonenumber::country::Id>().ok());
    let expected = || {
        let message = match home {
            Some(country) => {
                format!("must be a valid phone number: + and the country code, or a number of {country}")
            }
            None => "must be a valid phone number starting with + and the country code".to_owned(),
        };
        FieldError::item(item, ErrorCode::InvalidFormat, message)
    };
    let number = phonenumber::parse(region, value).map_err(|_| expected())?;
    if number.extension().is_some() || !number.is_valid() {
        return Err(expected());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// The first country of the policy's home jurisdiction.
fn home_country(policy: &Policy) -> Option<&Country> {
    policy.jurisdiction(&policy.meta.jurisdiction)?.countries.first()
}

/// Parses `YYYY-MM-DD`; the error says what was expected.
fn parse_date(value: &str) -> Result<Date, &'static str> {
    let shape = "must be a date written YYYY-MM-DD";
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() });
    if !well_formed {
        return Err(shape);
    }
    let number = |range: std::ops::Range<usize>| value[range].parse::<i16>().map_err(|_| shape);
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let real = "must be a real calendar date (YYYY-MM-DD)";
    let month = i8::try_from(month).map_err(|_| real)?;
    let day = i8::try_from(day).map_err(|_| real)?;
    Date::new(year, month, day).map_err(|_| real)
}

fn check_country(item: &Item, value: &str) -> Result<(), FieldError> {
    if is_assigned_country(value) {
        return Ok(());
    }
    let expected = if is_assigned_country(&value.to_ascii_uppercase()) {
        "must be written in upper case (an ISO 3166-1 alpha-2 code such as KR)"
    } else {
        "must be an assigned ISO 3166-1 alpha-2 country code in upper case, such as KR"
    };
    Err(FieldError::item(item, ErrorCode::InvalidFormat, expected))
}

/// The policy states no password rule: the length bounds are a security floor
/// of Custos (and a bound on the work of hashing), not a promise of the policy.
fn check_password(item: &Item, value: &str) -> Result<(), FieldError> {
    // Bytes bound characters from above: no need to count a huge value.
    let chars = if value.len() > 4 * MAX_PASSWORD_CHARS { usize::MAX } else { value.chars().count() };
    if chars < MIN_PASSWORD_CHARS {
        return Err(FieldError::item(
            item,
            ErrorCode::TooShort,
            format_args!("must be at least {MIN_PASSWORD_CHARS} characters long"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(FieldError::item(
            item,
            ErrorCode::TooLong,
            format_args!("must be at most {MAX_PASSWORD_CHARS} characters long"),
        ));
    }
    Ok(())
}

/// Free text and the opaque generated types: bounded, printable apart from
/// line breaks and tabs. An IP address must also parse as one.
fn check_text(item: &Item, value: &str) -> Result<(), FieldError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(FieldError::item(item, ErrorCode::TooLong, format_args!("must be at most {MAX_TEXT_BYTES} bytes")));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(FieldError::item(
            item,
            ErrorCode::InvalidFormat,
            "must not contain control characters other than tab, line feed and carriage return",
        ));
    }
    if item.kind == ItemType::IpAddress && value.parse::<IpAddr>().is_err() {
        return Err(FieldError::item(item, ErrorCode::InvalidFormat, "must be an IPv4 or IPv6 address"));
    }
    Ok(())
}

/// Names from outside the policy are shown at most this long in a field or
/// message, so that a hostile request cannot make huge errors.
const MAX_SHOWN_CHARS: usize = 64;

fn shorten(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &s[..end])),
        None => Cow::Borrowed(s),
    }
}

/// The field of an item: `items.<id>`, with an id from outside the policy
/// shortened and its control characters escaped.
fn item_field(id: &str) -> String {
    format!("items.{}", shorten(id).escape_debug())
}

/// A name (an id, never a personal value) quoted and escaped for a message.
pub(crate) fn quoted(name: &str) -> String {
    format!("{:?}", shorten(name))
}

pub(crate) fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(quoted).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
