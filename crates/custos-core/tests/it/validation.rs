//! Policy validation: every case breaks `fixtures/minimal.toml` in one place
//! and lists the exact problems `policy::parse` must report, each as
//! "line N: key.path: message" pointing at the offending key (or at the table
//! header when a key is missing). The robustness tests feed hostile input
//! (random bytes, oversized files, deep nesting, non-UTF-8, an empty file) and
//! expect a clear error, never a panic.

use std::path::Path;

use custos_core::policy::{self, MAX_NESTING, MAX_POLICY_BYTES, PolicyError};

const MINIMAL: &str = include_str!("fixtures/minimal.toml");

/// One change to the minimal policy. Anchors must match exactly once, so a
/// fixture edit cannot make a case pass by no longer breaking anything.
#[derive(Debug, Clone, Copy)]
enum Edit {
    /// Replace the one occurrence of a snippet (which may span lines).
    Replace(&'static str, &'static str),
    /// Insert lines after the one line equal to the anchor.
    After(&'static str, &'static str),
    /// Delete the one line equal to this.
    Delete(&'static str),
}

use Edit::{After, Delete, Replace};

struct Case {
    name: &'static str,
    edits: &'static [Edit],
    /// Every problem, formatted by `Problem`'s `Display`, in file order.
    expected: &'static [&'static str],
}

/// The keys a policy file may have at the top level, as the parser lists them.
macro_rules! top_level_keys {
    () => {
        "`policy`, `controller`, `channels`, `laws`, `jurisdictions`, `subject_kinds`, `categories`, `items`, \
         `purposes`, `sources`, `events`, `collection_points`, `privileges`, `roles`, `retention`, \
         `record_classes`, `third_parties`, `entrustment`, `processors`, `transfers`, `rights`, `safety`, \
         `cookies`, `officer`, `remedies`, `children`, `amendments`"
    };
}

const CASES: &[Case] = &[
    // ---- TOML and shape (the first problem only: the parser stops there) ----
    Case {
        name: "toml syntax error",
        edits: &[Replace(r#"title = "Minimal Policy""#, r#"title = "Minimal Policy"#)],
        expected: &[r#"line 7: policy.title: invalid basic string, expected `"`"#],
    },
    Case {
        name: "unknown top-level key",
        edits: &[Replace("[policy]\n", "schema_version = 2\n\n[policy]\n")],
        expected: &[concat!(
            "line 4: schema_version: unknown field `schema_version`, expected one of ",
            top_level_keys!()
        )],
    },
    Case {
        name: "unknown top-level table",
        edits: &[Replace("[children]", "[child]")],
        expected: &[concat!("line 186: child: unknown field `child`, expected one of ", top_level_keys!())],
    },
    Case {
        name: "unknown key in [[purposes]]",
        edits: &[After(r#"description = "Sending the newsletter.""#, r#"audience = "members""#)],
        expected: &[
            "line 69: purposes[1].audience: unknown field `audience`, expected one of `id`, `name`, `description`, \
             `bases`, `items`, `consent`",
        ],
    },
    Case {
        name: "unknown key in [retention.dormancy]",
        edits: &[After(r#"destroy_after = "3 years""#, r#"grace = "1 day""#)],
        expected: &["line 132: retention.dormancy.grace: unknown field `grace`, expected one of `description`, \
             `inactive_for`, `activity`, `notice_before`, `notice_via`, `destroy_after`, `released_by`, \
             `subject_kinds`, `exempt_roles`"],
    },
    Case {
        name: "unknown key in an inline table",
        edits: &[Replace(r#"mode = "opt_in", withdraw_via"#, r#"mode = "opt_in", until = 2025-01-01, withdraw_via"#)],
        expected: &["line 71: purposes[1].consent.until: unknown field `until`, expected `mode` or `withdraw_via`"],
    },
    Case {
        name: "missing key in [policy]",
        edits: &[Delete(r#"title = "Minimal Policy""#)],
        expected: &["line 4: policy: missing field `title`"],
    },
    Case {
        name: "missing key in [[purposes]]",
        edits: &[Delete(r#"name = "Newsletter""#)],
        expected: &["line 65: purposes[1]: missing field `name`"],
    },
    Case {
        name: "missing key in the first [[purposes]]",
        edits: &[Delete(r#"name = "Membership""#)],
        expected: &["line 59: purposes[0]: missing field `name`"],
    },
    Case {
        name: "wrong value type",
        edits: &[Replace("minimum_age = 14", r#"minimum_age = "14""#)],
        expected: &[r#"line 187: children.minimum_age: invalid type: string "14", expected an integer"#],
    },
    Case {
        name: "wrong value type in [[roles]]",
        edits: &[Replace("single = true", r#"single = "yes""#)],
        expected: &[r#"line 108: roles[0].single: invalid type: string "yes", expected a boolean"#],
    },
    Case {
        name: "wrong value type in an inline table",
        edits: &[Replace(r#"answer = "10 days""#, "answer = 10")],
        expected: &["line 35: jurisdictions[0].deadlines.answer: invalid type: integer `10`, expected a string"],
    },
    // ---- References ----
    Case {
        name: "undeclared item",
        edits: &[Replace(r#"items = ["email", "date_of_birth"]"#, r#"items = ["email", "date_of_birth", "phone"]"#)],
        expected: &[r#"line 64: purposes[0].items[2]: unknown item "phone" (declare it under [[items]])"#],
    },
    Case {
        name: "undeclared purpose",
        edits: &[Replace(
            r#"purposes = ["membership", "statutory_retention"]"#,
            r#"purposes = ["membership", "statutory"]"#,
        )],
        expected: &[r#"line 116: roles[1].purposes[1]: unknown purpose "statutory" (declare it under [[purposes]])"#],
    },
    Case {
        name: "undeclared processor",
        edits: &[Replace(r#"processor = "cloud""#, r#"processor = "clod""#)],
        expected: &[r#"line 162: transfers[0].processor: unknown processor "clod" (declare it under [[processors]])"#],
    },
    Case {
        name: "undeclared role in dormancy exempt_roles",
        edits: &[Replace(r#"exempt_roles = ["owner"]"#, r#"exempt_roles = ["head_admin"]"#)],
        expected: &[
            r#"line 133: retention.dormancy.exempt_roles[0]: unknown role "head_admin" (declare it under [[roles]])"#,
        ],
    },
    Case {
        name: "undeclared role in transferable_to",
        edits: &[Replace(r#"transferable_to = ["admin"]"#, r#"transferable_to = ["moderator"]"#)],
        expected: &[r#"line 109: roles[0].transferable_to[0]: unknown role "moderator" (declare it under [[roles]])"#],
    },
    Case {
        name: "undeclared channel",
        edits: &[Replace(r#"withdraw_via = ["email", "web_page"]"#, r#"withdraw_via = ["email", "sms"]"#)],
        expected: &[
            r#"line 71: purposes[1].consent.withdraw_via[1]: unknown channel "sms" (declare it under [[channels]])"#,
        ],
    },
    Case {
        name: "undeclared law",
        edits: &[Replace(r#"{ kind = "consent", law = "pipa" }"#, r#"{ kind = "consent", law = "gdpr" }"#)],
        expected: &[r#"line 69: purposes[1].bases[0].law: unknown law "gdpr" (declare it under [[laws]])"#],
    },
    Case {
        name: "duplicate item id",
        edits: &[After(
            r#"type = "date""#,
            r#"[[items]]
id = "email"
name = "Second e-mail"
category = "account"
type = "email""#,
        )],
        expected: &[r#"line 59: items[2].id: duplicate item id "email""#],
    },
    Case {
        name: "duplicate purpose id",
        edits: &[Replace(
            "[[sources]]",
            r#"[[purposes]]
id = "newsletter"
name = "Another newsletter"
description = "The same id twice."
bases = [{ kind = "contract" }]
items = ["email"]

[[sources]]"#,
        )],
        expected: &[r#"line 80: purposes[3].id: duplicate purpose id "newsletter""#],
    },
    // ---- Spans and dates ----
    Case {
        name: "zero span",
        edits: &[Replace(r#"after = "30 days""#, r#"after = "0 days""#)],
        expected: &[r#"line 123: retention.rules[0].after: "0 days": a span must be longer than zero"#],
    },
    Case {
        name: "negative span",
        edits: &[Replace(r#"retain_for = "5 years""#, r#"retain_for = "-1 years""#)],
        expected: &[
            r#"line 139: record_classes[0].retain_for: "-1 years" is negative: a span must be longer than zero"#,
        ],
    },
    Case {
        name: "malformed span",
        edits: &[Replace(r#"answer = "10 days""#, r#"answer = "seven days""#)],
        expected: &[
            r#"line 35: jurisdictions[0].deadlines.answer: "seven days" is not a span (write a whole number and a unit: "7 days", "10 business days", "2 weeks", "6 months", "5 years")"#,
        ],
    },
    Case {
        name: "significant notice shorter than notice",
        edits: &[Replace(r#"significant_notice = "30 days""#, r#"significant_notice = "3 days""#)],
        expected: &[
            "line 192: amendments.significant_notice: the notice for significant changes (3 days) is shorter than \
             the ordinary notice (7 days)",
        ],
    },
    Case {
        name: "effective date earlier than the notice period allows",
        edits: &[Replace("effective_date = 2024-03-08", "effective_date = 2024-03-05")],
        expected: &["line 11: policy.effective_date: the effective date 2024-03-05 is earlier than the notice period \
             allows: notice given 2024-03-01 plus 7 days is 2024-03-08"],
    },
    Case {
        name: "effective date before the notice date",
        edits: &[Replace("effective_date = 2024-03-08", "effective_date = 2024-02-28")],
        expected: &[
            "line 11: policy.effective_date: the effective date 2024-02-28 is before the notice date 2024-03-01",
        ],
    },
    Case {
        name: "notice date with a time",
        edits: &[Replace("notice_date = 2024-03-01", "notice_date = 2024-03-01T09:00:00")],
        expected: &[
            "line 10: policy.notice_date: 2024-03-01T09:00:00 must be a date without a time (for example 2023-02-21)",
        ],
    },
    Case {
        name: "effective date with a time",
        edits: &[Replace("effective_date = 2024-03-08", "effective_date = 2024-03-08T00:00:00Z")],
        // Only the one problem: the stand-in date must not be compared with
        // the notice date.
        expected: &["line 11: policy.effective_date: 2024-03-08T00:00:00Z must be a date without a time (for example \
             2023-02-21)"],
    },
    Case {
        name: "malformed significant notice",
        edits: &[Replace(r#"significant_notice = "30 days""#, r#"significant_notice = "a month""#)],
        expected: &[
            r#"line 192: amendments.significant_notice: "a month" is not a span (write a whole number and a unit: "7 days", "10 business days", "2 weeks", "6 months", "5 years")"#,
        ],
    },
    Case {
        name: "malformed dormancy inactivity span",
        edits: &[Replace(r#"inactive_for = "1 year""#, r#"inactive_for = "1 yr""#)],
        expected: &[
            r#"line 127: retention.dormancy.inactive_for: "1 yr" is not a span (write a whole number and a unit: "7 days", "10 business days", "2 weeks", "6 months", "5 years")"#,
        ],
    },
    Case {
        name: "dormancy notice without a channel",
        edits: &[Delete(r#"notice_via = ["email"]"#)],
        expected: &["line 125: retention.dormancy.notice_via: a dormancy notice needs at least one channel"],
    },
    Case {
        name: "agents without an agent document",
        edits: &[Replace("agents = false", "agents = true")],
        expected: &[
            "line 164: rights.agent_document: when agents may act, name the document they must show (for example \
             a letter of attorney)",
        ],
    },
    // ---- Consent ----
    Case {
        name: "consent purpose without [consent]",
        edits: &[Delete(r#"consent = { mode = "opt_in", withdraw_via = ["email", "web_page"] }"#)],
        // The missing key is `consent`: reported at the purpose's header.
        expected: &["line 65: purposes[1].consent: a consent-based purpose needs a [consent] table with mode and \
             withdraw_via (no way to withdraw is given)"],
    },
    Case {
        name: "consent purpose with empty withdraw_via",
        edits: &[Replace(r#"withdraw_via = ["email", "web_page"]"#, "withdraw_via = []")],
        expected: &[
            "line 71: purposes[1].consent.withdraw_via: consent must be withdrawable: name at least one channel",
        ],
    },
    // ---- Collection points ----
    Case {
        name: "collection point without purpose",
        edits: &[Replace(
            r#"required = ["email", "date_of_birth"]
purposes = ["membership"]"#,
            r#"required = ["email", "date_of_birth"]
purposes = []"#,
        )],
        expected: &["line 93: collection_points[0].purposes: a collection point needs at least one purpose"],
    },
    Case {
        name: "item both required and optional",
        edits: &[After(r#"required = ["email", "date_of_birth"]"#, r#"optional = ["email"]"#)],
        expected: &[r#"line 93: collection_points[0].optional[0]: item "email" is both required and optional"#],
    },
    Case {
        name: "item that none of the point's purposes uses",
        edits: &[Replace(
            r#"required = ["email", "date_of_birth"]
purposes = ["membership"]"#,
            r#"required = ["email", "date_of_birth"]
purposes = ["newsletter"]"#,
        )],
        expected: &[
            r#"line 92: collection_points[0].required[1]: item "date_of_birth" is collected here but none of this point's purposes uses it"#,
        ],
    },
    Case {
        name: "age check without a required date item",
        edits: &[Replace(
            r#"required = ["email", "date_of_birth"]"#,
            r#"required = ["email"]
optional = ["date_of_birth"]"#,
        )],
        expected: &[
            "line 96: collection_points[0].age_check: an age check needs a required item of type date (the date \
             of birth)",
        ],
    },
    // ---- Ids, keywords, items ----
    Case {
        name: "invalid id",
        edits: &[Replace(r#"id = "contracts""#, r#"id = "Contracts""#)],
        expected: &[
            r#"line 136: record_classes[0].id: "Contracts" is not an id (lower-case letters, digits and '_', starting with a letter)"#,
        ],
    },
    Case {
        name: "invalid keyword",
        edits: &[Replace(r#"type = "email""#, r#"type = "emial""#)],
        // Only the one problem: the stand-in type must not be checked
        // against normal_form.
        expected: &[
            r#"line 50: items[0].type: "emial" is not one of text, email, phone, date, country, password, file, log, ip_address, cookie, device, record"#,
        ],
    },
    Case {
        name: "unique item without normal_form",
        edits: &[Delete(r#"normal_form = "email""#)],
        // The missing key is `normal_form`: reported at the item's header.
        expected: &[
            "line 46: items[0].normal_form: a unique identifier needs a normal_form (trim, email or e164) for its \
             blind index",
        ],
    },
    Case {
        name: "e164 normal form on an email item",
        edits: &[Replace(r#"normal_form = "email""#, r#"normal_form = "e164""#)],
        expected: &[
            r#"line 52: items[0].normal_form: normal form "e164" applies only to items of type phone, not email"#,
        ],
    },
    Case {
        name: "invalid country code",
        edits: &[Replace(
            r#"recipient = "Example Cloud"
country = "US""#,
            r#"recipient = "Example Cloud"
country = "USA""#,
        )],
        expected: &[r#"line 156: transfers[0].country: "USA" is not an ISO 3166-1 alpha-2 country code"#],
    },
    Case {
        name: "unassigned country code",
        edits: &[Replace(
            r#"recipient = "Example Cloud"
country = "US""#,
            r#"recipient = "Example Cloud"
country = "UK""#,
        )],
        expected: &[r#"line 156: transfers[0].country: "UK" is not an assigned ISO 3166-1 alpha-2 country code"#],
    },
    // ---- Cookies and records ----
    Case {
        name: "gpc opts out of a strictly necessary cookie category",
        edits: &[Replace(r#"gpc_opts_out = ["analytics"]"#, r#"gpc_opts_out = ["essential"]"#)],
        expected: &[
            r#"line 171: cookies.gpc_opts_out[0]: cookie category "essential" is strictly necessary and cannot be turned off"#,
        ],
    },
    Case {
        name: "record class read purpose without legal obligation",
        edits: &[Replace(r#"read_purpose = "statutory_retention""#, r#"read_purpose = "membership""#)],
        expected: &[
            r#"line 140: record_classes[0].read_purpose: purpose "membership" reads held records, so it must rest on a legal_obligation basis"#,
        ],
    },
    // ---- Several at once: all reported, in line order ----
    Case {
        name: "several problems",
        edits: &[
            Replace(
                r#"duty = "Hosting"
country = "US""#,
                r#"duty = "Hosting"
country = "us""#,
            ),
            Replace(r#"after = "30 days""#, r#"after = "0 days""#),
            After(
                r#"type = "date""#,
                r#"[[items]]
id = "phone"
name = "Phone"
category = "account"
type = "phone""#,
            ),
            Replace("effective_date = 2024-03-08", "effective_date = 2024-02-28"),
        ],
        expected: &[
            "line 11: policy.effective_date: the effective date 2024-02-28 is before the notice date 2024-03-01",
            r#"line 58: items[2]: item "phone" is used by no purpose"#,
            r#"line 128: retention.rules[0].after: "0 days": a span must be longer than zero"#,
            r#"line 156: processors[0].country: "us" is not an ISO 3166-1 alpha-2 country code"#,
        ],
    },
];

/// The minimal policy with a case's edits applied.
fn apply(case: &Case) -> String {
    let mut text = MINIMAL.to_owned();
    for edit in case.edits {
        text = match *edit {
            Replace(old, new) => {
                let found = text.matches(old).count();
                assert_eq!(found, 1, "case {:?}: {old:?} occurs {found} times, expected exactly once", case.name);
                text.replacen(old, new, 1)
            }
            After(anchor, lines) => edit_line(case, &text, anchor, Some(lines)),
            Delete(line) => edit_line(case, &text, line, None),
        };
    }
    text
}

/// Inserts `insert` after, or with `None` deletes, the one line equal to `anchor`.
fn edit_line(case: &Case, text: &str, anchor: &str, insert: Option<&str>) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let found = lines.iter().filter(|l| **l == anchor).count();
    assert_eq!(found, 1, "case {:?}: the line {anchor:?} occurs {found} times, expected exactly once", case.name);
    let mut out = Vec::with_capacity(lines.len() + 1);
    for line in lines {
        if line != anchor {
            out.push(line);
        } else if let Some(insert) = insert {
            out.push(line);
            out.push(insert);
        }
    }
    out.join("\n")
}

fn messages(err: &PolicyError) -> Vec<String> {
    err.problems.iter().map(ToString::to_string).collect()
}

fn parse_err(text: &str) -> Vec<String> {
    match policy::parse(text) {
        Ok(_) => Vec::new(),
        Err(err) => messages(&err),
    }
}

fn parse_bytes_err(bytes: &[u8]) -> PolicyError {
    match policy::parse_bytes(bytes) {
        Ok(_) => panic!("{} bytes of hostile input parsed as a valid policy", bytes.len()),
        Err(err) => err,
    }
}

/// Ok when the case reports exactly its expected problems, else the diff.
fn check(case: &Case) -> Result<(), String> {
    let actual = parse_err(&apply(case));
    if actual == case.expected {
        Ok(())
    } else {
        Err(format!("case {:?}\n  expected: {:#?}\n  actual:   {actual:#?}", case.name, case.expected))
    }
}

#[test]
fn cases_are_many_and_uniquely_named() {
    assert!(CASES.len() >= 25, "only {} cases", CASES.len());
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "case names must be unique");
}

#[test]
fn each_broken_policy_reports_exactly_its_problems() {
    let failures: Vec<String> = CASES.iter().filter_map(|c| check(c).err()).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn minimal_fixture_is_valid() {
    let policy = policy::parse(MINIMAL).unwrap_or_else(|e| panic!("minimal.toml: {:#?}", messages(&e)));
    // The notice-period case relies on the dates being exactly one notice
    // period apart.
    let notice = policy.amendments.as_ref().and_then(|a| a.notice).expect("minimal.toml states a notice period");
    assert_eq!(notice.to_string(), "7 days");
    assert_eq!(notice.after(policy.meta.notice_date), Ok(policy.meta.effective_date));
}

#[test]
fn shipped_policies_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Err(e) = policy::parse_bytes(&bytes) {
                panic!("{}: {:#?}", path.display(), messages(&e));
            }
            names.push(path.file_name().expect("a file name").to_string_lossy().into_owned());
        }
    }
    names.sort();
    for expected in ["bstage.toml", "example-eu.toml"] {
        assert!(names.iter().any(|n| n == expected), "{expected} not found in {}: {names:?}", dir.display());
    }
}

// ---- Robustness: hostile input ends in a clear error, never a panic ----

/// Deterministic xorshift64 bytes: the same input on every run.
fn pseudo_random_bytes(len: usize, mut state: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn assert_clear(err: &PolicyError, what: &str) {
    assert!(!err.problems.is_empty(), "{what}: an error without problems");
    for problem in &err.problems {
        assert!(!problem.message.trim().is_empty(), "{what}: a problem without a message: {problem:?}");
    }
}

#[test]
fn random_bytes_are_refused() {
    let bytes = pseudo_random_bytes(64 * 1024, 0x9E37_79B9_7F4A_7C15);
    let err = parse_bytes_err(&bytes);
    assert_clear(&err, "random bytes");
    assert!(messages(&err)[0].contains("not UTF-8"), "{:?}", messages(&err));
}

#[test]
fn random_toml_like_text_is_refused() {
    // The same random stream mapped onto characters TOML cares about, so the
    // input gets past the UTF-8 check into the TOML parser and the validator.
    const ALPHABET: &[u8] = b"[]{}=,.\"'#\n -_0123456789aeiopstxyz:TZ";
    for seed in 1..=16u64 {
        let text: Vec<u8> = pseudo_random_bytes(64 * 1024, seed.wrapping_mul(0x2545_F491_4F6C_DD1D))
            .into_iter()
            .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()])
            .collect();
        let err = parse_bytes_err(&text);
        assert_clear(&err, &format!("random TOML-like text, seed {seed}"));
    }
}

#[test]
fn oversized_file_is_refused_with_the_limit() {
    let mut text = String::from(MINIMAL);
    while text.len() <= MAX_POLICY_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding padding padding\n");
    }
    let expected = vec![format!(
        "(document): the file is {} bytes; policy files are limited to {MAX_POLICY_BYTES} bytes",
        text.len()
    )];
    assert_eq!(parse_err(&text), expected, "parse");
    assert_eq!(messages(&parse_bytes_err(text.as_bytes())), expected, "parse_bytes");
}

#[test]
fn deeply_nested_arrays_are_refused() {
    let text = format!("a = {}", "[".repeat(100_000));
    let expected = vec![format!("line 1: (document): arrays or inline tables are nested more than {MAX_NESTING} deep")];
    assert_eq!(parse_err(&text), expected);
}

#[test]
fn deeply_nested_inline_tables_are_refused() {
    let text = format!("a = {}1{}", "{ b = ".repeat(100_000), " }".repeat(100_000));
    let expected = vec![format!("line 1: (document): arrays or inline tables are nested more than {MAX_NESTING} deep")];
    assert_eq!(parse_err(&text), expected);
}

#[test]
fn deep_nesting_is_reported_on_its_line() {
    let text = format!("{MINIMAL}\n[extra]\nvalue = {}", "[".repeat(100_000));
    let line = MINIMAL.lines().count() + 3;
    let expected =
        vec![format!("line {line}: (document): arrays or inline tables are nested more than {MAX_NESTING} deep")];
    assert_eq!(parse_err(&text), expected);
}

#[test]
fn non_utf8_bytes_are_refused_with_their_line_and_offset() {
    let at = MINIMAL.find("Minimal Policy").expect("the title");
    let mut bytes = MINIMAL.as_bytes().to_vec();
    bytes.splice(at..at, [0xC0, 0xFF]);
    let expected = vec![format!("line 7: (document): the file is not UTF-8 text (invalid byte at offset {at})")];
    assert_eq!(messages(&parse_bytes_err(&bytes)), expected);
}

#[test]
fn empty_file_names_the_missing_table() {
    for text in ["", "\n\n", "# only a comment\n"] {
        assert_eq!(parse_err(text), ["line 1: (document): missing field `policy`"], "{text:?}");
    }
}
