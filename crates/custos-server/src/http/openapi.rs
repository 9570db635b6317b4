//! The OpenAPI 3.1 document, generated from the handlers and wire types. The
//! committed `openapi.json` at the repository root must equal it (a test
//! regenerates and compares).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    amendments, audit, consents, cookies, disclosures, error, ops, records, requests, services, staff, subjects,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Custos API", description = "A privacy engine: members' personal data stored encrypted, collected and read only as the privacy policy allows, every access audited."),
    paths(
        ops::health, ops::ready, ops::metrics, ops::openapi,
        subjects::create, subjects::list, subjects::read, subjects::correct, subjects::erase, subjects::activity,
        subjects::lookup,
        services::create,
        records::add, records::list,
        consents::record, consents::ledger,
        cookies::record, cookies::state, cookies::link, cookies::member, cookies::gpc_json, cookies::script,
        amendments::publish, amendments::notices,
        requests::file, requests::list, requests::detail, requests::code, requests::verify, requests::assign,
        requests::extend, requests::deny, requests::fulfil, requests::lift, requests::outcome,
        disclosures::provide, disclosures::hand_over, disclosures::processing,
        audit::latest, audit::issue, audit::inclusion, audit::consistency,
        staff::invite, staff::enrol, staff::login, staff::logout, staff::me, staff::change_password,
        staff::disable, staff::grant, staff::withdraw, staff::transfer, staff::allowed_ips,
    ),
    components(schemas(error::Problem, error::FieldProblem)),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "subjects", description = "members and operators: collection, purpose-bound reads, look-ups, correction, activity"),
        (name = "services", description = "services (tenants) created by operators"),
        (name = "records", description = "records under statutory holds"),
        (name = "consents", description = "the consent ledger: grants and withdrawals with their evidence, and the state derived from it"),
        (name = "cookies", description = "cookie consent per category of the policy, for visitors and members; Global Privacy Control; the embeddable script"),
        (name = "audit", description = "the verifiable audit log: signed checkpoints and RFC 9162 proofs"),
        (name = "policy", description = "policy amendments: published ahead of their date with the notice the policy promises, and the public notice board"),
        (name = "requests", description = "members' rights requests: filed, verified (one-time code, the platform's session, or staff checking an agent's letter of attorney), worked against the jurisdiction's deadline, answered"),
        (name = "disclosures", description = "hand-overs on the record: provisions to third parties on a lawful basis, hand-overs to processors for their declared duty (abroad, a transfer with its basis), and the records of processing activities"),
        (name = "staff", description = "staff accounts: invitations, password and TOTP login, sessions, roles and privileges"),
        (name = "operations", description = "health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("an API key from `custos admin create-key` (`ck_…`) or a staff session token from POST /v1/sessions (`cs_…`)"))
                        .build(),
                ),
            );
        }
    }
}

/// What every operation's answers share, stated once here rather than on
/// each handler: problems are `application/problem+json` (RFC 9457), and
/// an operation that takes a body may answer 400, 413 and 415 (the body
/// extractor's refusals).
fn common_answers(doc: &mut serde_json::Value) {
    let problem = || {
        serde_json::json!({
            "description": "a problem (RFC 9457)",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    };
    let Some(paths) = doc.get_mut("paths").and_then(serde_json::Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(methods) = item.as_object_mut() else { continue };
        for op in methods.values_mut() {
            let takes_body = op.get("requestBody").is_some();
            let Some(responses) = op.get_mut("responses").and_then(serde_json::Value::as_object_mut) else { continue };
            for answer in responses.values_mut() {
                let Some(content) = answer.get_mut("content").and_then(serde_json::Value::as_object_mut) else {
                    continue;
                };
                let is_problem = content
                    .get("application/json")
                    .and_then(|c| c.pointer("/schema/$ref"))
                    .is_some_and(|r| r == "#/components/schemas/Problem");
                if is_problem && let Some(json) = content.remove("application/json") {
                    content.insert("application/problem+json".to_owned(), json);
                }
            }
            if takes_body {
                for status in ["400", "413", "415"] {
                    responses.entry(status).or_insert_with(problem);
                }
            }
        }
    }
}

/// The document as pretty JSON with a trailing newline.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut value = serde_json::to_value(&doc).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    common_answers(&mut value);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
