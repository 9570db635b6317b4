//! The staff console's registers and uploads in-process: an agent's letter
//! of attorney uploaded as a file (its type known by its bytes, oversized
//! and mislabelled files refused with nothing filed) and downloaded by the
//! staff member who checks it, as received; a member's page read for a
//! purpose and masked while the member is dormant unless the reader holds
//! the dormant-lookup privilege; complaints logged and listed with the day
//! they are destroyed; the processors, transfers and the hand-over
//! register. Every read is on the audit log.

use serde_json::json;
use sha2::{Digest, Sha256};

use custos_core::policy::render::escape_html as esc;

use crate::kit::{Answer, call, counts, operator_signup, raw, sign_up};
use crate::lifecycle::app_with_mail;
use crate::peek::{Db, Peek, Val};
use crate::smtp_sink::SmtpSink;
use crate::support::TestApp;

const BOUNDARY: &str = "----custos-test-boundary-7d1f";

/// A `multipart/form-data` body: text fields, then the file `letter` with
/// its declared type, if any.
fn multipart(fields: &[(&str, &str)], letter: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    if let Some((media_type, bytes)) = letter {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"letter\"; filename=\"letter\"\r\n\
                 Content-Type: {media_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub(crate) async fn post_multipart(app: &TestApp, path: &str, cookie: &str, body: Vec<u8>) -> Answer {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let mut headers = vec![("content-type", content_type.as_str())];
    if !cookie.is_empty() {
        headers.push(("cookie", cookie));
    }
    raw(app, "POST", path, &headers, body).await
}

/// The public agent form for the member with `email`, with a text letter
/// (none when empty).
pub(crate) fn agent_form(email: &str, kind: &str, letter: &[u8]) -> Vec<u8> {
    let fields = [
        ("service", ""),
        ("member_email", email),
        ("kind", kind),
        ("agent_name", "Kim Agent"),
        ("agent_contact", "agent@example.com"),
        ("note", ""),
    ];
    multipart(&fields, (!letter.is_empty()).then_some(("text/plain", letter)))
}

async fn post_form(app: &TestApp, path: &str, cookie: &str, body: &str) -> Answer {
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("cookie", cookie)];
    raw(app, "POST", path, &headers, body.as_bytes().to_vec()).await
}

async fn get(app: &TestApp, path: &str, cookie: &str) -> Answer {
    raw(app, "GET", path, &[("cookie", cookie)], Vec::new()).await
}

/// A staff member's console cookie and the CSRF token of their forms.
fn console(token: &str) -> (String, String) {
    (format!("custos_staff={token}"), custos_engine::privacy_center::form_token(token))
}

fn location(answer: &Answer) -> String {
    answer.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

fn operations(app: &TestApp) -> Vec<String> {
    Peek::of(app).column(Db::Data, "SELECT operation FROM audit ORDER BY seq", &[])
}

/// The raw bytes of an answer (`Answer::text` is lossy).
async fn get_bytes(app: &TestApp, path: &str, cookie: &str) -> (u16, Vec<u8>, axum::http::HeaderMap) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method("GET")
        .uri(path)
        .header("cookie", cookie)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status.as_u16(), bytes.to_vec(), parts.headers)
}

#[tokio::test]
async fn an_agents_letter_is_uploaded_as_a_file_and_staff_download_it_as_received() {
    let sink = SmtpSink::start();
    let app = app_with_mail("staff-pages-letter", &sink).await;
    let member = sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0301")).await;
    let officer = app.enrol_staff("officer@example.com", "privacy_officer", None).await;
    let (cookie, csrf) = console(&app.login(&officer).await);
    // A scanned letter of a megabyte: more than the server's usual body
    // limit (256 KiB), well within the letter's (5 MiB).
    let scan_of_a_megabyte = [
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n\xe2\xe3\xcf\xd3 binary part\n".as_slice(),
        &vec![0x5a; 1024 * 1024],
        b"\n%%EOF\n",
    ]
    .concat();
    let pdf: &[u8] = &scan_of_a_megabyte;
    let agent = |letter: Option<(&str, &[u8])>| {
        let fields = [
            ("service", ""),
            ("member_email", "member@example.com"),
            ("kind", "access"),
            ("agent_name", "Kim Agent"),
            ("agent_contact", "agent@example.com"),
            ("note", ""),
        ];
        multipart(&fields, letter)
    };
    let before = counts(&app).await;

    // Refused, nothing filed: no file; a file whose bytes are not what it
    // says; an executable; a file over 5 MiB; the old text form; a field the
    // form does not have.
    let refusals = [
        (agent(None), 422),
        (agent(Some(("image/png", pdf))), 422),
        (agent(Some(("application/octet-stream", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00"))), 422),
        (agent(Some(("application/pdf", &[b'%'; 5 * 1024 * 1024 + 1]))), 413),
        (multipart(&[("member_email", "member@example.com"), ("surprise", "1")], Some(("application/pdf", pdf))), 400),
    ];
    for (body, status) in refusals {
        let answer = post_multipart(&app, "/privacy/agent", "", body).await;
        assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
        if status == 413 {
            assert!(answer.text.contains("larger than 5 MiB"), "the letter's own limit: {}", answer.text);
        }
        assert!(answer.text.contains("role=\"alert\""), "a page that says why: {}", answer.text);
    }
    let old = raw(
        &app,
        "POST",
        "/privacy/agent",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"member_email=member%40example.com&kind=access&agent_name=A&agent_contact=B&letter=text".to_vec(),
    )
    .await;
    assert_eq!(old.status.as_u16(), 400, "{}", old.text);
    assert_eq!(counts(&app).await, before, "nothing filed, nothing audited");

    // A PDF, labelled as one: filed for the member, the letter's hash kept.
    let answer = post_multipart(&app, "/privacy/agent", "", agent(Some(("application/pdf", pdf)))).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    let peek = Peek::of(&app);
    let id: String = peek.one(Db::Data, "SELECT id FROM requests WHERE subject_id = ?1", &[Val::from(member.as_str())]);
    let sha: String = peek.one(Db::Data, "SELECT letter_sha256 FROM requests WHERE id = ?1", &[Val::from(id.as_str())]);
    let hex: String = Sha256::digest(pdf).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sha, hex);

    // The staff member sees it, downloads the letter as received (a file,
    // never rendered in the console), and the read is audited.
    let page = get(&app, &format!("/staff/requests/{id}"), &cookie).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page.text.contains(&format!("/staff/requests/{id}/letter")) && page.text.contains(&sha), "{}", page.text);
    let (status, bytes, headers) = get_bytes(&app, &format!("/staff/requests/{id}/letter"), &cookie).await;
    assert_eq!((status, bytes.as_slice()), (200, pdf));
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["content-disposition"], format!("attachment; filename=\"letter-{id}.pdf\"").as_str());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("sandbox"));
    assert!(operations(&app).iter().any(|o| o == "request_letter_read"));
    // Without a console session: back to sign-in, no letter.
    let (status, bytes, _) = get_bytes(&app, &format!("/staff/requests/{id}/letter"), "").await;
    assert_eq!((status, bytes.is_empty()), (303, true));

    // Staff log an agent's request with a PNG scan; without the form's
    // CSRF token it is refused and nothing is filed.
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR scan of a signed letter";
    let log = |csrf: &str| {
        multipart(
            &[
                ("csrf", csrf),
                ("subject", member.as_str()),
                ("kind", "deletion"),
                ("channel", "writing"),
                ("agent_name", "Lee Lawyer"),
                ("agent_contact", "lawyer@example.com"),
                ("note", ""),
            ],
            Some(("image/png", png)),
        )
    };
    let before = counts(&app).await;
    let forged = post_multipart(&app, "/staff/requests/new", &cookie, log("forged")).await;
    assert_eq!(forged.status.as_u16(), 403, "{}", forged.text);
    assert_eq!(counts(&app).await, before);
    let logged = post_multipart(&app, "/staff/requests/new", &cookie, log(&csrf)).await;
    assert_eq!(logged.status.as_u16(), 303, "{}", logged.text);
    let id = location(&logged).trim_start_matches("/staff/requests/").to_owned();
    let (status, bytes, headers) = get_bytes(&app, &format!("/staff/requests/{id}/letter"), &cookie).await;
    assert_eq!((status, bytes.as_slice(), headers["content-type"].to_str().unwrap()), (200, png, "image/png"));
    // A request without a letter has none to download.
    let own = call(
        &app,
        "POST",
        "/v1/requests",
        Some(&app.key),
        Some(&json!({"kind": "access", "channel": "email", "subject": member, "verification": "code"})),
    )
    .await;
    let own = own.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(get(&app, &format!("/staff/requests/{own}/letter"), &cookie).await.status.as_u16(), 404);
}

#[tokio::test]
async fn a_members_page_reads_for_a_purpose_and_masks_a_dormant_member_without_the_privilege() {
    let sink = SmtpSink::start();
    let app = app_with_mail("staff-pages-member", &sink).await;
    let member = sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0302")).await;
    let officer = app.enrol_staff("officer@example.com", "privacy_officer", None).await;
    let (cookie, _) = console(&app.login(&officer).await);

    // The list links to the page; the page offers the role's purposes.
    let list = get(&app, "/staff/members", &cookie).await;
    assert!(list.text.contains(&format!("href=\"/staff/members/{member}\"")), "{}", list.text);
    let page = get(&app, &format!("/staff/members/{member}"), &cookie).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page.text.contains("value=\"member_management\"") && !page.text.contains("member@example.com"));
    // A purpose outside the role is refused by the engine (and audited).
    let refused = get(&app, &format!("/staff/members/{member}?purpose=marketing"), &cookie).await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.text);
    let (operation, outcome) = crate::kit::newest_audit_entry(&app);
    assert_eq!(operation, "read");
    assert!(outcome.starts_with("denied"), "the refusal is audited: {outcome}");
    // Not a member id: no page, nothing read.
    assert_eq!(get(&app, "/staff/members/..%2F..%2Fstaff%2Faudit", &cookie).await.status.as_u16(), 404);
    let read = get(&app, &format!("/staff/members/{member}?purpose=member_management"), &cookie).await;
    assert_eq!(read.status.as_u16(), 200, "{}", read.text);
    assert!(read.text.contains("member@example.com") && read.text.contains("E-mail address"), "{}", read.text);
    let table = &read.text[read.text.find("id=\"member\"").expect("the member's table")..];
    assert!(!table.contains("Password"), "a password is never read out: {table}");

    // A year without activity: noticed, then moved aside.
    for when in ["2025-05-03T00:00:00Z", "2025-06-03T00:00:00Z"] {
        let at: jiff::Timestamp = when.parse().unwrap();
        app.clock.set(at);
        app.engine.run_jobs(at, "tests", &|| at).await.unwrap();
    }
    let (cookie, _) = console(&app.login(&officer).await);
    let masked = get(&app, &format!("/staff/members/{member}?purpose=member_management"), &cookie).await;
    assert_eq!(masked.status.as_u16(), 200, "{}", masked.text);
    assert!(masked.text.contains("id=\"masked\"") && masked.text.contains("dormant"), "{}", masked.text);
    assert!(!masked.text.contains("member@example.com"), "masked: {}", masked.text);

    // With the privilege, the details come from the separate storage.
    let path = format!("/v1/staff/{}/privileges/dormant_lookup", officer.id);
    call(&app, "PUT", &path, Some(&app.key), None).await.expect(200);
    let (cookie, _) = console(&app.login(&officer).await);
    let seen = get(&app, &format!("/staff/members/{member}?purpose=member_management"), &cookie).await;
    assert!(seen.text.contains("member@example.com") && !seen.text.contains("id=\"masked\""), "{}", seen.text);
    let outcomes: Vec<String> = Peek::of(&app).column(
        Db::Data,
        "SELECT outcome FROM audit WHERE operation = 'read' AND subject_id = ?1 ORDER BY seq",
        &[Val::from(member.as_str())],
    );
    assert_eq!(outcomes.iter().filter(|o| o.as_str() == "allowed: masked (dormant)").count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| o.as_str() == "allowed").count(), 2, "{outcomes:?}");
}

#[tokio::test]
async fn complaints_are_logged_from_the_console_and_listed_with_their_destruction_day() {
    let sink = SmtpSink::start();
    let app = app_with_mail("staff-pages-complaints", &sink).await;
    let member = sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0303")).await;
    let officer = app.enrol_staff("officer@example.com", "privacy_officer", None).await;
    let (cookie, csrf) = console(&app.login(&officer).await);

    let list = get(&app, "/staff/complaints", &cookie).await;
    assert!(list.text.contains("value=\"business_operator_service_inquiry\""), "{}", list.text);
    assert!(!list.text.contains("value=\"automatic_generation\""), "generated data is not taken down by hand");
    let form = get(&app, "/staff/complaints/new?point=business_operator_service_inquiry", &cookie).await;
    assert!(form.text.contains("name=\"item.inquiry_body\"") && form.text.contains("name=\"item.company_name\""));
    assert_eq!(get(&app, "/staff/complaints/new?point=nowhere", &cookie).await.status.as_u16(), 404);

    let body = |csrf: &str, extra: &str| {
        format!(
            "csrf={csrf}&point=business_operator_service_inquiry&kind=complaint&channel=email&subject={member}\
             &keep_as=complaint_dispute_records&received_on=&item.name=Kim+Minji&item.company_name=Minji+Co\
             &item.email=member%40example.com&item.inquiry_body=Charged+twice+for+invoice+42{extra}"
        )
    };
    let before = counts(&app).await;
    for (b, status) in [
        (body("forged", ""), 403),
        (body(&csrf, "&surprise=1"), 400),
        (body(&csrf, "&item.password=x"), 422),
        (body(&csrf, "").replace("received_on=", "received_on=yesterday"), 422),
    ] {
        let answer = post_form(&app, "/staff/complaints", &cookie, &b).await;
        assert_eq!(answer.status.as_u16(), status, "{b}: {}", answer.text);
    }
    let after = counts(&app).await;
    assert_eq!(after["requests"], before["requests"], "nothing filed");
    assert_eq!(after["data_keys"], before["data_keys"], "no key made");

    let logged = post_form(&app, "/staff/complaints", &cookie, &body(&csrf, "")).await;
    assert_eq!(logged.status.as_u16(), 303, "{}", logged.text);
    let id = location(&logged).trim_start_matches("/staff/requests/").to_owned();
    let detail = get(&app, &format!("/staff/requests/{id}"), &cookie).await;
    assert!(detail.text.contains("Charged twice for invoice 42"), "what the person wrote: {}", detail.text);
    assert!(detail.text.contains("2027-06-01"), "kept three years from the day received: {}", detail.text);
    let list = get(&app, "/staff/complaints", &cookie).await;
    assert!(list.text.contains(&format!("data-id=\"{id}\"")) && list.text.contains("2027-06-01"), "{}", list.text);
    // An access request is not a complaint.
    let access = json!({"kind": "access", "channel": "email", "subject": member, "verification": "code"});
    let access = call(&app, "POST", "/v1/requests", Some(&app.key), Some(&access)).await;
    let access = access.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    assert!(!get(&app, "/staff/complaints", &cookie).await.text.contains(&access));
    // Nothing of it in plaintext at rest.
    let sealed: Vec<u8> =
        Peek::of(&app).one(Db::Data, "SELECT details FROM requests WHERE id = ?1", &[Val::from(id.as_str())]);
    assert!(!String::from_utf8_lossy(&sealed).contains("Charged twice"));
}

#[tokio::test]
async fn the_processing_page_lists_processors_transfers_and_the_register() {
    let app = TestApp::new("staff-pages-processing").await;
    let member = sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0304")).await;
    let officer = app.enrol_staff("officer@example.com", "privacy_officer", None).await;
    let (cookie, _) = console(&app.login(&officer).await);
    let sms = json!({"recipient": "cj_olivenetworks", "items": ["mobile_phone"], "purpose": "member_management"});
    call(&app, "POST", &format!("/v1/subjects/{member}/handovers"), Some(&app.key), Some(&sms)).await.expect(201);

    let page = get(&app, "/staff/processing", &cookie).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.text);
    let policy = custos_core::policy::parse(&std::fs::read_to_string("../../policies/bstage.toml").unwrap()).unwrap();
    for p in &policy.processors {
        assert!(page.text.contains(&esc(&p.name)), "processor {} listed", p.name);
    }
    for t in &policy.transfers {
        assert!(page.text.contains(&esc(&t.recipient)), "transfer to {} listed", t.recipient);
    }
    let register = &page.text[page.text.find("id=\"register\"").expect("the register table")..];
    assert!(register.contains(&member) && register.contains("cj_olivenetworks") && register.contains("Mobile phone"));
    assert!(!register.contains("+821055550304"), "the register lists items, never values");
    assert!(operations(&app).iter().any(|o| o == "disclosures_list"));

    // A role that does not work requests does not see the register.
    let support = app.enrol_staff("support@example.com", "support_agent", None).await;
    let (cookie, _) = console(&app.login(&support).await);
    assert_eq!(get(&app, "/staff/processing", &cookie).await.status.as_u16(), 403);
}
