//! The validating conversion: raw TOML mirror → domain `Policy`.
//!
//! Every problem is collected with its key path, so a user fixes a broken
//! file in one round. When a value is invalid the converter records the
//! problem and carries on with a stand-in value; stand-ins never escape,
//! because any problem makes the whole conversion fail.

use std::collections::HashSet;

use jiff::civil::Date;

use super::model::*;
use super::raw::*;
use super::source::KeyPath;
use super::span::Span;

pub(crate) type Problems = Vec<(KeyPath, String)>;

pub(crate) fn from_raw(raw: &RawPolicy) -> Result<Policy, Problems> {
    let mut cx = Cx::default();
    let root = KeyPath::root();
    let decl = Declared::collect(&mut cx, raw);

    let policy = Policy {
        meta: cx.meta(&decl, &root.key("policy"), &raw.policy),
        controller: cx.controller(&root.key("controller"), &raw.controller),
        channels: list(&mut cx, &root.key("channels"), &raw.channels, |cx, p, c| Channel {
            id: cx.id(&p.key("id"), &c.id),
            name: cx.text(&p.key("name"), &c.name),
            kind: cx.kw(&p.key("kind"), &c.kind, ChannelKind::parse),
        }),
        laws: list(&mut cx, &root.key("laws"), &raw.laws, |cx, p, l| Law {
            id: cx.id(&p.key("id"), &l.id),
            name: cx.text(&p.key("name"), &l.name),
            jurisdiction: l.jurisdiction.as_ref().map(|j| cx.reference(&p.key("jurisdiction"), j, &decl.jurisdictions)),
        }),
        jurisdictions: list(&mut cx, &root.key("jurisdictions"), &raw.jurisdictions, |cx, p, j| {
            cx.jurisdiction(&decl, p, j)
        }),
        subject_kinds: list(&mut cx, &root.key("subject_kinds"), &raw.subject_kinds, |cx, p, s| SubjectKind {
            id: cx.id(&p.key("id"), &s.id),
            name: cx.text(&p.key("name"), &s.name),
            scope: cx.kw(&p.key("scope"), &s.scope, Scope::parse),
        }),
        categories: list(&mut cx, &root.key("categories"), &raw.categories, |cx, p, c| Category {
            id: cx.id(&p.key("id"), &c.id),
            name: cx.text(&p.key("name"), &c.name),
            special: c.special,
        }),
        items: list(&mut cx, &root.key("items"), &raw.items, |cx, p, i| cx.item(&decl, p, i)),
        purposes: list(&mut cx, &root.key("purposes"), &raw.purposes, |cx, p, x| cx.purpose(&decl, p, x)),
        sources: list(&mut cx, &root.key("sources"), &raw.sources, |cx, p, s| Source {
            id: cx.id(&p.key("id"), &s.id),
            kind: cx.kw(&p.key("kind"), &s.kind, SourceKind::parse),
            description: cx.text(&p.key("description"), &s.description),
            channels: cx.references(&p.key("channels"), &s.channels, &decl.channels),
        }),
        events: list(&mut cx, &root.key("events"), &raw.events, |cx, p, e| Event {
            id: cx.id(&p.key("id"), &e.id),
            name: cx.text(&p.key("name"), &e.name),
        }),
        collection_points: list(&mut cx, &root.key("collection_points"), &raw.collection_points, |cx, p, c| {
            cx.collection_point(&decl, raw, p, c)
        }),
        privileges: list(&mut cx, &root.key("privileges"), &raw.privileges, |cx, p, x| Privilege {
            id: cx.id(&p.key("id"), &x.id),
            name: cx.text(&p.key("name"), &x.name),
            description: cx.text(&p.key("description"), &x.description),
            operations: cx.keywords(&p.key("operations"), &x.operations, Operation::parse),
        }),
        roles: list(&mut cx, &root.key("roles"), &raw.roles, |cx, p, r| cx.role(&decl, p, r)),
        retention: match &raw.retention {
            Some(r) => cx.retention(&decl, &root.key("retention"), r),
            None => Retention::default(),
        },
        record_classes: list(&mut cx, &root.key("record_classes"), &raw.record_classes, |cx, p, r| {
            cx.record_class(&decl, raw, p, r)
        }),
        third_parties: raw.third_parties.as_ref().map(|t| cx.third_parties(&decl, &root.key("third_parties"), t)),
        entrustment: raw
            .entrustment
            .as_ref()
            .map(|e| Entrustment { safeguards: e.safeguards.clone(), change_notice: e.change_notice.clone() }),
        processors: list(&mut cx, &root.key("processors"), &raw.processors, |cx, p, x| Processor {
            id: cx.id(&p.key("id"), &x.id),
            name: cx.text(&p.key("name"), &x.name),
            duty: cx.text(&p.key("duty"), &x.duty),
            items: cx.references(&p.key("items"), &x.items, &decl.items),
            country: x.country.as_ref().map(|c| cx.country(&p.key("country"), c)),
        }),
        transfers: list(&mut cx, &root.key("transfers"), &raw.transfers, |cx, p, t| cx.transfer(&decl, p, t)),
        rights: raw.rights.as_ref().map(|r| cx.rights(&decl, &root.key("rights"), r)),
        safety: list(&mut cx, &root.key("safety"), &raw.safety, |cx, p, s| Safety {
            kind: cx.kw(&p.key("kind"), &s.kind, SafetyKind::parse),
            measures: cx.texts(&p.key("measures"), &s.measures),
        }),
        cookies: raw.cookies.as_ref().map(|c| cx.cookies(&decl, &root.key("cookies"), c)),
        officer: raw.officer.as_ref().map(|o| cx.officer(&root.key("officer"), o)),
        remedies: raw.remedies.as_ref().map(|r| Remedies {
            text: r.text.clone(),
            agencies: list(&mut cx, &root.key("remedies").key("agencies"), &r.agencies, |cx, p, a| Agency {
                name: cx.text(&p.key("name"), &a.name),
                phone: a.phone.clone(),
                website: a.website.clone(),
            }),
        }),
        children: raw.children.as_ref().map(|c| Children {
            minimum_age: cx.age(&root.key("children").key("minimum_age"), c.minimum_age),
            text: c.text.clone(),
        }),
        amendments: raw.amendments.as_ref().map(|a| cx.amendments(&root.key("amendments"), a)),
    };

    cx.cross_checks(raw, &policy);
    if cx.problems.is_empty() { Ok(policy) } else { Err(cx.problems) }
}

fn list<R, T>(cx: &mut Cx, path: &KeyPath, raws: &[R], mut f: impl FnMut(&mut Cx, &KeyPath, &R) -> T) -> Vec<T> {
    raws.iter().enumerate().map(|(i, r)| f(cx, &path.index(i), r)).collect()
}

/// The ids each list declares, gathered first so that references can point
/// forwards as well as backwards in the file.
#[derive(Default)]
struct Declared {
    channels: Names,
    laws: Names,
    jurisdictions: Names,
    subject_kinds: Names,
    categories: Names,
    items: Names,
    purposes: Names,
    sources: Names,
    events: Names,
    privileges: Names,
    roles: Names,
    processors: Names,
    cookie_categories: Names,
}

#[derive(Default)]
struct Names {
    what: &'static str,
    section: &'static str,
    ids: HashSet<String>,
}

impl Declared {
    fn collect(cx: &mut Cx, raw: &RawPolicy) -> Declared {
        let root = KeyPath::root();
        let mut names = |what, section: &'static str, ids: Vec<&String>, base: KeyPath| {
            let mut seen = HashSet::new();
            for (i, id) in ids.into_iter().enumerate() {
                if !seen.insert(id.clone()) {
                    cx.err(base.index(i).key("id"), format!("duplicate {what} id {id:?}"));
                }
            }
            Names { what, section, ids: seen }
        };
        let cookie_categories =
            raw.cookies.as_ref().map(|c| c.categories.iter().map(|x| &x.id).collect()).unwrap_or_default();
        Declared {
            channels: names(
                "channel",
                "[[channels]]",
                raw.channels.iter().map(|x| &x.id).collect(),
                root.key("channels"),
            ),
            laws: names("law", "[[laws]]", raw.laws.iter().map(|x| &x.id).collect(), root.key("laws")),
            jurisdictions: names(
                "jurisdiction",
                "[[jurisdictions]]",
                raw.jurisdictions.iter().map(|x| &x.id).collect(),
                root.key("jurisdictions"),
            ),
            subject_kinds: names(
                "subject kind",
                "[[subject_kinds]]",
                raw.subject_kinds.iter().map(|x| &x.id).collect(),
                root.key("subject_kinds"),
            ),
            categories: names(
                "category",
                "[[categories]]",
                raw.categories.iter().map(|x| &x.id).collect(),
                root.key("categories"),
            ),
            items: names("item", "[[items]]", raw.items.iter().map(|x| &x.id).collect(), root.key("items")),
            purposes: names(
                "purpose",
                "[[purposes]]",
                raw.purposes.iter().map(|x| &x.id).collect(),
                root.key("purposes"),
            ),
            sources: names("source", "[[sources]]", raw.sources.iter().map(|x| &x.id).collect(), root.key("sources")),
            events: names("event", "[[events]]", raw.events.iter().map(|x| &x.id).collect(), root.key("events")),
            privileges: names(
                "privilege",
                "[[privileges]]",
                raw.privileges.iter().map(|x| &x.id).collect(),
                root.key("privileges"),
            ),
            roles: names("role", "[[roles]]", raw.roles.iter().map(|x| &x.id).collect(), root.key("roles")),
            processors: names(
                "processor",
                "[[processors]]",
                raw.processors.iter().map(|x| &x.id).collect(),
                root.key("processors"),
            ),
            cookie_categories: names(
                "cookie category",
                "[[cookies.categories]]",
                cookie_categories,
                root.key("cookies").key("categories"),
            ),
        }
    }
}

#[derive(Default)]
struct Cx {
    problems: Problems,
}

/// Stand-in id used after a problem has been recorded.
fn stand_in_id() -> Id {
    Id::parse("invalid").unwrap_or_else(|_| unreachable!("\"invalid\" is a valid id"))
}

fn stand_in_span() -> Span {
    Span::new(1, super::span::Unit::Days).unwrap_or_else(|_| unreachable!("one day is a valid span"))
}

impl Cx {
    fn err(&mut self, path: KeyPath, message: impl Into<String>) {
        self.problems.push((path, message.into()));
    }

    fn id(&mut self, path: &KeyPath, s: &str) -> Id {
        Id::parse(s).unwrap_or_else(|e| {
            self.err(path.clone(), e);
            stand_in_id()
        })
    }

    fn kw<T: Copy + KeywordDefault>(&mut self, path: &KeyPath, s: &str, parse: fn(&str) -> Result<T, String>) -> T {
        parse(s).unwrap_or_else(|e| {
            self.err(path.clone(), e);
            T::stand_in()
        })
    }

    /// Required prose or a name: not blank, no control characters but
    /// newlines and tabs.
    fn text(&mut self, path: &KeyPath, s: &str) -> String {
        if s.trim().is_empty() {
            self.err(path.clone(), "must not be empty");
        } else if let Some(c) = s.chars().find(|c| c.is_control() && *c != '\n' && *c != '\t' && *c != '\r') {
            self.err(path.clone(), format!("contains the control character U+{:04X}", c as u32));
        }
        s.to_owned()
    }

    fn texts(&mut self, path: &KeyPath, list: &[String]) -> Vec<String> {
        if list.is_empty() {
            self.err(path.clone(), "must list at least one entry");
        }
        list.iter().enumerate().map(|(i, s)| self.text(&path.index(i), s)).collect()
    }

    fn span(&mut self, path: &KeyPath, s: &str) -> Span {
        s.parse().unwrap_or_else(|e| {
            self.err(path.clone(), e);
            stand_in_span()
        })
    }

    fn date(&mut self, path: &KeyPath, value: &toml::value::Datetime) -> Date {
        let stand_in = Date::constant(1970, 1, 1);
        match (value.date, value.time, value.offset) {
            (Some(d), None, None) => Date::new(d.year as i16, d.month as i8, d.day as i8).unwrap_or_else(|e| {
                self.err(path.clone(), format!("{value} is not a valid date: {e}"));
                stand_in
            }),
            _ => {
                self.err(path.clone(), format!("{value} must be a date without a time (for example 2023-02-21)"));
                stand_in
            }
        }
    }

    fn country(&mut self, path: &KeyPath, s: &str) -> Country {
        if Country::parse(s).is_ok() && !crate::collect::is_assigned_country(s) {
            self.err(path.clone(), format!("{s:?} is not an assigned ISO 3166-1 alpha-2 country code"));
        }
        Country::parse(s).unwrap_or_else(|e| {
            self.err(path.clone(), e);
            Country::parse("ZZ").unwrap_or_else(|_| unreachable!("ZZ has the shape of a country code"))
        })
    }

    fn countries(&mut self, path: &KeyPath, list: &[String]) -> Vec<Country> {
        let mut out: Vec<Country> = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let country = self.country(&path.index(i), s);
            if out.contains(&country) {
                self.err(path.index(i), format!("lists {s:?} twice"));
            }
            out.push(country);
        }
        out
    }

    fn age(&mut self, path: &KeyPath, age: i64) -> u8 {
        match u8::try_from(age) {
            Ok(a) if (1..=120).contains(&a) => a,
            _ => {
                self.err(path.clone(), format!("{age} is not an age between 1 and 120"));
                1
            }
        }
    }

    fn reference(&mut self, path: &KeyPath, s: &str, names: &Names) -> Id {
        if !names.ids.contains(s) {
            self.err(path.clone(), format!("unknown {} {s:?} (declare it under {})", names.what, names.section));
            return stand_in_id();
        }
        self.id(path, s)
    }

    fn references(&mut self, path: &KeyPath, list: &[String], names: &Names) -> Vec<Id> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            if !seen.insert(s.as_str()) {
                self.err(path.index(i), format!("lists {} {s:?} twice", names.what));
            }
            out.push(self.reference(&path.index(i), s, names));
        }
        out
    }

    fn nonempty_references(&mut self, path: &KeyPath, list: &[String], names: &Names) -> Vec<Id> {
        if list.is_empty() {
            self.err(path.clone(), format!("must name at least one {}", names.what));
        }
        self.references(path, list, names)
    }

    fn keywords<T: Copy + PartialEq + KeywordDefault>(
        &mut self,
        path: &KeyPath,
        list: &[String],
        parse: fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let mut out: Vec<T> = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let value = self.kw(&path.index(i), s, parse);
            if parse(s).is_ok() && out.contains(&value) {
                self.err(path.index(i), format!("lists {s:?} twice"));
            }
            out.push(value);
        }
        out
    }

    fn meta(&mut self, decl: &Declared, path: &KeyPath, m: &RawMeta) -> Meta {
        let problems_before = self.problems.len();
        let notice_date = self.date(&path.key("notice_date"), &m.notice_date);
        let effective_date = self.date(&path.key("effective_date"), &m.effective_date);
        // Compare only real dates, never a stand-in for a refused one.
        if self.problems.len() == problems_before && effective_date < notice_date {
            self.err(
                path.key("effective_date"),
                format!("the effective date {effective_date} is before the notice date {notice_date}"),
            );
        }
        Meta {
            id: self.id(&path.key("id"), &m.id),
            version: self.text(&path.key("version"), &m.version),
            title: self.text(&path.key("title"), &m.title),
            language: self.language(&path.key("language"), &m.language),
            jurisdiction: self.reference(&path.key("jurisdiction"), &m.jurisdiction, &decl.jurisdictions),
            notice_date,
            effective_date,
            preamble: m.preamble.clone(),
            annex_preamble: m.annex_preamble.clone(),
            closing: m.closing.clone(),
        }
    }

    /// A BCP 47 language tag in its common short form: `en`, `ko`, `de-CH`.
    fn language(&mut self, path: &KeyPath, s: &str) -> String {
        let mut parts = s.split('-');
        let primary_ok =
            parts.next().is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase()));
        let rest_ok = parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if !(primary_ok && rest_ok) {
            self.err(path.clone(), format!("{s:?} is not a language tag (for example \"en\" or \"ko\")"));
        }
        s.to_owned()
    }

    fn controller(&mut self, path: &KeyPath, c: &RawController) -> Controller {
        Controller {
            name: self.text(&path.key("name"), &c.name),
            service: self.text(&path.key("service"), &c.service),
            address: c.address.clone(),
            contacts: list(self, &path.key("contacts"), &c.contacts, |cx, p, x| Contact {
                kind: cx.kw(&p.key("kind"), &x.kind, ContactKind::parse),
                value: cx.text(&p.key("value"), &x.value),
                label: x.label.clone(),
            }),
        }
    }

    fn jurisdiction(&mut self, decl: &Declared, p: &KeyPath, j: &RawJurisdiction) -> Jurisdiction {
        if j.countries.is_empty() {
            self.err(p.key("countries"), "must list at least one country");
        }
        Jurisdiction {
            id: self.id(&p.key("id"), &j.id),
            name: self.text(&p.key("name"), &j.name),
            countries: self.countries(&p.key("countries"), &j.countries),
            annex: j.annex.clone(),
            text: j.text.clone(),
            rights: self.keywords(&p.key("rights"), &j.rights, RightKind::parse),
            minimum_age: j.minimum_age.map(|a| self.age(&p.key("minimum_age"), a)),
            sells_personal_information: j.sells_personal_information,
            transfer_basis: j.transfer_basis.as_ref().map(|m| self.mechanism(&p.key("transfer_basis"), m)),
            deadlines: j.deadlines.as_ref().map(|d| {
                let dp = p.key("deadlines");
                Deadlines {
                    acknowledge: d.acknowledge.as_ref().map(|s| self.span(&dp.key("acknowledge"), s)),
                    answer: self.span(&dp.key("answer"), &d.answer),
                    extension: d.extension.as_ref().map(|s| self.span(&dp.key("extension"), s)),
                    law: d.law.as_ref().map(|l| self.reference(&dp.key("law"), l, &decl.laws)),
                }
            }),
        }
    }

    fn mechanism(&mut self, p: &KeyPath, m: &RawMechanism) -> Mechanism {
        Mechanism {
            kind: self.kw(&p.key("kind"), &m.kind, MechanismKind::parse),
            description: m.description.clone(),
            date: m.date.as_ref().map(|d| self.date(&p.key("date"), d)),
        }
    }

    fn item(&mut self, decl: &Declared, p: &KeyPath, i: &RawItem) -> Item {
        let kind = self.kw(&p.key("type"), &i.kind, ItemType::parse);
        let normal_form = i.normal_form.as_ref().map(|n| self.kw(&p.key("normal_form"), n, NormalForm::parse));
        if i.unique && normal_form.is_none() {
            self.err(
                p.key("normal_form"),
                "a unique identifier needs a normal_form (trim, email or e164) for its blind index",
            );
        }
        // Compare only with a type that parsed, never with a stand-in.
        let kind_known = ItemType::parse(&i.kind).is_ok();
        match normal_form {
            Some(NormalForm::Email) if kind_known && kind != ItemType::Email => {
                self.err(
                    p.key("normal_form"),
                    format!("normal form \"email\" applies only to items of type email, not {kind}"),
                );
            }
            Some(NormalForm::E164) if kind_known && kind != ItemType::Phone => {
                self.err(
                    p.key("normal_form"),
                    format!("normal form \"e164\" applies only to items of type phone, not {kind}"),
                );
            }
            _ => {}
        }
        Item {
            id: self.id(&p.key("id"), &i.id),
            name: self.text(&p.key("name"), &i.name),
            category: self.reference(&p.key("category"), &i.category, &decl.categories),
            kind,
            unique: i.unique,
            normal_form,
            generated: i.generated,
        }
    }

    fn purpose(&mut self, decl: &Declared, p: &KeyPath, x: &RawPurpose) -> Purpose {
        if x.bases.is_empty() {
            self.err(p.key("bases"), "a purpose needs at least one lawful basis");
        }
        let bases: Vec<Basis> = list(self, &p.key("bases"), &x.bases, |cx, bp, b| Basis {
            kind: cx.kw(&bp.key("kind"), &b.kind, BasisKind::parse),
            law: b.law.as_ref().map(|l| cx.reference(&bp.key("law"), l, &decl.laws)),
            citation: b.citation.clone(),
        });
        let consent_based = x.bases.iter().any(|b| BasisKind::parse(&b.kind).is_ok_and(BasisKind::is_consent));
        let consent = x.consent.as_ref().map(|c| {
            let cp = p.key("consent");
            let mode = self.kw(&cp.key("mode"), &c.mode, ConsentMode::parse);
            if mode == ConsentMode::OptIn && !consent_based {
                self.err(cp.key("mode"), "opt-in consent on a purpose whose bases include no consent");
            }
            if c.withdraw_via.is_empty() {
                self.err(cp.key("withdraw_via"), "consent must be withdrawable: name at least one channel");
            }
            ConsentRule {
                mode,
                withdraw_via: self.references(&cp.key("withdraw_via"), &c.withdraw_via, &decl.channels),
            }
        });
        if consent_based && x.consent.is_none() {
            self.err(
                p.key("consent"),
                "a consent-based purpose needs a [consent] table with mode and withdraw_via (no way to withdraw is given)",
            );
        }
        if consent_based && x.consent.as_ref().is_some_and(|c| c.mode == "opt_out") {
            self.err(p.key("consent").key("mode"), "a consent-based purpose must be opt_in");
        }
        Purpose {
            id: self.id(&p.key("id"), &x.id),
            name: self.text(&p.key("name"), &x.name),
            description: self.text(&p.key("description"), &x.description),
            bases,
            items: self.nonempty_references(&p.key("items"), &x.items, &decl.items),
            consent,
        }
    }

    fn collection_point(
        &mut self,
        decl: &Declared,
        raw: &RawPolicy,
        p: &KeyPath,
        c: &RawCollectionPoint,
    ) -> CollectionPoint {
        if c.required.is_empty() && c.optional.is_empty() {
            self.err(p.clone(), "a collection point must collect at least one item (required or optional)");
        }
        for (i, item) in c.optional.iter().enumerate() {
            if c.required.contains(item) {
                self.err(p.key("optional").index(i), format!("item {item:?} is both required and optional"));
            }
        }
        if c.purposes.is_empty() {
            self.err(p.key("purposes"), "a collection point needs at least one purpose");
        }
        // Data minimisation: each collected item must serve one of the
        // point's purposes.
        let purpose_items: HashSet<&str> = raw
            .purposes
            .iter()
            .filter(|x| c.purposes.contains(&x.id))
            .flat_map(|x| x.items.iter().map(String::as_str))
            .collect();
        if !c.purposes.is_empty() && c.purposes.iter().all(|x| decl.purposes.ids.contains(x)) {
            for (key, items) in [("required", &c.required), ("optional", &c.optional)] {
                for (i, item) in items.iter().enumerate() {
                    if decl.items.ids.contains(item) && !purpose_items.contains(item.as_str()) {
                        self.err(
                            p.key(key).index(i),
                            format!("item {item:?} is collected here but none of this point's purposes uses it"),
                        );
                    }
                }
            }
        }
        if c.age_check {
            let has_date =
                c.required.iter().filter_map(|id| raw.items.iter().find(|x| &x.id == id)).any(|x| x.kind == "date");
            if !has_date {
                self.err(p.key("age_check"), "an age check needs a required item of type date (the date of birth)");
            }
            if raw.children.is_none() {
                self.err(p.key("age_check"), "an age check needs [children] minimum_age");
            }
        }
        CollectionPoint {
            id: self.id(&p.key("id"), &c.id),
            name: self.text(&p.key("name"), &c.name),
            subject_kinds: self.nonempty_references(&p.key("subject_kinds"), &c.subject_kinds, &decl.subject_kinds),
            required: self.references(&p.key("required"), &c.required, &decl.items),
            optional: self.references(&p.key("optional"), &c.optional, &decl.items),
            purposes: self.references(&p.key("purposes"), &c.purposes, &decl.purposes),
            sources: self.nonempty_references(&p.key("sources"), &c.sources, &decl.sources),
            age_check: c.age_check,
            notice: c.notice.clone(),
        }
    }

    fn role(&mut self, decl: &Declared, p: &KeyPath, r: &RawRole) -> Role {
        for (i, t) in r.transferable_to.iter().enumerate() {
            if t == &r.id {
                self.err(p.key("transferable_to").index(i), "a role cannot be transferred to itself");
            }
        }
        if !r.transferable_to.is_empty() && !r.single {
            self.err(p.key("transferable_to"), "only a single-holder role (single = true) is handed over");
        }
        Role {
            id: self.id(&p.key("id"), &r.id),
            name: self.text(&p.key("name"), &r.name),
            scope: self.kw(&p.key("scope"), &r.scope, Scope::parse),
            description: self.text(&p.key("description"), &r.description),
            purposes: self.references(&p.key("purposes"), &r.purposes, &decl.purposes),
            single: r.single,
            transferable_to: self.references(&p.key("transferable_to"), &r.transferable_to, &decl.roles),
            privileges: self.references(&p.key("privileges"), &r.privileges, &decl.privileges),
            grantable: self.references(&p.key("grantable"), &r.grantable, &decl.privileges),
            operations: self.keywords(&p.key("operations"), &r.operations, Operation::parse),
        }
    }

    fn retention(&mut self, decl: &Declared, p: &KeyPath, r: &RawRetention) -> Retention {
        Retention {
            principle: r.principle.clone(),
            rules: list(self, &p.key("rules"), &r.rules, |cx, rp, x| {
                let timing = match (&x.after, &x.criteria) {
                    (Some(after), None) if after.trim() == "without delay" => Timing::WithoutDelay,
                    (Some(after), None) => Timing::After(cx.span(&rp.key("after"), after)),
                    (None, Some(criteria)) => Timing::Criteria(cx.text(&rp.key("criteria"), criteria)),
                    (Some(_), Some(_)) => {
                        cx.err(rp.clone(), "give either after or criteria, not both");
                        Timing::WithoutDelay
                    }
                    (None, None) => {
                        cx.err(rp.clone(), "a retention rule needs after (a span or \"without delay\") or criteria");
                        Timing::WithoutDelay
                    }
                };
                RetentionRule {
                    id: cx.id(&rp.key("id"), &x.id),
                    description: cx.text(&rp.key("description"), &x.description),
                    trigger: cx.kw(&rp.key("trigger"), &x.trigger, Trigger::parse),
                    action: cx.kw(&rp.key("action"), &x.action, RetentionAction::parse),
                    timing,
                    subject_kinds: cx.references(&rp.key("subject_kinds"), &x.subject_kinds, &decl.subject_kinds),
                    exempt_roles: cx.references(&rp.key("exempt_roles"), &x.exempt_roles, &decl.roles),
                }
            }),
            dormancy: r.dormancy.as_ref().map(|d| {
                let dp = p.key("dormancy");
                let inactive_for = self.span(&dp.key("inactive_for"), &d.inactive_for);
                let notice_before = d.notice_before.as_ref().map(|s| self.span(&dp.key("notice_before"), s));
                let spans_valid = d.inactive_for.parse::<Span>().is_ok()
                    && d.notice_before.as_deref().is_some_and(|n| n.parse::<Span>().is_ok());
                if spans_valid && let Some(notice) = notice_before {
                    let base = Date::constant(2001, 1, 1);
                    if let (Ok(a), Ok(b)) = (notice.after(base), inactive_for.after(base))
                        && a >= b
                    {
                        self.err(
                            dp.key("notice_before"),
                            format!("the notice ({notice}) must be shorter than the inactivity span ({inactive_for})"),
                        );
                    }
                }
                if notice_before.is_some() && d.notice_via.is_empty() {
                    self.err(dp.key("notice_via"), "a dormancy notice needs at least one channel");
                }
                let released_by = self.references(&dp.key("released_by"), &d.released_by, &decl.events);
                for (i, e) in d.released_by.iter().enumerate() {
                    if !d.activity.contains(e) && decl.events.ids.contains(e) {
                        self.err(
                            dp.key("released_by").index(i),
                            format!("event {e:?} releases a dormant member but does not count as activity"),
                        );
                    }
                }
                Dormancy {
                    description: self.text(&dp.key("description"), &d.description),
                    inactive_for,
                    activity: self.nonempty_references(&dp.key("activity"), &d.activity, &decl.events),
                    notice_before,
                    notice_via: self.references(&dp.key("notice_via"), &d.notice_via, &decl.channels),
                    destroy_after: self.span(&dp.key("destroy_after"), &d.destroy_after),
                    released_by,
                    subject_kinds: self.references(&dp.key("subject_kinds"), &d.subject_kinds, &decl.subject_kinds),
                    exempt_roles: self.references(&dp.key("exempt_roles"), &d.exempt_roles, &decl.roles),
                }
            }),
            destruction: list(self, &p.key("destruction"), &r.destruction, |cx, dp, d| Destruction {
                medium: cx.kw(&dp.key("medium"), &d.medium, Medium::parse),
                method: cx.text(&dp.key("method"), &d.method),
            }),
        }
    }

    fn record_class(&mut self, decl: &Declared, raw: &RawPolicy, p: &KeyPath, r: &RawRecordClass) -> RecordClass {
        let read_purpose = self.reference(&p.key("read_purpose"), &r.read_purpose, &decl.purposes);
        if let Some(purpose) = raw.purposes.iter().find(|x| x.id == r.read_purpose)
            && !purpose.bases.iter().any(|b| b.kind == "legal_obligation")
        {
            self.err(
                p.key("read_purpose"),
                format!("purpose {:?} reads held records, so it must rest on a legal_obligation basis", r.read_purpose),
            );
        }
        RecordClass {
            id: self.id(&p.key("id"), &r.id),
            name: self.text(&p.key("name"), &r.name),
            law: self.reference(&p.key("law"), &r.law, &decl.laws),
            retain_for: self.span(&p.key("retain_for"), &r.retain_for),
            read_purpose,
            from: self.kw(&p.key("from"), &r.from, RecordStart::parse),
            purposes: self.references(&p.key("purposes"), &r.purposes, &decl.purposes),
        }
    }

    fn third_parties(&mut self, decl: &Declared, p: &KeyPath, t: &RawThirdParties) -> ThirdParties {
        ThirdParties {
            statement: self.text(&p.key("statement"), &t.statement),
            allowed_bases: self.keywords(&p.key("allowed_bases"), &t.allowed_bases, BasisKind::parse),
            sells_personal_information: t.sells_personal_information,
            recipients: list(self, &p.key("recipients"), &t.recipients, |cx, rp, r| Recipient {
                id: cx.id(&rp.key("id"), &r.id),
                name: cx.text(&rp.key("name"), &r.name),
                purposes: cx.nonempty_references(&rp.key("purposes"), &r.purposes, &decl.purposes),
                items: cx.nonempty_references(&rp.key("items"), &r.items, &decl.items),
                country: r.country.as_ref().map(|c| cx.country(&rp.key("country"), c)),
            }),
        }
    }

    fn transfer(&mut self, decl: &Declared, p: &KeyPath, t: &RawTransfer) -> Transfer {
        Transfer {
            id: self.id(&p.key("id"), &t.id),
            recipient: self.text(&p.key("recipient"), &t.recipient),
            country: self.country(&p.key("country"), &t.country),
            items: self.nonempty_references(&p.key("items"), &t.items, &decl.items),
            purpose: self.text(&p.key("purpose"), &t.purpose),
            retention: self.text(&p.key("retention"), &t.retention),
            timing: self.text(&p.key("timing"), &t.timing),
            method: self.text(&p.key("method"), &t.method),
            contact: t.contact.clone(),
            processor: t.processor.as_ref().map(|x| self.reference(&p.key("processor"), x, &decl.processors)),
            mechanism: t.mechanism.as_ref().map(|m| self.mechanism(&p.key("mechanism"), m)),
        }
    }

    fn rights(&mut self, decl: &Declared, p: &KeyPath, r: &RawRights) -> Rights {
        if r.kinds.is_empty() {
            self.err(p.key("kinds"), "must list at least one right");
        }
        if r.agents && r.agent_document.is_none() {
            self.err(
                p.key("agent_document"),
                "when agents may act, name the document they must show (for example a letter of attorney)",
            );
        }
        Rights {
            kinds: self.keywords(&p.key("kinds"), &r.kinds, RightKind::parse),
            channels: self.nonempty_references(&p.key("channels"), &r.channels, &decl.channels),
            agents: r.agents,
            agent_document: r.agent_document.as_ref().map(|d| self.text(&p.key("agent_document"), d)),
            text: r.text.clone(),
            verification: r.verification.clone(),
            limits: r.limits.clone(),
        }
    }

    fn cookies(&mut self, decl: &Declared, p: &KeyPath, c: &RawCookies) -> Cookies {
        if c.categories.is_empty() {
            self.err(p.key("categories"), "must declare at least one cookie category");
        }
        let categories = list(self, &p.key("categories"), &c.categories, |cx, cp, x| CookieCategory {
            id: cx.id(&cp.key("id"), &x.id),
            name: cx.text(&cp.key("name"), &x.name),
            description: cx.text(&cp.key("description"), &x.description),
            necessary: x.necessary,
        });
        let mut gpc = Vec::new();
        for (i, id) in c.gpc_opts_out.iter().enumerate() {
            let path = p.key("gpc_opts_out").index(i);
            if c.gpc_opts_out[..i].contains(id) {
                self.err(path.clone(), format!("lists cookie category {id:?} twice"));
            }
            match c.categories.iter().find(|x| &x.id == id) {
                None => gpc.push(self.reference(&path, id, &decl.cookie_categories)),
                Some(x) if x.necessary => {
                    self.err(path, format!("cookie category {id:?} is strictly necessary and cannot be turned off"));
                }
                Some(_) => gpc.push(self.id(&path, id)),
            }
        }
        Cookies {
            text: self.text(&p.key("text"), &c.text),
            refusal_effect: c.refusal_effect.clone(),
            gpc_opts_out: gpc,
            categories,
            browsers: list(self, &p.key("browsers"), &c.browsers, |cx, bp, b| Browser {
                name: cx.text(&bp.key("name"), &b.name),
                instructions: cx.text(&bp.key("instructions"), &b.instructions),
            }),
        }
    }

    fn officer(&mut self, p: &KeyPath, o: &RawOfficer) -> Officer {
        if o.phone.is_none() && o.email.is_none() {
            self.err(p.clone(), "the privacy officer needs a phone or an email so members can reach them");
        }
        if let Some(email) = &o.email
            && !looks_like_email(email)
        {
            self.err(p.key("email"), format!("{email:?} is not an e-mail address"));
        }
        Officer {
            title: self.text(&p.key("title"), &o.title),
            name: o.name.clone(),
            department: o.department.clone(),
            phone: o.phone.clone(),
            email: o.email.clone(),
            text: o.text.clone(),
        }
    }

    fn amendments(&mut self, p: &KeyPath, a: &RawAmendments) -> Amendments {
        let notice = a.notice.as_ref().map(|s| self.span(&p.key("notice"), s));
        let significant_notice = a.significant_notice.as_ref().map(|s| self.span(&p.key("significant_notice"), s));
        let spans_valid = a.notice.as_deref().is_some_and(|n| n.parse::<Span>().is_ok())
            && a.significant_notice.as_deref().is_some_and(|n| n.parse::<Span>().is_ok());
        if spans_valid && let (Some(n), Some(s)) = (notice, significant_notice) {
            let base = Date::constant(2001, 1, 1);
            if let (Ok(a), Ok(b)) = (n.after(base), s.after(base))
                && b < a
            {
                self.err(
                    p.key("significant_notice"),
                    format!("the notice for significant changes ({s}) is shorter than the ordinary notice ({n})"),
                );
            }
        }
        if !a.significant_changes.is_empty() && significant_notice.is_none() && notice.is_none() {
            self.err(p.key("significant_changes"), "significant changes are listed but no notice period is given");
        }
        Amendments {
            board: self.text(&p.key("board"), &a.board),
            notice,
            significant_notice,
            significant_changes: self.keywords(
                &p.key("significant_changes"),
                &a.significant_changes,
                ChangeKind::parse,
            ),
            text: a.text.clone(),
        }
    }

    /// Rules that span sections of the file.
    fn cross_checks(&mut self, raw: &RawPolicy, policy: &Policy) {
        let root = KeyPath::root();
        let dates_valid = !self.problems.iter().any(|(p, _)| {
            p == &root.key("policy").key("notice_date") || p == &root.key("policy").key("effective_date")
        });
        if dates_valid
            && let Some(notice) = policy.amendments.as_ref().and_then(|a| a.notice)
            && let Ok(earliest) = notice.after(policy.meta.notice_date)
            && policy.meta.effective_date < earliest
            && policy.meta.effective_date >= policy.meta.notice_date
        {
            self.err(
                        root.key("policy").key("effective_date"),
                        format!(
                            "the effective date {} is earlier than the notice period allows: notice given {} plus {notice} is {earliest}",
                            policy.meta.effective_date, policy.meta.notice_date
                        ),
                    );
        }
        for (i, item) in raw.items.iter().enumerate() {
            if !raw.purposes.iter().any(|p| p.items.contains(&item.id)) {
                // An item no purpose uses could never be read: collecting it
                // would break data minimisation.
                self.err(root.key("items").index(i), format!("item {:?} is used by no purpose", item.id));
            }
        }
        if raw.subject_kinds.is_empty() {
            self.err(root.key("subject_kinds"), "declare at least one subject kind");
        }
        if raw.purposes.is_empty() {
            self.err(root.key("purposes"), "declare at least one purpose");
        }
    }
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// A value to carry on with after a keyword was refused.
trait KeywordDefault {
    fn stand_in() -> Self;
}

macro_rules! stand_in {
    ($($t:ty),+) => {$(
        impl KeywordDefault for $t {
            fn stand_in() -> Self { <$t>::ALL[0] }
        }
    )+};
}

stand_in!(
    Operation,
    ContactKind,
    ChannelKind,
    Scope,
    ItemType,
    NormalForm,
    BasisKind,
    ConsentMode,
    SourceKind,
    Trigger,
    RetentionAction,
    Medium,
    RecordStart,
    MechanismKind,
    RightKind,
    SafetyKind,
    ChangeKind
);
