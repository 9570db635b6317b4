//! The staff console (issue 10): server-rendered pages under `/staff` where
//! a staff member signs in with password and second factor (the engine's
//! staff login, throttled per account and address), works the
//! rights-request queue by deadline, logs a request an agent sent with a
//! letter of attorney, and verifies, fulfils or denies requests.
//!
//! The session is the engine's staff session (`cs_…`, read from the store
//! on every request, so logout and disabling end it at once), kept in the
//! cookie `custos_staff` (HttpOnly, SameSite=Strict, Path=/staff, Secure
//! behind https). Every POST form carries the session's CSRF token, and a
//! POST from another site is refused. What each page may show is the
//! engine's decision for the staff member's role, as in the API.

use axum::Form;
use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use custos_core::policy::Policy;
use custos_engine::privacy_center::form_token;
use custos_engine::requests::{MAX_LETTER_BYTES, NewAgent, NewRequest, QueueFilter, Verification};
use custos_engine::{Caller, EngineError, Login, Zeroizing};
use serde::Deserialize;

use super::AppState;
use super::pages::{self, CsrfToken, NavLink, cookie, esc, form, page, redirect_with_cookie, short_time};
use super::staff::ClientAddress;
use super::upload;

const SESSION_COOKIE: &str = "custos_staff";
/// A staff session's absolute lifetime (the engine ends it then too).
const SESSION_SECONDS: i64 = 12 * 60 * 60;

const NAV: &[NavLink<'static>] = &[
    ("/staff/requests", "Request queue"),
    ("/staff/requests/new", "Log a request"),
    ("/staff/members", "Members"),
    ("/staff/complaints", "Complaints"),
    ("/staff/processing", "Processors and provisions"),
    ("/staff/policy", "Policy and notices"),
    ("/staff/audit", "Audit log"),
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/staff", get(home))
        .route("/staff/login", post(login))
        .route("/staff/logout", post(logout))
        .route("/staff/requests", get(queue))
        .route(
            "/staff/requests/new",
            get(new_form).post(file).layer(DefaultBodyLimit::max(MAX_LETTER_BYTES + upload::TEXT_ROOM)),
        )
        .route("/staff/requests/{id}", get(detail))
        .route("/staff/requests/{id}/answer", get(answer))
        .route("/staff/requests/{id}/letter", get(letter))
        .route("/staff/requests/{id}/{step}", post(step))
        .route("/staff/members", get(members))
        .merge(super::staff_registers::routes())
        .route("/staff/policy", get(policy_page))
        .route("/staff/audit", get(audit))
        .route("/staff/audit/verify", post(verify_audit))
        .layer(middleware::from_fn(pages::same_origin))
}

pub(super) fn engine_error(policy: &Policy, e: EngineError) -> Response {
    pages::engine_error(policy, "/staff", e)
}

pub(super) fn error_page(policy: &Policy, status: StatusCode, message: &str) -> Response {
    pages::error_page(policy, "/staff", status, message)
}

fn set_cookie(headers: &HeaderMap, value: &str, max_age: i64) -> HeaderValue {
    pages::set_cookie(headers, SESSION_COOKIE, value, "/staff", max_age)
}

/// A signed-in staff member: the caller and the forms' CSRF token.
pub(super) struct Staff {
    pub(super) caller: Caller,
    csrf: String,
}

pub(super) async fn staff(state: &AppState, headers: &HeaderMap) -> Result<Staff, Response> {
    let token = cookie(headers, SESSION_COOKIE)
        .filter(|t| t.starts_with("cs_"))
        .ok_or_else(|| Redirect::to("/staff").into_response())?;
    match state.engine.authenticate(token, state.clock.now()).await {
        Ok(caller) if caller.staff.is_some() => Ok(Staff { caller, csrf: form_token(token) }),
        _ => Err(redirect_with_cookie("/staff", set_cookie(headers, "", 0))),
    }
}

/// The signed-in staff member and their form, its CSRF token checked: how every
/// form of these pages begins.
pub(super) async fn staff_form<T: CsrfToken>(
    state: &AppState,
    headers: &HeaderMap,
    policy: &Policy,
    f: Result<Form<T>, FormRejection>,
) -> Result<(Staff, T), Response> {
    let staff = staff(state, headers).await?;
    let f = pages::checked_form(policy, "/staff", &staff.csrf, f)?;
    Ok((staff, f))
}

pub(super) fn csrf_field(staff: &Staff) -> String {
    pages::csrf_field(&staff.csrf)
}

pub(super) fn staff_page(policy: &Policy, staff: &Staff, title: &str, current: &str, body: &str) -> Response {
    let role = staff.caller.staff.as_ref().map(|s| s.role.as_str()).unwrap_or("");
    let role = policy.roles.iter().find(|r| r.id.as_str() == role).map(|r| r.name.as_str()).unwrap_or(role);
    let body = format!(
        "<p class=\"hint\">Signed in as {role}.</p><form method=\"post\" action=\"/staff/logout\">{}\
         <button type=\"submit\" class=\"secondary\">Sign out</button></form>{body}",
        csrf_field(staff),
        role = esc(role),
    );
    page(policy, title, NAV, current, &body)
}

// --- signing in ----------------------------------------------------------------

fn login_page(policy: &Policy, failed: bool) -> Response {
    let alert = if failed {
        "<p class=\"error\" role=\"alert\" id=\"login-error\">The e-mail address, password or code is wrong, \
         or too many attempts were made.</p>"
    } else {
        ""
    };
    let body = format!(
        "{alert}<section class=\"card\"><form method=\"post\" action=\"/staff/login\">\
         <label for=\"email\">E-mail address</label><input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"code\">Code from your authenticator app</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
         <button type=\"submit\">Sign in</button></form></section>"
    );
    let mut response = page(policy, "Staff sign-in", &[], "", &body);
    if failed {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
    }
    response
}

/// `GET /staff`: the sign-in form, or the queue when signed in.
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if staff(&state, &headers).await.is_ok() {
        return Redirect::to("/staff/requests").into_response();
    }
    login_page(&state.engine.policy(), false)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    code: String,
}

/// `POST /staff/login`: password and second factor.
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
    f: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let f = match form(&policy, f) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let attempt = Login { email: f.email, password: Zeroizing::new(f.password), code: f.code, address };
    match state.engine.login(attempt, state.clock.now()).await {
        Ok(session) => redirect_with_cookie("/staff/requests", set_cookie(&headers, &session.token, SESSION_SECONDS)),
        Err(EngineError::Unauthenticated | EngineError::Throttled(_)) => login_page(&policy, true),
        Err(e) => engine_error(&policy, e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /staff/logout`: the session ends at once.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let (staff, _) = match staff_form(&state, &headers, &policy, f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = state.engine.logout(&staff.caller, state.clock.now()).await {
        return engine_error(&policy, e);
    }
    redirect_with_cookie("/staff", set_cookie(&headers, "", 0))
}

// --- the queue -----------------------------------------------------------------

/// `GET /staff/requests`: every request of the staff member's scope, in
/// the queue's order (deadline first), overdue ones marked.
async fn queue(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let list =
        match state.engine.list_requests(&staff.caller, QueueFilter::default(), None, 200, state.clock.now()).await {
            Ok(l) => l,
            Err(e) => return engine_error(&policy, e),
        };
    let mut body = String::from("<section class=\"card\" aria-labelledby=\"q\"><h2 id=\"q\">Requests</h2>");
    if list.is_empty() {
        body.push_str("<p>The queue is empty.</p>");
    } else {
        body.push_str(
            "<div class=\"scroll\"><table id=\"queue\"><thead><tr><th scope=\"col\">Request</th><th scope=\"col\">Kind</th>\
             <th scope=\"col\">From</th><th scope=\"col\">Status</th><th scope=\"col\">Received</th>\
             <th scope=\"col\">Answer due</th></tr></thead><tbody>",
        );
        for r in &list {
            let due = match (r.extended_by.as_ref().or(r.answer_by.as_ref()), r.days_left) {
                (Some(d), Some(left)) if r.closed_at.is_none() => {
                    if r.overdue {
                        format!("{d} (overdue)")
                    } else {
                        format!("{d} ({left} days left)")
                    }
                }
                (Some(d), _) => d.clone(),
                (None, _) => "—".to_owned(),
            };
            body.push_str(&format!(
                "<tr data-id=\"{id}\"{overdue}><td><a href=\"/staff/requests/{id}\">{id}</a></td><td>{kind}</td>\
                 <td>{from}</td><td class=\"status\">{status}</td><td>{received}</td><td>{due}</td></tr>",
                id = esc(&r.id),
                overdue = if r.overdue { " class=\"error\"" } else { "" },
                kind = esc(&r.kind),
                from = esc(&r.requester),
                status = esc(&r.status.replace('_', " ")),
                received = esc(&short_time(&r.received_at)),
                due = esc(&due),
            ));
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str("</section>");
    staff_page(&policy, &staff, "Request queue", "/staff/requests", &body)
}

/// `GET /staff/requests/{id}`: what was asked (an audited read), the
/// timeline, and the next steps.
async fn detail(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let d = match state.engine.request_detail(&staff.caller, &id, state.clock.now()).await {
        Ok(d) => d,
        Err(e) => return engine_error(&policy, e),
    };
    let r = &d.request;
    let row = |k: &str, v: &str| format!("<tr><th scope=\"row\">{}</th><td>{}</td></tr>", esc(k), esc(v));
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_owned());
    let mut facts = String::new();
    facts.push_str(&row("Kind", &r.kind));
    facts.push_str(&row("Status", &r.status.replace('_', " ")));
    facts.push_str(&row("Member", &opt(&r.subject)));
    facts.push_str(&row("From", &r.requester));
    facts.push_str(&row("Channel", &r.channel));
    facts.push_str(&row("Jurisdiction", &r.jurisdiction));
    facts.push_str(&row("Received", &short_time(&r.received_at)));
    facts.push_str(&row("Acknowledge by", &opt(&r.acknowledge_by)));
    facts.push_str(&row("Answer by", &opt(&r.extended_by.clone().or(r.answer_by.clone()))));
    facts.push_str(&row("Verified", &opt(&r.verified_by)));
    if let Some(name) = &d.details.agent_name {
        facts.push_str(&row("Agent", name));
        facts.push_str(&row("Agent's contact", &opt(&d.details.agent_contact)));
        facts.push_str(&format!(
            "<tr><th scope=\"row\">Letter of attorney</th><td><a href=\"/staff/requests/{}/letter\" download>Download \
             the letter</a> ({}, SHA-256 <code>{}</code>)</td></tr>",
            esc(&r.id),
            esc(&opt(&d.details.letter_type)),
            esc(&opt(&r.letter_sha256)),
        ));
    }
    if !d.details.purposes.is_empty() {
        facts.push_str(&row("Purposes", &d.details.purposes.join(", ")));
    }
    if !d.details.corrections.is_empty() {
        facts.push_str(&row("Items to correct", &d.details.corrections.keys().cloned().collect::<Vec<_>>().join(", ")));
    }
    if let Some(note) = &d.details.note {
        facts.push_str(&row("Note", note));
    }
    // A complaint's or inquiry's own words, item by item, and how long
    // they are kept.
    for (item, value) in &d.details.items {
        let name = policy.item_by_str(item).map(|i| i.name.as_str()).unwrap_or(item);
        facts.push_str(&row(name, value));
    }
    if let Some(day) = &r.destroy_on {
        facts.push_str(&row("Destroyed on", day));
    }
    let mut body = format!(
        "<section class=\"card\"><div class=\"scroll\"><table id=\"facts\"><tbody>{facts}</tbody></table></div></section>"
    );
    let csrf = csrf_field(&staff);
    let id_e = esc(&r.id);
    let mut actions = String::new();
    if r.status == "received" {
        actions.push_str(&format!(
            "<form method=\"post\" action=\"/staff/requests/{id_e}/verify\" class=\"inline\">{csrf}\
             <button type=\"submit\">Verify the requester</button></form> "
        ));
    }
    if r.status == "verified" || r.status == "in_progress" {
        actions.push_str(&format!(
            "<form method=\"post\" action=\"/staff/requests/{id_e}/fulfil\" class=\"inline\">{csrf}\
             <button type=\"submit\">Fulfil the request</button></form> "
        ));
    }
    if r.closed_at.is_none() {
        actions.push_str(&format!(
            "<form method=\"post\" action=\"/staff/requests/{id_e}/deny\">{csrf}\
             <label for=\"reason\">Reason for a denial</label><input type=\"text\" id=\"reason\" name=\"reason\" maxlength=\"2000\">\
             <button type=\"submit\" class=\"danger\">Deny</button></form>"
        ));
    }
    if r.status == "fulfilled" {
        actions.push_str(&format!("<p><a href=\"/staff/requests/{id_e}/answer\">Open the answer</a></p>"));
    }
    if !actions.is_empty() {
        body.push_str(&format!(
            "<section class=\"card\" aria-labelledby=\"next\"><h2 id=\"next\">Next step</h2>{actions}</section>"
        ));
    }
    body.push_str(
        "<section class=\"card\" aria-labelledby=\"tl\"><h2 id=\"tl\">Timeline</h2><div class=\"scroll\"><table id=\"timeline\">\
         <thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Step</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Note</th></tr></thead><tbody>",
    );
    for s in &d.steps {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&short_time(&s.at)),
            esc(&s.actor),
            esc(&s.step),
            esc(&s.status),
            esc(&s.note)
        ));
    }
    body.push_str("</tbody></table></div></section>");
    staff_page(&policy, &staff, &format!("Request {}", r.id), "", &body)
}

#[derive(Deserialize)]
struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /staff/requests/{id}/{verify|fulfil|deny}`.
async fn step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, step)): Path<(String, String)>,
    f: Result<Form<StepForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let (staff, f) = match staff_form(&state, &headers, &policy, f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = state.clock.now();
    let done = match step.as_str() {
        "verify" => state.engine.verify_request(&staff.caller, &id, now).await,
        "fulfil" => state.engine.fulfil_request(&staff.caller, &id, now).await,
        "deny" => state.engine.deny_request(&staff.caller, &id, f.reason, now).await,
        _ => return error_page(&policy, StatusCode::NOT_FOUND, "No such step."),
    };
    match done {
        Ok(view) => Redirect::to(&format!("/staff/requests/{}", view.id)).into_response(),
        Err(e) => engine_error(&policy, e),
    }
}

/// `GET /staff/requests/{id}/answer`: the answer as the member gets it
/// (an access package is built afresh and its read audited).
async fn answer(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.engine.request_outcome(&staff.caller, &id, state.clock.now()).await {
        Ok(text) => {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let html = super::export_page::render(&policy, &id, &value);
            // The answer page's one style sheet is inline, as in the API.
            let headers = [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-store"),
            ];
            (headers, html).into_response()
        }
        Err(e) => engine_error(&policy, e),
    }
}

/// `GET /staff/requests/{id}/letter`: the agent's letter of attorney as
/// received, to check before verifying (an audited read). Always a
/// download, never shown in the console's origin: the bytes came from
/// outside.
async fn letter(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let letter = match state.engine.request_letter(&staff.caller, &id, state.clock.now()).await {
        Ok(l) => l,
        Err(e) => return engine_error(&policy, e),
    };
    let extension = match letter.media_type.as_str() {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        _ => "txt",
    };
    // The request id is ours (`req_` and hex), safe in a header.
    let disposition = format!(
        "attachment; filename=\"letter-{}.{extension}\"",
        id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "")
    );
    let mut response = letter.bytes.into_response();
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, letter.media_type.as_str()),
        (header::CONTENT_DISPOSITION, disposition.as_str()),
        (header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    response
}

// --- logging a request -----------------------------------------------------------

/// `GET /staff/requests/new`: log a request received by letter, e-mail or
/// fax, by the member or by an agent with a letter of attorney.
async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let kinds: String = ["access", "export", "correction", "deletion", "restriction", "know"]
        .iter()
        .map(|k| format!("<option value=\"{k}\">{k}</option>"))
        .collect();
    let channels: String = policy
        .channels
        .iter()
        .map(|c| format!("<option value=\"{}\">{}</option>", esc(c.id.as_str()), esc(&c.name)))
        .collect();
    let body = format!(
        "<section class=\"card\"><form method=\"post\" action=\"/staff/requests/new\" enctype=\"multipart/form-data\">{csrf}\
         <label for=\"subject\">Member id</label><input type=\"text\" id=\"subject\" name=\"subject\" required pattern=\"sub_[0-9a-f]+\">\
         <label for=\"kind\">Kind</label><select id=\"kind\" name=\"kind\">{kinds}</select>\
         <label for=\"channel\">Received by</label><select id=\"channel\" name=\"channel\">{channels}</select>\
         <fieldset><legend>Filed by an agent</legend>\
         <label for=\"agent_name\">Agent's name</label><input type=\"text\" id=\"agent_name\" name=\"agent_name\">\
         <label for=\"agent_contact\">Agent's contact</label><input type=\"text\" id=\"agent_contact\" name=\"agent_contact\">\
         <label for=\"letter\">Letter of attorney</label>\
         <input type=\"file\" id=\"letter\" name=\"letter\" aria-describedby=\"letter-hint\" \
         accept=\"application/pdf,image/png,image/jpeg,text/plain,.pdf,.png,.jpg,.jpeg,.txt\">\
         <p class=\"hint\" id=\"letter-hint\">A PDF, PNG or JPEG scan, or a text file; at most {max} MiB. Kept \
         encrypted with the request; its SHA-256 is recorded and the member is told.</p></fieldset>\
         <label for=\"note\">Note (optional)</label><textarea id=\"note\" name=\"note\" maxlength=\"2000\"></textarea>\
         <button type=\"submit\">Log the request</button></form></section>",
        csrf = csrf_field(&staff),
        max = MAX_LETTER_BYTES / (1024 * 1024),
    );
    staff_page(&policy, &staff, "Log a request", "/staff/requests/new", &body)
}

/// The text fields of the form that logs a request (its file is `letter`).
const NEW_REQUEST_FIELDS: &[&str] = &["csrf", "subject", "kind", "channel", "agent_name", "agent_contact", "note"];

/// `POST /staff/requests/new` (`multipart/form-data`, the letter as a
/// file): files it; an agent's waits for a staff member to check the
/// letter (the verify step).
async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // The CSRF token is the form's first field, checked before the rest is
    // read.
    let mut f = match upload::read(multipart, Some(&staff.csrf), NEW_REQUEST_FIELDS, "letter", MAX_LETTER_BYTES).await {
        Ok(f) => f,
        Err(refused) => return error_page(&policy, refused.status, &refused.message),
    };
    let letter = f.file.take();
    let (agent_name, agent_contact) = (f.text("agent_name").trim(), f.text("agent_contact").trim());
    let by_agent = !(agent_name.is_empty() && agent_contact.is_empty() && letter.is_none());
    // The engine refuses an agent's request without a letter, by field.
    let agent = by_agent.then(|| {
        let (letter, letter_type) = letter.map_or((Vec::new(), "text/plain"), |l| (l.bytes, l.media_type));
        NewAgent {
            name: agent_name.to_owned(),
            contact: agent_contact.to_owned(),
            letter,
            letter_type: letter_type.to_owned(),
        }
    });
    let request = NewRequest {
        kind: f.text("kind").to_owned(),
        channel: f.text("channel").to_owned(),
        jurisdiction: None,
        subject: f.text("subject").trim().to_owned(),
        verification: Verification::Staff,
        agent,
        purposes: Vec::new(),
        corrections: Vec::new(),
        note: Some(f.text("note").trim().to_owned()).filter(|n| !n.is_empty()),
        received_on: None,
    };
    match state.engine.file_request(&staff.caller, request, state.clock.now()).await {
        Ok(filed) => Redirect::to(&format!("/staff/requests/{}", filed.request.id)).into_response(),
        Err(e) => engine_error(&policy, e),
    }
}

// --- members, policy, audit ----------------------------------------------------------

/// `GET /staff/members`: the members of the staff member's scope (ids,
/// kinds, statuses: a listing shows no personal value; it is audited).
async fn members(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let service = staff.caller.service.clone();
    let list = match state.engine.list_subjects(&staff.caller, service, None, 200, state.clock.now()).await {
        Ok(l) => l,
        Err(e) => return engine_error(&policy, e),
    };
    let mut body = String::from(
        "<p>Members by id and status. A member's details are read for a purpose (on their page, audited); a \
         dormant member's only with the dormant-lookup privilege, masked otherwise.</p><section class=\"card\"><div class=\"scroll\">\
         <table id=\"members\"><thead><tr><th scope=\"col\">Member</th><th scope=\"col\">Kind</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Since</th></tr></thead><tbody>",
    );
    for m in &list {
        let kind =
            policy.subject_kinds.iter().find(|k| k.id.as_str() == m.kind).map(|k| k.name.as_str()).unwrap_or(&m.kind);
        body.push_str(&format!(
            "<tr><td><a href=\"/staff/members/{id}\"><code>{id}</code></a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(kind),
            esc(&m.status),
            esc(&short_time(&m.created_at)),
            id = esc(&m.id),
        ));
    }
    body.push_str("</tbody></table></div></section>");
    staff_page(&policy, &staff, "Members", "/staff/members", &body)
}

/// `GET /staff/policy`: the version in force and the notice board of
/// amendments, with their dates.
async fn policy_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let notices = match state.engine.notices().await {
        Ok(n) => n,
        Err(e) => return engine_error(&policy, e),
    };
    let mut body = format!(
        "<section class=\"card\"><h2>In force</h2><p>{} version <strong>{}</strong>, effective {} (notice {}). \
         <a href=\"/privacy/policy\">The published text</a>.</p></section>\
         <section class=\"card\" aria-labelledby=\"board\"><h2 id=\"board\">Amendments</h2>",
        esc(&policy.meta.title),
        esc(&policy.meta.version),
        policy.meta.effective_date,
        policy.meta.notice_date,
    );
    if notices.is_empty() {
        body.push_str("<p>None announced. Publish one with <code>POST /v1/policy/amendments</code>.</p>");
    } else {
        body.push_str(
            "<table><thead><tr><th scope=\"col\">Version</th><th scope=\"col\">Announced</th>\
             <th scope=\"col\">Effective</th><th scope=\"col\">Significant</th><th scope=\"col\">State</th></tr></thead><tbody>",
        );
        for n in &notices {
            let state_text = match (&n.in_force_at, &n.superseded_at) {
                (_, Some(_)) => "replaced",
                (Some(_), None) => "in force",
                (None, None) => "announced",
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&n.version),
                esc(&short_time(&n.announced_at)),
                esc(&n.effective_date),
                if n.significant { "yes" } else { "no" },
                state_text
            ));
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");
    staff_page(&policy, &staff, "Policy and notices", "/staff/policy", &body)
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    bytes?.try_into().ok()
}

fn checkpoint_html(c: &custos_engine::SignedCheckpoint) -> String {
    let signed = match c.verify_signature(&c.public_key) {
        Ok(()) => "valid",
        Err(_) => "INVALID",
    };
    format!(
        "<table id=\"checkpoint\"><tbody><tr><th scope=\"row\">Entries</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Root</th><td><code>{}</code></td></tr><tr><th scope=\"row\">Issued</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Signature</th><td class=\"status\">{signed}</td></tr>\
         <tr><th scope=\"row\">Public key</th><td><code>{}</code></td></tr></tbody></table>",
        c.size,
        esc(&c.root),
        esc(&short_time(&c.time)),
        esc(&c.public_key)
    )
}

fn audit_body(staff: &Staff, latest: Option<&custos_engine::SignedCheckpoint>, result: &str) -> String {
    let mut body = String::from(
        "<p>The audit log is a Merkle tree (RFC 9162); a checkpoint is its size and root, signed by the platform \
         (every minute while the log grows). Auditors keep checkpoints and verify an export offline with \
         <code>custos audit verify</code>.</p>",
    );
    body.push_str(result);
    body.push_str("<section class=\"card\" aria-labelledby=\"latest\"><h2 id=\"latest\">Latest checkpoint</h2>");
    match latest {
        Some(c) => {
            body.push_str(&checkpoint_html(c));
            body.push_str(&format!(
                "<form method=\"post\" action=\"/staff/audit/verify\">{}\
                 <input type=\"hidden\" name=\"size\" value=\"{}\"><input type=\"hidden\" name=\"root\" value=\"{}\">\
                 <button type=\"submit\">Verify the newest checkpoint against this one</button></form>",
                csrf_field(staff),
                c.size,
                esc(&c.root)
            ));
        }
        None => body.push_str("<p>None issued yet.</p>"),
    }
    body.push_str("</section>");
    body
}

/// `GET /staff/audit`: the latest checkpoint, its signature checked.
async fn audit(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(e) = state.engine.permit_audit(&staff.caller, false, state.clock.now()).await {
        return engine_error(&policy, e);
    }
    let latest = match state.engine.latest_checkpoint().await {
        Ok(c) => c,
        Err(e) => return engine_error(&policy, e),
    };
    let body = audit_body(&staff, latest.as_ref(), "");
    staff_page(&policy, &staff, "Audit log", "/staff/audit", &body)
}

#[derive(Deserialize)]
struct VerifyForm {
    #[serde(default)]
    csrf: String,
    size: u64,
    root: String,
}

/// `POST /staff/audit/verify`: checks that the newest checkpoint's log
/// still holds, unchanged and in order, every entry of the checkpoint the
/// staff member saw (its size and root, from the form): the consistency
/// proof, verified here, and the newest checkpoint's signature.
async fn verify_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<VerifyForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let (staff, f) = match staff_form(&state, &headers, &policy, f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(old_root) = unhex32(&f.root) else {
        return error_page(&policy, StatusCode::UNPROCESSABLE_ENTITY, "A root is 64 hexadecimal digits.");
    };
    if let Err(e) = state.engine.permit_audit(&staff.caller, false, state.clock.now()).await {
        return engine_error(&policy, e);
    }
    let new = match state.engine.latest_checkpoint().await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page(&policy, StatusCode::CONFLICT, "No checkpoint has been issued yet."),
        Err(e) => return engine_error(&policy, e),
    };
    let outcome = if f.size > new.size {
        Err(format!("the checkpoint you hold has {} entries, more than the newest ({})", f.size, new.size))
    } else {
        match state.engine.consistency_proof(f.size, new.size).await {
            Ok(proof) => {
                let hashes: Option<Vec<[u8; 32]>> = proof.iter().map(|h| unhex32(h)).collect();
                match (hashes, unhex32(&new.root)) {
                    (Some(hashes), Some(new_root)) => custos_core::merkle::verify_consistency(
                        f.size, new.size, &old_root, &new_root, &hashes,
                    )
                    .map(|()| {
                        format!(
                            "consistent: the log of {} entries holds the {} of the checkpoint you held, unchanged",
                            new.size, f.size
                        )
                    })
                    .map_err(|e| e.to_string()),
                    _ => Err("a hash is not 64 hex digits".to_owned()),
                }
            }
            Err(e) => Err(e.to_string()),
        }
    };
    let signed = new.verify_signature(&new.public_key).is_ok();
    let result = match (outcome, signed) {
        (Ok(text), true) => {
            format!("<p class=\"ok\" role=\"status\" id=\"verified\">Verified. Signature valid; {}.</p>", esc(&text))
        }
        (Ok(_), false) => {
            "<p class=\"error\" role=\"alert\" id=\"verified\">The newest checkpoint's signature does not verify.</p>"
                .to_owned()
        }
        (Err(e), _) => format!("<p class=\"error\" role=\"alert\" id=\"verified\">Not consistent: {}.</p>", esc(&e)),
    };
    let body = audit_body(&staff, Some(&new), &result);
    staff_page(&policy, &staff, "Audit log", "/staff/audit", &body)
}

impl CsrfToken for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfToken for StepForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfToken for VerifyForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
