use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::policy::parse;

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");

fn bstage() -> Policy {
    parse(BSTAGE).expect("the bundled policy parses")
}

const PURPOSES: [&str; 3] = ["marketing", "member_management", "other_service"];

#[derive(Debug, Clone, Copy)]
enum Step {
    Grant(usize),
    Withdraw(usize),
    /// A new version that widens the purpose (describes it differently).
    Widen(usize),
    /// A new version that narrows the purpose (one item fewer).
    Narrow(usize),
    /// A new version that changes nothing about any purpose.
    Reword,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..PURPOSES.len()).prop_map(Step::Grant),
        (0..PURPOSES.len()).prop_map(Step::Withdraw),
        (0..PURPOSES.len()).prop_map(Step::Widen),
        (0..PURPOSES.len()).prop_map(Step::Narrow),
        Just(Step::Reword),
    ]
}

/// The reference: per purpose, whether the last act granted, and whether a
/// widening came into force after that grant.
#[derive(Debug, Default, Clone, Copy)]
struct Model {
    granted: Option<bool>,
    renew: bool,
}

impl Model {
    fn state(self) -> State {
        match self.granted {
            None => State::NotGiven,
            Some(false) => State::Withdrawn,
            Some(true) if self.renew => State::NeedsRenewal,
            Some(true) => State::Granted,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn derived_state_equals_a_simple_model(steps in proptest::collection::vec(step(), 0..40)) {
        let mut history: Vec<Policy> = vec![bstage()];
        let mut ledger: Vec<(String, bool, String)> = Vec::new();
        let mut model: HashMap<&str, Model> = HashMap::new();
        for step in steps {
            let current = history.last().unwrap().clone();
            let version = current.meta.version.clone();
            let mut amend = |f: &mut dyn FnMut(&mut Policy)| {
                let mut next = current.clone();
                next.meta.version = format!("{}.{}", version, history.len());
                f(&mut next);
                history.push(next);
            };
            match step {
                Step::Grant(i) => {
                    ledger.push((PURPOSES[i].to_owned(), true, version.clone()));
                    model.insert(PURPOSES[i], Model { granted: Some(true), renew: false });
                }
                Step::Withdraw(i) => {
                    ledger.push((PURPOSES[i].to_owned(), false, version.clone()));
                    model.insert(PURPOSES[i], Model { granted: Some(false), renew: false });
                }
                Step::Widen(i) => {
                    amend(&mut |p: &mut Policy| {
                        let purpose = p.purposes.iter_mut().find(|x| x.id.as_str() == PURPOSES[i]).unwrap();
                        purpose.description.push_str(" And more.");
                    });
                    if let Some(m) = model.get_mut(PURPOSES[i]) {
                        m.renew = true;
                    }
                }
                Step::Narrow(i) => {
                    amend(&mut |p: &mut Policy| {
                        let purpose = p.purposes.iter_mut().find(|x| x.id.as_str() == PURPOSES[i]).unwrap();
                        if purpose.items.len() > 1 {
                            purpose.items.pop();
                        }
                    });
                }
                Step::Reword => amend(&mut |p: &mut Policy| p.meta.title.push('.')),
            }
            let refs: Vec<&Policy> = history.iter().collect();
            let entries: Vec<Entry<'_>> = ledger
                .iter()
                .map(|(purpose, granted, v)| Entry { purpose, granted: *granted, policy_version: v })
                .collect();
            for purpose in PURPOSES {
                let expected = model.get(purpose).copied().unwrap_or_default().state();
                prop_assert_eq!(state(&entries, purpose, &refs), expected, "{}", purpose);
            }
        }
    }
}

#[test]
fn nothing_is_pre_ticked_and_the_latest_entry_decides() {
    let p = bstage();
    let history = [&p];
    let v = p.meta.version.as_str();
    assert_eq!(state(&[], "marketing", &history), State::NotGiven);
    let grant = Entry { purpose: "marketing", granted: true, policy_version: v };
    let withdraw = Entry { granted: false, ..grant };
    assert_eq!(state(&[grant], "marketing", &history), State::Granted);
    assert_eq!(state(&[grant, withdraw], "marketing", &history), State::Withdrawn);
    assert_eq!(state(&[grant, withdraw, grant], "marketing", &history), State::Granted);
    assert_eq!(state(&[grant], "other_service", &history), State::NotGiven, "per purpose");
    let unknown = Entry { policy_version: "0.0-unknown", ..grant };
    assert_eq!(state(&[unknown], "marketing", &history), State::NeedsRenewal);
    assert!(State::Granted.permits_use());
    assert!(!State::NeedsRenewal.permits_use() && !State::Withdrawn.permits_use() && !State::NotGiven.permits_use());
}

#[test]
fn a_new_recipient_or_processor_of_the_purpose_widens_it() {
    let v1 = bstage();
    let grant = Entry { purpose: "marketing", granted: true, policy_version: &v1.meta.version };
    let amend = |f: &dyn Fn(&mut Policy)| {
        let mut next = v1.clone();
        next.meta.version = "next".into();
        f(&mut next);
        next
    };
    let recipient = crate::policy::model::Recipient {
        id: crate::policy::model::Id::parse("adnet").unwrap(),
        name: "An ad network".into(),
        purposes: vec![crate::policy::model::Id::parse("marketing").unwrap()],
        items: vec![crate::policy::model::Id::parse("email").unwrap()],
        country: None,
    };
    let shared = amend(&|p| {
        let third = p.third_parties.get_or_insert_with(|| crate::policy::model::ThirdParties {
            statement: "Shared.".into(),
            allowed_bases: Vec::new(),
            sells_personal_information: None,
            recipients: Vec::new(),
        });
        third.recipients.push(recipient.clone());
    });
    assert_eq!(state(&[grant], "marketing", &[&v1, &shared]), State::NeedsRenewal, "a third party receives it now");
    let elsewhere = amend(&|p| {
        let mut r = recipient.clone();
        r.purposes = vec![crate::policy::model::Id::parse("inquiries").unwrap()];
        if let Some(t) = p.third_parties.as_mut() {
            t.recipients.push(r);
        }
    });
    assert_eq!(state(&[grant], "marketing", &[&v1, &elsewhere]), State::Granted, "for another purpose");
    let processed = amend(&|p| {
        p.processors.push(crate::policy::model::Processor {
            id: crate::policy::model::Id::parse("mailer").unwrap(),
            name: "A mailer".into(),
            duty: "Sending e-mail".into(),
            items: vec![crate::policy::model::Id::parse("email").unwrap()],
            country: None,
        });
    });
    assert_eq!(state(&[grant], "marketing", &[&v1, &processed]), State::NeedsRenewal, "a new processor of its items");
}

#[test]
fn opt_in_needs_a_grant_and_opt_out_stops_at_an_objection() {
    use crate::policy::model::ConsentMode::{OptIn, OptOut};
    let table = [
        (State::NotGiven, false, true),
        (State::Granted, true, true),
        (State::Withdrawn, false, false),
        (State::NeedsRenewal, false, false),
    ];
    for (state, opt_in, opt_out) in table {
        assert_eq!((state.permits(OptIn), state.permits(OptOut)), (opt_in, opt_out), "{state:?}");
    }
}
