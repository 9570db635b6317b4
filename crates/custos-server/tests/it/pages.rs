//! The pages (`/privacy`, `/staff`) in-process: bad input gets a clear 4xx
//! page and changes nothing, an unknown address is answered like a known
//! one, codes to one address are throttled, codes and sessions expire on the manual clock, and a form without
//! the session's CSRF token or from another site is refused.

use std::time::Duration;

use serde_json::json;

use crate::kit::{Answer, counts, operator_signup, raw, sign_up};
use crate::lifecycle::app_with_mail;
use crate::smtp_sink::SmtpSink;
use crate::support::TestApp;

const FORM: &str = "application/x-www-form-urlencoded";

/// A form POST with `cookie` (may be empty) and extra headers.
async fn post(app: &TestApp, path: &str, cookie: &str, body: &str, extra: &[(&str, &str)]) -> Answer {
    let mut headers = vec![("content-type", FORM)];
    if !cookie.is_empty() {
        headers.push(("cookie", cookie));
    }
    headers.extend_from_slice(extra);
    raw(app, "POST", path, &headers, body.as_bytes().to_vec()).await
}

async fn get(app: &TestApp, path: &str, cookie: &str) -> Answer {
    let headers: Vec<(&str, &str)> = if cookie.is_empty() { Vec::new() } else { vec![("cookie", cookie)] };
    raw(app, "GET", path, &headers, Vec::new()).await
}

/// The `name=value` of the cookie `name` the answer sets.
fn set_cookie(answer: &Answer, name: &str) -> String {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no cookie {name}: {:?}", answer.headers))
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

fn location(answer: &Answer) -> &str {
    answer.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn newest_code(sink: &SmtpSink, n: usize) -> String {
    let got = sink.wait_for(n, Duration::from_secs(10));
    let text = &got.last().unwrap().data;
    let at = text.find("enter this code: ").expect(text) + "enter this code: ".len();
    text[at..at + 8].to_owned()
}

/// Asks for a code; answers the sign-in cookie pair.
async fn ask(app: &TestApp, email: &str) -> String {
    let answer = post(app, "/privacy/sign-in", "", &format!("email={email}&service="), &[]).await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/privacy/code"), "{}", answer.text);
    pair(&set_cookie(&answer, "custos_sign_in"))
}

/// Signs in with the code of message `n`; answers the session cookie pair
/// and the CSRF token of its forms.
async fn sign_in(app: &TestApp, sink: &SmtpSink, n: usize) -> (String, String) {
    let pending = ask(app, "member%40example.com").await;
    let code = newest_code(sink, n);
    let answer = post(app, "/privacy/code", &pending, &format!("code={code}"), &[]).await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/privacy/data"), "{}", answer.text);
    let cookie = set_cookie(&answer, "custos_member");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/privacy", "Max-Age=1800"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: no Secure flag");
    let session = pair(&cookie);
    let page = get(app, "/privacy/consents", &session).await;
    let at = page.text.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = page.text[at..at + 32].to_owned();
    (session, csrf)
}

#[tokio::test]
async fn sign_in_refuses_bad_input_and_answers_an_unknown_address_like_a_known_one() {
    let sink = SmtpSink::start();
    let app = app_with_mail("pages-sign-in", &sink).await;
    sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0101")).await;
    let before = counts(&app).await;

    // Not a form, or not an address: a 4xx page, nothing written.
    let answer = post(&app, "/privacy/sign-in", "", "nothing=here", &[]).await;
    assert_eq!(answer.status.as_u16(), 400);
    assert!(answer.content_type().starts_with("text/html") && answer.text.contains("role=\"alert\""));
    let answer = post(&app, "/privacy/sign-in", "", "email=not-an-address", &[]).await;
    assert_eq!(answer.status.as_u16(), 422, "{}", answer.text);
    assert!(!answer.text.contains("not-an-address"), "the value is not echoed");
    // From another site: refused before anything runs.
    let answer =
        post(&app, "/privacy/sign-in", "", "email=member%40example.com", &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(answer.status.as_u16(), 403);
    let answer =
        post(&app, "/privacy/sign-in", "", "email=member%40example.com", &[("origin", "https://evil.example")]).await;
    assert_eq!(answer.status.as_u16(), 403);
    // A code without asking for one first.
    assert_eq!(post(&app, "/privacy/code", "", "code=12345678", &[]).await.status.as_u16(), 400);
    assert_eq!(counts(&app).await, before, "bad input changed nothing");

    // An unknown address: the same answer, no mail, only the audit entry.
    ask(&app, "nobody%40example.com").await;
    assert_eq!(counts(&app).await, before.plus(&[("audit", 1)]));
    assert!(sink.messages().is_empty(), "no mail to an unknown address");
    ask(&app, "member%40example.com").await;
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).len(), 1);
    assert!(!sink.messages()[0].data.contains("nobody"));

    // Five codes to one address in 15 minutes, then 429 and no mail.
    for n in 2..=5 {
        ask(&app, "member%40example.com").await;
        sink.wait_for(n, Duration::from_secs(10));
    }
    let flood = counts(&app).await;
    let answer = post(&app, "/privacy/sign-in", "", "email=member%40example.com&service=", &[]).await;
    assert_eq!(answer.status.as_u16(), 429, "{}", answer.text);
    assert!(answer.content_type().starts_with("text/html"));
    assert_eq!(counts(&app).await, flood, "a throttled sign-in writes nothing");
    assert_eq!(sink.messages().len(), 5);
    app.clock.advance(jiff::SignedDuration::from_mins(16));
    ask(&app, "member%40example.com").await;
    assert_eq!(sink.wait_for(6, Duration::from_secs(10)).len(), 6, "the window passed");
}

#[tokio::test]
async fn codes_and_sessions_expire_on_the_clock_and_wrong_codes_count() {
    let sink = SmtpSink::start();
    let app = app_with_mail("pages-expiry", &sink).await;
    sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0102")).await;

    // Five wrong codes void the sign-in: the right one no longer works.
    let pending = ask(&app, "member%40example.com").await;
    let code = newest_code(&sink, 1);
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    for _ in 0..5 {
        let answer = post(&app, "/privacy/code", &pending, &format!("code={wrong}"), &[]).await;
        assert_eq!(answer.status.as_u16(), 422);
        assert!(answer.text.contains("does not match"));
    }
    assert_eq!(post(&app, "/privacy/code", &pending, &format!("code={code}"), &[]).await.status.as_u16(), 422);

    // A code expires after 15 minutes.
    let pending = ask(&app, "member%40example.com").await;
    let code = newest_code(&sink, 2);
    app.clock.advance(jiff::SignedDuration::from_mins(16));
    assert_eq!(post(&app, "/privacy/code", &pending, &format!("code={code}"), &[]).await.status.as_u16(), 422);

    // A session ends after 15 idle minutes, and after 30 in all.
    let (session, _) = sign_in(&app, &sink, 3).await;
    assert_eq!(get(&app, "/privacy/data", &session).await.status.as_u16(), 200);
    app.clock.advance(jiff::SignedDuration::from_mins(16));
    let answer = get(&app, "/privacy/data", &session).await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/privacy"));
    let (session, _) = sign_in(&app, &sink, 4).await;
    for _ in 0..3 {
        app.clock.advance(jiff::SignedDuration::from_mins(10));
        assert_eq!(get(&app, "/privacy/data", &session).await.status.as_u16(), 200);
    }
    app.clock.advance(jiff::SignedDuration::from_mins(1));
    assert_eq!(get(&app, "/privacy/data", &session).await.status.as_u16(), 303, "30 minutes in all");
}

#[tokio::test]
async fn member_forms_refuse_bad_input_and_forged_posts_and_change_nothing() {
    let sink = SmtpSink::start();
    let app = app_with_mail("pages-forms", &sink).await;
    let mut signup = operator_signup("member@example.com", "+82 10 5555 0103");
    signup["consents"] = json!(["marketing"]);
    sign_up(&app, &app.key, &signup).await;
    // Without a session: back to sign-in, nothing done.
    let answer = post(&app, "/privacy/consents", "", "purpose=marketing&action=withdraw&csrf=x", &[]).await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/privacy"));
    let (session, csrf) = sign_in(&app, &sink, 1).await;
    let before = counts(&app).await;

    let cases: &[(&str, String, u16)] = &[
        ("/privacy/consents", "purpose=marketing&action=withdraw".into(), 403),
        ("/privacy/consents", "purpose=marketing&action=withdraw&csrf=0000".into(), 403),
        ("/privacy/consents", format!("purpose=marketing&action=maybe&csrf={csrf}"), 400),
        ("/privacy/consents", format!("purpose=member_management&action=withdraw&csrf={csrf}"), 422),
        ("/privacy/consents", format!("purpose=no_such&action=withdraw&csrf={csrf}"), 422),
        ("/privacy/consents", format!("csrf={csrf}"), 400),
        ("/privacy/requests", format!("kind=gossip&csrf={csrf}"), 422),
        ("/privacy/requests", format!("kind=correction&item=no_such&value=x&csrf={csrf}"), 422),
        ("/privacy/requests", format!("kind=restriction&purpose=no_such&csrf={csrf}"), 422),
        ("/privacy/data", "csrf=nope".into(), 403),
        ("/privacy/export", String::new(), 403),
        ("/privacy/sign-out", "csrf=nope".into(), 403),
    ];
    for (path, body, status) in cases {
        let answer = post(&app, path, &session, body, &[]).await;
        assert_eq!(answer.status.as_u16(), *status, "{path} {body}: {}", answer.text);
        assert!(answer.content_type().starts_with("text/html"), "{path}: {}", answer.content_type());
    }
    // The page of a refused correction does not repeat what was typed.
    let body = format!("kind=correction&item=no_such&value=canary-value&csrf={csrf}");
    let answer = post(&app, "/privacy/requests", &session, &body, &[]).await;
    assert_eq!(answer.status.as_u16(), 422, "{}", answer.text);
    assert!(!answer.text.contains("canary-value"), "{}", answer.text);
    // Refusals by the engine's decision write their audit entry only.
    let after = counts(&app).await;
    assert_eq!(after.plus(&[]), before.plus(&[("audit", after["audit"] - before["audit"])]));
    // The consent is still given.
    let page = get(&app, "/privacy/consents", &session).await;
    assert!(page.text.contains("id=\"state-marketing\">Given<"), "{}", page.text);

    // Staff: a wrong login is a 401 page; the queue needs a session.
    let answer = post(&app, "/staff/login", "", "email=a%40example.com&password=x&code=000000", &[]).await;
    assert_eq!(answer.status.as_u16(), 401);
    let answer = get(&app, "/staff/requests", "").await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/staff"));
    // A member's session is not a staff session.
    let answer = get(&app, "/staff/requests", &session.replace("custos_member", "custos_staff")).await;
    assert_eq!(answer.status.as_u16(), 303);
}

#[tokio::test]
async fn the_consents_page_shows_linked_cookie_choices_and_deletion_ends_the_session() {
    let sink = SmtpSink::start();
    let app = app_with_mail("pages-cookies", &sink).await;
    let member = sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0104")).await;
    let (session, _) = sign_in(&app, &sink, 1).await;
    let page = get(&app, "/privacy/consents", &session).await;
    assert!(page.text.contains("<td>Personalisation cookies</td><td>off (not chosen)</td>"), "{}", page.text);

    // The member allowed personalisation in a site's banner, and the site
    // linked the visitor to the account at sign-in.
    let chosen = crate::kit::call(
        &app,
        "POST",
        "/v1/cookie-consent",
        None,
        Some(&json!({"choices": {"personalisation": true}})),
    )
    .await;
    let visitor = chosen.expect(200)["visitor"].as_str().unwrap().to_owned();
    let path = format!("/v1/subjects/{member}/cookie-consent");
    crate::kit::call(&app, "POST", &path, Some(&app.key), Some(&json!({"visitor": visitor}))).await.expect(200);
    let page = get(&app, "/privacy/consents", &session).await;
    assert!(page.text.contains("<td>Personalisation cookies</td><td>allowed</td>"), "{}", page.text);

    // The account is deleted: its session goes with it.
    crate::kit::call(&app, "DELETE", &format!("/v1/subjects/{member}"), Some(&app.key), None).await.expect(200);
    let sessions = |app: &TestApp| -> i64 {
        crate::peek::Peek::of(app).one(crate::peek::Db::Data, "SELECT count(*) FROM member_sessions", &[])
    };
    assert_eq!(sessions(&app), 0, "the deletion removed the session");
    let answer = get(&app, "/privacy/data", &session).await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/privacy"));
}

#[tokio::test]
async fn an_agent_files_on_the_public_form_and_an_unknown_address_gets_the_same_answer() {
    let sink = SmtpSink::start();
    let app = app_with_mail("pages-agent", &sink).await;
    let member = sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0105")).await;
    let form = |email: &str, letter: &str| crate::staff_pages::agent_form(email, "deletion", letter.as_bytes());
    let rows = |app: &TestApp| -> Vec<(String, String, String, String)> {
        use crate::peek::{Db, Peek, col};
        Peek::of(app)
            .rows(Db::Data, "SELECT subject_id, requester, status, created_by FROM requests ORDER BY id", &[])
            .iter()
            .map(|r| (col(r, 0), col(r, 1), col(r, 2), col(r, 3)))
            .collect()
    };
    let before = counts(&app).await;

    // Incomplete: a 422 page, nothing filed, the same for any address.
    for email in ["member@example.com", "nobody@example.com"] {
        let answer = crate::staff_pages::post_multipart(&app, "/privacy/agent", "", form(email, "")).await;
        assert_eq!(answer.status.as_u16(), 422, "{}", answer.text);
    }
    assert_eq!(counts(&app).await, before);

    let letter = "I authorise Kim Agent.";
    let known =
        crate::staff_pages::post_multipart(&app, "/privacy/agent", "", form("member@example.com", letter)).await;
    let unknown =
        crate::staff_pages::post_multipart(&app, "/privacy/agent", "", form("nobody@example.com", letter)).await;
    assert_eq!((known.status.as_u16(), unknown.status.as_u16()), (200, 200));
    assert_eq!(known.text, unknown.text, "the answer does not say whether the address is a member's");
    assert_eq!(
        rows(&app),
        [(member, "agent".to_owned(), "received".to_owned(), "privacy_center".to_owned())],
        "filed for the member only, waiting for staff to check the letter"
    );
}
