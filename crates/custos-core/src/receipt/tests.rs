//! Consent receipts against the Kantara Consent Receipt v1.1 JSON schema
//! (`shared/specs/kantara-consent-receipt-v1.1/schema.jsonc`, draft-04),
//! checked with `boon`: every consent-based purpose of both bundled policies,
//! granted and withdrawn; the specification's own example as a check of the
//! validator set-up; and receipts with a required field removed, which must
//! be refused. Cookie receipts likewise: every cookie category of both
//! bundled policies granted, refused, withdrawn and opted out by Global
//! Privacy Control.

use serde_json::{Value, json};

use super::*;
use crate::policy::parse;

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");
const EXAMPLE_EU: &str = include_str!("../../../../policies/example-eu.toml");

const SPEC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/kantara-consent-receipt-v1.1");

fn read_spec(name: &str) -> String {
    let path = format!("{SPEC_DIR}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Removes `//` comments outside JSON strings (the schema's `$schema` URL
/// holds a `//` that must stay).
fn strip_line_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            while chars.next_if(|&n| n != '\n').is_some() {}
        } else {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new() -> Validator {
        let schema: Value = serde_json::from_str(&strip_line_comments(&read_spec("schema.jsonc")))
            .expect("the schema parses once its comments are stripped");
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#", "the URL survives stripping");
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V4);
        let url = "urn:kantara:consent-receipt:v1.1";
        compiler.add_resource(url, schema).expect("the schema is added");
        let index = compiler.compile(url, &mut schemas).expect("the schema compiles");
        Validator { schemas, index }
    }

    fn check(&self, instance: &Value) -> Result<(), String> {
        self.schemas.validate(instance, self.index).map_err(|e| format!("{e:#}"))
    }
}

fn policies() -> [(&'static str, Policy); 2] {
    [("bstage", parse(BSTAGE).expect("bstage parses")), ("example-eu", parse(EXAMPLE_EU).expect("example-eu parses"))]
}

fn facts<'a>(purpose: &'a str, granted: bool, notice_hash: Option<&'a str>) -> ReceiptFacts<'a> {
    ReceiptFacts {
        receipt_id: "0b7c8f6e-2d1a-4f3b-9c5e-7a6d4e3f2b1c",
        at: jiff::Timestamp::from_second(1_714_521_600).expect("a valid time"),
        subject: "sub_4f9a2c7e",
        purpose,
        granted,
        channel: "web",
        policy_url: "https://example.org/privacy/2024-05-01",
        notice_hash,
    }
}

fn receipt_json(policy: &Policy, facts: &ReceiptFacts<'_>) -> Value {
    let receipt = consent_receipt(policy, facts).expect("a receipt for a consent-based purpose");
    serde_json::to_value(&receipt).expect("a receipt serialises")
}

#[test]
fn strip_line_comments_keeps_slashes_inside_strings() {
    let text = "{ // note\n  \"a\": \"http://x/\\\"//y\", //2017\n  \"b\": 1\n}";
    let v: Value = serde_json::from_str(&strip_line_comments(text)).expect("parses");
    assert_eq!(v, json!({ "a": "http://x/\"//y", "b": 1 }));
}

#[test]
fn spec_example_is_valid() {
    let example: Value = serde_json::from_str(&read_spec("example.json")).expect("the example parses");
    Validator::new().check(&example).expect("the specification's example is valid");
}

#[test]
fn every_consent_purpose_gives_valid_receipts() {
    let validator = Validator::new();
    for (name, policy) in policies() {
        let consent_purposes: Vec<&str> =
            policy.purposes.iter().filter(|p| p.consent.is_some()).map(|p| p.id.as_str()).collect();
        assert!(!consent_purposes.is_empty(), "{name} has consent-based purposes");
        for purpose in consent_purposes {
            for granted in [true, false] {
                for hash in [None, Some("sha256:9f86d081884c7d659a2feaa0c55ad015")] {
                    let receipt = receipt_json(&policy, &facts(purpose, granted, hash));
                    if let Err(e) = validator.check(&receipt) {
                        panic!("{name}/{purpose} granted={granted}: invalid receipt: {e}\n{receipt:#}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_receipt_missing_a_required_field_is_refused() {
    let validator = Validator::new();
    let policy = parse(EXAMPLE_EU).expect("example-eu parses");
    let good = receipt_json(&policy, &facts("marketing", true, None));
    validator.check(&good).expect("the unchanged receipt is valid");

    let top = [
        "version",
        "jurisdiction",
        "consentTimestamp",
        "collectionMethod",
        "consentReceiptID",
        "piiPrincipalId",
        "piiControllers",
        "services",
        "policyUrl",
        "sensitive",
        "spiCat",
    ];
    for key in top {
        let mut bad = good.clone();
        bad.as_object_mut().expect("an object").remove(key).expect("the field is there");
        assert!(validator.check(&bad).is_err(), "a receipt without {key} was accepted");
    }
    for key in ["piiController", "contact", "address", "email", "phone"] {
        let mut bad = good.clone();
        bad["piiControllers"][0].as_object_mut().expect("an object").remove(key).expect("the field is there");
        assert!(validator.check(&bad).is_err(), "a controller without {key} was accepted");
    }
    for key in ["consentType", "purposeCategory", "piiCategory", "termination", "thirdPartyDisclosure"] {
        let mut bad = good.clone();
        bad["services"][0]["purposes"][0].as_object_mut().expect("an object").remove(key).expect("the field is there");
        assert!(validator.check(&bad).is_err(), "a purpose without {key} was accepted");
    }

    let mut bad = good.clone();
    bad["consentTimestamp"] = json!("2024-05-01T00:00:00Z");
    assert!(validator.check(&bad).is_err(), "a timestamp as text was accepted");
    let mut bad = good;
    bad["services"][0]["purposes"][0]["thirdPartyDisclosure"] = json!(true);
    assert!(validator.check(&bad).is_err(), "a disclosure without thirdPartyName was accepted");
}

#[test]
fn receipt_maps_the_policy() {
    let policy = parse(EXAMPLE_EU).expect("example-eu parses");
    let r = consent_receipt(&policy, &facts("training_insights", true, Some("sha256:abc"))).expect("a receipt");
    assert_eq!(r.version, "KI-CR-v1.1.0");
    assert_eq!(r.jurisdiction, "eu_eea");
    assert_eq!(r.language, "en");
    assert_eq!(r.consent_timestamp, 1_714_521_600);
    assert_eq!(r.collection_method, "web; notice sha256:abc");
    assert_eq!(r.pii_principal_id, "sub_4f9a2c7e");
    assert_eq!(r.public_key, None);
    let c = &r.pii_controllers[0];
    assert_eq!(c.pii_controller, "Pacefield Beispiel GmbH");
    assert_eq!(c.contact, "Data Protection Officer");
    assert_eq!(c.email, "privacy@example.org");
    assert_eq!(c.phone, NOT_STATED);
    assert_eq!(c.address.street_address.as_deref(), Some("Beispielstraße 1, 10115 Berlin, Germany"));
    assert_eq!(c.pii_controller_url.as_deref(), Some("https://example.org/privacy"));
    assert_eq!(r.services[0].service, "Pacefield");
    let p = &r.services[0].purposes[0];
    assert!(p.purpose.starts_with("Training insights based on your heart rate. If you switch it on"), "{}", p.purpose);
    assert_eq!(p.purpose_category, ["training_insights"]);
    assert_eq!(p.consent_type, "EXPLICIT");
    assert_eq!(p.pii_category, ["Health data", "Training activity", "Account data"]);
    assert!(!p.primary_purpose);
    assert_eq!(
        p.termination,
        "Until withdrawn; withdraw at any time via: Privacy settings in the app, E-mail to privacy@example.org."
    );
    assert!(!p.third_party_disclosure);
    assert_eq!(p.third_party_name, None);
    assert!(r.sensitive);
    assert_eq!(r.spi_cat, ["Health data"]);

    let marketing = consent_receipt(&policy, &facts("marketing", true, None)).expect("a receipt");
    assert!(!marketing.sensitive);
    assert!(marketing.spi_cat.is_empty());
    assert_eq!(marketing.collection_method, "web");

    let analytics = consent_receipt(&policy, &facts("product_analytics", true, None)).expect("a receipt");
    let p = &analytics.services[0].purposes[0];
    assert_eq!(p.consent_type, "IMPLICIT");
    assert_eq!(p.termination, "Until you opt out; opt out at any time via: Privacy settings in the app.");
}

#[test]
fn controller_contacts_fall_back_to_the_officer() {
    let policy = parse(BSTAGE).expect("bstage parses");
    let r = consent_receipt(&policy, &facts("marketing", true, None)).expect("a receipt");
    assert_eq!(r.jurisdiction, "kr");
    let c = &r.pii_controllers[0];
    assert_eq!(c.contact, "Information Security Team");
    assert_eq!(c.email, NOT_STATED);
    assert_eq!(c.phone, "1670-6010");
    assert_eq!(
        c.address.street_address.as_deref(),
        Some("bemyfriends inc., 840 Apollo St., Suite #100, El Segundo, CA 90245, USA")
    );
    assert_eq!(c.pii_controller_url, None);

    // With no contact, officer or address at all, every required field is still there.
    let mut bare = policy.clone();
    bare.controller.contacts.clear();
    bare.controller.address = None;
    bare.officer = None;
    let json = receipt_json(&bare, &facts("marketing", true, None));
    assert_eq!(json["piiControllers"][0]["contact"], NOT_STATED);
    assert_eq!(json["piiControllers"][0]["phone"], NOT_STATED);
    assert_eq!(json["piiControllers"][0]["address"], json!({}));
    Validator::new().check(&json).expect("valid without any contact");
}

#[test]
fn a_withdrawal_says_so() {
    let policy = parse(BSTAGE).expect("bstage parses");
    let grant = consent_receipt(&policy, &facts("marketing", true, None)).expect("a receipt");
    let withdrawal = consent_receipt(&policy, &facts("marketing", false, None)).expect("a receipt");
    let (g, w) = (&grant.services[0].purposes[0], &withdrawal.services[0].purposes[0]);
    assert_eq!(w.purpose, format!("Consent withdrawn: {}", g.purpose));
    assert_eq!(w.termination, "Ended by this withdrawal.");
    assert_eq!(w.consent_type, g.consent_type);
    assert_eq!(g.termination, "Until withdrawn; withdraw at any time via: Web page, E-mail.");
}

#[test]
fn a_disclosed_purpose_names_its_recipients() {
    let mut policy = parse(EXAMPLE_EU).expect("example-eu parses");
    let marketing = policy.purpose_by_str("marketing").expect("declared").id.clone();
    let recipients = &mut policy.third_parties.as_mut().expect("declared").recipients;
    recipients[0].purposes.push(marketing);
    let json = receipt_json(&policy, &facts("marketing", true, None));
    assert_eq!(json["services"][0]["purposes"][0]["thirdPartyDisclosure"], true);
    assert_eq!(json["services"][0]["purposes"][0]["thirdPartyName"], "Example Race Timing e.V.");
    Validator::new().check(&json).expect("valid with a disclosure");
}

#[test]
fn no_personal_data_leaks_into_a_receipt() {
    let policy = parse(EXAMPLE_EU).expect("example-eu parses");
    for granted in [true, false] {
        let json = receipt_json(&policy, &facts("training_insights", granted, None));
        let text = json.to_string();
        assert!(!text.contains("Erika"), "the officer's name is in the receipt: {text}");
        assert!(!text.contains("dpo@example.org"), "the officer's e-mail is in the receipt: {text}");
        assert_eq!(text.matches("sub_4f9a2c7e").count(), 1, "the subject id appears once");
    }
}

#[test]
fn unknown_and_non_consent_purposes_are_refused() {
    let policy = parse(EXAMPLE_EU).expect("example-eu parses");
    assert_eq!(
        consent_receipt(&policy, &facts("nope", true, None)),
        Err(ReceiptError::UnknownPurpose("nope".to_owned()))
    );
    assert_eq!(
        consent_receipt(&policy, &facts("account", true, None)),
        Err(ReceiptError::NotConsentBased("account".to_owned()))
    );
}

const VISITOR: &str = "vis_0123456789abcdef0123456789abcdef";

fn choice(category: &str, granted: bool, was_granted: bool, source: Source) -> CookieReceiptChoice<'_> {
    CookieReceiptChoice { category, granted, was_granted, source }
}

fn cookie_facts<'a>(choices: &'a [CookieReceiptChoice<'a>], gpc: bool) -> CookieReceiptFacts<'a> {
    CookieReceiptFacts {
        receipt_id: "rcp_7a6d4e3f2b1c0b7c8f6e2d1a4f3b9c5e",
        at: jiff::Timestamp::from_second(1_714_521_600).expect("a valid time"),
        principal: VISITOR,
        choices,
        gpc,
        policy_url: "urn:custos:policy:example:2024-05-01",
    }
}

fn cookie_json(policy: &Policy, facts: &CookieReceiptFacts<'_>) -> Value {
    let receipt = cookie_receipt(policy, facts).expect("a cookie receipt");
    serde_json::to_value(&receipt).expect("a receipt serialises")
}

#[test]
fn every_cookie_choice_gives_valid_receipts() {
    use crate::cookies::Source::{Choice, Gpc};
    let validator = Validator::new();
    for (name, policy) in policies() {
        let cookies = policy.cookies.as_ref().expect("both bundled policies declare cookies");
        let mut all = Vec::new();
        for category in &cookies.categories {
            let id = category.id.as_str();
            let mut cases = vec![choice(id, true, false, Choice)];
            if !category.necessary {
                cases.extend([
                    choice(id, false, false, Choice),
                    choice(id, false, true, Choice),
                    choice(id, false, false, Gpc),
                    choice(id, false, true, Gpc),
                ]);
            }
            for case in cases {
                all.push(case);
                for gpc in [false, true] {
                    let receipt = cookie_json(&policy, &cookie_facts(&[case], gpc));
                    if let Err(e) = validator.check(&receipt) {
                        panic!("{name}/{case:?} gpc={gpc}: invalid receipt: {e}\n{receipt:#}");
                    }
                    assert_eq!(receipt["services"][0]["purposes"].as_array().map(Vec::len), Some(1));
                }
            }
        }
        let receipt = cookie_json(&policy, &cookie_facts(&all, true));
        validator.check(&receipt).unwrap_or_else(|e| panic!("{name}: every entry in one receipt: {e}"));
        assert_eq!(receipt["services"][0]["purposes"].as_array().map(Vec::len), Some(all.len()));
    }
}

#[test]
fn a_cookie_receipt_missing_a_required_field_is_refused() {
    use crate::cookies::Source::Choice;
    let validator = Validator::new();
    let policy = parse(EXAMPLE_EU).expect("example-eu parses");
    let choices = [choice("analytics", true, false, Choice), choice("marketing", false, false, Choice)];
    let good = cookie_json(&policy, &cookie_facts(&choices, false));
    validator.check(&good).expect("the unchanged receipt is valid");
    for key in ["piiPrincipalId", "consentReceiptID", "services", "collectionMethod"] {
        let mut bad = good.clone();
        bad.as_object_mut().expect("an object").remove(key).expect("the field is there");
        assert!(validator.check(&bad).is_err(), "a cookie receipt without {key} was accepted");
    }
    for key in ["consentType", "purposeCategory", "piiCategory", "termination", "thirdPartyDisclosure"] {
        let mut bad = good.clone();
        bad["services"][0]["purposes"][1].as_object_mut().expect("an object").remove(key).expect("the field is there");
        assert!(validator.check(&bad).is_err(), "a cookie purpose without {key} was accepted");
    }
    let mut bad = good;
    bad["services"][0]["purposes"][0]["purposeCategory"] = json!("analytics");
    assert!(validator.check(&bad).is_err(), "a purposeCategory that is not a list was accepted");
}

#[test]
fn cookie_receipt_maps_the_policy() {
    use crate::cookies::Source::{Choice, Gpc};
    let policy = parse(EXAMPLE_EU).expect("example-eu parses");
    let choices = [
        choice("essential", true, false, Choice),
        choice("analytics", true, false, Choice),
        choice("marketing", false, true, Gpc),
    ];
    let r = cookie_receipt(&policy, &cookie_facts(&choices, true)).expect("a receipt");
    assert_eq!(r.version, "KI-CR-v1.1.0");
    assert_eq!(r.jurisdiction, "eu_eea");
    assert_eq!(r.language, "en");
    assert_eq!(r.consent_timestamp, 1_714_521_600);
    assert_eq!(r.consent_receipt_id, "rcp_7a6d4e3f2b1c0b7c8f6e2d1a4f3b9c5e");
    assert_eq!(r.pii_principal_id, VISITOR);
    assert_eq!(r.policy_url, "urn:custos:policy:example:2024-05-01");
    assert_eq!(r.collection_method, "cookie settings, with a Global Privacy Control signal (Sec-GPC: 1)");
    assert_eq!(r.pii_controllers[0].pii_controller, "Pacefield Beispiel GmbH");
    assert_eq!(r.services.len(), 1);
    assert_eq!(r.services[0].service, "Pacefield");
    assert!(!r.sensitive);
    assert!(r.spi_cat.is_empty());
    let [essential, analytics, marketing] = &r.services[0].purposes[..] else {
        panic!("one purpose per entry: {:?}", r.services[0].purposes)
    };
    assert_eq!(essential.purpose, "Essential. Keep you signed in and remember your cookie choices.");
    assert_eq!(essential.purpose_category, ["essential"]);
    assert!(essential.primary_purpose, "a strictly necessary category is the primary purpose");
    assert_eq!(analytics.purpose, "Analytics. Count visits to example.org.");
    assert_eq!(analytics.purpose_category, ["analytics"]);
    assert_eq!(analytics.consent_type, "EXPLICIT");
    assert_eq!(analytics.pii_category, ["Technical data"]);
    assert!(!analytics.primary_purpose);
    assert_eq!(analytics.termination, "Until changed in the cookie settings.");
    assert!(!analytics.third_party_disclosure);
    assert_eq!(analytics.third_party_name, None);
    assert_eq!(
        marketing.purpose,
        "Consent withdrawn by a Global Privacy Control signal: Marketing. Measure our advertising campaigns."
    );
    assert_eq!(marketing.consent_type, "IMPLICIT", "no one clicked: the signal opted out");
    assert_eq!(
        marketing.termination,
        "Ended by this signal; off until a new choice in the cookie settings made without the signal."
    );

    let plain = cookie_receipt(&policy, &cookie_facts(&choices[1..2], false)).expect("a receipt");
    assert_eq!(plain.collection_method, "cookie settings");
}

#[test]
fn a_cookie_refusal_and_a_withdrawal_say_so() {
    use crate::cookies::Source::{Choice, Gpc};
    let policy = parse(BSTAGE).expect("bstage parses");
    let purpose = |c: CookieReceiptChoice<'_>| {
        let r = cookie_receipt(&policy, &cookie_facts(&[c], false)).expect("a receipt");
        r.services[0].purposes[0].clone()
    };
    let grant = purpose(choice("personalisation", true, false, Choice));
    assert!(grant.purpose.starts_with("Personalisation cookies. Stores and frequently retrieves"), "{}", grant.purpose);
    assert_eq!(grant.pii_category, ["Technical data"]);
    assert_eq!(grant.consent_type, "EXPLICIT");
    let refusal = purpose(choice("personalisation", false, false, Choice));
    assert_eq!(refusal.purpose, format!("Consent refused: {}", grant.purpose));
    assert_eq!(refusal.termination, "Not given: refused by this choice; it can be given in the cookie settings.");
    assert_eq!(refusal.consent_type, "EXPLICIT");
    let withdrawal = purpose(choice("personalisation", false, true, Choice));
    assert_eq!(withdrawal.purpose, format!("Consent withdrawn: {}", grant.purpose));
    assert_eq!(withdrawal.termination, "Ended by this withdrawal.", "as a withdrawal on the consent ledger");
    let signal = purpose(choice("personalisation", false, false, Gpc));
    assert_eq!(signal.purpose, format!("Consent refused by a Global Privacy Control signal: {}", grant.purpose));
    assert_eq!(signal.consent_type, "IMPLICIT");
}

#[test]
fn cookie_items_and_their_recipients_shape_the_receipt() {
    use crate::cookies::Source::Choice;
    let validator = Validator::new();
    let choices = [choice("analytics", true, false, Choice)];

    // A recipient of a cookie item: disclosed, for every category.
    let mut policy = parse(EXAMPLE_EU).expect("example-eu parses");
    let cookie_id = policy.items.iter().find(|i| i.kind == ItemType::Cookie).expect("a cookie item").id.clone();
    policy.third_parties.as_mut().expect("declared").recipients[0].items.push(cookie_id);
    let json = cookie_json(&policy, &cookie_facts(&choices, false));
    assert_eq!(json["services"][0]["purposes"][0]["thirdPartyDisclosure"], true);
    assert_eq!(json["services"][0]["purposes"][0]["thirdPartyName"], "Example Race Timing e.V.");
    validator.check(&json).expect("valid with a disclosure");

    // No item of type cookie: the category is named by the type.
    let mut policy = parse(EXAMPLE_EU).expect("example-eu parses");
    for item in policy.items.iter_mut().filter(|i| i.kind == ItemType::Cookie) {
        item.kind = ItemType::Record;
    }
    let json = cookie_json(&policy, &cookie_facts(&choices, false));
    assert_eq!(json["services"][0]["purposes"][0]["piiCategory"], json!(["cookie"]));
    validator.check(&json).expect("valid without cookie items");
}

#[test]
fn no_personal_data_leaks_into_a_cookie_receipt() {
    use crate::cookies::Source::{Choice, Gpc};
    let policy = parse(EXAMPLE_EU).expect("example-eu parses");
    let choices = [choice("analytics", true, false, Choice), choice("marketing", false, false, Gpc)];
    let text = cookie_json(&policy, &cookie_facts(&choices, true)).to_string();
    assert!(!text.contains("Erika"), "the officer's name is in the receipt: {text}");
    assert!(!text.contains("dpo@example.org"), "the officer's e-mail is in the receipt: {text}");
    assert_eq!(text.matches(VISITOR).count(), 1, "the visitor id appears once");
}

#[test]
fn cookie_receipts_without_cookies_or_with_unknown_categories_are_refused() {
    use crate::cookies::Source::Choice;
    let policy = parse(EXAMPLE_EU).expect("example-eu parses");
    let unknown = [choice("analytics", true, false, Choice), choice("astrology", true, false, Choice)];
    assert_eq!(
        cookie_receipt(&policy, &cookie_facts(&unknown, false)),
        Err(ReceiptError::UnknownCookieCategory("astrology".to_owned()))
    );
    // A purpose id is not a cookie category.
    let purpose = [choice("training_insights", true, false, Choice)];
    assert_eq!(
        cookie_receipt(&policy, &cookie_facts(&purpose, false)),
        Err(ReceiptError::UnknownCookieCategory("training_insights".to_owned()))
    );
    assert_eq!(cookie_receipt(&policy, &cookie_facts(&[], true)), Err(ReceiptError::NoCookieChoices));
    let mut bare = policy;
    bare.cookies = None;
    assert_eq!(cookie_receipt(&bare, &cookie_facts(&unknown[..1], false)), Err(ReceiptError::NoCookies));
}
