//! `/v1/subjects` and `/v1/lookup` in-process: sign-up, purpose-bound reads,
//! look-ups, correction, activity and lists, each with its bad inputs.
//!
//! Every refused request is checked four ways: its status, that it is
//! `application/problem+json` with the right `type` and `errors[]`, that no
//! submitted personal value comes back in it, and what it wrote (row counts
//! of the store and `custos_audit_entries` of `/metrics`). A refusal of the
//! access decision (no such subject, another service, a purpose unknown or
//! not the key's, items outside the purpose) writes exactly one audit entry,
//! `denied: <code>`, and nothing else; a request refused for its body or
//! query (a validation error) changes nothing at all.
//!
//! The request and assertion helpers live in `kit.rs`, shared by the other
//! `http_*` files.

use serde_json::{Value, json};

use custos_server::config::BUNDLED_POLICY;

use crate::kit::*;
use crate::support::TestApp;

const EMAIL: &str = "Hong.Gildong@Example.com";
const PHONE: &str = "+82 10 1234 5678";

fn read_path(id: &str, purpose: &str) -> String {
    format!("/v1/subjects/{id}?purpose={purpose}")
}

fn lookup(item: &str, value: &str, purpose: &str) -> Value {
    json!({"item": item, "value": value, "purpose": purpose})
}

// --- sign-up ---------------------------------------------------------------

#[tokio::test]
async fn sign_up_of_a_business_operator_answers_201_without_personal_data() {
    let app = TestApp::new("subjects-signup").await;
    let before = counts(&app).await;
    let body = operator_signup(EMAIL, PHONE);
    let answer = call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&body)).await;
    let created = answer.expect(201);
    let keys: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["created_at", "id", "kind", "service", "status"]);
    assert!(created["id"].as_str().unwrap().starts_with("sub_"));
    assert_eq!(created["service"], Value::Null);
    assert_eq!(created["kind"], "business_operator");
    assert_eq!(created["status"], "active");
    assert_eq!(created["created_at"], "2024-06-01T00:00:00Z");
    answer.never_mentions(&personal_values(&body));
    answer.never_mentions(&["+821012345678", "hong.gildong@example.com"]);
    // One subject, its four items, two blind indexes, one profile key, one
    // audit entry.
    let expected = before.plus(&[("subjects", 1), ("items", 4), ("blind_index", 2), ("data_keys", 1), ("audit", 1)]);
    assert_eq!(counts(&app).await, expected);
}

#[tokio::test]
async fn members_of_a_service_sign_up_through_automatic_generation() {
    let app = TestApp::new("subjects-members").await;
    let (svc_a, svc_b) = (new_service(&app, 1).await, new_service(&app, 2).await);
    let key_a = app.key_for(Some(&svc_a), &["member_management"]).await;

    // b.stage declares no sign-up point for `service_member`: a member is
    // created by the items generated while it uses the service.
    let answer = call(&app, "POST", "/v1/subjects", Some(&key_a), Some(&member_signup(&svc_a))).await;
    let created = answer.expect(201);
    assert_eq!(created["service"], svc_a.as_str());
    assert_eq!(created["kind"], "service_member");
    answer.never_mentions(&["203.0.113.7", "Pixel 8"]);
    // The platform key may create members of any service.
    sign_up(&app, &app.key, &member_signup(&svc_b)).await;

    let before = counts(&app).await;
    // A service key cannot reach another service: the same 404 as no service.
    call(&app, "POST", "/v1/subjects", Some(&key_a), Some(&member_signup(&svc_b))).await.problem(404, "not_found");
    let before = assert_denial_audited(&app, &before, "collect", "not_found", "a member of another service").await;
    // A service that does not exist is found missing in the write itself,
    // not by the access decision (the platform key reaches every service).
    call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&member_signup("svc_00000000000000000000000000000000")))
        .await
        .problem(404, "not_found");
    assert_eq!(counts(&app).await, before, "a member of no service");
    // Nor create platform subjects.
    call(&app, "POST", "/v1/subjects", Some(&key_a), Some(&operator_signup(EMAIL, PHONE)))
        .await
        .problem(403, "forbidden")
        .never_mentions(&[EMAIL]);
    let before = assert_denial_audited(&app, &before, "collect", "forbidden", "a platform subject").await;

    let mut no_service = member_signup(&svc_a);
    no_service.as_object_mut().unwrap().remove("service");
    call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&no_service))
        .await
        .problem(422, "invalid")
        .only_fields(&[("service", "missing_required")]);

    let mut operator_in_service = operator_signup(EMAIL, PHONE);
    operator_in_service["service"] = json!(svc_a);
    call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&operator_in_service))
        .await
        .problem(422, "invalid")
        .only_fields(&[("service", "not_allowed")])
        .never_mentions(&[EMAIL]);

    // An e-mail is not collected from members at that point.
    let mut with_email = member_signup(&svc_a);
    with_email["items"]["email"] = json!("fan@example.com");
    call(&app, "POST", "/v1/subjects", Some(&key_a), Some(&with_email))
        .await
        .problem(422, "invalid")
        .only_fields(&[("items.email", "not_collected_here")])
        .never_mentions(&["fan@example.com"]);
    assert_eq!(counts(&app).await, before);
}

/// One bad sign-up: what to change in a good one, and the error expected.
struct BadSignUp {
    case: &'static str,
    edit: fn(&mut Value),
    errors: &'static [(&'static str, &'static str)],
}

#[tokio::test]
async fn refused_sign_ups_name_the_field_and_change_nothing() {
    let cases = [
        BadSignUp {
            case: "unknown item",
            edit: |b| b["items"]["favourite_colour"] = json!("ultramarine blue"),
            errors: &[("items.favourite_colour", "unknown_item")],
        },
        BadSignUp {
            case: "item declared but not collected at this point",
            edit: |b| b["items"]["date_of_birth"] = json!("1990-04-05"),
            errors: &[("items.date_of_birth", "not_collected_here")],
        },
        BadSignUp {
            case: "missing required item",
            edit: |b| drop(b["items"].as_object_mut().unwrap().remove("password")),
            errors: &[("items.password", "missing_required")],
        },
        BadSignUp {
            case: "malformed e-mail",
            edit: |b| b["items"]["email"] = json!("hong.gildong-at-example.com"),
            errors: &[("items.email", "invalid_format")],
        },
        BadSignUp {
            case: "e-mail with a display name",
            edit: |b| b["items"]["email"] = json!("Hong <hong.gildong@example.com>"),
            errors: &[("items.email", "invalid_format")],
        },
        BadSignUp {
            case: "phone with letters",
            edit: |b| b["items"]["mobile_phone"] = json!("010-1234-CALL"),
            errors: &[("items.mobile_phone", "invalid_format")],
        },
        BadSignUp {
            case: "phone too short to be a number",
            edit: |b| b["items"]["mobile_phone"] = json!("+82 10 12"),
            errors: &[("items.mobile_phone", "invalid_format")],
        },
        BadSignUp {
            case: "blank name",
            edit: |b| b["items"]["name"] = json!("    "),
            errors: &[("items.name", "empty")],
        },
        BadSignUp {
            case: "short password",
            edit: |b| b["items"]["password"] = json!("hunter2"),
            errors: &[("items.password", "too_short")],
        },
        BadSignUp {
            case: "several problems at once",
            edit: |b| {
                b["items"]["email"] = json!("nobody-at-all");
                b["items"].as_object_mut().unwrap().remove("name");
            },
            errors: &[("items.email", "invalid_format"), ("items.name", "missing_required")],
        },
        BadSignUp {
            case: "unknown collection point",
            edit: |b| b["collection_point"] = json!("newsletter_form"),
            errors: &[("collection_point", "unknown_collection_point")],
        },
        BadSignUp {
            case: "unknown kind",
            edit: |b| b["kind"] = json!("robot"),
            errors: &[("kind", "unknown_subject_kind")],
        },
        BadSignUp {
            case: "source the point does not take",
            edit: |b| b["source"] = json!("generated"),
            errors: &[("source", "not_allowed")],
        },
        BadSignUp {
            case: "consent to a purpose that needs none",
            edit: |b| b["consents"] = json!(["member_management"]),
            errors: &[("consents[0]", "not_allowed")],
        },
        BadSignUp {
            case: "consent to an unknown purpose",
            edit: |b| b["consents"] = json!(["marketing", "profiling"]),
            errors: &[("consents[1]", "not_allowed")],
        },
    ];
    let app = TestApp::new("subjects-bad-signup").await;
    let before = counts(&app).await;
    for case in cases {
        let mut body = operator_signup(EMAIL, PHONE);
        (case.edit)(&mut body);
        let answer = call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&body)).await;
        assert_eq!(answer.status, 422, "{}: {}", case.case, answer.text);
        answer.problem(422, "invalid").only_fields(case.errors).never_mentions(&personal_values(&body));
        assert_eq!(counts(&app).await, before, "{} changed something", case.case);
    }
    // The messages say what was expected.
    let mut body = operator_signup("hong.gildong-at-example.com", PHONE);
    body["items"]["date_of_birth"] = json!("1990-04-05");
    let answer = call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&body)).await;
    assert_eq!(answer.message("items.email"), r#"item "email" must be an e-mail address of the form name@example.com"#);
    assert!(answer.message("items.date_of_birth").contains("business_operator_signup"), "{}", answer.text);
    assert_eq!(answer.body["detail"], "2 problems");
}

#[tokio::test]
async fn a_repeated_item_in_the_json_object_is_refused_not_collapsed() {
    let app = TestApp::new("subjects-duplicate-key").await;
    let before = counts(&app).await;
    let body =
        br#"{"kind": "business_operator", "collection_point": "business_operator_signup", "source": "direct_entry",
        "items": {"name": "Hong Gildong", "email": "first.address@example.com", "email": "second.address@example.com",
                  "mobile_phone": "+82 10 1234 5678", "password": "correct horse battery"}}"#;
    let answer = raw(
        &app,
        "POST",
        "/v1/subjects",
        &[("authorization", &format!("Bearer {}", app.key)), ("content-type", "application/json")],
        body.to_vec(),
    )
    .await;
    answer
        .problem(422, "invalid")
        .only_fields(&[("items.email", "duplicate_item")])
        .never_mentions(&["first.address", "second.address"]);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn errors_name_the_fields_of_the_request() {
    let app = TestApp::new("subjects-field-names").await;
    let before = counts(&app).await;
    let mut wrong_kind = operator_signup(EMAIL, PHONE);
    wrong_kind["kind"] = json!("non_business_operator");
    call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&wrong_kind))
        .await
        .problem(422, "invalid")
        .only_fields(&[("kind", "wrong_subject_kind")]);
    let body = lookup("email", "hong.gildong-at-example", "member_management");
    call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&body))
        .await
        .problem(422, "invalid")
        .only_fields(&[("value", "invalid_format")])
        .never_mentions(&["hong.gildong-at-example"]);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn a_taken_email_or_phone_on_the_platform_is_409_and_changes_nothing() {
    let app = TestApp::new("subjects-taken").await;
    let first = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let before = counts(&app).await;
    let cases = [
        (
            "same e-mail, other case and spaces",
            operator_signup("  HONG.GILDONG@example.COM ", "+82 10 9999 0000"),
            "email",
        ),
        ("same e-mail, other operator kind", individual_signup(EMAIL, "+82 10 9999 0000"), "email"),
        ("same phone, other format", operator_signup("someone.else@example.com", "010-1234-5678"), "mobile_phone"),
    ];
    for (case, body, item) in cases {
        let answer = call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&body)).await;
        assert_eq!(answer.status, 409, "{case}: {}", answer.text);
        answer.problem(409, "conflict").never_mentions(&personal_values(&body)).never_mentions(&["+821012345678"]);
        assert_eq!(answer.body["detail"], format!("a subject with this {item} is already registered here"), "{case}");
        assert_eq!(counts(&app).await, before, "{case} changed something");
    }
    // The first subject is untouched.
    let read = call(&app, "GET", &read_path(&first, "member_management"), Some(&app.key), None).await;
    assert_eq!(read.expect(200)["items"]["email"], "hong.gildong@example.com");
}

/// b.stage collects no e-mail from members of a service, so the per-service
/// scope of unique items is shown with b.stage plus one sign-up point for
/// members that takes an e-mail address.
#[tokio::test]
async fn an_email_is_unique_within_a_service_not_across_services() {
    let app = app_with_policy("subjects-email-scope", &format!("{BUNDLED_POLICY}\n{FINDABLE_MEMBERS}")).await;
    let (svc_a, svc_b) = (new_service(&app, 1).await, new_service(&app, 2).await);
    let fan = |service: &str| {
        json!({
            "service": service, "kind": "service_member", "collection_point": "service_member_signup",
            "source": "direct_entry", "items": {"email": "fan@example.com"}
        })
    };
    let in_a = sign_up(&app, &app.key, &fan(&svc_a)).await;
    let key_b = app.key_for(Some(&svc_b), &["member_management"]).await;
    let in_b = sign_up(&app, &key_b, &fan(&svc_b)).await;
    assert_ne!(in_a, in_b);

    let before = counts(&app).await;
    call(&app, "POST", "/v1/subjects", Some(&key_b), Some(&fan(&svc_b)))
        .await
        .problem(409, "conflict")
        .never_mentions(&["fan@example.com"]);
    assert_eq!(counts(&app).await, before);

    // Each service's look-up finds its own member; the platform's none.
    let found = |service: Option<&str>| {
        let mut body = lookup("email", "FAN@example.com", "member_management");
        if let Some(s) = service {
            body["service"] = json!(s);
        }
        body
    };
    let a = call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&found(Some(&svc_a)))).await;
    assert_eq!(a.expect(200)["id"], in_a.as_str());
    let b = call(&app, "POST", "/v1/lookup", Some(&key_b), Some(&found(Some(&svc_b)))).await;
    assert_eq!(b.expect(200)["id"], in_b.as_str());
    call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&found(None))).await.problem(404, "not_found");
    // Service B's key cannot look into service A.
    call(&app, "POST", "/v1/lookup", Some(&key_b), Some(&found(Some(&svc_a)))).await.problem(404, "not_found");
}

// --- malformed requests ----------------------------------------------------

#[tokio::test]
async fn malformed_requests_are_400_413_or_415_and_change_nothing() {
    let app = TestApp::new("subjects-malformed").await;
    let auth = format!("Bearer {}", app.key);
    let good = operator_signup(EMAIL, PHONE).to_string();
    let mut unknown_field = operator_signup(EMAIL, PHONE);
    unknown_field["nickname"] = json!("gildong");
    let huge = operator_signup(EMAIL, PHONE);
    let huge = {
        let mut h = huge;
        h["items"]["name"] = json!("a".repeat(300 * 1024));
        h.to_string()
    };
    // (case, content type, body, status, code)
    let cases: [(&str, Option<&str>, String, u16, &str); 8] = [
        ("no content type", None, good.clone(), 415, "unsupported_media_type"),
        ("text/plain", Some("text/plain"), good.clone(), 415, "unsupported_media_type"),
        ("form", Some("application/x-www-form-urlencoded"), good.clone(), 415, "unsupported_media_type"),
        ("over 256 KiB", Some("application/json"), huge, 413, "too_large"),
        ("truncated JSON", Some("application/json"), good[..good.len() / 2].to_owned(), 400, "bad_request"),
        ("empty body", Some("application/json"), String::new(), 400, "bad_request"),
        ("an array", Some("application/json"), format!("[{good}]"), 400, "bad_request"),
        ("unknown field", Some("application/json"), unknown_field.to_string(), 400, "bad_request"),
    ];
    let before = counts(&app).await;
    for (case, content_type, body, status, code) in cases {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let answer = raw(&app, "POST", "/v1/subjects", &headers, body.into_bytes()).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        answer.problem(status, code).never_mentions(&[EMAIL, PHONE, "correct horse"]);
        assert_eq!(counts(&app).await, before, "{case} changed something");
    }

    // The unknown field is named.
    let answer = call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&unknown_field)).await;
    answer.problem(400, "bad_request").only_fields(&[("nickname", "unknown_field")]).never_mentions(&["gildong"]);
    // A missing field is named in the detail (no `errors[]` entry).
    let mut no_source = operator_signup(EMAIL, PHONE);
    no_source.as_object_mut().unwrap().remove("source");
    let answer = call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&no_source)).await;
    answer.problem(400, "bad_request").never_mentions(&[EMAIL]);
    assert!(answer.body["detail"].as_str().unwrap().contains("missing field `source`"), "{}", answer.text);
    // A long value under the body limit is refused by the item's own bound.
    let mut long_name = operator_signup(EMAIL, PHONE);
    long_name["items"]["name"] = json!("b".repeat(70 * 1024));
    call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&long_name))
        .await
        .problem(422, "invalid")
        .only_fields(&[("items.name", "too_long")])
        .never_mentions(&["bbbbbbbb"]);
    // A charset parameter is fine.
    let answer = raw(
        &app,
        "POST",
        "/v1/subjects",
        &[("authorization", &auth), ("content-type", "application/json; charset=utf-8")],
        good.into_bytes(),
    )
    .await;
    answer.expect(201);
    let created = before.plus(&[("subjects", 1), ("items", 4), ("blind_index", 2), ("data_keys", 1), ("audit", 1)]);
    assert_eq!(counts(&app).await, created);
}

#[tokio::test]
async fn a_value_of_the_wrong_json_type_is_not_repeated_in_the_error() {
    let app = TestApp::new("subjects-wrong-type").await;
    let before = counts(&app).await;
    let mut items_as_string = operator_signup(EMAIL, PHONE);
    items_as_string["items"] = json!("hong.gildong@example.com");
    let mut phone_as_number = operator_signup(EMAIL, PHONE);
    phone_as_number["items"]["mobile_phone"] = json!(821012345678_u64);
    let mut value_as_object = lookup("email", "x", "member_management");
    value_as_object["value"] = json!({"address": "hong.gildong@example.com"});
    let mut value_as_number = lookup("mobile_phone", "x", "member_management");
    value_as_number["value"] = json!(821012345678_u64);
    for (path, body, secret) in [
        ("/v1/subjects", items_as_string, "hong.gildong@example.com"),
        ("/v1/subjects", phone_as_number, "821012345678"),
        ("/v1/lookup", value_as_number, "821012345678"),
    ] {
        let answer = call(&app, "POST", path, Some(&app.key), Some(&body)).await;
        answer.problem(400, "bad_request").never_mentions(&[secret]);
    }
    // A map where a string is expected names the type, not the content.
    let answer = call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&value_as_object)).await;
    answer.problem(400, "bad_request").never_mentions(&["hong.gildong@example.com"]);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn every_v1_endpoint_wants_a_valid_api_key_before_reading_the_body() {
    let app = TestApp::new("subjects-auth").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let (key_id, _) = app.key.strip_prefix("ck_").unwrap().split_once('_').unwrap();
    let wrong_secret = format!("Bearer ck_{key_id}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let unknown_key = format!("Bearer ck_{}_{}", "0".repeat(32), "A".repeat(43));
    let basic = format!("Basic {}", app.key);
    let unknown_session = format!("Bearer cs_{}_{}", "0".repeat(32), "A".repeat(43));
    let credentials: [Option<&str>; 8] = [
        Some(&unknown_session),
        None,
        Some("Bearer"),
        Some("Bearer nonsense"),
        Some(&wrong_secret),
        Some(&unknown_key),
        Some(&basic),
        Some(&app.key),
    ];
    let endpoints = [
        ("POST", "/v1/subjects".to_owned()),
        ("GET", "/v1/subjects".to_owned()),
        ("GET", read_path(&id, "member_management")),
        ("PATCH", format!("/v1/subjects/{id}")),
        ("POST", format!("/v1/subjects/{id}/activity")),
        ("POST", "/v1/lookup".to_owned()),
        ("POST", "/v1/services".to_owned()),
        ("POST", format!("/v1/subjects/{id}/records")),
        ("GET", format!("/v1/subjects/{id}/records?purpose=service_fees")),
    ];
    let before = counts(&app).await;
    for (method, path) in &endpoints {
        for credential in credentials {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(c) = credential {
                headers.push(("authorization", c));
            }
            // A body that is not even JSON: the key is checked first.
            let answer = raw(&app, method, path, &headers, b"{not json".to_vec()).await;
            assert_eq!(answer.status, 401, "{method} {path} with {credential:?}: {}", answer.text);
            answer.problem(401, "unauthenticated");
            assert_eq!(answer.headers.get("www-authenticate").unwrap(), "Bearer", "{method} {path}");
            assert_eq!(
                answer.body["detail"],
                "send Authorization: Bearer <API key or session token>; a session ends on logout, after 30 idle minutes or 12 hours"
            );
        }
    }
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn the_authorization_scheme_is_case_insensitive() {
    let app = TestApp::new("subjects-auth-scheme").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let auth = format!("bearer {}", app.key);
    let answer = raw(&app, "GET", &read_path(&id, "member_management"), &[("authorization", &auth)], Vec::new()).await;
    answer.expect(200);
}

// --- idempotency -----------------------------------------------------------

/// A sign-up with an `Idempotency-Key`.
async fn post_idempotent(app: &TestApp, token: &str, key: &str, body: &Value) -> Answer {
    post_idempotent_bytes(app, token, key, body.to_string().into_bytes()).await
}

async fn post_idempotent_bytes(app: &TestApp, token: &str, key: &str, body: Vec<u8>) -> Answer {
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json"), ("idempotency-key", key)];
    raw(app, "POST", "/v1/subjects", &headers, body).await
}

#[tokio::test]
async fn an_idempotency_key_replays_the_same_request_and_refuses_another() {
    let app = TestApp::new("subjects-idempotency").await;
    let body = operator_signup(EMAIL, PHONE);
    let first = post_idempotent(&app, &app.key, "signup-0001", &body).await.expect(201).clone();
    let after_first = counts(&app).await;

    let again = post_idempotent(&app, &app.key, "signup-0001", &body).await;
    assert_eq!(again.expect(200), &first, "a replay answers what the first answered");
    assert_eq!(counts(&app).await, after_first, "a replay changes nothing and is not audited");

    // The same key with another body is a conflict.
    let other = operator_signup("another.person@example.com", "+82 10 9876 5432");
    post_idempotent(&app, &app.key, "signup-0001", &other)
        .await
        .problem(409, "conflict")
        .never_mentions(&["another.person"]);
    // So is the same JSON written differently: the raw bytes are hashed.
    let respaced = serde_json::to_vec_pretty(&body).unwrap();
    post_idempotent_bytes(&app, &app.key, "signup-0001", respaced).await.problem(409, "conflict");
    assert_eq!(counts(&app).await, after_first);
    let list = call(&app, "GET", "/v1/subjects", Some(&app.key), None).await;
    assert_eq!(list.expect(200)["items"].as_array().unwrap().len(), 1, "one subject");

    // Keys belong to the API key that used them.
    let other_key = app.key_for(None, &["member_management"]).await;
    let answer = post_idempotent(&app, &other_key, "signup-0001", &other).await;
    assert_ne!(answer.expect(201)["id"], first["id"]);

    // Malformed keys.
    let long = "k".repeat(201);
    let third = operator_signup("third.person@example.com", "+82 10 1111 2222");
    for bad in ["", "has space", "tab\tkey", long.as_str()] {
        let before = counts(&app).await;
        let answer = post_idempotent(&app, &app.key, bad, &third).await;
        assert_eq!(answer.status, 400, "{bad:?}: {}", answer.text);
        answer.problem(400, "bad_request");
        assert_eq!(answer.body["detail"], "Idempotency-Key must be 1 to 200 printable ASCII characters");
        assert_eq!(counts(&app).await, before, "{bad:?}");
    }
    // 200 characters is fine.
    post_idempotent(&app, &app.key, &"k".repeat(200), &third).await.expect(201);
}

// --- purpose-bound reads ---------------------------------------------------

#[tokio::test]
async fn a_read_returns_only_the_items_of_its_purpose_and_never_the_password() {
    let app = TestApp::new("subjects-read").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let before = counts(&app).await;

    let answer = call(&app, "GET", &read_path(&id, "member_management"), Some(&app.key), None).await;
    let read = answer.expect(200);
    assert_eq!(
        read,
        &json!({
            "id": id, "service": null, "kind": "business_operator", "status": "active", "purpose": "member_management",
            "masked": false,
            "items": {"name": "Hong Gildong", "email": "hong.gildong@example.com", "mobile_phone": "+821012345678"}
        })
    );
    answer.never_mentions(&["correct horse", "argon2"]);

    // `inquiries` may use name and e-mail, not the phone.
    let answer = call(&app, "GET", &read_path(&id, "inquiries"), Some(&app.key), None).await;
    let items = answer.expect(200)["items"].as_object().unwrap();
    assert_eq!(items.keys().collect::<Vec<_>>(), ["email", "name"]);

    // `items` narrows the read.
    let answer =
        call(&app, "GET", &format!("{}&items=email", read_path(&id, "service_fees")), Some(&app.key), None).await;
    assert_eq!(answer.expect(200)["items"], json!({"email": "hong.gildong@example.com"}));
    assert_eq!(counts(&app).await, before.plus(&[("audit", 3)]), "every read is audited");
}

#[tokio::test]
async fn refused_reads_are_precise_and_return_nothing() {
    let app = TestApp::new("subjects-read-refused").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let fees_only = app.key_for(None, &["service_fees"]).await;
    let mut before = counts(&app).await;
    // (case, token, path, status, code, audited: the denial's code when the
    // access decision refuses, None for a bad request that changes nothing)
    let cases = [
        ("unknown purpose", &app.key, read_path(&id, "profiling"), 422, "unknown_purpose", Some("unknown_purpose")),
        (
            "item outside the purpose",
            &app.key,
            format!("{}&items=mobile_phone", read_path(&id, "inquiries")),
            403,
            "items_not_allowed",
            Some("items_not_allowed"),
        ),
        (
            "unknown item",
            &app.key,
            format!("{}&items=shoe_size", read_path(&id, "member_management")),
            422,
            "unknown_items",
            Some("unknown_items"),
        ),
        (
            "the password, asked for",
            &app.key,
            format!("{}&items=password", read_path(&id, "member_management")),
            422,
            "invalid",
            None,
        ),
        (
            "a purpose the key may not use",
            &fees_only,
            read_path(&id, "member_management"),
            403,
            "purpose_not_allowed",
            Some("purpose_not_allowed"),
        ),
        ("no purpose", &app.key, format!("/v1/subjects/{id}"), 400, "bad_request", None),
        (
            "unknown query parameter",
            &app.key,
            format!("{}&format=csv", read_path(&id, "member_management")),
            400,
            "bad_request",
            None,
        ),
    ];
    for (case, token, path, status, code, audited) in cases {
        let answer = call(&app, "GET", &path, Some(token), None).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        answer.problem(status, code).never_mentions(&["hong.gildong", "+8210", "Hong Gildong"]);
        match audited {
            Some(denied) => before = assert_denial_audited(&app, &before, "read", denied, case).await,
            None => assert_eq!(counts(&app).await, before, "{case}"),
        }
    }
    let answer =
        call(&app, "GET", &format!("{}&items=password", read_path(&id, "member_management")), Some(&app.key), None)
            .await;
    answer.only_fields(&[("items", "not_allowed")]);
    assert_eq!(answer.message("items"), "password hashes are never returned");
    let answer =
        call(&app, "GET", &format!("{}&format=csv", read_path(&id, "member_management")), Some(&app.key), None).await;
    assert!(answer.body["detail"].as_str().unwrap().contains("unknown field `format`"), "{}", answer.text);
}

#[tokio::test]
async fn marketing_reads_need_the_consent_given_at_sign_up() {
    let app = TestApp::new("subjects-consent").await;
    let without = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let mut consenting = operator_signup("fan.of.ads@example.com", "+82 10 2222 3333");
    consenting["consents"] = json!(["marketing"]);
    let before_signup = counts(&app).await;
    let with = sign_up(&app, &app.key, &consenting).await;
    assert_eq!(counts(&app).await["consents"], before_signup["consents"] + 1);

    let before = counts(&app).await;
    let answer = call(&app, "GET", &read_path(&without, "marketing"), Some(&app.key), None).await;
    answer.problem(403, "consent_required").never_mentions(&["hong.gildong"]);
    assert_eq!(answer.body["detail"], r#"the purpose "marketing" needs the subject's consent, and there is none"#);
    assert_eq!(counts(&app).await, before.plus(&[("audit", 1)]), "a denied read is audited");

    let answer = call(&app, "GET", &read_path(&with, "marketing"), Some(&app.key), None).await;
    assert_eq!(
        answer.expect(200)["items"],
        json!({"name": "Hong Gildong", "email": "fan.of.ads@example.com", "mobile_phone": "+821022223333"})
    );
}

#[tokio::test]
async fn another_services_subject_looks_exactly_like_a_missing_one() {
    let app = TestApp::new("subjects-wrong-service").await;
    let (svc_a, svc_b) = (new_service(&app, 1).await, new_service(&app, 2).await);
    let key_a = app.key_for(Some(&svc_a), &["member_management", "service_fees"]).await;
    let member_b = sign_up(&app, &app.key, &member_signup(&svc_b)).await;
    let member_a = sign_up(&app, &key_a, &member_signup(&svc_a)).await;
    let operator = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let missing = "sub_00000000000000000000000000000000".to_owned();

    // Each request, made on B's member, on the platform operator, and on an
    // id that does not exist, answers the same bytes, and each is audited
    // alike: one `denied: not_found` entry of its operation, nothing else.
    type Request = (&'static str, fn(&str) -> String, Option<Value>, &'static str);
    let requests: [Request; 4] = [
        ("GET", |id| read_path(id, "member_management"), None, "read"),
        (
            "PATCH",
            |id| format!("/v1/subjects/{id}"),
            Some(json!({"items": {"ip_address": "198.51.100.1"}, "source": "generated"})),
            "correct",
        ),
        ("POST", |id| format!("/v1/subjects/{id}/activity"), Some(json!({"event": "login"})), "activity"),
        ("GET", |id| format!("/v1/subjects/{id}/records?purpose=service_fees"), None, "record_read"),
    ];
    for (method, path, body, operation) in requests {
        let before = counts(&app).await;
        let missing_answer = call(&app, method, &path(&missing), Some(&key_a), body.as_ref()).await;
        missing_answer.problem(404, "not_found");
        let case = format!("{method} {}", path(&missing));
        let mut before = assert_denial_audited(&app, &before, operation, "not_found", &case).await;
        for other in [&member_b, &operator] {
            let answer = call(&app, method, &path(other), Some(&key_a), body.as_ref()).await;
            let case = format!("{method} {}", path(other));
            assert_eq!(answer.status, 404, "{case}");
            assert_eq!(answer.text, missing_answer.text, "{case}");
            assert_eq!(answer.content_type(), PROBLEM_JSON);
            before = assert_denial_audited(&app, &before, operation, "not_found", &case).await;
        }
        // Its own member answers.
        let own = call(&app, method, &path(&member_a), Some(&key_a), body.as_ref()).await;
        assert!(own.status.is_success(), "{method} {}: {}", path(&member_a), own.text);
    }
    // The platform key reaches every service.
    call(&app, "GET", &read_path(&member_b, "member_management"), Some(&app.key), None).await.expect(200);
}

// --- look-up ---------------------------------------------------------------

#[tokio::test]
async fn look_up_by_email_or_phone_normalises_the_value() {
    let app = TestApp::new("subjects-lookup").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let cases = [
        ("email", "hong.gildong@example.com"),
        ("email", "  HONG.GILDONG@EXAMPLE.COM\t"),
        ("mobile_phone", "010-1234-5678"),
        ("mobile_phone", "+82 10 1234 5678"),
        ("mobile_phone", "+821012345678"),
        ("mobile_phone", "(010) 1234.5678"),
    ];
    for (item, value) in cases {
        let before = counts(&app).await;
        let answer =
            call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup(item, value, "member_management"))).await;
        let found = answer.expect(200);
        assert_eq!(
            found,
            &json!({
                "id": id, "service": null, "kind": "business_operator", "status": "active",
                "created_at": "2024-06-01T00:00:00Z"
            }),
            "{item} {value:?}"
        );
        answer.never_mentions(&["hong.gildong", "1234"]);
        assert_eq!(counts(&app).await, before.plus(&[("audit", 1)]), "a look-up is audited");
    }
    // A miss is audited too, and says nothing more than "not found".
    let before = counts(&app).await;
    let answer = call(
        &app,
        "POST",
        "/v1/lookup",
        Some(&app.key),
        Some(&lookup("email", "nobody@example.com", "member_management")),
    )
    .await;
    answer.problem(404, "not_found").never_mentions(&["nobody@example.com"]);
    assert_eq!(counts(&app).await, before.plus(&[("audit", 1)]));
}

#[tokio::test]
async fn refused_look_ups_are_precise_and_change_nothing() {
    let app = TestApp::new("subjects-lookup-refused").await;
    sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let svc = new_service(&app, 1).await;
    let service_key = app.key_for(Some(&svc), &["member_management"]).await;
    let fees_only = app.key_for(None, &["service_fees"]).await;
    let mut unknown_field = lookup("email", EMAIL, "member_management");
    unknown_field["hint"] = json!("x");
    let mut missing_value = lookup("email", EMAIL, "member_management");
    missing_value.as_object_mut().unwrap().remove("value");
    // (case, token, body, status, code, errors, audited: the denial's code
    // when the access decision refuses, None for a bad request)
    type Case<'a> = (&'a str, &'a str, Value, u16, &'a str, Errors, Option<&'a str>);
    let cases: [Case<'_>; 7] = [
        (
            "not a unique item",
            &app.key,
            lookup("name", "Hong Gildong", "member_management"),
            422,
            "invalid",
            &[("item", "unknown_item")],
            None,
        ),
        (
            "not an item",
            &app.key,
            lookup("passport", "M12345678", "member_management"),
            422,
            "invalid",
            &[("item", "unknown_item")],
            None,
        ),
        (
            "item outside the purpose",
            &app.key,
            lookup("mobile_phone", PHONE, "inquiries"),
            403,
            "items_not_allowed",
            &[],
            Some("items_not_allowed"),
        ),
        (
            "a purpose the key may not use",
            &fees_only,
            lookup("email", EMAIL, "member_management"),
            403,
            "purpose_not_allowed",
            &[],
            Some("purpose_not_allowed"),
        ),
        (
            "a service key, in the platform",
            &service_key,
            lookup("email", EMAIL, "member_management"),
            404,
            "not_found",
            &[],
            Some("not_found"),
        ),
        ("unknown field", &app.key, unknown_field, 400, "bad_request", &[("hint", "unknown_field")], None),
        ("missing value", &app.key, missing_value, 400, "bad_request", &[("value", "missing_field")], None),
    ];
    let mut before = counts(&app).await;
    for (case, token, body, status, code, errors, audited) in cases {
        let answer = call(&app, "POST", "/v1/lookup", Some(token), Some(&body)).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        answer.problem(status, code).never_mentions(&[body["value"].as_str().unwrap_or("nothing-to-check")]);
        answer.only_fields(errors);
        match audited {
            Some(denied) => before = assert_denial_audited(&app, &before, "lookup", denied, case).await,
            None => assert_eq!(counts(&app).await, before, "{case}"),
        }
    }
    // A malformed value; the field it names is the subject of the ignored
    // `errors_name_the_fields_of_the_request`.
    for (item, value) in [("email", "hong.gildong-at-example"), ("mobile_phone", "010-1234")] {
        let answer =
            call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup(item, value, "member_management"))).await;
        answer.problem(422, "invalid").never_mentions(&[value]);
        let codes: Vec<String> = answer.fields().into_iter().map(|(_, code)| code).collect();
        assert_eq!(codes, ["invalid_format"], "{item}");
        assert_eq!(counts(&app).await, before, "{item}");
    }
}

#[tokio::test]
async fn a_look_up_for_an_unknown_purpose_names_the_purpose() {
    let app = TestApp::new("subjects-lookup-purpose").await;
    sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let before = counts(&app).await;
    let answer = call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup("email", EMAIL, "profiling"))).await;
    answer.problem(422, "unknown_purpose");
    assert_eq!(answer.body["detail"], r#"unknown purpose "profiling""#);
    assert_denial_audited(&app, &before, "lookup", "unknown_purpose", "unknown purpose").await;
}

// --- correction ------------------------------------------------------------

#[tokio::test]
async fn a_correction_changes_the_value_and_its_look_up() {
    let app = TestApp::new("subjects-correct").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let before = counts(&app).await;
    let patch = json!({
        "items": {"email": " New.Address@Example.com ", "mobile_phone": "010 8765 4321"},
        "source": "direct_entry"
    });
    let answer = call(&app, "PATCH", &format!("/v1/subjects/{id}"), Some(&app.key), Some(&patch)).await;
    let summary = answer.expect(200);
    assert_eq!(summary["id"], id.as_str());
    assert_eq!(summary["status"], "active");
    answer.never_mentions(&["new.address", "8765"]);
    assert_eq!(counts(&app).await, before.plus(&[("audit", 1)]), "the correction replaces, and is audited");

    let read = call(&app, "GET", &read_path(&id, "member_management"), Some(&app.key), None).await;
    let items = &read.expect(200)["items"];
    assert_eq!(items["email"], "new.address@example.com");
    assert_eq!(items["mobile_phone"], "+821087654321");
    assert_eq!(items["name"], "Hong Gildong");

    for (item, old, new) in [("email", EMAIL, "new.address@example.com"), ("mobile_phone", PHONE, "+82 10 8765 4321")] {
        let miss =
            call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup(item, old, "member_management"))).await;
        miss.problem(404, "not_found");
        let hit = call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup(item, new, "member_management"))).await;
        assert_eq!(hit.expect(200)["id"], id.as_str());
    }
    // The old values are free again.
    sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
}

#[tokio::test]
async fn refused_corrections_are_precise_and_change_nothing() {
    let app = TestApp::new("subjects-correct-refused").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    sign_up(&app, &app.key, &operator_signup("taken.address@example.com", "+82 10 3333 4444")).await;
    let path = format!("/v1/subjects/{id}");
    let patch = |items: Value| json!({"items": items, "source": "direct_entry"});
    // (case, body, status, code, errors)
    let cases: [(&str, Value, u16, &str, Errors); 9] = [
        ("nothing to correct", patch(json!({})), 422, "invalid", &[("items", "missing_required")]),
        (
            "unknown item",
            patch(json!({"shoe_size": "270 millimetres"})),
            422,
            "invalid",
            &[("items.shoe_size", "unknown_item")],
        ),
        (
            "item never collected from this kind",
            patch(json!({"date_of_birth": "1990-04-05"})),
            422,
            "invalid",
            &[("items.date_of_birth", "not_collected_here")],
        ),
        (
            "malformed e-mail",
            patch(json!({"email": "hong.gildong-at-example"})),
            422,
            "invalid",
            &[("items.email", "invalid_format")],
        ),
        (
            "malformed phone",
            patch(json!({"mobile_phone": "010-CALL-ME"})),
            422,
            "invalid",
            &[("items.mobile_phone", "invalid_format")],
        ),
        (
            "unknown source",
            json!({"items": {"name": "Hong Gildong Jr"}, "source": "rumour"}),
            422,
            "invalid",
            &[("source", "not_allowed")],
        ),
        ("e-mail of another subject", patch(json!({"email": "Taken.Address@example.com"})), 409, "conflict", &[]),
        ("phone of another subject", patch(json!({"mobile_phone": "010-3333-4444"})), 409, "conflict", &[]),
        (
            "unknown field",
            json!({"items": {"name": "Hong Gildong Jr"}, "source": "direct_entry", "reason": "typo"}),
            400,
            "bad_request",
            &[("reason", "unknown_field")],
        ),
    ];
    let mut before = counts(&app).await;
    for (case, body, status, code, errors) in cases {
        let answer = call(&app, "PATCH", &path, Some(&app.key), Some(&body)).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        answer.problem(status, code).only_fields(errors).never_mentions(&personal_values(&body));
        if status == 409 {
            // A value another subject holds: refused, and the refusal audited.
            before = assert_denial_audited(&app, &before, "correct", "conflict", case).await;
        } else {
            assert_eq!(counts(&app).await, before, "{case} changed something");
        }
    }
    // A repeated item in the object.
    let answer = raw(
        &app,
        "PATCH",
        &path,
        &[("authorization", &format!("Bearer {}", app.key)), ("content-type", "application/json")],
        br#"{"items": {"email": "one.address@example.com", "email": "two.address@example.com"},
            "source": "direct_entry"}"#
            .to_vec(),
    )
    .await;
    answer
        .problem(422, "invalid")
        .only_fields(&[("items.email", "duplicate_item")])
        .never_mentions(&["one.address", "two.address"]);
    assert_eq!(counts(&app).await, before, "a repeated item changed something");
    // No such subject: refused by the access decision, and audited.
    call(
        &app,
        "PATCH",
        "/v1/subjects/sub_00000000000000000000000000000000",
        Some(&app.key),
        Some(&patch(json!({"name": "X Y"}))),
    )
    .await
    .problem(404, "not_found");
    assert_denial_audited(&app, &before, "correct", "not_found", "no such subject").await;
    // The values are those of the sign-up.
    let read = call(&app, "GET", &read_path(&id, "member_management"), Some(&app.key), None).await;
    assert_eq!(read.expect(200)["items"]["email"], "hong.gildong@example.com");
    let hit =
        call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup("email", EMAIL, "member_management"))).await;
    assert_eq!(hit.expect(200)["id"], id.as_str());
}

#[tokio::test]
async fn a_correction_refuses_a_date_of_birth_in_the_future() {
    let app = TestApp::new("subjects-correct-future").await;
    let id = sign_up(&app, &app.key, &individual_signup(EMAIL, PHONE)).await;
    let before = counts(&app).await;
    let body = json!({"items": {"date_of_birth": "2031-07-15"}, "source": "direct_entry"});
    let answer = call(&app, "PATCH", &format!("/v1/subjects/{id}"), Some(&app.key), Some(&body)).await;
    answer
        .problem(422, "invalid")
        .only_fields(&[("items.date_of_birth", "future_date")])
        .never_mentions(&["2031-07-15"]);
    assert_eq!(counts(&app).await, before);
}

// --- activity --------------------------------------------------------------

#[tokio::test]
async fn activity_events_of_the_policy_are_recorded() {
    let app = TestApp::new("subjects-activity").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let path = format!("/v1/subjects/{id}/activity");
    for event in ["login", "password_change", "recurring_payment"] {
        let before = counts(&app).await;
        let answer = call(&app, "POST", &path, Some(&app.key), Some(&json!({"event": event}))).await;
        assert_eq!(answer.status, 204, "{event}: {}", answer.text);
        assert!(answer.text.is_empty());
        assert_eq!(counts(&app).await, before.plus(&[("audit", 1)]), "{event}");
    }

    let before = counts(&app).await;
    let answer = call(&app, "POST", &path, Some(&app.key), Some(&json!({"event": "logout"}))).await;
    answer.problem(422, "invalid").only_fields(&[("event", "unknown_item")]);
    assert!(answer.message("event").contains("login, password_change, recurring_payment"), "{}", answer.text);
    call(&app, "POST", &path, Some(&app.key), Some(&json!({"event": "login", "at": "2024-05-01"})))
        .await
        .problem(400, "bad_request")
        .only_fields(&[("at", "unknown_field")]);
    call(&app, "POST", &path, Some(&app.key), Some(&json!({}))).await.problem(400, "bad_request");
    assert_eq!(counts(&app).await, before, "a bad event changed something");
    call(
        &app,
        "POST",
        "/v1/subjects/sub_00000000000000000000000000000000/activity",
        Some(&app.key),
        Some(&json!({"event": "login"})),
    )
    .await
    .problem(404, "not_found");
    assert_denial_audited(&app, &before, "activity", "not_found", "no such subject").await;
}

// --- lists -----------------------------------------------------------------

#[tokio::test]
async fn a_list_pages_with_a_cursor_without_repeats() {
    let app = TestApp::new("subjects-list").await;
    let svc = new_service(&app, 1).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(sign_up(&app, &app.key, &member_signup(&svc)).await);
    }
    ids.sort();

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/subjects?service={svc}&limit=2"),
            Some(c) => format!("/v1/subjects?service={svc}&limit=2&cursor={c}"),
        };
        let answer = call(&app, "GET", &path, Some(&app.key), None).await;
        let page = answer.expect(200).clone();
        let items = page["items"].as_array().unwrap();
        pages.push(items.len());
        for item in items {
            assert_eq!(item.as_object().unwrap().len(), 5, "a summary, no personal data: {item}");
            assert_eq!(item["service"], svc.as_str());
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(seen, ids, "every member once, in id order");

    // The platform's own list holds the operator only.
    let answer = call(&app, "GET", "/v1/subjects", Some(&app.key), None).await;
    let platform = answer.expect(200);
    assert_eq!(platform["items"].as_array().unwrap().len(), 1);
    assert_eq!(platform["items"][0]["kind"], "business_operator");
    assert_eq!(platform["next_cursor"], Value::Null);

    // A page that ends exactly at the last subject offers no cursor; a
    // cursor at the end gives an empty page.
    let answer = call(&app, "GET", &format!("/v1/subjects?service={svc}&limit=5"), Some(&app.key), None).await;
    let full = answer.expect(200);
    assert_eq!(full["next_cursor"], Value::Null);
    let answer =
        call(&app, "GET", &format!("/v1/subjects?service={svc}&limit=5&cursor={}", ids[4]), Some(&app.key), None).await;
    assert_eq!(answer.expect(200), &json!({"items": []}));

    // A service key lists its own service, and must name it.
    let key = app.key_for(Some(&svc), &["member_management"]).await;
    let answer = call(&app, "GET", &format!("/v1/subjects?service={svc}"), Some(&key), None).await;
    assert_eq!(answer.expect(200)["items"].as_array().unwrap().len(), 5);
    call(&app, "GET", "/v1/subjects", Some(&key), None).await.problem(404, "not_found");
    let other = new_service(&app, 2).await;
    call(&app, "GET", &format!("/v1/subjects?service={other}"), Some(&key), None).await.problem(404, "not_found");
}

#[tokio::test]
async fn bad_list_queries_are_400() {
    let app = TestApp::new("subjects-list-bad").await;
    let svc = new_service(&app, 1).await;
    for query in ["limit=0", "limit=1001", "limit=-1", "limit=two", "page=2", "service=a&service=b"] {
        let answer = call(&app, "GET", &format!("/v1/subjects?service={svc}&{query}"), Some(&app.key), None).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        answer.problem(400, "bad_request");
    }
    let answer = call(&app, "GET", "/v1/subjects?limit=0", Some(&app.key), None).await;
    assert_eq!(answer.body["detail"], "limit must be between 1 and 1000");
    let answer = call(&app, "GET", "/v1/subjects?page=2", Some(&app.key), None).await;
    assert!(answer.body["detail"].as_str().unwrap().contains("unknown field `page`"), "{}", answer.text);
}

#[tokio::test]
async fn listing_an_unknown_service_is_404() {
    let app = TestApp::new("subjects-list-unknown").await;
    call(&app, "GET", "/v1/subjects?service=svc_00000000000000000000000000000000", Some(&app.key), None)
        .await
        .problem(404, "not_found");
}
