//! The staff console's registers (issue 10): a member's page (their details
//! read for a purpose, masked when they are dormant and the reader lacks
//! the dormant-lookup privilege), complaints and inquiries (listed, and
//! logged as received), and the processors, transfers and third-party
//! recipients of the policy next to the register of what was handed over.
//!
//! Every read goes through the engine's audited operations with the staff
//! member's own session, as in the API: what a role may not see, the
//! engine refuses here too.

use std::collections::BTreeMap;

use axum::Form;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use custos_core::policy::Policy;
use custos_engine::requests::{NewComplaint, QueueFilter};
use serde::Deserialize;

use super::AppState;
use super::pages::{CsrfToken, esc, short_time, table_start};
use super::staff_console::{Staff, csrf_field, engine_error, error_page, staff, staff_form, staff_page};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/staff/members/{id}", get(member))
        .route("/staff/complaints", get(complaints).post(log_complaint))
        .route("/staff/complaints/new", get(complaint_form))
        .route("/staff/processing", get(processing))
}

/// A query of at most 64 bytes, or none.
fn short(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty() && s.len() <= 64)
}

fn item_name<'p>(policy: &'p Policy, id: &'p str) -> &'p str {
    policy.item_by_str(id).map(|i| i.name.as_str()).unwrap_or(id)
}

fn names<'a>(policy: &Policy, ids: impl IntoIterator<Item = &'a str>) -> String {
    ids.into_iter().map(|i| item_name(policy, i)).collect::<Vec<_>>().join(", ")
}

// --- a member ----------------------------------------------------------------------

#[derive(Deserialize)]
struct MemberQuery {
    purpose: Option<String>,
}

/// The purposes the staff member's role works for, as (id, name).
fn role_purposes(policy: &Policy, staff: &Staff) -> Vec<(String, String)> {
    let role = staff.caller.staff.as_ref().map(|s| s.role.as_str()).unwrap_or("");
    let Some(role) = policy.roles.iter().find(|r| r.id.as_str() == role) else { return Vec::new() };
    role.purposes
        .iter()
        .map(|p| {
            let name = policy.purposes.iter().find(|x| x.id == *p).map_or_else(|| p.to_string(), |x| x.name.clone());
            (p.to_string(), name)
        })
        .collect()
}

/// `GET /staff/members/{id}[?purpose=…]`: the member's details read for
/// the purpose chosen (the items that purpose may use; an audited read).
/// A dormant member is shown masked unless the reader holds the
/// dormant-lookup privilege.
async fn member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<MemberQuery>, QueryRejection>,
) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Query(query)) = query else {
        return error_page(&policy, StatusCode::BAD_REQUEST, "The address of the page is not valid.");
    };
    // A member id is `sub_` and hex: anything else is no member's page.
    let well_formed = id
        .strip_prefix("sub_")
        .is_some_and(|h| !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return error_page(&policy, StatusCode::NOT_FOUND, "There is no such member.");
    }
    let purposes = role_purposes(&policy, &staff);
    let chosen = short(query.purpose);
    let options: String = purposes
        .iter()
        .map(|(p, name)| {
            let selected = if chosen.as_deref() == Some(p.as_str()) { " selected" } else { "" };
            format!("<option value=\"{}\"{selected}>{}</option>", esc(p), esc(name))
        })
        .collect();
    let id_e = esc(&id);
    let mut body = format!(
        "<section class=\"card\"><form method=\"get\" action=\"/staff/members/{id_e}\">\
         <label for=\"purpose\">Read for the purpose</label><select id=\"purpose\" name=\"purpose\">{options}</select>\
         <p class=\"hint\">Only the items this purpose may use are shown; the read is on the audit log with the \
         purpose.</p><button type=\"submit\">Read</button></form></section>"
    );
    let title = format!("Member {id}");
    let Some(purpose) = chosen else {
        return staff_page(&policy, &staff, &title, "/staff/members", &body);
    };
    let read = match state.engine.read_subject(&staff.caller, &id, &purpose, None, state.clock.now()).await {
        Ok(r) => r,
        Err(e) => return engine_error(&policy, e),
    };
    let kind = policy.subject_kinds.iter().find(|k| k.id.as_str() == read.kind).map_or(read.kind.as_str(), |k| &k.name);
    let mut facts = format!(
        "<tr><th scope=\"row\">Kind</th><td>{}</td></tr><tr><th scope=\"row\">Status</th><td class=\"status\">{}</td></tr>",
        esc(kind),
        esc(&read.status)
    );
    if read.masked {
        body.push_str(&format!(
            "<section class=\"card\"><table id=\"member\"><tbody>{facts}</tbody></table>\
             <p class=\"masked\" id=\"masked\" role=\"status\">Dormant member: the details are kept in separate storage \
             and masked. Reading them needs the dormant-lookup privilege.</p></section>"
        ));
        return staff_page(&policy, &staff, &title, "/staff/members", &body);
    }
    for (item, value) in &read.items {
        facts.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(item_name(&policy, item)),
            esc(value)
        ));
    }
    body.push_str(&format!(
        "<section class=\"card\"><div class=\"scroll\"><table id=\"member\"><tbody>{facts}</tbody></table></div></section>"
    ));
    staff_page(&policy, &staff, &title, "/staff/members", &body)
}

// --- complaints and inquiries ---------------------------------------------------------

const COMPLAINT_KINDS: &[&str] = &["complaint", "inquiry"];
/// Most complaints and inquiries the page lists (deadline first); the API
/// pages through the rest (`GET /v1/requests`).
const LISTED: u32 = 200;

/// The collection points a complaint can be taken at: those that collect
/// some item from the person (not generated ones).
fn points(policy: &Policy) -> impl Iterator<Item = &custos_core::policy::model::CollectionPoint> {
    policy.collection_points.iter().filter(|p| !p.sources.iter().any(|s| s.as_str() == "generated"))
}

/// The record classes kept from their own date (a complaint is kept from
/// the day it was received); complaint-like ones first.
fn keep_classes(policy: &Policy) -> Vec<&custos_core::policy::model::RecordClass> {
    let mut classes: Vec<_> = policy
        .record_classes
        .iter()
        .filter(|c| matches!(c.from, custos_core::policy::model::RecordStart::RecordDate))
        .collect();
    classes.sort_by_key(|c| !c.id.as_str().contains("complaint"));
    classes
}

/// `GET /staff/complaints`: the complaints and inquiries of the staff
/// member's scope, deadline first, with the day each is destroyed.
async fn complaints(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filter =
        QueueFilter { kinds: COMPLAINT_KINDS.iter().map(|k| (*k).to_owned()).collect(), ..QueueFilter::default() };
    let list = match state.engine.list_requests(&staff.caller, filter, None, LISTED, state.clock.now()).await {
        Ok(l) => l,
        Err(e) => return engine_error(&policy, e),
    };
    let options: String = points(&policy)
        .map(|p| format!("<option value=\"{}\">{}</option>", esc(p.id.as_str()), esc(&p.name)))
        .collect();
    let mut body = format!(
        "<section class=\"card\"><form method=\"get\" action=\"/staff/complaints/new\">\
         <label for=\"point\">Log one received at</label><select id=\"point\" name=\"point\">{options}</select>\
         <button type=\"submit\">Continue</button></form></section>\
         <section class=\"card\" aria-labelledby=\"c\"><h2 id=\"c\">Complaints and inquiries</h2>"
    );
    if list.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str(&table_start("complaints", &["Id", "Kind", "Member", "Status", "Received", "Destroyed on"]));
        for r in &list {
            body.push_str(&format!(
                "<tr data-id=\"{id}\"><td><a href=\"/staff/requests/{id}\">{id}</a></td><td>{}</td><td>{}</td>\
                 <td class=\"status\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.kind),
                esc(r.subject.as_deref().unwrap_or("—")),
                esc(&r.status.replace('_', " ")),
                esc(&short_time(&r.received_at)),
                esc(r.destroy_on.as_deref().unwrap_or("—")),
                id = esc(&r.id),
            ));
        }
        body.push_str("</tbody></table></div>");
        if list.len() == LISTED as usize {
            body.push_str(&format!(
                "<p class=\"hint\">The first {LISTED} by deadline; <code>GET /v1/requests</code> pages through all.</p>"
            ));
        }
    }
    body.push_str("</section>");
    staff_page(&policy, &staff, "Complaints and inquiries", "/staff/complaints", &body)
}

#[derive(Deserialize)]
struct PointQuery {
    point: Option<String>,
}

/// `GET /staff/complaints/new?point=…`: the form for one collection
/// point: its items (required ones marked), the kind, the channel, the
/// member if known, the record class it is kept as and the day received.
async fn complaint_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PointQuery>, QueryRejection>,
) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let point = query.ok().and_then(|q| short(q.0.point));
    let Some(point) = point.and_then(|p| points(&policy).find(|x| x.id.as_str() == p)) else {
        return error_page(&policy, StatusCode::NOT_FOUND, "Choose a collection point of the policy.");
    };
    let mut fields = String::new();
    for (item, required) in point.required.iter().map(|i| (i, true)).chain(point.optional.iter().map(|i| (i, false))) {
        let def = policy.item_by_str(item.as_str());
        // A password is never taken down from a complaint.
        if def.is_some_and(|d| d.kind == custos_core::policy::model::ItemType::Password) {
            continue;
        }
        let label = format!("{}{}", item_name(&policy, item.as_str()), if required { "" } else { " (optional)" });
        let name = format!("item.{item}");
        let long = item.as_str().contains("body");
        let control = if long {
            format!(
                "<textarea id=\"{n}\" name=\"{n}\" maxlength=\"4000\"{r}></textarea>",
                n = esc(&name),
                r = if required { " required" } else { "" }
            )
        } else {
            format!(
                "<input type=\"text\" id=\"{n}\" name=\"{n}\" maxlength=\"400\"{r}>",
                n = esc(&name),
                r = if required { " required" } else { "" }
            )
        };
        fields.push_str(&format!("<label for=\"{}\">{}</label>{control}", esc(&name), esc(&label)));
    }
    let kinds: String = COMPLAINT_KINDS.iter().map(|k| format!("<option value=\"{k}\">{k}</option>")).collect();
    let channels: String = policy
        .channels
        .iter()
        .map(|c| format!("<option value=\"{}\">{}</option>", esc(c.id.as_str()), esc(&c.name)))
        .collect();
    let classes: String = keep_classes(&policy)
        .iter()
        .map(|c| {
            format!(
                "<option value=\"{}\">{} ({})</option>",
                esc(c.id.as_str()),
                esc(&c.name),
                esc(&c.retain_for.to_string())
            )
        })
        .collect();
    let body = format!(
        "<p>Received at: {point_name}.</p><section class=\"card\"><form method=\"post\" action=\"/staff/complaints\">{csrf}\
         <input type=\"hidden\" name=\"point\" value=\"{point_id}\">\
         <label for=\"kind\">Kind</label><select id=\"kind\" name=\"kind\">{kinds}</select>\
         <label for=\"channel\">Received by</label><select id=\"channel\" name=\"channel\">{channels}</select>\
         <label for=\"subject\">Member id (if it comes from a member)</label>\
         <input type=\"text\" id=\"subject\" name=\"subject\" pattern=\"sub_[0-9a-f]+\">\
         <fieldset><legend>What the person gave</legend>{fields}</fieldset>\
         <label for=\"keep_as\">Kept as</label><select id=\"keep_as\" name=\"keep_as\">{classes}</select>\
         <label for=\"received_on\">Received on (if before today)</label>\
         <input type=\"date\" id=\"received_on\" name=\"received_on\">\
         <button type=\"submit\">Log it</button></form></section>",
        point_name = esc(&point.name),
        point_id = esc(point.id.as_str()),
        csrf = csrf_field(&staff),
    );
    staff_page(&policy, &staff, "Log a complaint or inquiry", "/staff/complaints", &body)
}

/// The complaint form: its fixed fields, and `item.<id>` for each item.
#[derive(Deserialize)]
struct ComplaintForm {
    #[serde(default)]
    csrf: String,
    point: String,
    kind: String,
    channel: String,
    #[serde(default)]
    subject: String,
    keep_as: String,
    #[serde(default)]
    received_on: String,
    #[serde(flatten)]
    items: BTreeMap<String, String>,
}

impl CsrfToken for ComplaintForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /staff/complaints`: files it through the engine (its items
/// checked against the collection point like any collection, sealed, kept
/// for the record class's span from the day received).
async fn log_complaint(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<Form<ComplaintForm>, FormRejection>,
) -> Response {
    let policy = state.engine.policy();
    let (staff, f) = match staff_form(&state, &headers, &policy, f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut items = Vec::new();
    for (name, value) in &f.items {
        let Some(item) = name.strip_prefix("item.") else {
            return error_page(&policy, StatusCode::BAD_REQUEST, "The form has a field it does not ask for.");
        };
        if !value.trim().is_empty() {
            items.push((item.to_owned(), value.trim().to_owned()));
        }
    }
    let received_on = match f.received_on.trim() {
        "" => None,
        d => match d.parse() {
            Ok(d) => Some(d),
            Err(_) => return error_page(&policy, StatusCode::UNPROCESSABLE_ENTITY, "The day received is not a date."),
        },
    };
    let complaint = NewComplaint {
        kind: f.kind,
        channel: f.channel,
        subject: Some(f.subject.trim().to_owned()).filter(|s| !s.is_empty()),
        collection_point: f.point,
        items,
        keep_as: f.keep_as,
        received_on,
    };
    match state.engine.file_complaint(&staff.caller, complaint, state.clock.now()).await {
        Ok(filed) => Redirect::to(&format!("/staff/requests/{}", filed.request.id)).into_response(),
        Err(e) => engine_error(&policy, e),
    }
}

// --- processors, transfers, provisions -------------------------------------------------

/// `GET /staff/processing`: whom the policy lets the data go to
/// (processors and their duties, cross-border transfers and their
/// safeguards, third-party recipients) and the register's newest entries
/// (an audited listing; staff who work requests only).
async fn processing(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let policy = state.engine.policy();
    let staff = match staff(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let register = match state.engine.disclosure_register(&staff.caller, 100, state.clock.now()).await {
        Ok(r) => r,
        Err(e) => return engine_error(&policy, e),
    };
    let country = |c: Option<String>| c.unwrap_or_else(|| "—".to_owned());
    let mut body = format!(
        "<section class=\"card\" aria-labelledby=\"proc\"><h2 id=\"proc\">Processors</h2>{}",
        table_start("processors", &["Processor", "Duty", "Items", "Country"])
    );
    for p in &policy.processors {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            esc(&p.duty),
            esc(&if p.items.is_empty() {
                "not stated".to_owned()
            } else {
                names(&policy, p.items.iter().map(|i| i.as_str()))
            }),
            esc(&country(p.country.as_ref().map(ToString::to_string))),
        ));
    }
    body.push_str(
        "</tbody></table></div></section><section class=\"card\" aria-labelledby=\"tr\"><h2 id=\"tr\">Transfers abroad</h2>",
    );
    if policy.transfers.is_empty() {
        body.push_str("<p>None declared.</p>");
    } else {
        body.push_str(&table_start("transfers", &["Recipient", "Country", "Items", "Purpose", "Safeguard"]));
        for t in &policy.transfers {
            let safeguard = t.mechanism.as_ref().map_or_else(
                || "not stated".to_owned(),
                |m| match &m.description {
                    Some(d) => format!("{}: {d}", m.kind),
                    None => m.kind.to_string(),
                },
            );
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.recipient),
                esc(&t.country.to_string()),
                esc(&names(&policy, t.items.iter().map(|i| i.as_str()))),
                esc(&t.purpose),
                esc(&safeguard),
            ));
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str("</section><section class=\"card\" aria-labelledby=\"third\"><h2 id=\"third\">Third parties</h2>");
    match &policy.third_parties {
        None => body.push_str("<p>The policy provides to no third party.</p>"),
        Some(third) => {
            body.push_str(&format!("<p>{}</p>", esc(&third.statement)));
            let bases: Vec<String> = third.allowed_bases.iter().map(ToString::to_string).collect();
            body.push_str(&format!("<p>Bases allowed: {}.</p>", esc(&bases.join(", "))));
            for r in &third.recipients {
                body.push_str(&format!(
                    "<p>{}: {}</p>",
                    esc(&r.name),
                    esc(&names(&policy, r.items.iter().map(|i| i.as_str())))
                ));
            }
        }
    }
    body.push_str(
        "<p class=\"hint\">A provision is recorded with <code>POST /v1/subjects/{id}/provisions</code>; a hand-over to a \
         processor with <code>POST /v1/subjects/{id}/handovers</code>.</p></section>\
         <section class=\"card\" aria-labelledby=\"reg\"><h2 id=\"reg\">Register of hand-overs</h2>",
    );
    if register.is_empty() {
        body.push_str("<p>Nothing handed over yet.</p>");
    } else {
        body.push_str(&table_start(
            "register",
            &["When", "Kind", "Member", "Recipient", "Items", "Basis", "Country", "By"],
        ));
        for e in &register {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&short_time(&e.at)),
                esc(&e.kind),
                esc(&e.subject),
                esc(&e.recipient),
                esc(&names(&policy, e.items.iter().map(String::as_str))),
                esc(&e.duty.clone().map_or_else(|| e.basis.clone(), |d| format!("{}: {d}", e.basis))),
                esc(&country(e.country.clone())),
                esc(&e.actor),
            ));
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str("</section>");
    staff_page(&policy, &staff, "Processors and provisions", "/staff/processing", &body)
}
