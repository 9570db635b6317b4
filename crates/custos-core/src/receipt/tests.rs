//! Consent receipts against the Kantara Consent Receipt v1.1 JSON schema
//! (`shared/specs/kantara-consent-receipt-v1.1/schema.jsonc`, draft-04),
//! checked with `boon`: every consent-based purpose of both bundled policies,
//! granted and withdrawn; the specification's own example as a check of the
//! validator set-up; and receipts with a required field removed, which must
//! be refused.

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
