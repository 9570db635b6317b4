//! `POST /v1/services` in-process: an operator creates a service. A business
//! operator needs no items; a non-business operator goes through
//! `non_business_operator_service_creation`, where b.stage checks age (19 on
//! the tests' 2024-06-01). Refusals are precise, never repeat the date of
//! birth, and change nothing (service creation audits only what it does).

use serde_json::{Value, json};

use crate::kit::*;
use crate::support::TestApp;

/// A non-business operator number `n`; returns its id.
async fn individual(app: &TestApp, n: u16) -> String {
    let body = individual_signup(&format!("person{n}@example.com"), &format!("+82 10 7777 {n:04}"));
    sign_up(app, &app.key, &body).await
}

fn creation(operator: &str, date_of_birth: &str, country: &str) -> Value {
    json!({
        "operator": operator,
        "collection_point": "non_business_operator_service_creation",
        "items": {"name": "Kim Minji", "date_of_birth": date_of_birth, "country": country}
    })
}

async fn create(app: &TestApp, token: &str, body: &Value) -> Answer {
    call(app, "POST", "/v1/services", Some(token), Some(body)).await
}

#[tokio::test]
async fn a_business_operator_creates_a_service_without_items() {
    let app = TestApp::new("services-business").await;
    let operator = sign_up(&app, &app.key, &operator_signup("boss@example.com", "+82 10 5555 0001")).await;
    let before = counts(&app).await;
    let answer = create(&app, &app.key, &json!({"operator": operator})).await;
    let service = answer.expect(201);
    let keys: Vec<&str> = service.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["created_at", "id", "operator"]);
    assert!(service["id"].as_str().unwrap().starts_with("svc_"));
    assert_eq!(service["operator"], operator.as_str());
    assert_eq!(service["created_at"], "2024-06-01T00:00:00Z");
    assert_eq!(counts(&app).await, before.plus(&[("services", 1), ("audit", 1)]), "no item is collected");

    // The service exists: it takes keys and members.
    let id = service["id"].as_str().unwrap();
    let key = app.key_for(Some(id), &["member_management"]).await;
    sign_up(&app, &key, &member_signup(id)).await;
}

#[tokio::test]
async fn a_non_business_operator_must_name_the_age_check_point() {
    let app = TestApp::new("services-no-point").await;
    let operator = individual(&app, 1).await;
    let before = counts(&app).await;
    let answer = create(&app, &app.key, &json!({"operator": operator})).await;
    answer.problem(422, "invalid").only_fields(&[("collection_point", "missing_required")]);
    assert!(answer.message("collection_point").contains("non_business_operator_service_creation"), "{}", answer.text);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn the_age_check_lets_in_19_and_refuses_18() {
    let app = TestApp::new("services-age").await;
    // (date of birth, country, refused with)
    let cases = [
        ("2005-06-01", "KR", None),                // 19 today
        ("2005-05-31", "KR", None),                // 19 yesterday
        ("1970-01-01", "DE", None),                // annex A states no age of its own
        ("2005-06-02", "KR", Some("under_age")),   // 19 tomorrow
        ("2005-12-31", "US", Some("under_age")),   // 18
        ("2024-06-01", "KR", Some("under_age")),   // born today
        ("2024-06-02", "KR", Some("future_date")), // tomorrow
        ("2150-01-01", "KR", Some("future_date")),
    ];
    for (n, (date_of_birth, country, refused)) in (1..).zip(cases) {
        let operator = individual(&app, n).await;
        let before = counts(&app).await;
        let answer = create(&app, &app.key, &creation(&operator, date_of_birth, country)).await;
        match refused {
            None => {
                answer.expect(201);
                assert_eq!(counts(&app).await["services"], before["services"] + 1, "{date_of_birth}");
                // The items of the creation are kept with the operator.
                let path = format!("/v1/subjects/{operator}?purpose=member_management&items=date_of_birth,country");
                let read = call(&app, "GET", &path, Some(&app.key), None).await;
                assert_eq!(read.expect(200)["items"], json!({"date_of_birth": date_of_birth, "country": country}));
            }
            Some(code) => {
                assert_eq!(answer.status, 422, "{date_of_birth}: {}", answer.text);
                answer
                    .problem(422, "invalid")
                    .only_fields(&[("items.date_of_birth", code)])
                    .never_mentions(&[date_of_birth]);
                assert_eq!(counts(&app).await, before, "{date_of_birth} changed something");
            }
        }
    }
    let operator = individual(&app, 99).await;
    let answer = create(&app, &app.key, &creation(&operator, "2005-06-02", "KR")).await;
    assert_eq!(
        answer.message("items.date_of_birth"),
        r#"item "date_of_birth" gives an age below the minimum age of 19 years"#
    );
}

#[tokio::test]
async fn refused_creations_are_precise_and_change_nothing() {
    let app = TestApp::new("services-refused").await;
    let operator = individual(&app, 1).await;
    let good = creation(&operator, "1990-04-05", "KR");
    let edit = |f: fn(&mut Value)| {
        let mut body = good.clone();
        f(&mut body);
        body
    };
    // (case, body, errors)
    let cases: [(&str, Value, Errors); 14] = [
        ("slashes", creation(&operator, "1990/04/05", "KR"), &[("items.date_of_birth", "invalid_format")]),
        ("day first", creation(&operator, "05-04-1990", "KR"), &[("items.date_of_birth", "invalid_format")]),
        ("no leading zeros", creation(&operator, "1990-4-5", "KR"), &[("items.date_of_birth", "invalid_format")]),
        ("month 13", creation(&operator, "1990-13-05", "KR"), &[("items.date_of_birth", "invalid_format")]),
        ("30 February", creation(&operator, "1990-02-30", "KR"), &[("items.date_of_birth", "invalid_format")]),
        (
            "29 February of a common year",
            creation(&operator, "1991-02-29", "KR"),
            &[("items.date_of_birth", "invalid_format")],
        ),
        (
            "a timestamp",
            creation(&operator, "1990-04-05T00:00:00Z", "KR"),
            &[("items.date_of_birth", "invalid_format")],
        ),
        ("blank date", creation(&operator, "   ", "KR"), &[("items.date_of_birth", "empty")]),
        ("lower-case country", creation(&operator, "1990-04-05", "kr"), &[("items.country", "invalid_format")]),
        ("unassigned country", creation(&operator, "1990-04-05", "ZZ"), &[("items.country", "invalid_format")]),
        (
            "missing country",
            edit(|b| drop(b["items"].as_object_mut().unwrap().remove("country"))),
            &[("items.country", "missing_required")],
        ),
        (
            "an item of another point",
            edit(|b| b["items"]["email"] = json!("person1@example.com")),
            &[("items.email", "not_collected_here")],
        ),
        ("a source the point does not take", edit(|b| b["source"] = json!("partner")), &[("source", "not_allowed")]),
        (
            "unknown point",
            edit(|b| b["collection_point"] = json!("service_wizard")),
            &[("collection_point", "unknown_collection_point")],
        ),
    ];
    let before = counts(&app).await;
    for (case, body, errors) in cases {
        let answer = create(&app, &app.key, &body).await;
        assert_eq!(answer.status, 422, "{case}: {}", answer.text);
        answer.problem(422, "invalid").only_fields(errors).never_mentions(&personal_values(&body));
        assert_eq!(counts(&app).await, before, "{case} changed something");
    }
    let answer = create(&app, &app.key, &creation(&operator, "1990-02-30", "KR")).await;
    assert_eq!(
        answer.message("items.date_of_birth"),
        r#"item "date_of_birth" must be a real calendar date (YYYY-MM-DD)"#
    );

    // A business operator is not collected from at that point.
    let business = sign_up(&app, &app.key, &operator_signup("boss@example.com", "+82 10 5555 0001")).await;
    let before = counts(&app).await;
    let answer = create(&app, &app.key, &creation(&business, "1990-04-05", "KR")).await;
    answer.problem(422, "invalid");
    assert!(answer.fields().iter().any(|(_, code)| code == "wrong_subject_kind"), "{}", answer.text);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn the_age_check_cannot_be_skipped_through_another_collection_point() {
    let app = TestApp::new("services-age-bypass").await;
    let operator = individual(&app, 1).await;
    let before = counts(&app).await;
    let generated = json!({"operator": operator, "collection_point": "automatic_generation", "source": "generated"});
    let signup_again = json!({
        "operator": operator,
        "collection_point": "non_business_operator_signup",
        "items": {
            "name": "Kim Minji", "email": "person1@example.com", "mobile_phone": "+82 10 7777 0001",
            "password": "a long enough password"
        }
    });
    for body in [generated, signup_again] {
        let answer = create(&app, &app.key, &body).await;
        answer.problem(422, "invalid").field("collection_point", "not_allowed");
        assert!(
            answer.message("collection_point").contains("non_business_operator_service_creation"),
            "{}",
            answer.text
        );
        assert_eq!(counts(&app).await, before);
    }
}

#[tokio::test]
async fn only_a_platform_key_creates_services_and_only_for_an_operator() {
    let app = TestApp::new("services-who").await;
    let svc = new_service(&app, 1).await;
    let operator = sign_up(&app, &app.key, &operator_signup("boss@example.com", "+82 10 5555 0002")).await;
    let member = sign_up(&app, &app.key, &member_signup(&svc)).await;
    let service_key = app.key_for(Some(&svc), &["member_management", "service_fees"]).await;
    let before = counts(&app).await;

    let answer = create(&app, &service_key, &json!({"operator": operator})).await;
    answer.problem(403, "forbidden");
    assert_eq!(answer.body["detail"], "this caller's role or key does not allow this");
    let before = assert_denial_audited(&app, &before, "service_create", "forbidden", "service key").await;

    let missing = create(&app, &app.key, &json!({"operator": "sub_00000000000000000000000000000000"})).await;
    missing.problem(404, "not_found");
    // A member of a service is no operator: the same answer as no subject.
    let answer = create(&app, &app.key, &json!({"operator": member})).await;
    assert_eq!(answer.text, missing.text);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn malformed_creations_are_400_or_415() {
    let app = TestApp::new("services-malformed").await;
    let operator = sign_up(&app, &app.key, &operator_signup("boss@example.com", "+82 10 5555 0001")).await;
    let before = counts(&app).await;
    create(&app, &app.key, &json!({"operator": operator, "name": "My fan club"}))
        .await
        .problem(400, "bad_request")
        .only_fields(&[("name", "unknown_field")]);
    let answer = create(&app, &app.key, &json!({})).await;
    answer.problem(400, "bad_request");
    assert!(answer.body["detail"].as_str().unwrap().contains("missing field `operator`"), "{}", answer.text);
    create(&app, &app.key, &json!({"operator": operator, "items": ["name"]})).await.problem(400, "bad_request");
    let auth = format!("Bearer {}", app.key);
    let body = json!({"operator": operator}).to_string().into_bytes();
    raw(&app, "POST", "/v1/services", &[("authorization", &auth), ("content-type", "text/json")], body)
        .await
        .problem(415, "unsupported_media_type");
    assert_eq!(counts(&app).await, before);
}
