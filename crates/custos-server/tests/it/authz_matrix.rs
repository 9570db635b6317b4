//! The authorisation matrix: every route of the served OpenAPI document ×
//! every kind of caller × the caller's own object, another service's object
//! and a missing one.
//!
//! The expectations are written by hand in [`ROWS`], from the roles of
//! `policies/bstage.toml` (`scope`, `operations`) and the rules of
//! `docs/policy-format.md` and `custos-core/src/authz.rs`; the access
//! decision itself is never asked. A route the document lists without a row
//! (or a row for a route it lacks) fails the test, naming the route.
//!
//! Service A is the callers' own service, service B the other one. A cell is
//! allowed when it answers 2xx; a refusal is 401 for callers without a live
//! credential, and 403 or 404 for everyone else. For every caller scoped to
//! a service, the answer about the other service's object must be exactly
//! the answer about a missing one (status and problem type). Platform-wide
//! callers (the platform key, privacy officers, support agents, auditors)
//! reach every service: for them the other service's object is like their
//! own.
//!
//! b.stage collects no e-mail address from members of a service, so the
//! instance runs the bundled policy plus one sign-up point that takes one
//! (as `http_subjects` does), for the look-up; roles and purposes are
//! b.stage's.

use std::collections::{BTreeMap, BTreeSet};

use custos_server::config::BUNDLED_POLICY;
use serde_json::{Value, json};

use self::Who::*;
use crate::kit::{Answer, FINDABLE_MEMBERS, call, member_signup, new_service, operator_signup, sign_up};
use crate::lifecycle::app_with_mail_policy;
use crate::smtp_sink::SmtpSink;
use crate::support::{STAFF_PASSWORD, StaffMember, TestApp};

/// The kinds of caller a row may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    PlatformKey,
    /// An API key scoped to service A, with every purpose.
    ServiceKey,
    HeadAdmin,
    Admin,
    Operator,
    Onsite,
    PrivacyOfficer,
    Support,
    Auditor,
}

/// Every staff role of b.stage.
const STAFF: &[Who] = &[HeadAdmin, Admin, Operator, Onsite, PrivacyOfficer, Support, Auditor];
/// API keys: services, members and records are made by the platform's
/// backend, never by staff (`authz.rs`).
const KEYS: &[Who] = &[PlatformKey, ServiceKey];
/// `read_members` (with `member_management` among the role's purposes).
const READ: &[Who] = &[PlatformKey, ServiceKey, HeadAdmin, Admin, Operator, Onsite, PrivacyOfficer, Support];
/// `edit_members`.
const EDIT: &[Who] = &[PlatformKey, ServiceKey, HeadAdmin, Admin, Operator, PrivacyOfficer];
/// `audit`; the log is the platform's, so no service key reads it.
const AUDIT: &[Who] = &[PlatformKey, PrivacyOfficer, Auditor];
/// `manage_staff` acts an API key may do only platform-wide (`authz.rs`).
const MANAGE: &[Who] = &[PlatformKey, HeadAdmin, Admin, PrivacyOfficer];
/// `manage_staff`: "invite staff to roles of the *same scope*"
/// (`docs/policy-format.md`); the invitation is to a service role, so the
/// privacy officer (a platform role) may not. Staff accounts are the
/// platform's business: a service's API key invites nobody.
const INVITE: &[Who] = &[PlatformKey, HeadAdmin, Admin];
/// Signing a checkpoint now: the platform's key only (staff, auditors
/// included, read the log).
const ISSUE: &[Who] = &[PlatformKey];
/// `manage_staff`: "grant the role's `grantable` privileges", and staff
/// grant only a privilege they hold themselves, never to themselves
/// (`docs/policy-format.md`): of the staff, only the head admin holds
/// `dormant_lookup` (through the role).
const GRANT: &[Who] = &[PlatformKey, HeadAdmin];
/// `settings`.
const SETTINGS: &[Who] = &[PlatformKey, HeadAdmin, Admin];
/// Only the holder of the single-holder role hands it over.
const HOLDER: &[Who] = &[HeadAdmin];
/// Only the platform key creates services.
const PLATFORM_KEY: &[Who] = &[PlatformKey];
/// `amend_policy` (b.stage: the privacy officer), and the platform's key.
const AMEND: &[Who] = &[PlatformKey, PrivacyOfficer];
/// `edit_members`, for a purpose the caller works for: marketing is not
/// one of the privacy officer's purposes.
const CONSENT: &[Who] = &[PlatformKey, ServiceKey, HeadAdmin, Admin, Operator];
/// Filing a rights request: the platform's backend (its keys) relays the
/// member's, staff with `handle_requests` log one received otherwise.
const FILE: &[Who] = &[PlatformKey, ServiceKey, PrivacyOfficer];
/// `handle_requests`: working the queue is staff's, never a key's.
const QUEUE: &[Who] = &[PrivacyOfficer];
/// Every caller: a document drawn from the policy, no personal data.
const ANYONE: &[Who] = &[PlatformKey, ServiceKey, HeadAdmin, Admin, Operator, Onsite, PrivacyOfficer, Support, Auditor];
/// An access request needs no judgment: the key that filed it (here the
/// platform's) may also fulfil it and read the answer.
const SELF_SERVICE: &[Who] = &[PlatformKey, PrivacyOfficer];

/// What a row's request is about, in service A, in service B, or missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    /// No object and no service (the audit log, the caller's own account):
    /// one cell per caller.
    Nothing,
    /// A member of the service, generated at `automatic_generation`.
    Member,
    /// A member of the service with an e-mail address, to look up.
    Findable,
    /// The service itself (named in the path, the query or the body).
    Service,
    /// A staff member of the service invited afresh for every request, since
    /// an allowed request disables them.
    FreshStaff,
    /// A member of the service signed up afresh for every request, since an
    /// allowed request deletes them.
    FreshMember,
    /// An admin of the service (a role that may be granted `dormant_lookup`).
    GrantTarget,
    /// An active operator of the service, who may receive the head admin's
    /// role.
    Transferee,
    /// A platform subject: the operator who creates a service. No "other
    /// service" cell.
    OperatorSubject,
    /// A rights request about the service's member, made once.
    Request,
    /// A request answered (denied) once, so it has an answer to read.
    Answered,
    /// A request filed afresh for every cell, waiting for verification.
    Received,
    /// A request filed afresh for every cell, verified.
    Verified,
    /// A verified request filed afresh under a jurisdiction that allows an
    /// extension.
    Extendable,
    /// A restriction request filed and fulfilled afresh for every cell.
    Restricted,
}

impl Object {
    fn cells(self) -> &'static [Obj] {
        match self {
            Object::Nothing => &[Obj::Own],
            Object::OperatorSubject => &[Obj::Own, Obj::Missing],
            _ => &[Obj::Own, Obj::Other, Obj::Missing],
        }
    }
}

/// Which object a cell is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Obj {
    /// In service A (or, for rows without an object, the caller's own).
    Own,
    /// In service B.
    Other,
    /// Does not exist.
    Missing,
}

/// What a public route needs made before it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prep {
    None,
    /// Credentials and a fresh TOTP code of an enrolled staff member.
    Login,
    /// A fresh invitation token.
    Invitation,
    /// A request filed with a one-time code, and the code from the e-mail.
    Code,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Needs no credential: answers 2xx without one and repeats no secret.
    Public(Prep),
    /// `allowed`: the callers allowed on their own object.
    Guarded { object: Object, allowed: &'static [Who] },
}

/// Rows run phase by phase: the later phases change the callers (the head
/// admin's role changes hands, sessions end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Normal,
    HandOver,
    /// Ends the caller's session.
    Logout,
    /// Ends every session of the caller: sent with a second session.
    Password,
}

/// The ids a request is built from.
#[derive(Debug, Default)]
struct Ids {
    /// The object's id (member, staff member, service, operator).
    id: String,
    /// The service the object belongs to (or a missing one).
    service: String,
    /// The e-mail address of the findable member.
    email: String,
    /// An e-mail address no one has.
    fresh: String,
    /// A body made by [`Prep`].
    prepared: Value,
}

type Build = fn(&Ids) -> (String, Option<Value>);

#[derive(Debug)]
struct Row {
    method: &'static str,
    /// As the OpenAPI document spells it.
    path: &'static str,
    access: Access,
    phase: Phase,
    build: Build,
}

const fn public(method: &'static str, path: &'static str, prep: Prep, build: Build) -> Row {
    Row { method, path, access: Access::Public(prep), phase: Phase::Normal, build }
}

const fn guarded(
    method: &'static str,
    path: &'static str,
    object: Object,
    allowed: &'static [Who],
    build: Build,
) -> Row {
    Row { method, path, access: Access::Guarded { object, allowed }, phase: Phase::Normal, build }
}

fn get(uri: String) -> (String, Option<Value>) {
    (uri, None)
}

/// One row per route of the API. Add the row with the route: the test fails
/// for a route without one.
const ROWS: &[Row] = &[
    public("GET", "/health", Prep::None, |_| get("/health".into())),
    public("GET", "/ready", Prep::None, |_| get("/ready".into())),
    public("GET", "/metrics", Prep::None, |_| get("/metrics".into())),
    public("GET", "/openapi.json", Prep::None, |_| get("/openapi.json".into())),
    public("POST", "/v1/sessions", Prep::Login, |ids| ("/v1/sessions".into(), Some(ids.prepared.clone()))),
    public("POST", "/v1/staff/enrol", Prep::Invitation, |ids| ("/v1/staff/enrol".into(), Some(ids.prepared.clone()))),
    guarded("POST", "/v1/subjects", Object::Service, KEYS, |ids| {
        ("/v1/subjects".into(), Some(member_signup(&ids.service)))
    }),
    guarded("GET", "/v1/subjects", Object::Service, READ, |ids| get(format!("/v1/subjects?service={}", ids.service))),
    guarded("GET", "/v1/subjects/{id}", Object::Member, READ, |ids| {
        get(format!("/v1/subjects/{}?purpose=member_management", ids.id))
    }),
    guarded("PATCH", "/v1/subjects/{id}", Object::Member, EDIT, |ids| {
        let body = json!({"items": {"device_info": "Galaxy S24, Android 15"}, "source": "generated"});
        (format!("/v1/subjects/{}", ids.id), Some(body))
    }),
    // Deleting an account: the platform's backend forwards the member's
    // request; staff erase through a rights request, not directly.
    guarded("DELETE", "/v1/subjects/{id}", Object::FreshMember, KEYS, |ids| (format!("/v1/subjects/{}", ids.id), None)),
    guarded("POST", "/v1/subjects/{id}/activity", Object::Member, EDIT, |ids| {
        (format!("/v1/subjects/{}/activity", ids.id), Some(json!({"event": "login"})))
    }),
    guarded("POST", "/v1/lookup", Object::Findable, READ, |ids| {
        let body = json!({"service": ids.service, "item": "email", "value": ids.email, "purpose": "member_management"});
        ("/v1/lookup".into(), Some(body))
    }),
    guarded("POST", "/v1/services", Object::OperatorSubject, PLATFORM_KEY, |ids| {
        ("/v1/services".into(), Some(json!({"operator": ids.id})))
    }),
    guarded("POST", "/v1/subjects/{id}/records", Object::Member, KEYS, |ids| {
        let body = json!({"class": "complaint_dispute_records", "record_date": "2024-05-01", "content": "complaint"});
        (format!("/v1/subjects/{}/records", ids.id), Some(body))
    }),
    guarded("GET", "/v1/subjects/{id}/records", Object::Member, READ, |ids| {
        get(format!("/v1/subjects/{}/records?purpose=member_management", ids.id))
    }),
    guarded("POST", "/v1/subjects/{id}/consents", Object::Member, CONSENT, |ids| {
        let body = json!({"purpose": "marketing", "granted": true, "channel": "web_page", "notice_text": "Offers?"});
        (format!("/v1/subjects/{}/consents", ids.id), Some(body))
    }),
    guarded("GET", "/v1/subjects/{id}/consents", Object::Member, READ, |ids| {
        get(format!("/v1/subjects/{}/consents", ids.id))
    }),
    public("POST", "/v1/cookie-consent", Prep::None, |_| {
        ("/v1/cookie-consent".into(), Some(json!({"choices": {"personalisation": true}})))
    }),
    public("GET", "/v1/cookie-consent", Prep::None, |_| get("/v1/cookie-consent".into())),
    public("GET", "/.well-known/gpc.json", Prep::None, |_| get("/.well-known/gpc.json".into())),
    public("GET", "/consent.js", Prep::None, |_| get("/consent.js".into())),
    // Linking at sign-in records consent (`RecordConsent`); a visitor
    // without choices links nothing and is no error.
    guarded("POST", "/v1/subjects/{id}/cookie-consent", Object::Member, EDIT, |ids| {
        (format!("/v1/subjects/{}/cookie-consent", ids.id), Some(json!({"visitor": format!("vis_{NO_HEX}")})))
    }),
    guarded("GET", "/v1/subjects/{id}/cookie-consent", Object::Member, READ, |ids| {
        get(format!("/v1/subjects/{}/cookie-consent", ids.id))
    }),
    public("GET", "/v1/notices", Prep::None, |_| get("/v1/notices".into())),
    guarded("POST", "/v1/policy/amendments", Object::Nothing, AMEND, |ids| {
        // A new version per cell, far enough ahead for any notice period.
        let text = BUNDLED_POLICY
            .replace("version = \"2023-02-21\"", &format!("version = \"matrix-{}\"", ids.fresh))
            .replace("notice_date = 2023-02-21", "notice_date = 2024-06-01")
            .replace("effective_date = 2023-02-28", "effective_date = 2030-01-01");
        ("/v1/policy/amendments".into(), Some(json!({ "text": text })))
    }),
    guarded("POST", "/v1/requests", Object::Member, FILE, |ids| {
        let body = json!({"kind": "access", "channel": "web_page", "subject": ids.id, "verification": "staff"});
        ("/v1/requests".into(), Some(body))
    }),
    guarded("GET", "/v1/requests", Object::Nothing, QUEUE, |_| get("/v1/requests".into())),
    guarded("GET", "/v1/requests/{id}", Object::Request, QUEUE, |ids| get(format!("/v1/requests/{}", ids.id))),
    public("POST", "/v1/requests/{id}/code", Prep::Code, |ids| {
        let id = ids.prepared["id"].as_str().unwrap_or_default();
        (format!("/v1/requests/{id}/code"), Some(json!({"code": ids.prepared["code"]})))
    }),
    // A provision to a third party is the privacy officer's act
    // (`handle_requests`), never a key's; a hand-over to a processor is the
    // platform backend's, never staff's.
    guarded("POST", "/v1/subjects/{id}/provisions", Object::Member, QUEUE, |ids| {
        let body = json!({"recipient": "Seoul Police Agency", "items": ["name"], "purpose": "search for a missing person",
                          "basis": {"kind": "vital_interest", "justification": "reported missing"}});
        (format!("/v1/subjects/{}/provisions", ids.id), Some(body))
    }),
    guarded("POST", "/v1/subjects/{id}/handovers", Object::Member, KEYS, |ids| {
        let body = json!({"recipient": "cj_olivenetworks", "items": ["mobile_phone"], "purpose": "member_management"});
        (format!("/v1/subjects/{}/handovers", ids.id), Some(body))
    }),
    guarded("GET", "/v1/policy/processing", Object::Nothing, ANYONE, |_| get("/v1/policy/processing".into())),
    guarded("POST", "/v1/requests/{id}/verify", Object::Received, QUEUE, |ids| {
        (format!("/v1/requests/{}/verify", ids.id), Some(json!({})))
    }),
    guarded("POST", "/v1/requests/{id}/assign", Object::Verified, QUEUE, |ids| {
        (format!("/v1/requests/{}/assign", ids.id), Some(json!({})))
    }),
    guarded("POST", "/v1/requests/{id}/extend", Object::Extendable, QUEUE, |ids| {
        (format!("/v1/requests/{}/extend", ids.id), Some(json!({"reason": "records in several services"})))
    }),
    guarded("POST", "/v1/requests/{id}/deny", Object::Received, QUEUE, |ids| {
        (format!("/v1/requests/{}/deny", ids.id), Some(json!({"reason": "not verifiable"})))
    }),
    guarded("POST", "/v1/requests/{id}/fulfil", Object::Verified, SELF_SERVICE, |ids| {
        (format!("/v1/requests/{}/fulfil", ids.id), None)
    }),
    guarded("POST", "/v1/requests/{id}/lift", Object::Restricted, QUEUE, |ids| {
        (format!("/v1/requests/{}/lift", ids.id), None)
    }),
    guarded("GET", "/v1/requests/{id}/outcome", Object::Answered, SELF_SERVICE, |ids| {
        get(format!("/v1/requests/{}/outcome", ids.id))
    }),
    guarded("GET", "/v1/audit/checkpoint", Object::Nothing, AUDIT, |_| get("/v1/audit/checkpoint".into())),
    guarded("POST", "/v1/audit/checkpoint", Object::Nothing, ISSUE, |_| ("/v1/audit/checkpoint".into(), None)),
    guarded("GET", "/v1/audit/proof/inclusion", Object::Nothing, AUDIT, |_| {
        get("/v1/audit/proof/inclusion?seq=1&size=2".into())
    }),
    guarded("GET", "/v1/audit/proof/consistency", Object::Nothing, AUDIT, |_| {
        get("/v1/audit/proof/consistency?from=1&to=2".into())
    }),
    guarded("POST", "/v1/staff/invitations", Object::Service, INVITE, |ids| {
        let body = json!({"email": ids.fresh, "role": "operator", "service": ids.service});
        ("/v1/staff/invitations".into(), Some(body))
    }),
    guarded("GET", "/v1/staff/me", Object::Nothing, STAFF, |_| get("/v1/staff/me".into())),
    guarded("POST", "/v1/staff/{id}/disable", Object::FreshStaff, MANAGE, |ids| {
        (format!("/v1/staff/{}/disable", ids.id), None)
    }),
    guarded("PUT", "/v1/staff/{id}/privileges/{privilege}", Object::GrantTarget, GRANT, |ids| {
        (format!("/v1/staff/{}/privileges/dormant_lookup", ids.id), None)
    }),
    guarded("DELETE", "/v1/staff/{id}/privileges/{privilege}", Object::GrantTarget, GRANT, |ids| {
        (format!("/v1/staff/{}/privileges/dormant_lookup", ids.id), None)
    }),
    guarded("PUT", "/v1/services/{id}/allowed-ips", Object::Service, SETTINGS, |ids| {
        (format!("/v1/services/{}/allowed-ips", ids.service), Some(json!({"networks": []})))
    }),
    Row {
        phase: Phase::HandOver,
        ..guarded("POST", "/v1/staff/{id}/transfer-role", Object::Transferee, HOLDER, |ids| {
            (format!("/v1/staff/{}/transfer-role", ids.id), None)
        })
    },
    Row {
        phase: Phase::Logout,
        ..guarded("DELETE", "/v1/sessions/current", Object::Nothing, STAFF, |_| ("/v1/sessions/current".into(), None))
    },
    Row {
        phase: Phase::Password,
        ..guarded("POST", "/v1/staff/me/password", Object::Nothing, STAFF, |_| {
            let body = json!({"current_password": STAFF_PASSWORD, "new_password": "another long passphrase"});
            ("/v1/staff/me/password".into(), Some(body))
        })
    },
];

const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Every (method, path) the document lists.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item is an object");
            methods.keys().filter(|m| HTTP_METHODS.contains(&m.as_str())).map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// Routes of the document without a row, rows without a route, and routes
/// with two rows.
fn table_problems(doc: &Value) -> Vec<String> {
    let documented = documented_routes(doc);
    let mut rows = BTreeSet::new();
    let mut problems = Vec::new();
    for row in ROWS {
        if !rows.insert((row.method.to_owned(), row.path.to_owned())) {
            problems.push(format!("{} {}: two rows in ROWS", row.method, row.path));
        }
        if !documented.contains(&(row.method.to_owned(), row.path.to_owned())) {
            problems.push(format!("{} {}: a row in ROWS for a route the OpenAPI document lacks", row.method, row.path));
        }
    }
    for (method, path) in &documented {
        if !rows.contains(&(method.clone(), path.clone())) {
            problems.push(format!("{method} {path}: a route of the OpenAPI document without a row in ROWS: add one"));
        }
    }
    problems
}

#[test]
fn every_route_of_the_openapi_document_has_a_row() {
    let doc: Value = serde_json::from_str(&custos_server::http::openapi::document()).unwrap();
    let problems = table_problems(&doc);
    assert!(problems.is_empty(), "the authorisation matrix is out of date:\n{}", problems.join("\n"));
}

/// Where a caller belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    /// No credential that verifies.
    Nowhere,
    /// Every service.
    Platform,
    A,
    B,
}

#[derive(Debug)]
struct Caller {
    name: &'static str,
    /// `None`: no credential the API knows (anonymous, a member).
    who: Option<Who>,
    home: Home,
    /// False for a disabled account and an expired session.
    live: bool,
    token: Option<String>,
    /// A second session, for the password change (it ends every session);
    /// `None`: the token itself.
    spare: Option<String>,
}

impl Caller {
    /// Refusals to this caller must be 401.
    fn unauthenticated(&self) -> bool {
        self.who.is_none() || !self.live
    }
}

/// What one service holds for the matrix.
#[derive(Debug)]
struct Side {
    service: String,
    member: String,
    findable: String,
    email: String,
    admin: String,
    transferee: String,
    /// A request about `member`, and one answered.
    request: String,
    answered: String,
}

struct World {
    app: TestApp,
    /// Receives the one-time codes.
    sink: SmtpSink,
    /// The privacy officer's session, to prepare requests.
    officer: String,
    a: Side,
    b: Side,
    /// A platform subject that may create services.
    operator: String,
    callers: Vec<Caller>,
    /// The staff member whose login the public row makes.
    public_login: StaffMember,
    /// Values no public answer may repeat.
    secrets: Vec<String>,
}

const NO_HEX: &str = "00000000000000000000000000000000";

async fn side(app: &TestApp, n: u16) -> Side {
    let service = new_service(app, n).await;
    let member = sign_up(app, &app.key, &member_signup(&service)).await;
    let email = format!("fan{n}@example.com");
    let fan = json!({
        "service": service, "kind": "service_member", "collection_point": "service_member_signup",
        "source": "direct_entry", "items": {"email": email}
    });
    let findable = sign_up(app, &app.key, &fan).await;
    let (admin, _) = app.invite(&format!("grantee{n}@example.com"), "admin", Some(&service)).await;
    Side {
        service,
        member,
        findable,
        email,
        admin,
        transferee: String::new(),
        request: String::new(),
        answered: String::new(),
    }
}

async fn me(app: &TestApp, token: &str) -> u16 {
    call(app, "GET", "/v1/staff/me", Some(token), None).await.status.as_u16()
}

/// The instance, its two services and every caller. Argon2 runs once per
/// enrolment and login, so each caller is enrolled once.
async fn world() -> World {
    let sink = SmtpSink::start();
    let app = app_with_mail_policy("authz-matrix", &sink, &format!("{BUNDLED_POLICY}\n{FINDABLE_MEMBERS}")).await;
    let mut a = side(&app, 1).await;
    let mut b = side(&app, 2).await;
    let operator = sign_up(&app, &app.key, &operator_signup("operator9@example.com", "+82 10 5555 0009")).await;
    let purposes: Vec<String> = app.engine.policy().purposes.iter().map(|p| p.id.to_string()).collect();
    let purposes: Vec<&str> = purposes.iter().map(String::as_str).collect();
    let service_key = app.key_for(Some(&a.service), &purposes).await;

    let (sa, sb) = (Some(a.service.as_str()), Some(b.service.as_str()));
    let staff: Vec<(&'static str, Who, Home, StaffMember)> = vec![
        ("head_admin of A", HeadAdmin, Home::A, app.enrol_staff("head.a@example.com", "head_admin", sa).await),
        ("admin of A", Admin, Home::A, app.enrol_staff("admin.a@example.com", "admin", sa).await),
        ("operator of A", Operator, Home::A, app.enrol_staff("operator.a@example.com", "operator", sa).await),
        ("onsite_operator of A", Onsite, Home::A, app.enrol_staff("onsite.a@example.com", "onsite_operator", sa).await),
        (
            "privacy_officer",
            PrivacyOfficer,
            Home::Platform,
            app.enrol_staff("po@example.com", "privacy_officer", None).await,
        ),
        ("support_agent", Support, Home::Platform, app.enrol_staff("support@example.com", "support_agent", None).await),
        ("auditor", Auditor, Home::Platform, app.enrol_staff("auditor@example.com", "auditor", None).await),
        ("head_admin of B", HeadAdmin, Home::B, app.enrol_staff("head.b@example.com", "head_admin", sb).await),
    ];
    let disabled = app.enrol_staff("disabled.a@example.com", "admin", sa).await;
    let expired = app.enrol_staff("expired.a@example.com", "admin", sa).await;
    b.transferee = app.enrol_staff("operator.b@example.com", "operator", sb).await.id;
    a.transferee = staff[2].3.id.clone();

    // The expired session first: its idle half hour passes before anyone
    // else logs in, so every other session stays fresh.
    let expired_token = app.login(&expired).await;
    assert_eq!(me(&app, &expired_token).await, 200, "the session to expire works at first");
    app.clock.advance(jiff::SignedDuration::from_secs(31 * 60));

    let mut callers = vec![
        Caller { name: "anonymous", who: None, home: Home::Nowhere, live: true, token: None, spare: None },
        Caller {
            name: "member (session-shaped token)",
            who: None,
            home: Home::Nowhere,
            live: true,
            token: Some(format!("cs_{}_notarealsecret", "0123456789abcdef".repeat(2))),
            spare: None,
        },
        Caller {
            name: "member (API-key-shaped token)",
            who: None,
            home: Home::Nowhere,
            live: true,
            token: Some(format!("ck_{}_notarealsecret", "fedcba9876543210".repeat(2))),
            spare: None,
        },
        Caller {
            name: "platform API key",
            who: Some(PlatformKey),
            home: Home::Platform,
            live: true,
            token: Some(app.key.clone()),
            spare: None,
        },
        Caller {
            name: "API key of A",
            who: Some(ServiceKey),
            home: Home::A,
            live: true,
            token: Some(service_key),
            spare: None,
        },
    ];
    let mut public_login = None;
    for (name, who, home, member) in &staff {
        let token = app.login(member).await;
        let spare = app.login(member).await;
        callers.push(Caller { name, who: Some(*who), home: *home, live: true, token: Some(token), spare: Some(spare) });
        if *who == Auditor {
            public_login = Some(member.clone());
        }
    }
    let disabled_token = app.login(&disabled).await;
    assert_eq!(me(&app, &disabled_token).await, 200, "the account to disable works at first");
    call(&app, "POST", &format!("/v1/staff/{}/disable", disabled.id), Some(&app.key), None).await.expect(200);
    callers.push(Caller {
        name: "disabled admin of A",
        who: Some(Admin),
        home: Home::A,
        live: false,
        token: Some(disabled_token.clone()),
        spare: Some(disabled_token),
    });
    callers.push(Caller {
        name: "admin of A, session idle 31 min",
        who: Some(Admin),
        home: Home::A,
        live: false,
        token: Some(expired_token.clone()),
        spare: Some(expired_token),
    });
    // A checkpoint to read.
    call(&app, "POST", "/v1/audit/checkpoint", Some(&app.key), None).await.expect(200);
    let officer = callers.iter().find(|c| c.who == Some(PrivacyOfficer)).and_then(|c| c.token.clone()).unwrap();
    for side in [&mut a, &mut b] {
        side.request = file_request(&app, &side.member, "access", "staff", None).await;
        side.answered = file_request(&app, &side.member, "access", "staff", None).await;
        let denied = json!({"reason": "not verifiable"});
        call(&app, "POST", &format!("/v1/requests/{}/deny", side.answered), Some(&officer), Some(&denied))
            .await
            .expect(200);
    }

    let mut secrets: Vec<String> = callers.iter().flat_map(|c| [c.token.clone(), c.spare.clone()]).flatten().collect();
    secrets.extend(staff.iter().map(|s| s.3.email.clone()));
    secrets.extend([a.email.clone(), b.email.clone(), "203.0.113.7".into(), "Pixel 8".into()]);
    World { app, sink, officer, a, b, operator, callers, public_login: public_login.unwrap(), secrets }
}

/// Files a request for `member` with the platform's key; returns its id.
async fn file_request(
    app: &TestApp,
    member: &str,
    kind: &str,
    verification: &str,
    jurisdiction: Option<&str>,
) -> String {
    let mut body = json!({"kind": kind, "channel": "web_page", "subject": member, "verification": verification});
    if let Some(j) = jurisdiction {
        body["jurisdiction"] = json!(j);
    }
    let answer = call(app, "POST", "/v1/requests", Some(&app.key), Some(&body)).await;
    answer.expect(201)["request"]["id"].as_str().unwrap().to_owned()
}

/// Whether `caller` should be allowed `obj` on a row allowing `allowed`.
fn expected(object: Object, allowed: &[Who], caller: &Caller, obj: Obj) -> bool {
    let Some(who) = caller.who else { return false };
    if !caller.live || !allowed.contains(&who) {
        return false;
    }
    match (object, obj) {
        (_, Obj::Missing) => false,
        (Object::Nothing, _) => true,
        // Service A's object: its own callers and platform-wide ones.
        (_, Obj::Own) => caller.home != Home::B,
        // Service B's object: platform-wide callers, and B's head admin.
        (_, Obj::Other) => caller.home != Home::A,
    }
}

/// The cells whose answers must be the same: the other service's object
/// and a missing one, for everyone not platform-wide.
fn compared(object: Object, caller: &Caller) -> Option<(Obj, Obj)> {
    if !object.cells().contains(&Obj::Other) {
        return None;
    }
    match caller.home {
        Home::Platform if caller.live => None,
        Home::B => Some((Obj::Own, Obj::Missing)),
        _ => Some((Obj::Other, Obj::Missing)),
    }
}

/// Makes the ids of one cell (inviting a fresh staff member when needed).
async fn ids(world: &World, object: Object, obj: Obj, n: usize) -> Ids {
    let side = match obj {
        Obj::Own => Some(&world.a),
        Obj::Other => Some(&world.b),
        Obj::Missing => None,
    };
    let or_missing = |prefix: &str, pick: fn(&Side) -> &String| match side {
        Some(s) => pick(s).clone(),
        None => format!("{prefix}_{NO_HEX}"),
    };
    let id = match object {
        Object::Nothing => String::new(),
        Object::Member => or_missing("sub", |s| &s.member),
        Object::Findable => or_missing("sub", |s| &s.findable),
        Object::Service => or_missing("svc", |s| &s.service),
        Object::GrantTarget => or_missing("stf", |s| &s.admin),
        Object::Transferee => or_missing("stf", |s| &s.transferee),
        Object::OperatorSubject => {
            if side.is_some() {
                world.operator.clone()
            } else {
                format!("sub_{NO_HEX}")
            }
        }
        Object::FreshMember => match side {
            Some(s) => sign_up(&world.app, &world.app.key, &member_signup(&s.service)).await,
            None => format!("sub_{NO_HEX}"),
        },
        Object::Request => or_missing("req", |s| &s.request),
        Object::Answered => or_missing("req", |s| &s.answered),
        Object::Received | Object::Verified | Object::Extendable | Object::Restricted => match side {
            None => format!("req_{NO_HEX}"),
            Some(s) => {
                let app = &world.app;
                match object {
                    Object::Received => file_request(app, &s.member, "access", "staff", None).await,
                    Object::Verified => file_request(app, &s.member, "access", "platform_session", None).await,
                    Object::Extendable => {
                        file_request(app, &s.member, "export", "platform_session", Some("eea_uk_ch")).await
                    }
                    _ => {
                        let id = file_request(app, &s.member, "restriction", "platform_session", None).await;
                        let path = format!("/v1/requests/{id}/fulfil");
                        call(app, "POST", &path, Some(&world.officer), None).await.expect(200);
                        id
                    }
                }
            }
        },
        Object::FreshStaff => match side {
            Some(s) => world.app.invite(&format!("victim{n}@example.com"), "operator", Some(&s.service)).await.0,
            None => format!("stf_{NO_HEX}"),
        },
    };
    Ids {
        id,
        service: or_missing("svc", |s| &s.service),
        email: side.unwrap_or(&world.a).email.clone(),
        fresh: format!("invitee{n}@example.com"),
        prepared: Value::Null,
    }
}

/// Status and problem type of an answer, for the report.
fn outcome(answer: &Answer) -> (u16, String) {
    let kind = answer.body["type"].as_str().unwrap_or("").trim_start_matches("urn:custos:problem:");
    (answer.status.as_u16(), kind.to_owned())
}

fn shown((status, kind): &(u16, String)) -> String {
    if kind.is_empty() { status.to_string() } else { format!("{status} {kind}") }
}

/// The matrix. Within a row the cells expected to be refused run first, so
/// that the allowed ones (which change state: a staff member disabled, the
/// head admin's role handed over) cannot change the answer to another cell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_every_caller_own_other_and_missing_objects() {
    let world = world().await;
    let app = &world.app;
    let doc = call(app, "GET", "/openapi.json", None, None).await.expect(200).clone();
    let mut mismatches = table_problems(&doc);
    let documented = documented_routes(&doc);
    let mut rows: Vec<&Row> =
        ROWS.iter().filter(|r| documented.contains(&(r.method.to_owned(), r.path.to_owned()))).collect();
    rows.sort_by_key(|r| r.phase);

    let mut cells = 0;
    let mut n = 0;
    for row in rows {
        let route = format!("{} {}", row.method, row.path);
        match row.access {
            Access::Public(prep) => {
                n += 1;
                let prepared = match prep {
                    Prep::None => Value::Null,
                    Prep::Login => json!({
                        "email": world.public_login.email, "password": STAFF_PASSWORD,
                        "code": app.next_code(&world.public_login)
                    }),
                    Prep::Invitation => {
                        let (_, token) = app.invite(&format!("public{n}@example.com"), "support_agent", None).await;
                        json!({"token": token, "password": STAFF_PASSWORD})
                    }
                    Prep::Code => {
                        let sent = world.sink.messages().len();
                        let id = file_request(app, &world.a.findable, "access", "code", None).await;
                        let got = world.sink.wait_for(sent + 1, std::time::Duration::from_secs(10));
                        let text = &got.last().unwrap().data;
                        let marker = "enter this code where you filed it: ";
                        let at = text.find(marker).unwrap() + marker.len();
                        json!({"id": id, "code": &text[at..at + 8]})
                    }
                };
                let (uri, body) = (row.build)(&Ids { prepared, ..Ids::default() });
                let answer = call(app, row.method, &uri, None, body.as_ref()).await;
                cells += 1;
                if !answer.status.is_success() {
                    mismatches.push(format!(
                        "{route} | anonymous | - | expected allow (public) | got {}",
                        shown(&outcome(&answer))
                    ));
                }
                if let Some(secret) = world.secrets.iter().find(|s| answer.text.contains(s.as_str())) {
                    mismatches.push(format!("{route} | anonymous | - | the public answer repeats {secret:?}"));
                }
            }
            Access::Guarded { object, allowed } => {
                let mut plan: Vec<(bool, usize, Obj)> = Vec::new();
                for &obj in object.cells() {
                    for (i, caller) in world.callers.iter().enumerate() {
                        plan.push((expected(object, allowed, caller, obj), i, obj));
                    }
                }
                plan.sort_by_key(|cell| cell.0);
                let mut answers = BTreeMap::new();
                for (expect, i, obj) in plan {
                    let caller = &world.callers[i];
                    n += 1;
                    let ids = ids(&world, object, obj, n).await;
                    let (uri, body) = (row.build)(&ids);
                    let spare = if row.phase == Phase::Password { caller.spare.as_ref() } else { None };
                    let token = spare.or(caller.token.as_ref());
                    let answer = call(app, row.method, &uri, token.map(String::as_str), body.as_ref()).await;
                    cells += 1;
                    let got = outcome(&answer);
                    let status = got.0;
                    let problem = match (expect, answer.status.is_success()) {
                        (true, false) => Some("expected allow"),
                        (false, true) => Some("UNEXPECTED ALLOW: expected deny"),
                        (false, false) if caller.unauthenticated() && status != 401 => {
                            Some("expected deny with 401 (no live credential)")
                        }
                        (false, false) if !caller.unauthenticated() && !matches!(status, 403 | 404) => {
                            Some("expected deny with 403 or 404")
                        }
                        _ => None,
                    };
                    if let Some(problem) = problem {
                        let name = caller.name;
                        mismatches.push(format!("{route} | {name} | {obj:?} | {problem} | got {}", shown(&got)));
                    }
                    answers.insert((i, obj), got);
                }
                for (i, caller) in world.callers.iter().enumerate() {
                    let Some((foreign, missing)) = compared(object, caller) else { continue };
                    let (x, y) = (&answers[&(i, foreign)], &answers[&(i, missing)]);
                    if x != y {
                        mismatches.push(format!(
                            "{route} | {} | {foreign:?} vs Missing | the other service's object must look missing \
                             | got {} vs {}",
                            caller.name,
                            shown(x),
                            shown(y)
                        ));
                    }
                }
            }
        }
    }
    report(cells, ROWS.len(), world.callers.len(), mismatches.len());
    assert!(mismatches.is_empty(), "{} of {cells} cells do not match:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[allow(clippy::print_stdout)] // reason: the one-line summary is this test's report
fn report(cells: usize, routes: usize, callers: usize, mismatches: usize) {
    println!(
        "authorisation matrix: {cells} cells checked ({routes} routes × {callers} callers), {mismatches} mismatches"
    );
}
