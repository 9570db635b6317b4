//! Provision and hand-over rules against the b.stage policy (and a variant
//! that names a recipient and processors with countries): every basis
//! accepted and refused, items outside a duty refused, transfers and their
//! bases.

use super::*;
use crate::policy::parse;

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");

fn bstage() -> Policy {
    parse(BSTAGE).expect("the bundled policy parses")
}

/// b.stage with a named recipient, a processor in Korea and one in Ireland.
fn variant() -> Policy {
    let extra = r#"
[[third_parties.recipients]]
id = "partner_shop"
name = "Partner Shop Ltd."
purposes = ["marketing"]
items = ["name", "email"]
country = "KR"

[[processors]]
id = "kr_mailer"
name = "KR Mailer Co."
duty = "Sending e-mail"
items = ["email"]
country = "KR"

[[processors]]
id = "ie_sms"
name = "IE SMS Ltd."
duty = "Sending SMS"
items = ["mobile_phone"]
country = "IE"
"#;
    parse(&format!("{BSTAGE}\n{extra}")).expect("the variant parses")
}

fn items(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn consent(purpose: &str) -> ConsentFacts {
    ConsentFacts { same_member: true, purpose: purpose.into(), granted: true, current: true }
}

fn ask<'a>(items: &'a [String], basis: &'a ProvisionBasis, consent: Option<&'a ConsentFacts>) -> ProvisionAsk<'a> {
    ProvisionAsk { recipient_id: None, items, basis, consent }
}

fn by_consent() -> ProvisionBasis {
    ProvisionBasis::Consent { consent_id: "con_1".into() }
}

#[test]
fn current_opt_in_consent_covering_the_items_grounds_a_provision() {
    let p = bstage();
    let wanted = items(&["name", "email"]);
    let c = consent("marketing");
    assert_eq!(check_provision(&p, &ask(&wanted, &by_consent(), Some(&c))), Ok(()));
}

#[test]
fn consent_withdrawn_missing_foreign_or_for_other_items_is_refused() {
    let p = bstage();
    let basis = by_consent();
    let wanted = items(&["email"]);
    let refused =
        |c: Option<&ConsentFacts>, wanted: &[String]| check_provision(&p, &ask(wanted, &basis, c)).unwrap_err();
    assert_eq!(refused(None, &wanted), vec![Refusal::ConsentMissing]);
    let other = ConsentFacts { same_member: false, ..consent("marketing") };
    assert_eq!(refused(Some(&other), &wanted), vec![Refusal::ConsentOtherMember]);
    let withdrawn = ConsentFacts { granted: false, ..consent("marketing") };
    assert_eq!(refused(Some(&withdrawn), &wanted), vec![Refusal::ConsentWithdrawn]);
    let superseded = ConsentFacts { current: false, ..consent("marketing") };
    assert_eq!(refused(Some(&superseded), &wanted), vec![Refusal::ConsentWithdrawn]);
    // Marketing covers no inquiry body.
    let wider = items(&["email", "inquiry_body"]);
    assert_eq!(refused(Some(&consent("marketing")), &wider), vec![Refusal::ConsentItem("inquiry_body".into())]);
    // A purpose that rests on the contract is no consent to a provision.
    assert_eq!(
        refused(Some(&consent("member_management")), &wanted),
        vec![Refusal::ConsentNotOptIn("member_management".into())]
    );
}

#[test]
fn legal_obligation_and_vital_interest_need_their_texts() {
    let p = bstage();
    let wanted = items(&["name", "mobile_phone"]);
    let legal = ProvisionBasis::LegalObligation {
        citation: "Criminal Procedure Act art. 215".into(),
        document: "warrant 2024-123".into(),
    };
    assert_eq!(check_provision(&p, &ask(&wanted, &legal, None)), Ok(()));
    let vital = ProvisionBasis::VitalInterest { justification: "missing-person report, police request".into() };
    assert_eq!(check_provision(&p, &ask(&wanted, &vital, None)), Ok(()));

    let bare = ProvisionBasis::LegalObligation { citation: " ".into(), document: String::new() };
    let got = check_provision(&p, &ask(&wanted, &bare, None)).unwrap_err();
    let fields: Vec<&str> = got.iter().map(Refusal::field).collect();
    assert_eq!(fields, ["basis.citation", "basis.document"]);
    let long = ProvisionBasis::VitalInterest { justification: "x".repeat(MAX_BASIS_TEXT + 1) };
    assert_eq!(check_provision(&p, &ask(&wanted, &long, None)).unwrap_err()[0].field(), "basis.justification");
}

#[test]
fn a_basis_the_policy_does_not_allow_or_no_third_parties_section_is_refused() {
    let mut p = bstage();
    let wanted = items(&["email"]);
    let legal = ProvisionBasis::LegalObligation { citation: "a".into(), document: "b".into() };
    p.third_parties.as_mut().unwrap().allowed_bases.retain(|b| *b != BasisKind::LegalObligation);
    assert_eq!(
        check_provision(&p, &ask(&wanted, &legal, None)),
        Err(vec![Refusal::BasisNotAllowed("legal_obligation".into())])
    );
    p.third_parties = None;
    assert_eq!(check_provision(&p, &ask(&wanted, &legal, None)), Err(vec![Refusal::NoProvisions]));
}

#[test]
fn items_must_exist_and_passwords_never_leave() {
    let p = bstage();
    let vital = ProvisionBasis::VitalInterest { justification: "j".into() };
    assert_eq!(check_provision(&p, &ask(&[], &vital, None)), Err(vec![Refusal::NoItems]));
    let wanted = items(&["password", "shoe_size"]);
    assert_eq!(
        check_provision(&p, &ask(&wanted, &vital, None)),
        Err(vec![Refusal::Secret("password".into()), Refusal::UnknownItem("shoe_size".into())])
    );
}

#[test]
fn a_named_recipient_receives_only_its_items_for_its_purposes() {
    let p = variant();
    let basis = by_consent();
    let c = consent("marketing");
    let wanted = items(&["email"]);
    let named = |id: &'static str, wanted: &'static [&'static str]| {
        let w = items(wanted);
        check_provision(&p, &ProvisionAsk { recipient_id: Some(id), items: &w, basis: &basis, consent: Some(&c) })
    };
    assert_eq!(named("partner_shop", &["email"]), Ok(()));
    assert_eq!(named("partner_shop", &["mobile_phone"]), Err(vec![Refusal::RecipientItem("mobile_phone".into())]));
    assert_eq!(named("nobody", &["email"]), Err(vec![Refusal::UnknownRecipient("nobody".into())]));
    // Leaving the id out does not skip the named recipients' rules: a
    // consent reaches only them. A legal obligation reaches anyone.
    assert_eq!(check_provision(&p, &ask(&wanted, &basis, Some(&c))), Err(vec![Refusal::RecipientRequired]));
    let legal = ProvisionBasis::LegalObligation { citation: "c".into(), document: "d".into() };
    assert_eq!(check_provision(&p, &ask(&wanted, &legal, None)), Ok(()));
}

#[test]
fn a_processor_gets_only_what_its_duty_covers() {
    let p = bstage();
    let plan = check_handover(&p, "cj_olivenetworks", &items(&["mobile_phone"]), None).unwrap();
    assert_eq!(plan.name, "CJ OliveNetworks Co., Ltd.");
    assert_eq!(plan.duty, "SMS text message services");
    assert_eq!(plan.transfer, None, "no country stated: not counted as abroad");
    assert_eq!(
        check_handover(&p, "cj_olivenetworks", &items(&["mobile_phone", "email"]), None),
        Err(vec![Refusal::Duty("email".into())])
    );
    // A duty that declares no items receives nothing.
    assert_eq!(check_handover(&p, "aws", &items(&["email"]), None), Err(vec![Refusal::Duty("email".into())]));
    assert_eq!(
        check_handover(&p, "acme", &items(&["email"]), None),
        Err(vec![Refusal::UnknownProcessor("acme".into())])
    );
    assert_eq!(
        check_handover(&p, "cj_olivenetworks", &items(&["password"]), None),
        Err(vec![Refusal::Secret("password".into()), Refusal::Duty("password".into())])
    );
}

#[test]
fn a_recipient_abroad_makes_a_transfer_with_the_policy_s_basis() {
    let p = bstage();
    // b.stage's transfer to bemyfriends Inc. in the US: abroad for a Korean
    // member, no mechanism stated, so the disclosure in the policy.
    let plan = check_handover(&p, "bemyfriends_inc_us", &items(&["email", "purchase_history"]), None).unwrap();
    assert_eq!(plan.country.as_ref().map(ToString::to_string).as_deref(), Some("US"));
    let basis = plan.transfer.expect("a transfer");
    assert_eq!(basis.kind, "disclosed");
    assert!(basis.description.contains("bemyfriends_inc_us"), "{basis:?}");
    assert_eq!(
        check_handover(&p, "bemyfriends_inc_us", &items(&["date_of_birth"]), None),
        Err(vec![Refusal::Duty("date_of_birth".into())])
    );

    let v = variant();
    // An EEA member's data going to Korea: the adequacy basis of annex A.
    let plan = check_handover(&v, "kr_mailer", &items(&["email"]), Some("eea_uk_ch")).unwrap();
    let basis = plan.transfer.expect("a transfer out of the EEA");
    assert_eq!(basis.kind, "adequacy");
    assert!(basis.description.contains("adequate protection"), "{basis:?}");
    // A Korean member's data going to Korea: no transfer.
    assert_eq!(check_handover(&v, "kr_mailer", &items(&["email"]), None).unwrap().transfer, None);
    // A Korean member's data going to Ireland: abroad, no mechanism stated.
    let ie = check_handover(&v, "ie_sms", &items(&["mobile_phone"]), Some("kr")).unwrap();
    assert_eq!(ie.transfer.map(|t| t.kind).as_deref(), Some("disclosed"));
    // An EEA member's data staying in Ireland: no transfer.
    assert_eq!(check_handover(&v, "ie_sms", &items(&["mobile_phone"]), Some("eea_uk_ch")).unwrap().transfer, None);
    // An EEA member's data going to the US: the adequacy decision covers
    // Korea, not the US.
    let us = check_handover(&v, "bemyfriends_inc_us", &items(&["email"]), Some("eea_uk_ch")).unwrap();
    assert_eq!(us.transfer.map(|t| t.kind).as_deref(), Some("disclosed"));
}
