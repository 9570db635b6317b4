//! Cookie consent over HTTP: necessary categories always on and the others
//! off until chosen; choices recorded and read back; bad choices refused
//! with nothing written; Global Privacy Control honoured and recorded; the
//! GPC support resource and the embeddable script served; a visitor's
//! choices carried to the member at sign-in; the consent receipt of every
//! call that records something.

use serde_json::{Value, json};

use crate::kit::*;
use crate::peek::{Db, Peek, col};
use crate::support::TestApp;

const EXAMPLE_EU: &str = include_str!("../../../../policies/example-eu.toml");
const CONSENT: &str = "/v1/cookie-consent";
const MISSING_SUBJECT: &str = "sub_00000000000000000000000000000000";

/// `(id, granted, basis)` of every category of an answer.
fn shown(answer: &Value) -> Vec<(String, bool, String)> {
    answer["categories"]
        .as_array()
        .unwrap_or_else(|| panic!("no categories in {answer}"))
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["granted"].as_bool().unwrap(),
                c["basis"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expected(v: &[(&str, bool, &str)]) -> Vec<(String, bool, String)> {
    v.iter().map(|(c, g, b)| ((*c).to_owned(), *g, (*b).to_owned())).collect()
}

/// The rows of `cookie_consents`: `(visitor, subject, category, granted,
/// source, gpc)`, oldest first.
type Row = (String, Option<String>, String, bool, String, bool);

fn rows(app: &TestApp) -> Vec<Row> {
    let sql = "SELECT visitor_id, subject_id, category, granted, source, gpc FROM cookie_consents ORDER BY seq";
    Peek::of(app)
        .rows(Db::Data, sql, &[])
        .iter()
        .map(|r| (col(r, 0), col(r, 1), col(r, 2), col(r, 3), col(r, 4), col(r, 5)))
        .collect()
}

/// A choice as a visitor's browser sends it, with extra headers.
async fn choose(app: &TestApp, body: &Value, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    raw(app, "POST", CONSENT, &all, body.to_string().into_bytes()).await
}

async fn state_of(app: &TestApp, visitor: &str, headers: &[(&str, &str)]) -> Answer {
    raw(app, "GET", &format!("{CONSENT}?visitor={visitor}"), headers, Vec::new()).await
}

#[tokio::test]
async fn before_any_choice_only_the_necessary_category_is_on() {
    let app = TestApp::new("cookies-first-visit").await;
    let answer = raw(&app, "GET", CONSENT, &[], Vec::new()).await;
    let body = answer.expect(200);
    assert_eq!(body["visitor"], Value::Null, "a read issues no visitor id");
    assert_eq!(body["gpc"], false);
    assert_eq!(
        shown(body),
        expected(&[("required_for_operations", true, "necessary"), ("personalisation", false, "not_chosen")])
    );
    assert_eq!(body["categories"][0]["necessary"], true);
    assert_eq!(body["categories"][1]["name"], "Personalisation cookies");
    assert_eq!(answer.headers["access-control-allow-origin"], "*", "a banner on any site may call it");
    // A visitor id nobody issued reads the same, and is not written into being.
    let unknown = state_of(&app, "vis_0123456789abcdef0123456789abcdef", &[]).await;
    assert_eq!(shown(unknown.expect(200)), shown(body));
    assert!(rows(&app).is_empty());

    let preflight = raw(&app, "OPTIONS", CONSENT, &[("origin", "https://site.example")], Vec::new()).await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.headers["access-control-allow-origin"], "*");
    assert!(preflight.headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn a_choice_is_recorded_read_back_and_changed() {
    let app = TestApp::new("cookies-choice").await;
    let before = counts(&app).await;
    let granted = choose(&app, &json!({"choices": {"personalisation": true}}), &[]).await;
    let body = granted.expect(200).clone();
    let visitor = body["visitor"].as_str().unwrap().to_owned();
    assert!(visitor.starts_with("vis_") && visitor.len() == 36, "{visitor}");
    assert_eq!(
        shown(&body),
        expected(&[("required_for_operations", true, "necessary"), ("personalisation", true, "choice")])
    );
    assert_eq!(body["policy_version"], app.engine.policy().meta.version.as_str());
    let read = state_of(&app, &visitor, &[]).await;
    assert_eq!(shown(read.expect(200)), shown(&body));
    assert_eq!(read.body["visitor"], visitor.as_str());

    // Changed: one call, effective at once; a necessary category's `true`
    // changes nothing and is not recorded.
    let body = json!({"visitor": visitor, "choices": {"personalisation": false, "required_for_operations": true}});
    let withdrawn = choose(&app, &body, &[]).await;
    assert_eq!(withdrawn.expect(200)["categories"][1]["granted"], false);
    assert_eq!(withdrawn.body["visitor"], visitor.as_str(), "the same visitor");
    let rows = rows(&app);
    let kept: Vec<(&str, bool, &str)> = rows.iter().map(|r| (r.2.as_str(), r.3, r.4.as_str())).collect();
    assert_eq!(kept, [("personalisation", true, "choice"), ("personalisation", false, "choice")]);
    assert!(rows.iter().all(|r| r.0 == visitor && r.1.is_none() && !r.5));

    // Anonymous choices are not audited, and nothing else is written.
    assert_eq!(counts(&app).await, before.plus(&[("cookie_consents", 2)]));
    // Data minimisation: nothing about the visitor but the random id.
    let peek = Peek::of(&app);
    let columns: Vec<String> = if peek.is_postgres() {
        let sql = "SELECT column_name FROM information_schema.columns \
                   WHERE table_schema = 'custos' AND table_name = ?1 ORDER BY ordinal_position";
        peek.column(Db::Data, sql, &["cookie_consents".into()])
    } else {
        peek.column(Db::Data, "SELECT name FROM pragma_table_info('cookie_consents')", &[])
    };
    assert_eq!(
        columns,
        [
            "seq",
            "visitor_id",
            "subject_id",
            "category",
            "granted",
            "source",
            "gpc",
            "policy_version",
            "at",
            "linked_at"
        ]
    );
}

/// `(purposeCategory, consentType, purpose text)` of every purpose of a
/// receipt.
fn receipt_purposes(receipt: &Value) -> Vec<(String, String, String)> {
    let services = receipt["services"].as_array().unwrap_or_else(|| panic!("no services in {receipt}"));
    assert_eq!(services.len(), 1, "one service: {receipt}");
    services[0]["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["purposeCategory"].as_array().map(Vec::len), Some(1), "{p}");
            (
                p["purposeCategory"][0].as_str().unwrap().to_owned(),
                p["consentType"].as_str().unwrap().to_owned(),
                p["purpose"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_recorded_choice_answers_its_consent_receipt() {
    let app = app_with_policy("cookies-receipt", EXAMPLE_EU).await;
    let (ip, agent) = ("203.0.113.7", "Mozilla/5.0 (canary-agent)");
    let browser = [("user-agent", agent), ("x-forwarded-for", ip), ("x-real-ip", ip)];
    let policy = app.engine.policy();
    let policy_url = format!("urn:custos:policy:{}:{}", policy.meta.id, policy.meta.version);

    let first = json!({"choices": {"analytics": true, "marketing": false, "essential": true}});
    let answer = choose(&app, &first, &browser).await;
    let body = answer.expect(200).clone();
    answer.never_mentions(&[ip, agent]);
    let visitor = body["visitor"].as_str().unwrap().to_owned();
    let receipt = &body["receipt"];
    assert_eq!(receipt["version"], "KI-CR-v1.1.0");
    assert_eq!(receipt["piiPrincipalId"], visitor.as_str(), "the visitor id is the principal");
    assert_eq!(receipt["consentTimestamp"], crate::support::start_time().as_second());
    assert_eq!(receipt["policyUrl"], policy_url.as_str());
    assert_eq!(receipt["collectionMethod"], "cookie settings");
    assert_eq!(receipt["services"][0]["service"], policy.controller.service.as_str());
    let first_id = receipt["consentReceiptID"].as_str().unwrap().to_owned();
    assert!(first_id.starts_with("rcp_") && first_id.len() == 36, "{first_id}");
    // One purpose per category chosen; the strictly necessary one is always
    // on, takes no consent and is not recorded.
    assert_eq!(
        receipt_purposes(receipt),
        [
            ("analytics".into(), "EXPLICIT".into(), "Analytics. Count visits to example.org.".into()),
            (
                "marketing".into(),
                "EXPLICIT".into(),
                "Consent refused: Marketing. Measure our advertising campaigns.".into()
            ),
        ]
    );
    assert_eq!(receipt["services"][0]["purposes"][0]["termination"], "Until changed in the cookie settings.");
    let text = receipt.to_string();
    assert!(!text.contains(ip) && !text.contains(agent), "the receipt holds the IP or user agent: {text}");

    // A withdrawal says so, under a fresh receipt id.
    let again = json!({"visitor": visitor, "choices": {"analytics": false}});
    let answer = choose(&app, &again, &browser).await;
    let receipt = &answer.expect(200)["receipt"];
    answer.never_mentions(&[ip, agent]);
    assert_eq!(receipt["piiPrincipalId"], visitor.as_str());
    assert_ne!(receipt["consentReceiptID"], first_id.as_str(), "a fresh id per receipt");
    assert_eq!(
        receipt_purposes(receipt),
        [("analytics".into(), "EXPLICIT".into(), "Consent withdrawn: Analytics. Count visits to example.org.".into())]
    );
    assert_eq!(receipt["services"][0]["purposes"][0]["termination"], "Ended by this withdrawal.");

    // Under GPC: the choice, then the opt-out the signal records.
    let grant = json!({"visitor": visitor, "choices": {"marketing": true}});
    let answer = choose(&app, &grant, &[("sec-gpc", "1"), browser[0], browser[1]]).await;
    let receipt = &answer.expect(200)["receipt"];
    answer.never_mentions(&[ip, agent]);
    assert_eq!(receipt["collectionMethod"], "cookie settings, with a Global Privacy Control signal (Sec-GPC: 1)");
    let purposes = receipt_purposes(receipt);
    assert_eq!(
        purposes.iter().map(|p| (p.0.as_str(), p.1.as_str())).collect::<Vec<_>>(),
        [("marketing", "EXPLICIT"), ("marketing", "IMPLICIT")]
    );
    assert!(purposes[1].2.starts_with("Consent withdrawn by a Global Privacy Control signal: "), "{}", purposes[1].2);

    // A call that records nothing answers no receipt; nor does a read.
    for body in [json!({"visitor": visitor, "choices": {"essential": true}}), json!({"visitor": visitor}), json!({})] {
        let answer = choose(&app, &body, &browser).await;
        assert!(answer.expect(200).get("receipt").is_none(), "{body}: {}", answer.text);
    }
    assert!(state_of(&app, &visitor, &[]).await.expect(200).get("receipt").is_none());
    // A first visit with GPC records the signal's opt-out, and answers it.
    let answer = choose(&app, &json!({}), &[("sec-gpc", "1")]).await;
    let body = answer.expect(200);
    assert_eq!(body["receipt"]["piiPrincipalId"], body["visitor"]);
    let purposes = receipt_purposes(&body["receipt"]);
    assert_eq!(purposes.len(), 1);
    assert_eq!((purposes[0].0.as_str(), purposes[0].1.as_str()), ("marketing", "IMPLICIT"));
    assert!(purposes[0].2.starts_with("Consent refused by a Global Privacy Control signal: "), "{}", purposes[0].2);
}

#[tokio::test]
async fn refused_choices_are_precise_and_write_nothing() {
    let app = TestApp::new("cookies-refused").await;
    let visitor = choose(&app, &json!({"choices": {"personalisation": true}}), &[]).await.expect(200)["visitor"]
        .as_str()
        .unwrap()
        .to_owned();
    let many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("c{i}"), json!(true))).collect();
    type Case<'a> = (&'a str, Value, u16, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case<'_>> = vec![
        (
            "an unknown category, with a valid one",
            json!({"visitor": visitor, "choices": {"personalisation": false, "astrology": true}}),
            422,
            "invalid",
            vec![("choices.astrology", "unknown_item")],
        ),
        (
            "a necessary category turned off",
            json!({"choices": {"required_for_operations": false}}),
            422,
            "invalid",
            vec![("choices.required_for_operations", "not_allowed")],
        ),
        (
            "a key that is not a category id",
            json!({"choices": {"Tracking <script>": true}}),
            422,
            "invalid",
            vec![("choices", "invalid_format")],
        ),
        ("65 choices", json!({"choices": many}), 422, "invalid", vec![("choices", "too_long")]),
        (
            "a malformed visitor id",
            json!({"visitor": "vis_not-hex", "choices": {"personalisation": true}}),
            422,
            "invalid",
            vec![("visitor", "invalid_format")],
        ),
        (
            "an unknown field",
            json!({"choices": {}, "ip": "203.0.113.1"}),
            400,
            "bad_request",
            vec![("ip", "unknown_field")],
        ),
        ("a choice that is not a boolean", json!({"choices": {"personalisation": "yes"}}), 400, "bad_request", vec![]),
    ];
    let before = (rows(&app), counts(&app).await);
    for (case, body, status, code, errors) in cases {
        let answer = choose(&app, &body, &[]).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        answer.problem(status, code);
        if !errors.is_empty() {
            answer.only_fields(&errors);
        }
        answer.never_mentions(&["Tracking <script>", "203.0.113.1"]);
        assert_eq!((rows(&app), counts(&app).await), before, "{case} wrote something");
    }
    state_of(&app, "vis_not-hex", &[]).await.problem(422, "invalid").only_fields(&[("visitor", "invalid_format")]);
    // The visitor's choice is as it was.
    assert!(state_of(&app, &visitor, &[]).await.expect(200)["categories"][1]["granted"].as_bool().unwrap());
}

/// example-eu lists `marketing` in `gpc_opts_out` (b.stage lists none).
#[tokio::test]
async fn gpc_turns_the_listed_categories_off_even_after_a_grant_and_is_recorded() {
    let app = app_with_policy("cookies-gpc", EXAMPLE_EU).await;
    let gpc = [("sec-gpc", "1")];
    let all = json!({"choices": {"analytics": true, "marketing": true}});
    let body = choose(&app, &all, &[]).await.expect(200).clone();
    let visitor = body["visitor"].as_str().unwrap().to_owned();
    assert_eq!(
        shown(&body),
        expected(&[("essential", true, "necessary"), ("analytics", true, "choice"), ("marketing", true, "choice")])
    );
    assert_eq!(body["categories"][2]["gpc_opt_out"], true);
    assert_eq!(body["gpc_recorded"], false);

    // The signal overrides the grant, for the listed category only…
    let read = state_of(&app, &visitor, &gpc).await;
    let read = read.expect(200);
    assert_eq!(
        shown(read),
        expected(&[("essential", true, "necessary"), ("analytics", true, "choice"), ("marketing", false, "gpc")])
    );
    assert_eq!((read["gpc"].as_bool(), read["gpc_recorded"].as_bool()), (Some(true), Some(true)));
    // …and is recorded, once.
    let gpc_rows = |app: &TestApp| {
        rows(app).into_iter().filter(|r| r.4 == "gpc").map(|r| (r.0, r.2, r.3, r.5)).collect::<Vec<_>>()
    };
    assert_eq!(gpc_rows(&app), [(visitor.clone(), "marketing".to_owned(), false, true)]);
    state_of(&app, &visitor, &gpc).await.expect(200);
    assert_eq!(gpc_rows(&app).len(), 1, "a signal already recorded is not recorded again");

    // Without the signal the recorded opt-out still holds…
    let later = state_of(&app, &visitor, &[]).await;
    assert_eq!(shown(later.expect(200))[2], ("marketing".to_owned(), false, "gpc".to_owned()));
    assert_eq!(later.body["gpc"], false);
    assert_eq!(later.body["gpc_recorded"], true);
    // …a grant under the signal does not turn it on (and is recorded, with
    // the signal after it)…
    let again = json!({"visitor": visitor, "choices": {"marketing": true}});
    let answer = choose(&app, &again, &gpc).await;
    assert_eq!(shown(answer.expect(200))[2], ("marketing".to_owned(), false, "gpc".to_owned()));
    let last: Vec<(String, bool, String, bool)> =
        rows(&app).into_iter().rev().take(2).map(|r| (r.2, r.3, r.4, r.5)).collect();
    assert_eq!(
        last,
        [("marketing".into(), false, "gpc".into(), true), ("marketing".into(), true, "choice".into(), true)]
    );
    // …and a fresh choice without it counts again.
    let answer = choose(&app, &again, &[]).await;
    assert_eq!(shown(answer.expect(200))[2], ("marketing".to_owned(), true, "choice".to_owned()));

    // Only exactly "1" is the signal; of several fields, any "1" is.
    let answer = state_of(&app, &visitor, &[("sec-gpc", "0")]).await;
    assert_eq!(answer.expect(200)["gpc"], false);
    assert!(answer.body["categories"][2]["granted"].as_bool().unwrap());
    let answer = state_of(&app, &visitor, &[("sec-gpc", "0"), ("sec-gpc", "1")]).await;
    assert_eq!(answer.expect(200)["gpc"], true);
    assert!(!answer.body["categories"][2]["granted"].as_bool().unwrap());

    // A first visit with the signal: recorded for the new visitor.
    let first = choose(&app, &json!({}), &gpc).await;
    let fresh = first.expect(200)["visitor"].as_str().unwrap().to_owned();
    assert!(gpc_rows(&app).iter().any(|r| r.0 == fresh && r.1 == "marketing"));
}

#[tokio::test]
async fn the_gpc_support_resource_follows_the_policy() {
    for (name, policy, gpc) in [("eu", Some(EXAMPLE_EU), true), ("bstage", None, false)] {
        let app = match policy {
            Some(text) => app_with_policy(&format!("cookies-gpc-json-{name}"), text).await,
            None => TestApp::new("cookies-gpc-json-bstage").await,
        };
        let answer = raw(&app, "GET", "/.well-known/gpc.json", &[], Vec::new()).await;
        let body = answer.expect(200);
        let date = app.engine.policy().meta.effective_date.to_string();
        assert_eq!(body, &json!({"gpc": gpc, "lastUpdate": date}), "{name}");
        assert_eq!(date.len(), 10, "an RFC 3339 full-date: {date}");
    }
}

#[tokio::test]
async fn the_script_is_served_and_keeps_categories_inert_until_granted() {
    let app = TestApp::new("cookies-script").await;
    let answer = raw(&app, "GET", "/consent.js", &[], Vec::new()).await;
    assert_eq!(answer.status, 200);
    assert!(answer.content_type().starts_with("application/javascript"), "{}", answer.content_type());
    assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    for needle in [
        r#"script[type="text/plain"][data-custos-category]"#,
        "data-custos-category",
        "navigator.globalPrivacyControl",
        "window.custosConsent",
        "/v1/cookie-consent",
    ] {
        assert!(answer.text.contains(needle), "the script lacks {needle:?}");
    }
}

#[tokio::test]
async fn a_visitors_choices_follow_the_member_at_sign_in() {
    let app = TestApp::new("cookies-link").await;
    let service = new_service(&app, 1).await;
    let member = sign_up(&app, &app.key, &member_signup(&service)).await;
    let key = app.key_for(Some(&service), &["member_management"]).await;

    let visitor = choose(&app, &json!({"choices": {"personalisation": true}}), &[]).await.expect(200)["visitor"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = format!("/v1/subjects/{member}/cookie-consent");
    let linked = call(&app, "POST", &link, Some(&key), Some(&json!({"visitor": visitor}))).await;
    let body = linked.expect(200).clone();
    assert_eq!(body["linked"], 1);
    assert_eq!(body["consent"]["subject"], member.as_str());
    assert_eq!(shown(&body["consent"])[1], ("personalisation".to_owned(), true, "choice".to_owned()));
    let audited = newest_audit_entry(&app);
    assert_eq!(audited, ("cookie_consent_link".to_owned(), "1 cookie consent entries of a visitor linked".to_owned()));
    assert!(rows(&app).iter().all(|r| r.1.as_deref() == Some(member.as_str())));

    let read = call(&app, "GET", &link, Some(&key), None).await;
    let read = read.expect(200).clone();
    assert_eq!(shown(&read), shown(&body["consent"]));
    let history = read["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0]["category"].as_str(), history[0]["source"].as_str()),
        (Some("personalisation"), Some("choice"))
    );
    assert_eq!(newest_audit_entry(&app).0, "cookie_consent_read", "reading it is audited");

    // A later choice on the same browser stays the visitor's until the
    // member signs in again; linking twice links nothing twice.
    choose(&app, &json!({"visitor": visitor, "choices": {"personalisation": false}}), &[]).await.expect(200);
    assert!(
        call(&app, "GET", &link, Some(&key), None).await.expect(200)["categories"][1]["granted"].as_bool().unwrap()
    );
    let again = call(&app, "POST", &link, Some(&key), Some(&json!({"visitor": visitor}))).await;
    assert_eq!(again.expect(200)["linked"], 1);
    assert!(!again.body["consent"]["categories"][1]["granted"].as_bool().unwrap());
    let once_more = call(&app, "POST", &link, Some(&key), Some(&json!({"visitor": visitor}))).await;
    assert_eq!(once_more.expect(200)["linked"], 0);

    // Another service's key: the member is not there for it, exactly like a
    // missing one, and the refusal is audited.
    let other_service = new_service(&app, 2).await;
    let other = app.key_for(Some(&other_service), &["member_management"]).await;
    let missing = format!("/v1/subjects/{MISSING_SUBJECT}/cookie-consent");
    let before = rows(&app);
    for (method, body, operation) in
        [("POST", Some(json!({"visitor": visitor})), "consent"), ("GET", None, "consent_read")]
    {
        let counted = counts(&app).await;
        let foreign = call(&app, method, &link, Some(&other), body.as_ref()).await;
        foreign.problem(404, "not_found");
        let counted = assert_denial_audited(&app, &counted, operation, "not_found", "another service's key").await;
        let absent = call(&app, method, &missing, Some(&key), body.as_ref()).await;
        absent.problem(404, "not_found");
        assert_denial_audited(&app, &counted, operation, "not_found", "a missing member").await;
        assert_eq!((foreign.status, &foreign.body), (absent.status, &absent.body), "{method}: foreign looks missing");
    }
    assert_eq!(rows(&app), before, "nothing was linked by a refused call");
    call(&app, "POST", &link, None, Some(&json!({"visitor": visitor}))).await.problem(401, "unauthenticated");
    call(&app, "POST", &link, Some(&key), Some(&json!({"visitor": "not a visitor"})))
        .await
        .problem(422, "invalid")
        .only_fields(&[("visitor", "invalid_format")]);

    // The account is deleted: the choices stay the anonymous visitor's,
    // the link to the member goes with the member.
    call(&app, "DELETE", &format!("/v1/subjects/{member}"), Some(&app.key), None).await.expect(200);
    let after = rows(&app);
    assert_eq!(after.len(), before.len(), "the visitor's choices stay");
    assert!(after.iter().all(|r| r.1.is_none()), "no row names the deleted member: {after:?}");
    let state = state_of(&app, &visitor, &[]).await;
    assert!(!state.expect(200)["categories"][1]["granted"].as_bool().unwrap(), "the visitor's last choice stands");
}

/// Anyone may record a choice, so one address may only so often: the
/// writes share the one writer with every audited request.
#[tokio::test]
async fn anonymous_choices_are_limited_per_address() {
    let app = TestApp::new("cookies-flood").await;
    let body = json!({"choices": {"personalisation": true}});
    for n in 0..custos_engine::PER_ADDRESS_PUBLIC {
        assert_eq!(choose(&app, &body, &[]).await.status, 200, "choice {n}");
    }
    let refused = choose(&app, &body, &[]).await;
    refused.problem(429, "throttled");
    assert!(refused.headers.contains_key("retry-after"));
    app.clock.advance(jiff::SignedDuration::from_mins(15));
    assert_eq!(choose(&app, &body, &[]).await.status, 200, "the window slid");
}
