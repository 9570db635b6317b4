//! What the HTML pages share: the layout (one served stylesheet, no
//! external font or script), escaping, the security headers, and the static
//! files the pages use. Pages are not part of the JSON API, so they are not
//! in the OpenAPI document; every value from the policy or the store is
//! escaped with [`esc`] before it reaches markup.
//!
//! Also here: the cookie demo page (`GET /demo/cookies`), a page that
//! embeds `/consent.js` with one inert non-essential script per category
//! the visitor may choose, so the banner can be seen (and tested) working.

use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use custos_core::policy::Policy;
pub(crate) use custos_core::policy::render::escape_html as esc;
use custos_engine::EngineError;

use super::AppState;

const STYLESHEET: &str = include_str!("../../static/pages.css");
const DEMO_SCRIPT: &str = include_str!("../../static/demo.js");
const NON_ESSENTIAL_SCRIPT: &str = include_str!("../../static/non-essential.js");

/// The pages' Content-Security-Policy: everything from this origin, nothing
/// inline, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/pages.css", get(|| async { asset("text/css; charset=utf-8", STYLESHEET) }))
        .route("/assets/demo.js", get(|| async { asset("application/javascript; charset=utf-8", DEMO_SCRIPT) }))
        .route(
            "/assets/non-essential.js",
            get(|| async { asset("application/javascript; charset=utf-8", NON_ESSENTIAL_SCRIPT) }),
        )
        .route("/demo/cookies", get(cookie_demo))
        // No icon: an empty answer, so browsers stop asking.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// An RFC 3339 time as people read it, to the minute, in UTC
/// ("2024-06-01 09:30 UTC"); anything else as it is.
pub(crate) fn short_time(at: &str) -> String {
    match at.get(..16) {
        Some(head) if at.len() > 16 && at.as_bytes()[10] == b'T' => format!("{} UTC", head.replacen('T', " ", 1)),
        _ => at.to_owned(),
    }
}

/// One link of a page's navigation: (href, label).
pub(crate) type NavLink<'a> = (&'a str, &'a str);

/// A whole page: the policy's language, a skip link, the site header with
/// its navigation (`current` marked with `aria-current`), the body, and
/// the headers every page carries (no caching: pages show personal data).
pub(crate) fn page(policy: &Policy, title: &str, nav: &[NavLink<'_>], current: &str, body: &str) -> Response {
    let mut links = String::new();
    for (href, label) in nav {
        let mark = if *href == current { " aria-current=\"page\"" } else { "" };
        links.push_str(&format!("<li><a href=\"{}\"{mark}>{}</a></li>", esc(href), esc(label)));
    }
    let nav =
        if links.is_empty() { String::new() } else { format!("<nav aria-label=\"Sections\"><ul>{links}</ul></nav>") };
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {site}</title><link rel=\"stylesheet\" href=\"/assets/pages.css\"></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"site\"><div class=\"brand\">{site}</div>{nav}</header>\
         <main id=\"main\" tabindex=\"-1\"><h1>{title}</h1>{body}</main>\
         <footer class=\"site\">{controller} · privacy policy version {version}</footer></body></html>\n",
        lang = esc(&policy.meta.language),
        title = esc(title),
        site = esc(&policy.meta.title),
        controller = esc(&policy.controller.name),
        version = esc(&policy.meta.version),
    );
    with_headers(html.into_response())
}

/// The headers of every HTML answer.
pub(crate) fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

// --- what the page modules share -----------------------------------------------

/// A page that answers an error: the status and a message of our own
/// (never a submitted value).
pub(crate) fn error_page(policy: &Policy, home: &str, status: StatusCode, message: &str) -> Response {
    let body =
        format!("<p class=\"error\" role=\"alert\">{}</p><p><a href=\"{}\">Back</a></p>", esc(message), esc(home));
    let mut response = page(policy, "Something went wrong", &[], "", &body);
    *response.status_mut() = status;
    response
}

/// An engine error as a page. Invalid input is a 422 listing each problem
/// in the engine's words (which never repeat a value).
pub(crate) fn engine_error(policy: &Policy, home: &str, e: EngineError) -> Response {
    match e {
        EngineError::Invalid(errors) => {
            let list: String = errors.iter().map(|e| format!("<li>{}</li>", esc(&e.to_string()))).collect();
            let body = format!(
                "<div class=\"error\" role=\"alert\"><p>The request could not be accepted:</p><ul>{list}</ul></div>\
                 <p><a href=\"{}\">Back</a></p>",
                esc(home)
            );
            let mut response = page(policy, "Please check what you entered", &[], "", &body);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
        EngineError::Unauthenticated => Redirect::to(home).into_response(),
        other => {
            let api = super::ApiError::from(other);
            let status = api.into_response().status();
            let message = match status.as_u16() {
                403 => "This is not allowed.",
                404 => "Not found.",
                409 => "This cannot be done in the current state.",
                429 => "Too many attempts: try again later.",
                400..=499 => "The request could not be accepted.",
                _ => "The service is unavailable: try again shortly.",
            };
            error_page(policy, home, status, message)
        }
    }
}

/// Refuses a POST sent from another site (session cookies are
/// SameSite=Strict already; this covers the sign-in forms too): browsers
/// say where a request comes from in `Sec-Fetch-Site`, older ones in
/// `Origin`, which must then name this host.
pub(crate) async fn same_origin(request: Request, next: Next) -> Response {
    if request.method() == Method::POST {
        let headers = request.headers();
        let allowed = match (headers.get("sec-fetch-site"), headers.get(header::ORIGIN)) {
            (Some(site), _) => matches!(site.as_bytes(), b"same-origin" | b"none"),
            (None, Some(origin)) => {
                let origin = origin.to_str().unwrap_or("");
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
                origin == format!("http://{host}") || origin == format!("https://{host}")
            }
            // Not a browser's form: nothing to protect (no cookie of ours
            // is sent cross-site, and the CSRF token still applies).
            (None, None) => true,
        };
        if !allowed {
            return with_headers((StatusCode::FORBIDDEN, "a form of another site may not post here").into_response());
        }
    }
    next.run(request).await
}

pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the page was reached over https (directly or through a proxy
/// that says so), so cookies get `Secure`.
fn https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes() == b"https")
}

pub(crate) fn set_cookie(headers: &HeaderMap, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let secure = if https(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn redirect_with_cookie(to: &str, cookie: HeaderValue) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// A form of a signed-in page: it carries the session's CSRF token.
pub(crate) trait CsrfToken {
    fn csrf(&self) -> &str;
}

/// Two tokens compared in full, in constant time.
pub(crate) fn same_token(expected: &str, presented: &str) -> bool {
    let (a, b) = (expected.as_bytes(), presented.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The opening of a table that scrolls in its own box on a narrow screen:
/// its id and its column headers (plain text, escaped), up to `<tbody>`.
pub(crate) fn table_start(id: &str, columns: &[&str]) -> String {
    let heads: String = columns.iter().map(|c| format!("<th scope=\"col\">{}</th>", esc(c))).collect();
    format!("<div class=\"scroll\"><table id=\"{}\"><thead><tr>{heads}</tr></thead><tbody>", esc(id))
}

/// The hidden field that carries `token` in a form.
pub(crate) fn csrf_field(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(token))
}

/// A form body whose CSRF token is `expected`: a 400 page when it is not a
/// form, a 403 page (nothing done) when the token is not the session's.
#[allow(clippy::result_large_err)] // reason: the error is the handler's own answer, returned at once
pub(crate) fn checked_form<T: CsrfToken>(
    policy: &Policy,
    home: &str,
    expected: &str,
    f: Result<Form<T>, FormRejection>,
) -> Result<T, Response> {
    let f = form(policy, f)?;
    if !same_token(expected, f.csrf()) {
        return Err(error_page(policy, home, StatusCode::FORBIDDEN, "The form has expired: reload the page."));
    }
    Ok(f)
}

/// A form body, or a 400 page when it is not one.
#[allow(clippy::result_large_err)] // reason: the error is the handler's own answer, returned at once
pub(crate) fn form<T>(policy: &Policy, form: Result<Form<T>, FormRejection>) -> Result<T, Response> {
    form.map(|Form(f)| f).map_err(|_| {
        let mut response = page(
            policy,
            "Something went wrong",
            &[],
            "",
            "<p class=\"error\" role=\"alert\">The form was not complete.</p>",
        );
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response
    })
}

/// `GET /demo/cookies`: a sample page as a site would build it: it embeds
/// `/consent.js`, and for each category the visitor may choose, an inert
/// script (`type="text/plain"`) that runs only once that category is
/// granted. Each category shows whether its script ran.
async fn cookie_demo(State(state): State<AppState>) -> Response {
    let policy = state.engine.policy();
    let mut body = String::from(
        "<p>This page shows the cookie banner a site embeds with <code>&lt;script src=\"/consent.js\"&gt;</code>. \
         Each script below belongs to a category of cookies that is not strictly necessary: \
         it stays inert until you allow its category.</p>",
    );
    let categories = policy.cookies.as_ref().map(|c| c.categories.as_slice()).unwrap_or(&[]);
    let gpc_opts_out = policy.cookies.as_ref().map(|c| c.gpc_opts_out.as_slice()).unwrap_or(&[]);
    body.push_str("<section class=\"card\"><h2>Scripts on this page</h2><ul>");
    for category in categories.iter().filter(|c| !c.necessary) {
        let gpc =
            if gpc_opts_out.iter().any(|g| g == &category.id) { " (turned off by Global Privacy Control)" } else { "" };
        body.push_str(&format!(
            "<li>{name}{gpc}: <span class=\"status\" id=\"status-{id}\" aria-live=\"polite\">not run</span></li>",
            name = esc(&category.name),
            id = esc(category.id.as_str()),
        ));
    }
    body.push_str(
        "</ul><button type=\"button\" class=\"secondary\" id=\"cookie-settings\">Cookie settings</button></section>",
    );
    for category in categories.iter().filter(|c| !c.necessary) {
        body.push_str(&format!(
            "<script type=\"text/plain\" data-custos-category=\"{}\" src=\"/assets/non-essential.js\"></script>",
            esc(category.id.as_str())
        ));
    }
    body.push_str("<script src=\"/consent.js\"></script><script src=\"/assets/demo.js\"></script>");
    page(&policy, "Cookie banner demo", &[], "", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_minute_and_anything_else_as_it_is() {
        assert_eq!(short_time("2024-06-01T09:30:12.345Z"), "2024-06-01 09:30 UTC");
        assert_eq!(short_time("2024-06-01T09:30:00Z"), "2024-06-01 09:30 UTC");
        assert_eq!(short_time("2024-06-01"), "2024-06-01");
        assert_eq!(short_time("—"), "—");
        assert_eq!(short_time("not a time at all, longer"), "not a time at all, longer");
    }

    #[test]
    fn a_page_escapes_its_title_and_carries_the_policy_language_and_headers() {
        let policy = custos_core::policy::parse(crate::config::BUNDLED_POLICY).unwrap();
        let response = page(&policy, "<script>", &[("/a", "A<b>")], "/a", "<p>body</p>");
        let headers = response.headers();
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
        let body = body_text(response);
        assert!(body.contains("<html lang=\"en\">"), "{body}");
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"), "{body}");
        assert!(body.contains("aria-current=\"page\">A&lt;b&gt;</a>"), "{body}");
    }

    fn body_text(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
