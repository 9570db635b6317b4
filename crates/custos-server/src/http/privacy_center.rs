//! The member privacy center (issue 10): server-rendered pages under
//! `/privacy` where a member signs in with a one-time code sent to their
//! e-mail address, then sees their data grouped by category, downloads it,
//! manages their consents, files and follows rights requests, and reads the
//! policy and the notice board of amendments.
//!
//! Every page goes through one engine operation: the data page is an access
//! request fulfilled at once and the download an export request (each
//! fetch an audited read), consents are the consent ledger's own grants
//! and withdrawals, requests are filed verified by the member's session.
//! The session is the engine's (`custos_engine::privacy_center`); here it
//! lives in the cookie `custos_member` (HttpOnly, SameSite=Strict, Secure
//! behind https, ending with the session). Every POST form carries the
//! session's CSRF token, and a POST from another origin is refused.
//! Nothing a member typed is echoed back into a page or a log.

use axum::Form;
use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use custos_core::policy::Policy;
use custos_engine::privacy_center::{MemberSession, SESSION_MINUTES};
use custos_engine::requests::{MAX_LETTER_BYTES, NewRequest, Verification};
use custos_engine::{ConsentState, EngineError, NewConsent};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::pages::{self, CsrfToken, NavLink, cookie, esc, form, page, redirect_with_cookie, short_time};
use super::staff::ClientAddress;
use super::upload;

const SESSION_COOKIE: &str = "custos_member";
const SIGN_IN_COOKIE: &str = "custos_sign_in";
/// The channel the privacy center's acts are recorded under.
const CHANNEL: &str = "web_page";

const NAV: &[NavLink<'static>] = &[
    ("/privacy/data", "Your data"),
    ("/privacy/consents", "Consents"),
    ("/privacy/requests", "Requests"),
    ("/privacy/policy", "Privacy policy"),
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/privacy", get(home))
        .route("/privacy/sign-in", post(sign_in))
        .route("/privacy/code", get(code_form).post(code))
        .route("/privacy/sign-out", post(sign_out))
        .route("/privacy/data", get(data).post(access))
        .route("/privacy/export", post(export))
        .route("/privacy/consents", get(consents).post(change_consent))
        .route("/privacy/requests", get(requests).post(file_request))
        .route("/privacy/policy", get(policy_page))
        .route(
            "/privacy/agent",
            get(agent_form).post(agent_file).layer(DefaultBodyLimit::max(MAX_LETTER_BYTES + upload::TEXT_ROOM)),
        )
        .layer(middleware::from_fn(pages::same_origin))
}

// --- plumbing ------------------------------------------------------------------

fn error_page(policy: &Policy, status: StatusCode, message: &str) -> Response {
    pages::error_page(policy, "/privacy", status, message)
}

fn engine_error(policy: &Policy, e: EngineError) -> Response {
    pages::engine_error(policy, "/privacy", e)
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    pages::set_cookie(headers, name, value, "/privacy", max_age)
}

/// The signed-in member, or the way back to the sign-in page.
async fn member(state: &AppState, headers: &HeaderMap) -> Result<MemberSession, Response> {
    let token = cookie(headers, SESSION_COOKIE).ok_or_else(|| Redirect::to("/privacy").into_response())?;
    state.engine.member_session(token, state.clock.now()).await.map_err(|_| {
        // An ended session: forget the cookie too.
        redirect_with_cookie("/privacy", set_cookie(headers, SESSION_COOKIE, "", 0))
    })
}

/// The signed-in member and their form, its CSRF token checked: how every
/// form of these pages begins.
async fn member_form<T: CsrfToken>(
    state: &AppState,
    headers: &HeaderMap,
    policy: &Policy,
    f: Result<Form<T>, FormRejection>,
) -> Result<(MemberSession, T), Response> {
    let session = member(state, headers).await?;
    let f = pages::checked_form(policy, "/privacy", &session.csrf, f)?;
    Ok((session, f))
}

fn csrf_field(session: &MemberSession) -> String {
    pages::csrf_field(&session.csrf)
}

/// A member page: the navigation, a sign-out button, an optional message.
fn member_page(policy: &Policy, session: &MemberSession, title: &str, current: &str, body: &str) -> Response {
    let body = format!(
        "<form method=\"post\" action=\"/privacy/sign-out\" class=\"inline\">{}\
         <button type=\"submit\" class=\"secondary\">Sign out</button></form>{body}",
        csrf_field(session)
    );
    page(policy, title, NAV, current, &body)
}

/// A fixed message chosen by a short key in the query (never echoed).
fn done_message(done: Option<&str>) -> &'static str {
    match done {
        Some("withdrawn") => "<p class=\"ok\" role=\"status\">Your consent was withdrawn.</p>",
        Some("granted") => "<p class=\"ok\" role=\"status\">Your consent was recorded.</p>",
        Some("filed") => "<p class=\"ok\" role=\"status\">Your request was filed. You can follow it below.</p>",
        _ => "",
    }
}

// --- signing in ----------------------------------------------------------------

#[derive(Deserialize)]
struct HomeQuery {
    service: Option<String>,
}

/// `GET /privacy`: the sign-in form, or the member's data when signed in.
async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HomeQuery>, QueryRejection>,
) -> Response {
    let policy = state.engine.policy();
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && state.engine.member_session(token, state.clock.now()).await.is_ok()
    {
        return Redirect::to("/privacy/data").into_response();
    }
    let service = query.ok().and_then(|q| q.0.service).filter(|s| s.len() <= 64).unwrap_or_default();
    let body = format!(
        "<p>Sign in to see the personal information {controller} holds about you, download it, manage your \
         consents and make requests about it. We send a one-time code to the e-mail address we have on file.</p>\
         <section class=\"card\"><form method=\"post\" action=\"/privacy/sign-in\">\
         <input type=\"hidden\" name=\"service\" value=\"{service}\">\
         <label for=\"email\">E-mail address</label>\
         <input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"email\" required aria-describedby=\"email-hint\">\
         <p class=\"hint\" id=\"email-hint\">The address you signed up with.</p>\
         <button type=\"submit\">Send me a code</button></form></section>\
         <p><a href=\"/privacy/policy\">Read the privacy policy</a> · \
         <a href=\"/privacy/agent\">Acting for someone? File a request as their agent</a></p>",
        controller = esc(&policy.controller.name),
        service = esc(&service),
    );
    page(&policy, "Privacy center", &[], "", &body)
}

#[derive(Deserialize)]
struct SignInForm {
    email: String,
    #[serde(default)]
    service: String,
}

/// `POST /privacy/sign-in`: mails a code (when the address is a member's)
/// and asks for it. The answer is the same either way.
async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
    f: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    // An anonymous form: counted per client address like the API's.
    if let Err(e) = state.engine.admit_anonymous_write(address, state.clock.now()) {
        return engine_error(&policy, e);
    }
    let f = match form(&policy, f) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let service = Some(f.service.trim()).filter(|s| !s.is_empty());
    match state.engine.start_member_sign_in(service, f.email.trim(), state.clock.now()).await {
        Ok(id) => redirect_with_cookie(
            "/privacy/code",
            set_cookie(&headers, SIGN_IN_COOKIE, &id, custos_engine::privacy_center::SIGN_IN_CODE_MINUTES * 60),
        ),
        Err(e) => engine_error(&policy, e),
    }
}

fn code_page(policy: &Policy, wrong: bool) -> Response {
    let alert = if wrong {
        "<p class=\"error\" role=\"alert\" id=\"code-error\">The code does not match, or it has expired.</p>"
    } else {
        ""
    };
    let body = format!(
        "<p class=\"notice\" role=\"status\">If the address is one we have on file, we sent a code to it. \
         It expires in {minutes} minutes.</p>{alert}\
         <section class=\"card\"><form method=\"post\" action=\"/privacy/code\">\
         <label for=\"code\">One-time code</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required{invalid}>\
         <button type=\"submit\">Sign in</button></form></section>\
         <p><a href=\"/privacy\">Ask for a new code</a></p>",
        minutes = custos_engine::privacy_center::SIGN_IN_CODE_MINUTES,
        invalid = if wrong { " aria-invalid=\"true\" aria-describedby=\"code-error\"" } else { "" },
    );
    page(policy, "Enter your code", &[], "", &body)
}

/// `GET /privacy/code`: the code form.
async fn code_form(State(state): State<AppState>) -> Response {
    code_page(&state.engine.policy(), false)
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

/// `POST /privacy/code`: checks the code; a session on success.
async fn code(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
    f: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    if let Err(e) = state.engine.admit_anonymous_write(address, state.clock.now()) {
        return engine_error(&policy, e);
    }
    let f = match form(&policy, f) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(id) = cookie(&headers, SIGN_IN_COOKIE) else {
        return error_page(&policy, StatusCode::BAD_REQUEST, "Ask for a code first.");
    };
    match state.engine.finish_member_sign_in(id, &f.code, state.clock.now()).await {
        Ok((token, _)) => {
            let mut response = redirect_with_cookie(
                "/privacy/data",
                set_cookie(&headers, SESSION_COOKIE, &token, SESSION_MINUTES * 60),
            );
            response.headers_mut().append(header::SET_COOKIE, set_cookie(&headers, SIGN_IN_COOKIE, "", 0));
            response
        }
        Err(EngineError::Invalid(_)) => {
            let mut response = code_page(&policy, true);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
        Err(e) => engine_error(&policy, e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /privacy/sign-out`.
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    if let Err(r) = member_form(&state, &headers, &policy, f).await {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.engine.end_member_session(token, state.clock.now()).await
    {
        return engine_error(&policy, e);
    }
    redirect_with_cookie("/privacy", set_cookie(&headers, SESSION_COOKIE, "", 0))
}

// --- your data -----------------------------------------------------------------

#[derive(Deserialize)]
struct DataQuery {
    request: Option<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The purposes' names for their ids (an id the policy no longer has stays
/// as it is).
fn purpose_names(policy: &Policy, v: &Value) -> String {
    v.as_array()
        .map(|ids| {
            ids.iter()
                .map(|id| {
                    let id = text(id);
                    policy.purpose_by_str(&id).map(|p| p.name.clone()).unwrap_or(id)
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| text(v))
}

/// The access package as tables: items grouped by the policy's categories
/// (each with its purposes, source, collection date and retention), then
/// the records kept by law.
fn package_html(policy: &Policy, package: &Value) -> String {
    let items = package.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut out = format!(
        "<p>As of {} (policy version {}).</p>",
        esc(&short_time(&text(&package["generated_at"]))),
        esc(&text(&package["policy_version"]))
    );
    let destroyed_on = items.iter().find_map(|i| i["destroyed_on"].as_str());
    if let (Some(aside), Some(destroyed)) = (package["subject"]["dormant_on"].as_str(), destroyed_on) {
        out.push_str(&format!(
            "<p id=\"dormancy\">If you do not use the service before then, your data is moved to separate storage \
             on <strong>{}</strong> and destroyed on <strong>{}</strong>. Signing in resets both dates; deleting your \
             account destroys it at once. The policy: {}.</p>",
            esc(aside),
            esc(destroyed),
            esc(&items.first().map(|i| text(&i["retention"])).unwrap_or_default()),
        ));
    }
    let mut categories: Vec<(String, String)> =
        policy.categories.iter().map(|c| (c.id.to_string(), c.name.clone())).collect();
    for item in items {
        let id = text(&item["category"]);
        if !categories.iter().any(|(c, _)| *c == id) {
            categories.push((id.clone(), id));
        }
    }
    for (id, name) in &categories {
        let rows: Vec<&Value> = items.iter().filter(|i| text(&i["category"]) == *id).collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "<section class=\"card\" aria-labelledby=\"cat-{id}\"><h2 id=\"cat-{id}\">{name}</h2><div class=\"scroll\"><table>\
             <thead><tr><th scope=\"col\">Item</th><th scope=\"col\">Value</th><th scope=\"col\">Used for</th>\
             <th scope=\"col\">Source</th><th scope=\"col\">Collected</th><th scope=\"col\">Kept until</th></tr></thead><tbody>",
            id = esc(id),
            name = esc(name)
        ));
        for item in rows {
            let value = match &item["value"] {
                Value::Null => "(held, not shown)".to_owned(),
                v => text(v),
            };
            let kept = match item["destroyed_on"].as_str() {
                Some(day) => format!(
                    "<span class=\"kept\">{}</span><br><span class=\"hint\">if you are not active before</span>",
                    esc(day)
                ),
                None => esc(&text(&item["retention"])),
            };
            out.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{kept}</td></tr>",
                esc(&text(&item["name"])),
                esc(&value),
                esc(&purpose_names(policy, &item["purposes"])),
                esc(&text(&item["source"])),
                esc(&short_time(&text(&item["collected_at"]))),
            ));
        }
        out.push_str("</tbody></table></div></section>");
    }
    let records = package.get("records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    out.push_str("<section class=\"card\"><h2>Records kept by law</h2>");
    if records.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Record</th><th scope=\"col\">Date</th>\
             <th scope=\"col\">Law</th><th scope=\"col\">Kept until</th></tr></thead><tbody>",
        );
        for r in records {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&text(&r["name"])),
                esc(&text(&r["record_date"])),
                esc(&text(&r["law"])),
                esc(&text(&r["kept_until"])),
            ));
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("</section>");
    out
}

/// `GET /privacy/data`: the buttons to see and to download one's data;
/// with `?request=`, the package of that (fulfilled) access request, read
/// afresh and audited.
async fn data(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DataQuery>, QueryRejection>,
) -> Response {
    let policy = state.engine.policy();
    let session = match member(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let csrf = csrf_field(&session);
    let mut body = format!(
        "<section class=\"card\"><p>See everything we hold about you, with what it is used for, where it came from \
         and how long it is kept, or download it as a file (JSON).</p>\
         <form method=\"post\" action=\"/privacy/data\" class=\"inline\">{csrf}<button type=\"submit\">Show my data</button></form> \
         <form method=\"post\" action=\"/privacy/export\" class=\"inline\">{csrf}\
         <button type=\"submit\" class=\"secondary\">Download my data</button></form></section>"
    );
    if let Some(id) = query.ok().and_then(|q| q.0.request).filter(|id| id.len() <= 64) {
        match state.engine.request_outcome(&session.caller, &id, state.clock.now()).await {
            Ok(answer) => {
                let value: Value = serde_json::from_str(&answer).unwrap_or_default();
                let package = value.get("package").unwrap_or(&value);
                body.push_str(&package_html(&policy, package));
            }
            Err(e) => return engine_error(&policy, e),
        }
    }
    member_page(&policy, &session, "Your data", "/privacy/data", &body)
}

/// Files a request of `kind` for the member, verified by their session,
/// and, for access and export, fulfils it at once (the engine lets the
/// filer do that for these kinds only). Answers the request id.
async fn file_and_fulfil(state: &AppState, session: &MemberSession, kind: &str) -> Result<String, EngineError> {
    let now = state.clock.now();
    let filed = state
        .engine
        .file_request(
            &session.caller,
            NewRequest {
                kind: kind.to_owned(),
                channel: CHANNEL.to_owned(),
                jurisdiction: None,
                subject: session.subject.clone(),
                verification: Verification::PlatformSession,
                agent: None,
                purposes: Vec::new(),
                corrections: Vec::new(),
                note: None,
                received_on: None,
            },
            now,
        )
        .await?;
    state.engine.fulfil_request(&session.caller, &filed.request.id, now).await?;
    Ok(filed.request.id)
}

/// `POST /privacy/data`: an access request, fulfilled at once, shown.
async fn access(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let (session, _) = match member_form(&state, &headers, &policy, f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match file_and_fulfil(&state, &session, "access").await {
        Ok(id) => Redirect::to(&format!("/privacy/data?request={id}")).into_response(),
        Err(e) => engine_error(&policy, e),
    }
}

/// `POST /privacy/export`: an export request, fulfilled at once, answered
/// as a file to save.
async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let (session, _) = match member_form(&state, &headers, &policy, f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = match file_and_fulfil(&state, &session, "export").await {
        Ok(id) => id,
        Err(e) => return engine_error(&policy, e),
    };
    match state.engine.request_outcome(&session.caller, &id, state.clock.now()).await {
        Ok(answer) => {
            let disposition =
                format!("attachment; filename=\"personal-data-{}.json\"", state.clock.now().strftime("%Y-%m-%d"));
            let mut response = (StatusCode::OK, answer).into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            response
        }
        Err(e) => engine_error(&policy, e),
    }
}

// --- consents ------------------------------------------------------------------

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

/// `GET /privacy/consents`: each purpose that rests on consent, with the
/// notice text and the policy version a choice is recorded under, its
/// state, and the button to withdraw or give it.
async fn consents(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let policy = state.engine.policy();
    let session = match member(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ledger = match state.engine.consents(&session.caller, &session.subject, state.clock.now()).await {
        Ok(l) => l,
        Err(e) => return engine_error(&policy, e),
    };
    let mut body = done_message(query.as_ref().ok().and_then(|q| q.0.done.as_deref())).to_owned();
    body.push_str("<p>What you agreed to beyond what the service needs. You can change each one at any time.</p>");
    for status in &ledger.current {
        let Some(purpose) = policy.purpose_by_str(&status.purpose) else { continue };
        let last = ledger.history.iter().rev().find(|e| e.purpose == status.purpose);
        let (label, action, button, class) = match status.state {
            ConsentState::Granted => ("Given", "withdraw", "Withdraw consent", "danger"),
            ConsentState::Withdrawn => ("Withdrawn", "grant", "Give consent", ""),
            ConsentState::NeedsRenewal => {
                ("Needs renewal: the purpose was widened since", "grant", "Give consent again", "")
            }
            ConsentState::NotGiven => ("Not given", "grant", "Give consent", ""),
        };
        let since = last
            .map(|e| format!(" since {} (policy version {})", esc(&short_time(&e.at)), esc(&e.policy_version)))
            .unwrap_or_default();
        body.push_str(&format!(
            "<section class=\"card\" aria-labelledby=\"p-{id}\"><h2 id=\"p-{id}\">{name}</h2>\
             <blockquote>{notice}</blockquote>\
             <p class=\"hint\">Notice of policy version {version}.</p>\
             <p>Status: <span class=\"status\" id=\"state-{id}\">{label}</span>{since}</p>\
             <form method=\"post\" action=\"/privacy/consents\">{csrf}\
             <input type=\"hidden\" name=\"purpose\" value=\"{id}\"><input type=\"hidden\" name=\"action\" value=\"{action}\">\
             <button type=\"submit\" class=\"{class}\">{button}</button></form></section>",
            id = esc(purpose.id.as_str()),
            name = esc(&purpose.name),
            notice = esc(&purpose.description),
            version = esc(&ledger.policy_version),
            csrf = csrf_field(&session),
        ));
    }
    if ledger.current.is_empty() {
        body.push_str("<p>No purpose of the policy rests on your consent.</p>");
    }
    // The cookie choices linked to the account (made in a site's banner
    // and linked when the member signed in there).
    let cookies = match state.engine.member_cookie_consent(&session.caller, &session.subject, state.clock.now()).await {
        Ok(c) => c,
        Err(e) => return engine_error(&policy, e),
    };
    body.push_str(
        "<section class=\"card\" aria-labelledby=\"cookies\"><h2 id=\"cookies\">Cookies</h2>\
         <p>Cookie choices are made in each site's cookie banner (its \"Cookie settings\" link); those linked to \
         your account:</p><div class=\"scroll\"><table id=\"cookie-choices\"><thead><tr><th scope=\"col\">Category</th>\
         <th scope=\"col\">State</th></tr></thead><tbody>",
    );
    for c in &cookies.categories {
        let state = match (c.granted, c.basis) {
            (true, "necessary") => "always on (strictly necessary)",
            (true, _) => "allowed",
            (false, "gpc") => "off (Global Privacy Control)",
            (false, "not_chosen") => "off (not chosen)",
            (false, _) => "off",
        };
        body.push_str(&format!("<tr><td>{}</td><td>{}</td></tr>", esc(&c.name), state));
    }
    body.push_str("</tbody></table></div></section>");
    member_page(&policy, &session, "Consents", "/privacy/consents", &body)
}

#[derive(Deserialize)]
struct ConsentForm {
    #[serde(default)]
    csrf: String,
    purpose: String,
    action: String,
}

/// `POST /privacy/consents`: a withdrawal or a grant, recorded with the
/// notice text shown and its policy version.
async fn change_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let (session, f) = match member_form(&state, &headers, &policy, f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let granted = match f.action.as_str() {
        "grant" => true,
        "withdraw" => false,
        _ => return error_page(&policy, StatusCode::BAD_REQUEST, "Choose to give or to withdraw."),
    };
    let Some(purpose) = policy.purpose_by_str(&f.purpose).filter(|p| p.consent.is_some()) else {
        return error_page(&policy, StatusCode::UNPROCESSABLE_ENTITY, "No such purpose rests on consent.");
    };
    let consent = NewConsent {
        purpose: purpose.id.to_string(),
        granted,
        channel: CHANNEL.to_owned(),
        notice_text: Some(purpose.description.clone()),
        ip: None,
        user_agent: None,
        policy_version: Some(policy.meta.version.clone()),
    };
    match state.engine.record_consent(&session.caller, &session.subject, consent, state.clock.now()).await {
        Ok(_) => {
            Redirect::to(if granted { "/privacy/consents?done=granted" } else { "/privacy/consents?done=withdrawn" })
                .into_response()
        }
        Err(e) => engine_error(&policy, e),
    }
}

// --- requests ------------------------------------------------------------------

/// The kinds a member files here, with their labels (access and export are
/// the data page's buttons).
const KINDS: &[(&str, &str)] = &[
    ("correction", "Correct my information"),
    ("deletion", "Delete my account and my information"),
    ("restriction", "Stop processing my information (restriction)"),
    ("access", "A copy of my information, answered by staff"),
];

/// `GET /privacy/requests`: the member's requests with status and
/// deadline, and the form to file one.
async fn requests(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let policy = state.engine.policy();
    let session = match member(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let list = match state.engine.member_requests(&session, state.clock.now()).await {
        Ok(l) => l,
        Err(e) => return engine_error(&policy, e),
    };
    let mut body = done_message(query.as_ref().ok().and_then(|q| q.0.done.as_deref())).to_owned();
    body.push_str("<section class=\"card\" aria-labelledby=\"yours\"><h2 id=\"yours\">Your requests</h2>");
    if list.is_empty() {
        body.push_str("<p>None yet.</p>");
    } else {
        body.push_str(
            "<div class=\"scroll\"><table id=\"request-list\"><thead><tr><th scope=\"col\">Request</th><th scope=\"col\">Kind</th>\
             <th scope=\"col\">Status</th><th scope=\"col\">Received</th><th scope=\"col\">Answer due</th></tr></thead><tbody>",
        );
        for r in &list {
            let due = match (&r.answer_by, &r.extended_by, r.days_left) {
                (_, Some(ext), _) if r.closed_at.is_none() => format!("{ext} (extended)"),
                (Some(d), _, Some(left)) if r.closed_at.is_none() => format!("{d} ({left} days left)"),
                (Some(d), _, _) => d.clone(),
                (None, _, _) => "—".to_owned(),
            };
            body.push_str(&format!(
                "<tr data-kind=\"{kind}\"><td><code>{id}</code></td><td>{kind}</td><td class=\"status\">{status}</td>\
                 <td>{received}</td><td>{due}</td></tr>",
                id = esc(&r.id),
                kind = esc(&r.kind),
                status = esc(&r.status.replace('_', " ")),
                received = esc(&short_time(&r.received_at)),
                due = esc(&due),
            ));
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str("</section>");
    let kinds: String =
        KINDS.iter().map(|(k, label)| format!("<option value=\"{k}\">{}</option>", esc(label))).collect();
    let items: String = policy
        .items
        .iter()
        .filter(|i| !i.generated && i.kind != custos_core::policy::model::ItemType::Password)
        .map(|i| format!("<option value=\"{}\">{}</option>", esc(i.id.as_str()), esc(&i.name)))
        .collect();
    let purposes: String = policy
        .purposes
        .iter()
        .map(|p| format!("<option value=\"{}\">{}</option>", esc(p.id.as_str()), esc(&p.name)))
        .collect();
    body.push_str(&format!(
        "<section class=\"card\" aria-labelledby=\"new\"><h2 id=\"new\">Make a request</h2>\
         <form method=\"post\" action=\"/privacy/requests\">{csrf}\
         <label for=\"kind\">What do you ask for?</label><select id=\"kind\" name=\"kind\">{kinds}</select>\
         <fieldset><legend>For a correction</legend>\
         <label for=\"item\">Item to correct</label><select id=\"item\" name=\"item\"><option value=\"\">—</option>{items}</select>\
         <label for=\"value\">Correct value</label><input type=\"text\" id=\"value\" name=\"value\" autocomplete=\"off\"></fieldset>\
         <fieldset><legend>For a restriction</legend>\
         <label for=\"purpose\">Purpose to stop</label><select id=\"purpose\" name=\"purpose\">\
         <option value=\"\">All purposes</option>{purposes}</select></fieldset>\
         <label for=\"note\">Anything to add (optional)</label><textarea id=\"note\" name=\"note\" maxlength=\"2000\"></textarea>\
         <p class=\"hint\">Staff answer a deletion request within its deadline: your account is then deleted at once; records the law requires \
         us to keep stay until their legal period ends, and the answer says which.</p>\
         <button type=\"submit\">File the request</button></form></section>",
        csrf = csrf_field(&session),
    ));
    member_page(&policy, &session, "Requests", "/privacy/requests", &body)
}

#[derive(Deserialize)]
struct RequestForm {
    #[serde(default)]
    csrf: String,
    kind: String,
    #[serde(default)]
    item: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    note: String,
}

/// `POST /privacy/requests`: files the request, verified by the session;
/// staff answer it within its deadline.
async fn file_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<RequestForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let (session, f) = match member_form(&state, &headers, &policy, f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !KINDS.iter().any(|(k, _)| *k == f.kind) {
        return error_page(&policy, StatusCode::UNPROCESSABLE_ENTITY, "Choose what you ask for.");
    }
    let corrections = if f.kind == "correction" { vec![(f.item.clone(), f.value.clone())] } else { Vec::new() };
    let purposes = if f.kind == "restriction" && !f.purpose.is_empty() { vec![f.purpose.clone()] } else { Vec::new() };
    let request = NewRequest {
        kind: f.kind.clone(),
        channel: CHANNEL.to_owned(),
        jurisdiction: None,
        subject: session.subject.clone(),
        verification: Verification::PlatformSession,
        agent: None,
        purposes,
        corrections,
        note: Some(f.note.trim().to_owned()).filter(|n| !n.is_empty()),
        received_on: None,
    };
    match state.engine.file_request(&session.caller, request, state.clock.now()).await {
        Ok(_) => Redirect::to("/privacy/requests?done=filed").into_response(),
        Err(e) => engine_error(&policy, e),
    }
}

// --- the policy ----------------------------------------------------------------

/// `GET /privacy/policy`: the policy in force, as published, and the notice
/// board of amendments. Open without signing in.
async fn policy_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let policy = state.engine.policy();
    let notices = match state.engine.notices().await {
        Ok(n) => n,
        Err(e) => return engine_error(&policy, e),
    };
    let mut body = String::from("<section class=\"card\" aria-labelledby=\"board\"><h2 id=\"board\">Notice board</h2>");
    if notices.is_empty() {
        body.push_str("<p>No amendment has been announced.</p>");
    }
    for n in &notices {
        let state_text = match (&n.in_force_at, &n.superseded_at) {
            (_, Some(s)) => format!("replaced on {s}"),
            (Some(at), None) => format!("in force since {at}"),
            (None, None) => format!("takes effect on {}", n.effective_date),
        };
        let changes: String = n.changes.iter().map(|c| format!("<li>{}</li>", esc(c))).collect();
        body.push_str(&format!(
            "<article><h3>Version {version}{significant}</h3><p>Announced {announced}; {state}.</p><ul>{changes}</ul></article>",
            version = esc(&n.version),
            significant = if n.significant { " (significant change)" } else { "" },
            announced = esc(&n.announced_at),
            state = esc(&state_text),
        ));
    }
    body.push_str("</section>");
    // The published text, as `custos policy render` prints it: its body
    // only (the page has its own head).
    let full = custos_core::policy::render::render(&policy, custos_core::policy::render::Format::Html);
    let inner = full
        .split_once("<main>")
        .and_then(|(_, rest)| rest.rsplit_once("</main>"))
        .map(|(inner, _)| inner.to_owned())
        .unwrap_or_default();
    body.push_str(&format!("<section class=\"card policy\" aria-label=\"The privacy policy\">{inner}</section>"));
    let signed_in = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => state.engine.member_session(token, state.clock.now()).await.ok(),
        None => None,
    };
    match signed_in {
        Some(session) => member_page(&policy, &session, "Privacy policy", "/privacy/policy", &body),
        None => page(&policy, "Privacy policy", &[], "", &body),
    }
}

// --- an agent's request ------------------------------------------------------------

/// The kinds an agent may ask for here.
const AGENT_KINDS: &[&str] = &["access", "correction", "deletion", "restriction"];

/// `GET /privacy/agent`: the public form an agent with a letter of
/// attorney files a request on.
async fn agent_form(State(state): State<AppState>, query: Result<Query<HomeQuery>, QueryRejection>) -> Response {
    let policy = state.engine.policy();
    let service = query.ok().and_then(|q| q.0.service).filter(|s| s.len() <= 64).unwrap_or_default();
    let kinds: String = AGENT_KINDS.iter().map(|k| format!("<option value=\"{k}\">{k}</option>")).collect();
    let body = format!(
        "<p>If a member authorised you in writing to act for them, file their request here. Staff check the letter \
         of attorney before anything is done, and the member is told.</p>\
         <section class=\"card\"><form method=\"post\" action=\"/privacy/agent\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"service\" value=\"{service}\">\
         <label for=\"member_email\">The member's e-mail address</label>\
         <input type=\"email\" id=\"member_email\" name=\"member_email\" required>\
         <label for=\"kind\">What the member asks for</label><select id=\"kind\" name=\"kind\">{kinds}</select>\
         <label for=\"agent_name\">Your name</label><input type=\"text\" id=\"agent_name\" name=\"agent_name\" required maxlength=\"200\">\
         <label for=\"agent_contact\">How to reach you</label>\
         <input type=\"text\" id=\"agent_contact\" name=\"agent_contact\" required maxlength=\"200\">\
         <label for=\"letter\">The letter of attorney</label>\
         <input type=\"file\" id=\"letter\" name=\"letter\" required aria-describedby=\"letter-hint\" \
         accept=\"application/pdf,image/png,image/jpeg,text/plain,.pdf,.png,.jpg,.jpeg,.txt\">\
         <p class=\"hint\" id=\"letter-hint\">A PDF, PNG or JPEG scan, or a text file; at most {max} MiB. It is kept \
         encrypted with the request, and its SHA-256 is recorded.</p>\
         <label for=\"note\">Anything to add (optional)</label><textarea id=\"note\" name=\"note\" maxlength=\"2000\"></textarea>\
         <button type=\"submit\">File the request</button></form></section>",
        service = esc(&service),
        max = MAX_LETTER_BYTES / (1024 * 1024),
    );
    page(&policy, "A request by an agent", &[], "", &body)
}

/// The text fields of the agent form (its file is `letter`).
const AGENT_FIELDS: &[&str] = &["service", "member_email", "kind", "agent_name", "agent_contact", "note"];

/// `POST /privacy/agent` (`multipart/form-data`, the letter as a file):
/// files it for the member with that address, if there is one; the answer
/// is the same either way.
async fn agent_file(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let policy = state.engine.policy();
    if let Err(e) = state.engine.admit_anonymous_write(address, state.clock.now()) {
        return engine_error(&policy, e);
    }
    let mut f = match upload::read(multipart, None, AGENT_FIELDS, "letter", MAX_LETTER_BYTES).await {
        Ok(f) => f,
        Err(refused) => return error_page(&policy, refused.status, &refused.message),
    };
    // Checked before the member is looked up, so a known and an unknown
    // address get the same answer to the same form.
    let letter = f.file.take();
    let (name, contact, kind, note) =
        (f.text("agent_name").trim(), f.text("agent_contact").trim(), f.text("kind"), f.text("note").trim());
    let too_long = name.len() > 200 || contact.len() > 200 || note.len() > 2000;
    let Some(letter) = letter.filter(|_| !(name.is_empty() || contact.is_empty() || too_long)) else {
        return error_page(
            &policy,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Give the kind of request, your name, how to reach you and the letter of attorney.",
        );
    };
    if !AGENT_KINDS.contains(&kind) {
        return error_page(&policy, StatusCode::UNPROCESSABLE_ENTITY, "Choose one of the kinds of request listed.");
    }
    let request = custos_engine::privacy_center::AgentRequest {
        service: Some(f.text("service").trim().to_owned()).filter(|s| !s.is_empty()),
        member_email: f.text("member_email").trim().to_owned(),
        kind: kind.to_owned(),
        agent: custos_engine::requests::NewAgent {
            name: name.to_owned(),
            contact: contact.to_owned(),
            letter: letter.bytes,
            letter_type: letter.media_type.to_owned(),
        },
        note: Some(note.to_owned()).filter(|n| !n.is_empty()),
    };
    match state.engine.file_agent_request(request, state.clock.now()).await {
        Ok(()) => page(
            &policy,
            "Request received",
            &[],
            "",
            "<p class=\"ok\" role=\"status\">Received. If the address is a member's, staff check the letter of attorney \
             and answer you within the legal deadline; the member is told.</p>",
        ),
        Err(e) => engine_error(&policy, e),
    }
}

impl CsrfToken for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfToken for ConsentForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfToken for RequestForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
