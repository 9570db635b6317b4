//! The way back: domain `Policy` → raw mirror, so that a validated policy can
//! be written out as TOML (`policy::to_toml`) and read again unchanged. The
//! round-trip property test in `policy/tests.rs` keeps the two directions in
//! step.

use jiff::civil::Date;

use super::model::*;
use super::raw::*;

fn ids(list: &[Id]) -> Vec<String> {
    list.iter().map(|x| x.to_string()).collect()
}

fn date(d: Date) -> toml::value::Datetime {
    toml::value::Datetime {
        date: Some(toml::value::Date { year: d.year() as u16, month: d.month() as u8, day: d.day() as u8 }),
        time: None,
        offset: None,
    }
}

fn mechanism(m: &Mechanism) -> RawMechanism {
    RawMechanism { kind: m.kind.to_string(), description: m.description.clone(), date: m.date.map(date) }
}

pub(crate) fn to_raw(p: &Policy) -> RawPolicy {
    RawPolicy {
        policy: RawMeta {
            id: p.meta.id.to_string(),
            version: p.meta.version.clone(),
            title: p.meta.title.clone(),
            language: p.meta.language.clone(),
            jurisdiction: p.meta.jurisdiction.to_string(),
            notice_date: date(p.meta.notice_date),
            effective_date: date(p.meta.effective_date),
            preamble: p.meta.preamble.clone(),
            annex_preamble: p.meta.annex_preamble.clone(),
            closing: p.meta.closing.clone(),
        },
        controller: RawController {
            name: p.controller.name.clone(),
            service: p.controller.service.clone(),
            address: p.controller.address.clone(),
            contacts: p
                .controller
                .contacts
                .iter()
                .map(|c| RawContact { kind: c.kind.to_string(), value: c.value.clone(), label: c.label.clone() })
                .collect(),
        },
        channels: p
            .channels
            .iter()
            .map(|c| RawChannel { id: c.id.to_string(), name: c.name.clone(), kind: c.kind.to_string() })
            .collect(),
        laws: p
            .laws
            .iter()
            .map(|l| RawLaw {
                id: l.id.to_string(),
                name: l.name.clone(),
                jurisdiction: l.jurisdiction.as_ref().map(Id::to_string),
            })
            .collect(),
        jurisdictions: p
            .jurisdictions
            .iter()
            .map(|j| RawJurisdiction {
                id: j.id.to_string(),
                name: j.name.clone(),
                countries: j.countries.iter().map(|c| c.to_string()).collect(),
                annex: j.annex.clone(),
                text: j.text.clone(),
                rights: j.rights.iter().map(|r| r.to_string()).collect(),
                minimum_age: j.minimum_age.map(i64::from),
                sells_personal_information: j.sells_personal_information,
                transfer_basis: j.transfer_basis.as_ref().map(mechanism),
                deadlines: j.deadlines.as_ref().map(|d| RawDeadlines {
                    acknowledge: d.acknowledge.map(|s| s.to_string()),
                    answer: d.answer.to_string(),
                    extension: d.extension.map(|s| s.to_string()),
                    law: d.law.as_ref().map(Id::to_string),
                }),
            })
            .collect(),
        subject_kinds: p
            .subject_kinds
            .iter()
            .map(|s| RawSubjectKind { id: s.id.to_string(), name: s.name.clone(), scope: s.scope.to_string() })
            .collect(),
        categories: p
            .categories
            .iter()
            .map(|c| RawCategory { id: c.id.to_string(), name: c.name.clone(), special: c.special })
            .collect(),
        items: p
            .items
            .iter()
            .map(|i| RawItem {
                id: i.id.to_string(),
                name: i.name.clone(),
                category: i.category.to_string(),
                kind: i.kind.to_string(),
                unique: i.unique,
                normal_form: i.normal_form.map(|n| n.to_string()),
                generated: i.generated,
            })
            .collect(),
        purposes: p
            .purposes
            .iter()
            .map(|x| RawPurpose {
                id: x.id.to_string(),
                name: x.name.clone(),
                description: x.description.clone(),
                bases: x
                    .bases
                    .iter()
                    .map(|b| RawBasis {
                        kind: b.kind.to_string(),
                        law: b.law.as_ref().map(Id::to_string),
                        citation: b.citation.clone(),
                    })
                    .collect(),
                items: ids(&x.items),
                consent: x
                    .consent
                    .as_ref()
                    .map(|c| RawConsent { mode: c.mode.to_string(), withdraw_via: ids(&c.withdraw_via) }),
            })
            .collect(),
        sources: p
            .sources
            .iter()
            .map(|s| RawSource {
                id: s.id.to_string(),
                kind: s.kind.to_string(),
                description: s.description.clone(),
                channels: ids(&s.channels),
            })
            .collect(),
        events: p.events.iter().map(|e| RawEvent { id: e.id.to_string(), name: e.name.clone() }).collect(),
        collection_points: p
            .collection_points
            .iter()
            .map(|c| RawCollectionPoint {
                id: c.id.to_string(),
                name: c.name.clone(),
                subject_kinds: ids(&c.subject_kinds),
                required: ids(&c.required),
                optional: ids(&c.optional),
                purposes: ids(&c.purposes),
                sources: ids(&c.sources),
                age_check: c.age_check,
                notice: c.notice.clone(),
            })
            .collect(),
        privileges: p
            .privileges
            .iter()
            .map(|x| RawPrivilege {
                id: x.id.to_string(),
                name: x.name.clone(),
                description: x.description.clone(),
                operations: x.operations.iter().map(|o| o.to_string()).collect(),
            })
            .collect(),
        roles: p
            .roles
            .iter()
            .map(|r| RawRole {
                id: r.id.to_string(),
                name: r.name.clone(),
                scope: r.scope.to_string(),
                description: r.description.clone(),
                purposes: ids(&r.purposes),
                single: r.single,
                transferable_to: ids(&r.transferable_to),
                privileges: ids(&r.privileges),
                grantable: ids(&r.grantable),
                operations: r.operations.iter().map(|o| o.to_string()).collect(),
            })
            .collect(),
        retention: retention(&p.retention),
        record_classes: p
            .record_classes
            .iter()
            .map(|r| RawRecordClass {
                id: r.id.to_string(),
                name: r.name.clone(),
                law: r.law.to_string(),
                retain_for: r.retain_for.to_string(),
                read_purpose: r.read_purpose.to_string(),
                from: r.from.to_string(),
                purposes: ids(&r.purposes),
            })
            .collect(),
        third_parties: p.third_parties.as_ref().map(|t| RawThirdParties {
            statement: t.statement.clone(),
            allowed_bases: t.allowed_bases.iter().map(|b| b.to_string()).collect(),
            sells_personal_information: t.sells_personal_information,
            recipients: t
                .recipients
                .iter()
                .map(|r| RawRecipient {
                    id: r.id.to_string(),
                    name: r.name.clone(),
                    purposes: ids(&r.purposes),
                    items: ids(&r.items),
                    country: r.country.as_ref().map(Country::to_string),
                })
                .collect(),
        }),
        entrustment: p
            .entrustment
            .as_ref()
            .map(|e| RawEntrustment { safeguards: e.safeguards.clone(), change_notice: e.change_notice.clone() }),
        processors: p
            .processors
            .iter()
            .map(|x| RawProcessor {
                id: x.id.to_string(),
                name: x.name.clone(),
                duty: x.duty.clone(),
                items: ids(&x.items),
                country: x.country.as_ref().map(Country::to_string),
            })
            .collect(),
        transfers: p
            .transfers
            .iter()
            .map(|t| RawTransfer {
                id: t.id.to_string(),
                recipient: t.recipient.clone(),
                country: t.country.to_string(),
                items: ids(&t.items),
                purpose: t.purpose.clone(),
                retention: t.retention.clone(),
                timing: t.timing.clone(),
                method: t.method.clone(),
                contact: t.contact.clone(),
                processor: t.processor.as_ref().map(Id::to_string),
                mechanism: t.mechanism.as_ref().map(mechanism),
            })
            .collect(),
        rights: p.rights.as_ref().map(|r| RawRights {
            kinds: r.kinds.iter().map(|k| k.to_string()).collect(),
            channels: ids(&r.channels),
            agents: r.agents,
            agent_document: r.agent_document.clone(),
            text: r.text.clone(),
            verification: r.verification.clone(),
            limits: r.limits.clone(),
        }),
        safety: p.safety.iter().map(|s| RawSafety { kind: s.kind.to_string(), measures: s.measures.clone() }).collect(),
        cookies: p.cookies.as_ref().map(|c| RawCookies {
            text: c.text.clone(),
            refusal_effect: c.refusal_effect.clone(),
            gpc_opts_out: ids(&c.gpc_opts_out),
            categories: c
                .categories
                .iter()
                .map(|x| RawCookieCategory {
                    id: x.id.to_string(),
                    name: x.name.clone(),
                    description: x.description.clone(),
                    necessary: x.necessary,
                })
                .collect(),
            browsers: c
                .browsers
                .iter()
                .map(|b| RawBrowser { name: b.name.clone(), instructions: b.instructions.clone() })
                .collect(),
        }),
        officer: p.officer.as_ref().map(|o| RawOfficer {
            title: o.title.clone(),
            name: o.name.clone(),
            department: o.department.clone(),
            phone: o.phone.clone(),
            email: o.email.clone(),
            text: o.text.clone(),
        }),
        remedies: p.remedies.as_ref().map(|r| RawRemedies {
            text: r.text.clone(),
            agencies: r
                .agencies
                .iter()
                .map(|a| RawAgency { name: a.name.clone(), phone: a.phone.clone(), website: a.website.clone() })
                .collect(),
        }),
        children: p
            .children
            .as_ref()
            .map(|c| RawChildren { minimum_age: i64::from(c.minimum_age), text: c.text.clone() }),
        amendments: p.amendments.as_ref().map(|a| RawAmendments {
            board: a.board.clone(),
            notice: a.notice.map(|s| s.to_string()),
            significant_notice: a.significant_notice.map(|s| s.to_string()),
            significant_changes: a.significant_changes.iter().map(|c| c.to_string()).collect(),
            text: a.text.clone(),
        }),
    }
}

fn retention(r: &Retention) -> Option<RawRetention> {
    if r == &Retention::default() {
        return None;
    }
    Some(RawRetention {
        principle: r.principle.clone(),
        rules: r
            .rules
            .iter()
            .map(|x| {
                let (after, criteria) = match &x.timing {
                    Timing::WithoutDelay => (Some("without delay".to_owned()), None),
                    Timing::After(s) => (Some(s.to_string()), None),
                    Timing::Criteria(c) => (None, Some(c.clone())),
                };
                RawRetentionRule {
                    id: x.id.to_string(),
                    description: x.description.clone(),
                    trigger: x.trigger.to_string(),
                    action: x.action.to_string(),
                    after,
                    criteria,
                    subject_kinds: ids(&x.subject_kinds),
                    exempt_roles: ids(&x.exempt_roles),
                }
            })
            .collect(),
        dormancy: r.dormancy.as_ref().map(|d| RawDormancy {
            description: d.description.clone(),
            inactive_for: d.inactive_for.to_string(),
            activity: ids(&d.activity),
            notice_before: d.notice_before.map(|s| s.to_string()),
            notice_via: ids(&d.notice_via),
            destroy_after: d.destroy_after.to_string(),
            released_by: ids(&d.released_by),
            subject_kinds: ids(&d.subject_kinds),
            exempt_roles: ids(&d.exempt_roles),
        }),
        destruction: r
            .destruction
            .iter()
            .map(|d| RawDestruction { medium: d.medium.to_string(), method: d.method.clone() })
            .collect(),
    })
}
