//! Staff accounts and sessions over HTTP: enrolment, login with password and
//! TOTP, sessions that end at once on logout, disabling and password change,
//! idle and absolute timeouts, throttling, allowed IPs, role hand-over,
//! privileges and dormant members.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use custos_server::clock::Clock;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::kit::{member_signup, sign_up};
use crate::peek::{Db, Peek, Val};
use crate::support::{STAFF_PASSWORD, StaffMember, TestApp};

fn minutes(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(n * 60)
}

/// A login from `address`; returns the status, the body and `Retry-After`.
async fn login_from(app: &TestApp, body: Value, address: &str) -> (StatusCode, Value, Option<String>) {
    send_login(app.router.clone(), body, address).await
}

async fn send_login(router: axum::Router, body: Value, address: &str) -> (StatusCode, Value, Option<String>) {
    let mut request = Request::builder()
        .method("POST")
        .uri("/v1/sessions")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let address: SocketAddr = format!("{address}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(address));
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), retry)
}

fn credentials(app: &TestApp, staff: &StaffMember, password: &str) -> Value {
    json!({"email": staff.email, "password": password, "code": app.next_code(staff)})
}

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.send("GET", "/v1/staff/me", Some(token), None).await.0
}

#[tokio::test]
async fn an_invited_staff_member_enrols_logs_in_and_is_audited() {
    let app = TestApp::new("staff-enrol").await;
    let service = app.service("owner@example.com").await;
    let admin = app.enrol_staff("Admin.One@Example.com", "admin", Some(&service)).await;
    let admin_secret = admin.secret.clone();
    // The e-mail is matched case-insensitively, as typed at login.
    let token = app.login(&StaffMember { email: "admin.one@example.com".into(), ..admin }).await;
    let (status, body) = app.send("GET", "/v1/staff/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["service"], service.as_str());
    assert!(token.starts_with("cs_") && token.len() > 3 + 32 + 1 + 42, "at least 128 random bits");
    // Invitation, enrolment and login are in the log, by pseudonymous id.
    let peek = Peek::of(&app);
    let sql = "SELECT operation || ' ' || outcome FROM audit WHERE subject_id = ?1 ORDER BY seq";
    let ops: Vec<String> = peek.column(Db::Data, sql, &[Val::from(body["id"].as_str().unwrap())]);
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert!(ops[0].starts_with("staff_invite invited as admin"), "{ops:?}");
    assert!(ops[1].starts_with("staff_enrol enrolled"), "{ops:?}");
    assert!(ops[2].starts_with("login allowed"), "{ops:?}");
    // Nothing of the account is on disk in plaintext: not the e-mail, not
    // the password, not the TOTP secret. (The SQLite files' bytes: on
    // PostgreSQL the data folder holds no database to scan.)
    let secret = app.send("GET", "/v1/staff/me", Some(&token), None).await;
    assert_eq!(secret.0, StatusCode::OK);
    let canaries: [&[u8]; 4] =
        [b"admin.one@example.com", b"Admin.One@Example.com", STAFF_PASSWORD.as_bytes(), &admin_secret];
    if !peek.is_postgres() {
        for entry in std::fs::read_dir(app.dir.0.join("data")).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for canary in canaries {
                assert!(!bytes.windows(canary.len()).any(|w| w == canary), "{} holds a staff secret", path.display());
            }
        }
    }
    // The invitation token is spent.
    let (status, _) = app
        .send(
            "POST",
            "/v1/staff/invitations",
            Some(&app.key),
            Some(json!({"email": "admin.one@example.com", "role": "admin", "service": service})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "one account per e-mail address");
}

#[tokio::test]
async fn invitations_refuse_bad_input_and_change_nothing() {
    let app = TestApp::new("staff-invite-bad").await;
    let service = app.service("owner@example.com").await;
    let before = crate::kit::counts(&app).await;
    for (body, status) in [
        (json!({"email": "x@example.com", "role": "no_such_role", "service": service}), 422),
        (json!({"email": "x@example.com", "role": "admin"}), 422),
        (json!({"email": "x@example.com", "role": "auditor", "service": service}), 422),
        (json!({"email": "not an address", "role": "admin", "service": service}), 422),
        (json!({"email": "x@example.com", "role": "admin", "service": service, "extra": 1}), 400),
    ] {
        let (got, answer) = app.send("POST", "/v1/staff/invitations", Some(&app.key), Some(body.clone())).await;
        assert_eq!(got.as_u16(), status, "{body} → {answer}");
    }
    let after = crate::kit::counts(&app).await;
    assert_eq!(after, before, "refused invitations leave nothing behind");
    // A service that does not exist: refused, and only the refusal audited.
    let body = json!({"email": "x@example.com", "role": "admin", "service": "svc_missing"});
    let (got, _) = app.send("POST", "/v1/staff/invitations", Some(&app.key), Some(body)).await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    crate::kit::assert_denial_audited(&app, &before, "staff_invite", "not_found", "missing service").await;
    // Enrolment with a short password or an unknown token changes nothing.
    let (_, invitation) = app
        .send(
            "POST",
            "/v1/staff/invitations",
            Some(&app.key),
            Some(json!({"email": "y@example.com", "role": "admin", "service": service})),
        )
        .await;
    let token = invitation["token"].as_str().unwrap();
    let (status, body) =
        app.send("POST", "/v1/staff/enrol", None, Some(json!({"token": token, "password": "short"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "password");
    let (status, _) =
        app.send("POST", "/v1/staff/enrol", None, Some(json!({"token": "nope", "password": STAFF_PASSWORD}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // An invitation expires after seven days.
    app.clock.advance(jiff::SignedDuration::from_hours(7 * 24 + 1));
    let (status, _) =
        app.send("POST", "/v1/staff/enrol", None, Some(json!({"token": token, "password": STAFF_PASSWORD}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "expired");
}

#[tokio::test]
async fn mfa_cannot_be_skipped_and_failures_all_look_alike() {
    let app = TestApp::new("staff-mfa").await;
    let officer = app.enrol_staff("po@example.com", "privacy_officer", None).await;
    // Without a code the request is malformed.
    let (status, body, _) =
        login_from(&app, json!({"email": officer.email, "password": STAFF_PASSWORD}), "127.0.0.1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let wrong_code = json!({"email": officer.email, "password": STAFF_PASSWORD, "code": "000000"});
    let (status, wrong_code_body, _) = login_from(&app, wrong_code, "127.0.0.1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, wrong_password_body, _) =
        login_from(&app, credentials(&app, &officer, "not the password at all"), "127.0.0.1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unknown = json!({"email": "nobody@example.com", "password": STAFF_PASSWORD, "code": "123456"});
    let (status, unknown_body, _) = login_from(&app, unknown, "127.0.0.1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_code_body, wrong_password_body, "the answer does not say which factor failed");
    assert_eq!(wrong_code_body, unknown_body, "nor whether the account exists");
    // A code is accepted once: the same code again is refused.
    let code = app.next_code(&officer);
    let body = json!({"email": officer.email, "password": STAFF_PASSWORD, "code": code});
    assert_eq!(login_from(&app, body.clone(), "127.0.0.1").await.0, StatusCode::CREATED);
    assert_eq!(login_from(&app, body, "127.0.0.1").await.0, StatusCode::UNAUTHORIZED, "replayed code");
}

#[tokio::test]
async fn logout_disable_and_password_change_end_sessions_at_once() {
    let app = TestApp::new("staff-end").await;
    let service = app.service("owner@example.com").await;
    let head = app.enrol_staff("head@example.com", "head_admin", Some(&service)).await;
    let operator = app.enrol_staff("op@example.com", "operator", Some(&service)).await;
    let head_token = app.login(&head).await;

    // Logout: the very next request with the token is refused.
    let token = app.login(&operator).await;
    assert_eq!(me(&app, &token).await, StatusCode::OK);
    let (status, _) = app.send("DELETE", "/v1/sessions/current", Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &token).await, StatusCode::UNAUTHORIZED);

    // Password change: every session of the account ends, this one too.
    let first = app.login(&operator).await;
    let second = app.login(&operator).await;
    let new_password = "a brand new staff password";
    let (status, body) = app
        .send(
            "POST",
            "/v1/staff/me/password",
            Some(&first),
            Some(json!({"current_password": STAFF_PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(me(&app, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &second).await, StatusCode::UNAUTHORIZED);
    let (status, _, _) = login_from(&app, credentials(&app, &operator, STAFF_PASSWORD), "127.0.0.1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    let (status, body, _) = login_from(&app, credentials(&app, &operator, new_password), "127.0.0.1").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let third = body["token"].as_str().unwrap().to_owned();
    // A wrong current password changes nothing.
    let (status, _) = app
        .send(
            "POST",
            "/v1/staff/me/password",
            Some(&third),
            Some(json!({"current_password": "wrong wrong wrong", "new_password": "yet another password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(me(&app, &third).await, StatusCode::OK);

    // Disabling (by the head admin): the very next request is refused, and
    // so is every later login.
    let (status, body) = app.send("POST", &format!("/v1/staff/{}/disable", operator.id), Some(&head_token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "disabled");
    assert_eq!(me(&app, &third).await, StatusCode::UNAUTHORIZED);
    let (status, _, _) = login_from(&app, credentials(&app, &operator, new_password), "127.0.0.1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Staff of the service cannot disable the head admin, who must hand the
    // role over; the platform can (a departed head admin must not block the
    // service), and their sessions end with it.
    let admin = app.enrol_staff("admin@example.com", "admin", Some(&service)).await;
    let admin_token = app.login(&admin).await;
    let (status, _) = app.send("POST", &format!("/v1/staff/{}/disable", head.id), Some(&admin_token), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(crate::kit::newest_audit_entry(&app), ("staff_disable".to_owned(), "denied: single_holder".to_owned()));
    let (status, _) = app.send("POST", &format!("/v1/staff/{}/disable", head.id), Some(&app.key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me(&app, &head_token).await, StatusCode::UNAUTHORIZED);
    // The role is free again: the platform invites a new head admin.
    let body = json!({"email": "head2@example.com", "role": "head_admin", "service": service});
    assert_eq!(app.send("POST", "/v1/staff/invitations", Some(&app.key), Some(body)).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_limit() {
    let app = TestApp::new("staff-timeouts").await;
    let auditor = app.enrol_staff("auditor@example.com", "auditor", None).await;
    let idle = app.login(&auditor).await;
    app.clock.advance(minutes(29));
    assert_eq!(me(&app, &idle).await, StatusCode::OK, "used within the idle limit");
    app.clock.advance(minutes(29));
    assert_eq!(me(&app, &idle).await, StatusCode::OK, "each use restarts the idle limit");
    app.clock.advance(minutes(31));
    assert_eq!(me(&app, &idle).await, StatusCode::UNAUTHORIZED, "idle for 31 minutes");

    let busy = app.login(&auditor).await;
    let started = app.clock.now();
    while app.clock.now() < started + jiff::SignedDuration::from_hours(12) - minutes(20) {
        app.clock.advance(minutes(20));
        assert_eq!(me(&app, &busy).await, StatusCode::OK);
    }
    app.clock.advance(minutes(21));
    assert_eq!(me(&app, &busy).await, StatusCode::UNAUTHORIZED, "twelve hours after login, however busy");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_per_address() {
    let app = TestApp::new("staff-throttle").await;
    let officer = app.enrol_staff("po@example.com", "privacy_officer", None).await;
    for _ in 0..5 {
        let (status, _, _) = login_from(&app, credentials(&app, &officer, "wrong password!"), "192.0.2.1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right credentials wait, from any address.
    let (status, body, retry) = login_from(&app, credentials(&app, &officer, STAFF_PASSWORD), "192.0.2.2").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: i64 = retry.expect("Retry-After").parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    app.clock.advance(jiff::SignedDuration::from_secs(retry));
    let (status, _, _) = login_from(&app, credentials(&app, &officer, STAFF_PASSWORD), "192.0.2.2").await;
    assert_eq!(status, StatusCode::CREATED, "after the window");

    // Attempts sent together are counted before any is checked: of twelve
    // parallel guesses at a fresh account, five are checked, seven refused.
    let other = app.enrol_staff("po2@example.com", "privacy_officer", None).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..12 {
        let body = json!({"email": other.email, "password": format!("guess number {n}"), "code": "123456"});
        let router = app.router.clone();
        tasks.spawn(async move { send_login(router, body, &format!("192.0.2.{}", 100 + n)).await.0.as_u16() });
    }
    let mut statuses = tasks.join_all().await;
    statuses.sort();
    assert_eq!(statuses, [[401; 5].as_slice(), [429; 7].as_slice()].concat(), "{statuses:?}");

    // One address guessing across many accounts is stopped too.
    for n in 0..20 {
        let body = json!({"email": format!("guess{n}@example.com"), "password": "guess", "code": "123456"});
        assert_eq!(login_from(&app, body, "198.51.100.7").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = login_from(&app, credentials(&app, &officer, STAFF_PASSWORD), "198.51.100.7").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the address is throttled");
    let (status, _, _) = login_from(&app, credentials(&app, &officer, STAFF_PASSWORD), "198.51.100.8").await;
    assert_eq!(status, StatusCode::CREATED, "other addresses are not");
}

#[tokio::test]
async fn a_service_may_limit_staff_logins_to_its_networks() {
    let app = TestApp::new("staff-ips").await;
    let service = app.service("owner@example.com").await;
    let head = app.enrol_staff("head@example.com", "head_admin", Some(&service)).await;
    let operator = app.enrol_staff("op@example.com", "operator", Some(&service)).await;
    let head_token = app.login(&head).await;
    let path = format!("/v1/services/{service}/allowed-ips");
    // Malformed lists are refused whole.
    let before = crate::kit::counts(&app).await;
    let (status, body) =
        app.send("PUT", &path, Some(&head_token), Some(json!({"networks": ["10.0.0.0/8", "10.0.0.1/8"]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "networks.1");
    assert_eq!(crate::kit::counts(&app).await, before);
    // Operators have no settings.
    let operator_token = app.login(&operator).await;
    let (status, _) = app.send("PUT", &path, Some(&operator_token), Some(json!({"networks": []}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = app.send("PUT", &path, Some(&head_token), Some(json!({"networks": ["203.0.113.0/24"]}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = login_from(&app, credentials(&app, &operator, STAFF_PASSWORD), "127.0.0.1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "outside the list");
    let (status, _, _) = login_from(&app, credentials(&app, &operator, STAFF_PASSWORD), "203.0.113.40").await;
    assert_eq!(status, StatusCode::CREATED, "inside the list");
    // Platform staff are not bound by a service's list.
    let officer = app.enrol_staff("po@example.com", "privacy_officer", None).await;
    let (status, _, _) = login_from(&app, credentials(&app, &officer, STAFF_PASSWORD), "127.0.0.1").await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn only_the_head_admin_hands_the_role_over() {
    let app = TestApp::new("staff-transfer").await;
    let service = app.service("owner@example.com").await;
    let head = app.enrol_staff("head@example.com", "head_admin", Some(&service)).await;
    let admin = app.enrol_staff("admin@example.com", "admin", Some(&service)).await;
    let onsite = app.enrol_staff("onsite@example.com", "onsite_operator", Some(&service)).await;
    // A second head admin cannot be invited.
    let (status, _) = app
        .send(
            "POST",
            "/v1/staff/invitations",
            Some(&app.key),
            Some(json!({"email": "h2@example.com", "role": "head_admin", "service": service})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let head_token = app.login(&head).await;
    let admin_token = app.login(&admin).await;
    // A privacy officer may invite an auditor (nothing the officer lacks),
    // not a support agent (a purpose the officer does not have).
    let officer = app.enrol_staff("po@example.com", "privacy_officer", None).await;
    let officer_token = app.login(&officer).await;
    for (role, status) in [("auditor", StatusCode::CREATED), ("support_agent", StatusCode::FORBIDDEN)] {
        let body = json!({"email": format!("{role}@example.com"), "role": role});
        let (got, answer) = app.send("POST", "/v1/staff/invitations", Some(&officer_token), Some(body)).await;
        assert_eq!(got, status, "{role}: {answer}");
    }
    // Staff invite within their scope and never above their own role.
    for (body, status) in [
        (json!({"email": "op2@example.com", "role": "operator", "service": service}), StatusCode::CREATED),
        (json!({"email": "po2@example.com", "role": "privacy_officer"}), StatusCode::FORBIDDEN),
        (json!({"email": "h3@example.com", "role": "head_admin", "service": service}), StatusCode::FORBIDDEN),
    ] {
        let (got, answer) = app.send("POST", "/v1/staff/invitations", Some(&admin_token), Some(body.clone())).await;
        assert_eq!(got, status, "{body} → {answer}");
    }
    // An admin cannot take the role; the platform key cannot hand it over.
    let (status, _) =
        app.send("POST", &format!("/v1/staff/{}/transfer-role", admin.id), Some(&admin_token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.send("POST", &format!("/v1/staff/{}/transfer-role", admin.id), Some(&app.key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Not to an onsite operator (the policy lists admin and operator).
    let (status, _) =
        app.send("POST", &format!("/v1/staff/{}/transfer-role", onsite.id), Some(&head_token), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) =
        app.send("POST", &format!("/v1/staff/{}/transfer-role", admin.id), Some(&head_token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "head_admin");
    let (_, me_admin) = app.send("GET", "/v1/staff/me", Some(&admin_token), None).await;
    assert_eq!(me_admin["role"], "head_admin", "the new role applies on the next request");
    let (_, me_head) = app.send("GET", "/v1/staff/me", Some(&head_token), None).await;
    assert_eq!(me_head["role"], "admin", "the former head admin takes the receiver's role");
    let (status, _) = app.send("POST", &format!("/v1/staff/{}/transfer-role", admin.id), Some(&head_token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no longer the holder");
}

#[tokio::test]
async fn staff_read_members_within_their_role_and_dormant_members_are_masked() {
    let app = TestApp::new("staff-read").await;
    let service = app.service("owner@example.com").await;
    let head = app.enrol_staff("head@example.com", "head_admin", Some(&service)).await;
    let admin = app.enrol_staff("admin@example.com", "admin", Some(&service)).await;
    let onsite = app.enrol_staff("onsite@example.com", "onsite_operator", Some(&service)).await;
    let member = sign_up(&app, &app.key, &member_signup(&service)).await;
    let read = format!("/v1/subjects/{member}?purpose=member_management");

    let onsite_token = app.login(&onsite).await;
    let (status, body) = app.send("GET", &read, Some(&onsite_token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["masked"], false);
    let (status, body) =
        app.send("GET", &format!("/v1/subjects/{member}?purpose=marketing"), Some(&onsite_token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not one of the onsite operator's purposes: {body}");
    let newest = crate::kit::newest_audit_entry(&app);
    assert_eq!(newest, ("read".to_owned(), "denied: purpose_not_allowed".to_owned()));

    // Dormancy comes with the retention jobs; here the row is marked by hand.
    let marked =
        Peek::of(&app).execute(Db::Data, "UPDATE subjects SET status = 'dormant' WHERE id = ?1", &[Val::from(&member)]);
    assert_eq!(marked, 1);

    let admin_token = app.login(&admin).await;
    let (status, body) = app.send("GET", &read, Some(&admin_token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["masked"], true, "{body}");
    // An admin cannot grant the privilege to themselves.
    let own = format!("/v1/staff/{}/privileges/dormant_lookup", admin.id);
    let (status, _) = app.send("PUT", &own, Some(&admin_token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(crate::kit::newest_audit_entry(&app), ("privilege_grant".to_owned(), "denied: forbidden".to_owned()));
    assert_eq!(body["items"], json!({}), "the row without its values");
    let (status, _) = app
        .send("GET", &format!("/v1/subjects/{member}/records?purpose=member_management"), Some(&admin_token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no dormant records without the privilege");

    let head_token = app.login(&head).await;
    let (status, body) = app.send("GET", &read, Some(&head_token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["masked"], false, "the head admin holds the dormant-lookup privilege");

    // The head admin grants the privilege; it applies on the next request.
    let grant = format!("/v1/staff/{}/privileges/dormant_lookup", admin.id);
    let (status, body) = app.send("PUT", &grant, Some(&head_token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["privileges"], json!(["dormant_lookup"]));
    let (_, body) = app.send("GET", &read, Some(&admin_token), None).await;
    assert_eq!(body["masked"], false);
    // A privilege the role cannot hold is refused.
    let (status, _) =
        app.send("PUT", &format!("/v1/staff/{}/privileges/dormant_lookup", onsite.id), Some(&head_token), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app.send("DELETE", &grant, Some(&head_token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = app.send("GET", &read, Some(&admin_token), None).await;
    assert_eq!(body["masked"], true, "withdrawn");
}
