//! The rights-request queue over random histories, through the HTTP API:
//! requests filed under random jurisdictions and verifications, then random
//! steps (verify, assign, extend, deny, fulfil) on random requests. Checked
//! against a model written here, independently of `custos_core::rights`:
//! every step the model allows succeeds and every other is refused with 409
//! and changes nothing; in the end the queue lists every filed request once
//! (none lost, none doubled) with the model's status, and each request's
//! timeline has one line per step that succeeded.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::kit::{call, member_signup, new_service, sign_up};
use crate::support::TestApp;

#[derive(Debug, Clone)]
enum Op {
    /// Kind (index), EEA (else Korea), verified by the platform (else waits
    /// for staff).
    File(usize, bool, bool),
    Verify(usize),
    Assign(usize),
    Extend(usize),
    Deny(usize),
    Fulfil(usize),
}

/// Kinds whose fulfilment leaves the member in place.
const KINDS: [&str; 4] = ["access", "export", "restriction", "opt_out_sale"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..KINDS.len(), any::<bool>(), any::<bool>()).prop_map(|(k, eu, v)| Op::File(k, eu, v)),
        2 => (0usize..4).prop_map(Op::Verify),
        2 => (0usize..4).prop_map(Op::Assign),
        2 => (0usize..4).prop_map(Op::Extend),
        1 => (0usize..4).prop_map(Op::Deny),
        2 => (0usize..4).prop_map(Op::Fulfil),
    ]
}

/// The model's view of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    status: &'static str,
    eu: bool,
    extended: bool,
    steps: usize,
}

impl Model {
    fn open(&self) -> bool {
        !matches!(self.status, "fulfilled" | "denied")
    }

    /// The status after `step`, or `None` when the step must be refused.
    fn after(&self, step: &str) -> Option<&'static str> {
        match (self.status, step) {
            ("received", "verify") => Some("verified"),
            ("verified" | "in_progress", "assign") => Some("in_progress"),
            ("verified" | "in_progress", "fulfil") => Some("fulfilled"),
            ("received" | "verified" | "in_progress", "deny") => Some("denied"),
            (s, "extend") if self.open() && self.eu && !self.extended => Some(s),
            _ => None,
        }
    }
}

async fn history(ops: Vec<Op>) {
    let app = TestApp::new("requests-props").await;
    let staff = app.enrol_staff("officer@example.com", "privacy_officer", None).await;
    let officer = app.login(&staff).await;
    let service = new_service(&app, 1).await;
    let member = sign_up(&app, &app.key, &member_signup(&service)).await;
    let mut requests: Vec<(String, Model)> = Vec::new();
    for op in ops {
        let (i, step) = match op {
            Op::File(kind, eu, verified) => {
                let mut body = json!({"kind": KINDS[kind], "channel": "email", "subject": member,
                                      "verification": if verified { "platform_session" } else { "staff" }});
                if eu {
                    body["jurisdiction"] = json!("eea_uk_ch");
                }
                let filed = call(&app, "POST", "/v1/requests", Some(&app.key), Some(&body)).await;
                let id = filed.expect(201)["request"]["id"].as_str().unwrap().to_owned();
                let status = if verified { "verified" } else { "received" };
                requests.push((id, Model { status, eu, extended: false, steps: 1 }));
                continue;
            }
            Op::Verify(i) => (i, "verify"),
            Op::Assign(i) => (i, "assign"),
            Op::Extend(i) => (i, "extend"),
            Op::Deny(i) => (i, "deny"),
            Op::Fulfil(i) => (i, "fulfil"),
        };
        if requests.is_empty() {
            continue;
        }
        let i = i % requests.len();
        let (id, model) = requests[i].clone();
        let body = match step {
            "verify" | "assign" => Some(json!({})),
            "extend" | "deny" => Some(json!({"reason": "a reason"})),
            _ => None,
        };
        let answer = call(&app, "POST", &format!("/v1/requests/{id}/{step}"), Some(&officer), body.as_ref()).await;
        match model.after(step) {
            Some(status) => {
                let got = answer.expect(200);
                assert_eq!(got["status"], json!(status), "{step} on {model:?}");
                let next =
                    Model { status, extended: model.extended || step == "extend", steps: model.steps + 1, ..model };
                requests[i].1 = next;
            }
            None => {
                answer.problem(409, "conflict");
            }
        }
    }
    let listed = call(&app, "GET", "/v1/requests?limit=500", Some(&officer), None).await;
    let listed: Vec<Value> = listed.expect(200).as_array().unwrap().clone();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &listed {
        *seen.entry(r["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(seen.len(), requests.len(), "every filed request is listed");
    assert!(seen.values().all(|n| *n == 1), "none listed twice");
    for (id, model) in &requests {
        let row = listed.iter().find(|r| r["id"] == json!(id)).expect("listed");
        assert_eq!(row["status"], json!(model.status), "{id}");
        assert_eq!(row["extended_by"].is_string(), model.extended, "{id}");
        let detail = call(&app, "GET", &format!("/v1/requests/{id}"), Some(&officer), None).await;
        assert_eq!(detail.expect(200)["steps"].as_array().unwrap().len(), model.steps, "{id}: one line per step");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_queue_follows_its_state_machine_and_loses_nothing(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(history(ops));
    }
}
