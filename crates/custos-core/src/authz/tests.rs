use super::*;
use crate::policy::parse;

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");

fn bstage() -> Policy {
    parse(BSTAGE).expect("the bundled policy parses")
}

fn staff<'a>(role: &'a str, service: Option<&'a str>, privileges: &'a [String]) -> Actor<'a> {
    Actor::Staff { role, service, privileges }
}

fn member(service: Option<&str>, dormant: bool) -> Target<'_> {
    Target::Subject(SubjectFacts { service, dormant, deleted: false })
}

fn ask<'a>(actor: Actor<'a>, operation: Operation, target: Target<'a>, purpose: Option<&'a str>) -> Request<'a> {
    Request { actor, operation, target, purpose, items: None }
}

#[test]
fn anonymous_is_refused_everything() {
    let p = bstage();
    for op in Operation::ALL {
        let r = decide(&p, &ask(Actor::Anonymous, *op, Target::None, Some("member_management")));
        assert_eq!(r, Err(Denied::Unauthenticated), "{op}");
    }
}

#[test]
fn staff_of_one_service_never_reach_another_and_cannot_tell_it_exists() {
    let p = bstage();
    for role in ["head_admin", "admin", "operator", "onsite_operator"] {
        let a = staff(role, Some("svc_a"), &[]);
        let other =
            decide(&p, &ask(a, Operation::ReadSubject, member(Some("svc_b"), false), Some("member_management")));
        let missing = decide(&p, &ask(a, Operation::ReadSubject, Target::Missing, Some("member_management")));
        let platform = decide(&p, &ask(a, Operation::ReadSubject, member(None, false), Some("member_management")));
        assert_eq!(other, Err(Denied::NotFound), "{role}");
        assert_eq!(other, missing, "{role}");
        assert_eq!(platform, missing, "{role}");
        let own = decide(&p, &ask(a, Operation::ReadSubject, member(Some("svc_a"), false), Some("member_management")));
        assert!(own.is_ok(), "{role}: {own:?}");
    }
}

#[test]
fn roles_do_what_the_policy_lets_them_and_nothing_else() {
    let p = bstage();
    let own = Target::Scope(Some("svc_a"));
    let may = |role: &str, op: Operation| {
        let service = if p.roles.iter().any(|r| r.id.as_str() == role && r.scope == Scope::Service) {
            Some("svc_a")
        } else {
            None
        };
        decide(&p, &ask(staff(role, service, &[]), op, own, None)).is_ok()
    };
    assert!(may("head_admin", Operation::ChangeSettings));
    assert!(may("admin", Operation::ChangeSettings));
    assert!(!may("operator", Operation::ChangeSettings), "operators have no settings");
    assert!(may("operator", Operation::CorrectSubject));
    assert!(!may("onsite_operator", Operation::CorrectSubject));
    assert!(!may("onsite_operator", Operation::InviteStaff));
    assert!(may("head_admin", Operation::TransferRole));
    assert!(!may("admin", Operation::TransferRole), "only the single holder hands the role over");
    assert!(may("auditor", Operation::ReadAudit));
    assert!(!may("auditor", Operation::ListSubjects), "auditors see no member data");
    assert!(!may("support_agent", Operation::ReadAudit));
    assert!(!may("head_admin", Operation::ReadAudit), "the audit log is the platform's");
    assert!(!may("no_such_role", Operation::ListSubjects));
    for role in ["head_admin", "admin", "privacy_officer"] {
        assert!(!may(role, Operation::CreateSubject), "{role}: members are created by the platform");
        assert!(!may(role, Operation::CreateService), "{role}");
    }
}

#[test]
fn staff_read_only_for_their_roles_purposes() {
    let p = bstage();
    let target = member(Some("svc_a"), false);
    let onsite = staff("onsite_operator", Some("svc_a"), &[]);
    assert_eq!(
        decide(&p, &ask(onsite, Operation::ReadSubject, target, Some("marketing"))),
        Err(Denied::PurposeNotAllowed("marketing".into()))
    );
    assert_eq!(decide(&p, &ask(onsite, Operation::ReadSubject, target, None)), Err(Denied::PurposeRequired));
    assert!(matches!(
        decide(&p, &ask(onsite, Operation::ReadSubject, target, Some("no_such_purpose"))),
        Err(Denied::Read(ReadDenied::UnknownPurpose(_)))
    ));
}

#[test]
fn dormant_members_are_masked_without_the_privilege() {
    let p = bstage();
    let dormant = member(Some("svc_a"), true);
    let read = |actor| decide(&p, &ask(actor, Operation::ReadSubject, dormant, Some("member_management"))).unwrap();
    let admin = read(staff("admin", Some("svc_a"), &[]));
    assert!(admin.masked && admin.items.is_empty(), "{admin:?}");
    let granted = ["dormant_lookup".to_owned()];
    let privileged = read(staff("admin", Some("svc_a"), &granted));
    assert!(!privileged.masked && !privileged.items.is_empty());
    let head = read(staff("head_admin", Some("svc_a"), &[]));
    assert!(!head.masked, "the head admin holds the privilege through the role");
    let purposes = ["member_management".to_owned()];
    let key = read(Actor::ApiKey { service: None, purposes: &purposes });
    assert!(key.masked, "API keys hold no privilege");
    let awake = decide(
        &p,
        &ask(
            staff("admin", Some("svc_a"), &[]),
            Operation::ReadSubject,
            member(Some("svc_a"), false),
            Some("member_management"),
        ),
    )
    .unwrap();
    assert!(!awake.masked);
}

#[test]
fn api_keys_keep_to_their_scope_and_purposes() {
    let p = bstage();
    let purposes = ["member_management".to_owned()];
    let scoped = Actor::ApiKey { service: Some("svc_a"), purposes: &purposes };
    let platform = Actor::ApiKey { service: None, purposes: &purposes };
    assert_eq!(decide(&p, &ask(scoped, Operation::CreateService, Target::None, None)), Err(Denied::Forbidden));
    assert_eq!(decide(&p, &ask(scoped, Operation::ReadAudit, Target::None, None)), Err(Denied::Forbidden));
    assert!(decide(&p, &ask(platform, Operation::ReadAudit, Target::None, None)).is_ok());
    assert_eq!(
        decide(&p, &ask(scoped, Operation::ListSubjects, Target::Scope(Some("svc_b")), None)),
        Err(Denied::NotFound)
    );
    assert_eq!(
        decide(&p, &ask(scoped, Operation::ReadSubject, member(Some("svc_a"), false), Some("marketing"))),
        Err(Denied::PurposeNotAllowed("marketing".into()))
    );
    let allowed =
        decide(&p, &ask(scoped, Operation::ReadSubject, member(Some("svc_a"), false), Some("member_management")))
            .unwrap();
    let expected = p.purposes.iter().find(|x| x.id.as_str() == "member_management").unwrap().items.clone();
    assert_eq!(allowed.items, expected);
}

#[test]
fn every_operation_has_a_distinct_audit_name() {
    let names: std::collections::HashSet<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(names.len(), Operation::ALL.len());
}

#[test]
fn dormant_members_are_out_of_reach_but_for_a_masked_read() {
    let p = bstage();
    let dormant = member(Some("svc_a"), true);
    let admin = staff("admin", Some("svc_a"), &[]);
    let purpose = Some("member_management");
    for op in [Operation::LookupSubject, Operation::CorrectSubject, Operation::ListRecords, Operation::RecordActivity] {
        assert_eq!(decide(&p, &ask(admin, op, dormant, purpose)), Err(Denied::NotFound), "{op}");
    }
    let purposes = ["member_management".to_owned()];
    let key = Actor::ApiKey { service: Some("svc_a"), purposes: &purposes };
    for op in [Operation::LookupSubject, Operation::RecordActivity, Operation::AddRecord] {
        assert!(decide(&p, &ask(key, op, dormant, purpose)).is_ok(), "{op}: the backend releases and keeps records");
    }
    assert_eq!(decide(&p, &ask(key, Operation::CorrectSubject, dormant, purpose)), Err(Denied::NotFound));
    let head = staff("head_admin", Some("svc_a"), &[]);
    assert!(decide(&p, &ask(head, Operation::CorrectSubject, dormant, purpose)).is_ok());
}

#[test]
fn the_platform_keeps_what_is_the_platforms() {
    let p = bstage();
    let purposes = ["member_management".to_owned()];
    let scoped = Actor::ApiKey { service: Some("svc_a"), purposes: &purposes };
    let invite = ask(scoped, Operation::InviteStaff, Target::Scope(Some("svc_a")), None);
    assert_eq!(decide(&p, &invite), Err(Denied::Forbidden), "a service key mints no staff");
    let auditor = staff("auditor", None, &[]);
    assert!(decide(&p, &ask(auditor, Operation::ReadAudit, Target::None, None)).is_ok());
    assert_eq!(
        decide(&p, &ask(auditor, Operation::IssueCheckpoint, Target::None, None)),
        Err(Denied::Forbidden),
        "auditors only read the log"
    );
    // A role's scope and the account's service must agree.
    let unscoped_admin = staff("admin", None, &[]);
    assert_eq!(
        decide(
            &p,
            &ask(unscoped_admin, Operation::ReadSubject, member(Some("svc_b"), false), Some("member_management"))
        ),
        Err(Denied::Forbidden)
    );
    // A privilege the role cannot be granted counts for nothing.
    let held = ["dormant_lookup".to_owned()];
    let operator = staff("operator", Some("svc_a"), &held);
    let read =
        decide(&p, &ask(operator, Operation::ReadSubject, member(Some("svc_a"), true), Some("member_management")));
    assert!(read.unwrap().masked, "operators cannot hold dormant_lookup");
}

#[test]
fn a_consent_is_recorded_only_for_a_purpose_the_actor_works_for() {
    let p = bstage();
    let purposes = ["member_management".to_owned()];
    let key = Actor::ApiKey { service: None, purposes: &purposes };
    let target = member(Some("svc_a"), false);
    let record = |actor, purpose| decide(&p, &ask(actor, Operation::RecordConsent, target, Some(purpose)));
    assert_eq!(record(key, "marketing"), Err(Denied::PurposeNotAllowed("marketing".into())));
    assert!(record(key, "member_management").is_ok());
    let officer = staff("privacy_officer", None, &[]);
    assert_eq!(record(officer, "marketing"), Err(Denied::PurposeNotAllowed("marketing".into())));
    assert!(record(staff("admin", Some("svc_a"), &[]), "marketing").is_ok());
}
