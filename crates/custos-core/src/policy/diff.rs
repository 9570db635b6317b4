//! Compares two versions of a policy: what changed, in plain words; whether
//! the amendment is significant under the policy's own rules; and the
//! earliest date it may take effect.
//!
//! The notice rules applied are those of the *old* version, the policy in
//! force when the amendment is announced. A change counts as significant when
//! its kind is listed in the old version's `amendments.significant_changes`.
//! When the old version states no notice period, none is invented: the
//! earliest date is the announcement itself, and the report says so.

use std::fmt;

use jiff::civil::Date;

use super::model::*;
use super::span::Span;

/// One difference between two versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The kind of amendment this is, when it is one a policy may call
    /// significant; `None` for wording and other changes.
    pub kind: Option<ChangeKind>,
    pub text: String,
}

/// The comparison of two versions of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub old_version: String,
    pub new_version: String,
    pub changes: Vec<Change>,
    /// Kinds of change present that the old policy calls significant.
    pub significant_kinds: Vec<ChangeKind>,
    pub announced: Date,
    /// The notice the amendment needs; `None` when the policy states none.
    pub notice: Option<Span>,
    pub earliest_effective: Date,
    pub new_effective: Date,
}

impl Diff {
    pub fn is_significant(&self) -> bool {
        !self.significant_kinds.is_empty()
    }

    /// True when the new version's effective date respects the notice.
    pub fn effective_date_allowed(&self) -> bool {
        self.new_effective >= self.earliest_effective
    }
}

/// Compares `old` with `new`. `announced` is the date the amendment is (or
/// was) posted; callers default it to the new version's notice date.
pub fn diff(old: &Policy, new: &Policy, announced: Date) -> Result<Diff, String> {
    let mut changes = Vec::new();
    meta(old, new, &mut changes);
    items(old, new, &mut changes);
    purposes(old, new, &mut changes);
    collection(old, new, &mut changes);
    third_parties(old, new, &mut changes);
    processors(old, new, &mut changes);
    transfers(old, new, &mut changes);
    retention(old, new, &mut changes);
    sections(old, new, &mut changes);

    let rules = old.amendments.as_ref();
    let listed = rules.map(|a| a.significant_changes.as_slice()).unwrap_or(&[]);
    let mut significant_kinds: Vec<ChangeKind> =
        changes.iter().filter_map(|c| c.kind).filter(|k| listed.contains(k)).collect();
    significant_kinds.sort();
    significant_kinds.dedup();
    // An amendment that changes the notice rules themselves takes the
    // longest notice the rules in force promise: a version cannot shorten
    // the notice it is announced with, nor the next one's by two steps.
    let rules_changed = old.amendments != new.amendments;
    let notice = rules.and_then(|a| a.required_notice(!significant_kinds.is_empty() || rules_changed));
    let earliest_effective = match notice {
        Some(span) => span.after(announced)?,
        None => announced,
    };
    Ok(Diff {
        old_version: old.meta.version.clone(),
        new_version: new.meta.version.clone(),
        changes,
        significant_kinds,
        announced,
        notice,
        earliest_effective,
        new_effective: new.meta.effective_date,
    })
}

fn push(changes: &mut Vec<Change>, kind: Option<ChangeKind>, text: String) {
    changes.push(Change { kind, text });
}

fn names(ids: &[&Id]) -> String {
    ids.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
}

/// Ids in `new` but not in `old`, and in `old` but not in `new`.
fn added_removed<'a>(old: &'a [Id], new: &'a [Id]) -> (Vec<&'a Id>, Vec<&'a Id>) {
    (new.iter().filter(|x| !old.contains(x)).collect(), old.iter().filter(|x| !new.contains(x)).collect())
}

fn meta(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    if old.meta.id != new.meta.id {
        push(changes, None, format!("policy id changed from {} to {}", old.meta.id, new.meta.id));
    }
    if old.meta.title != new.meta.title {
        push(changes, None, format!("title changed to {:?}", new.meta.title));
    }
    if old.meta.language != new.meta.language {
        push(changes, None, format!("language changed from {} to {}", old.meta.language, new.meta.language));
    }
    if old.meta.jurisdiction != new.meta.jurisdiction {
        push(
            changes,
            None,
            format!("home jurisdiction changed from {} to {}", old.meta.jurisdiction, new.meta.jurisdiction),
        );
    }
    if old.controller != new.controller {
        push(changes, None, "controller details changed".to_owned());
    }
}

fn items(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    for item in &new.items {
        match old.item(&item.id) {
            None => push(changes, None, format!("item {:?} ({}) declared", item.id.as_str(), item.name)),
            Some(before) if before != item => push(changes, None, format!("item {:?} redefined", item.id.as_str())),
            Some(_) => {}
        }
    }
    for item in &old.items {
        if new.item(&item.id).is_none() {
            push(changes, None, format!("item {:?} ({}) no longer declared", item.id.as_str(), item.name));
        }
    }
}

/// Whether a purpose's scope changed between two versions in a way that
/// needs the member's consent again: it uses new items, rests on another
/// basis, takes consent differently, or says something else. Dropping items
/// narrows the use and needs no new consent.
pub fn purpose_widened(before: &Purpose, after: &Purpose) -> bool {
    let (added, _) = added_removed(&before.items, &after.items);
    !added.is_empty()
        || before.bases != after.bases
        || before.consent != after.consent
        || before.description != after.description
        || before.name != after.name
}

fn purposes(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    let changed = Some(ChangeKind::ChangedPurposes);
    for p in &new.purposes {
        let Some(before) = old.purpose(&p.id) else {
            push(changes, Some(ChangeKind::NewPurposes), format!("new purpose {:?}: {}", p.id.as_str(), p.name));
            continue;
        };
        let (added, removed) = added_removed(&before.items, &p.items);
        if !added.is_empty() {
            push(changes, changed, format!("purpose {:?} now also uses {}", p.id.as_str(), names(&added)));
        }
        if !removed.is_empty() {
            push(changes, None, format!("purpose {:?} no longer uses {}", p.id.as_str(), names(&removed)));
        }
        if before.bases != p.bases {
            push(changes, changed, format!("purpose {:?} changed its lawful basis", p.id.as_str()));
        }
        if before.consent != p.consent {
            push(changes, changed, format!("purpose {:?} changed how consent is given or withdrawn", p.id.as_str()));
        }
        if before.description != p.description || before.name != p.name {
            push(changes, changed, format!("purpose {:?} is described differently", p.id.as_str()));
        }
    }
    for p in &old.purposes {
        if new.purpose(&p.id).is_none() {
            push(changes, None, format!("purpose {:?} ({}) withdrawn", p.id.as_str(), p.name));
        }
    }
}

fn collection(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    let new_items = Some(ChangeKind::NewItems);
    for point in &new.collection_points {
        let collected: Vec<Id> = point.required.iter().chain(&point.optional).cloned().collect();
        let Some(before) = old.collection_points.iter().find(|c| c.id == point.id) else {
            push(
                changes,
                new_items,
                format!(
                    "new collection point {:?} collects {}",
                    point.id.as_str(),
                    names(&collected.iter().collect::<Vec<_>>())
                ),
            );
            continue;
        };
        let was: Vec<Id> = before.required.iter().chain(&before.optional).cloned().collect();
        let (added, removed) = added_removed(&was, &collected);
        if !added.is_empty() {
            push(
                changes,
                new_items,
                format!("collection point {:?} now also collects {}", point.id.as_str(), names(&added)),
            );
        }
        if !removed.is_empty() {
            push(
                changes,
                None,
                format!("collection point {:?} no longer collects {}", point.id.as_str(), names(&removed)),
            );
        }
        let (now_required, _) = added_removed(&before.required, &point.required);
        let now_required: Vec<&Id> = now_required.into_iter().filter(|x| was.contains(x)).collect();
        if !now_required.is_empty() {
            push(
                changes,
                new_items,
                format!("collection point {:?} now requires {}", point.id.as_str(), names(&now_required)),
            );
        }
        let (added, dropped) = added_removed(&before.purposes, &point.purposes);
        if !dropped.is_empty() {
            push(
                changes,
                None,
                format!("collection point {:?} no longer serves {}", point.id.as_str(), names(&dropped)),
            );
        }
        if before.name != point.name || before.notice != point.notice {
            push(changes, None, format!("collection point {:?} is named or described differently", point.id.as_str()));
        }
        if !added.is_empty() {
            push(
                changes,
                Some(ChangeKind::ChangedPurposes),
                format!("collection point {:?} now also serves {}", point.id.as_str(), names(&added)),
            );
        }
        if before.age_check != point.age_check
            || before.subject_kinds != point.subject_kinds
            || before.sources != point.sources
        {
            push(
                changes,
                None,
                format!(
                    "collection point {:?} changed who it applies to, its sources or its age check",
                    point.id.as_str()
                ),
            );
        }
    }
    for point in &old.collection_points {
        if !new.collection_points.iter().any(|c| c.id == point.id) {
            push(changes, None, format!("collection point {:?} removed", point.id.as_str()));
        }
    }
}

fn third_parties(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    let kind = Some(ChangeKind::NewThirdParties);
    let empty = Vec::new();
    let old_recipients = old.third_parties.as_ref().map_or(&empty, |t| &t.recipients);
    let new_recipients = new.third_parties.as_ref().map_or(&empty, |t| &t.recipients);
    for r in new_recipients {
        match old_recipients.iter().find(|x| x.id == r.id) {
            None => push(changes, kind, format!("new third-party recipient {:?}: {}", r.id.as_str(), r.name)),
            Some(before) if before != r => push(
                changes,
                kind,
                format!("third-party recipient {:?} receives different items or for different purposes", r.id.as_str()),
            ),
            Some(_) => {}
        }
    }
    for r in old_recipients {
        if !new_recipients.iter().any(|x| x.id == r.id) {
            push(changes, None, format!("third-party recipient {:?} removed", r.id.as_str()));
        }
    }
    let old_bases = old.third_parties.as_ref().map(|t| t.allowed_bases.clone()).unwrap_or_default();
    let new_bases = new.third_parties.as_ref().map(|t| t.allowed_bases.clone()).unwrap_or_default();
    let widened: Vec<String> = new_bases.iter().filter(|b| !old_bases.contains(b)).map(|b| b.to_string()).collect();
    if !widened.is_empty() {
        push(
            changes,
            kind,
            format!("personal information may now be provided to third parties on the basis of {}", widened.join(", ")),
        );
    }
    let old_sale = old.third_parties.as_ref().and_then(|t| t.sells_personal_information);
    let new_sale = new.third_parties.as_ref().and_then(|t| t.sells_personal_information);
    if old_sale != new_sale {
        push(
            changes,
            kind,
            format!("sale of personal information changed from {} to {}", stated(old_sale), stated(new_sale)),
        );
    }
    if old.third_parties.as_ref().map(|t| &t.statement) != new.third_parties.as_ref().map(|t| &t.statement) {
        push(changes, None, "the third-party provision statement is worded differently".to_owned());
    }
}

fn stated(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not stated",
    }
}

fn processors(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    for p in &new.processors {
        match old.processor(&p.id) {
            None => push(
                changes,
                Some(ChangeKind::NewProcessors),
                format!("new processor {:?}: {} ({})", p.id.as_str(), p.name, p.duty),
            ),
            Some(before) if before != p => push(
                changes,
                Some(ChangeKind::ChangedProcessors),
                format!("processor {:?} ({}) changed its duty, items or country", p.id.as_str(), p.name),
            ),
            Some(_) => {}
        }
    }
    for p in &old.processors {
        if new.processor(&p.id).is_none() {
            push(
                changes,
                Some(ChangeKind::ChangedProcessors),
                format!("processor {:?} ({}) removed", p.id.as_str(), p.name),
            );
        }
    }
}

fn transfers(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    let kind = Some(ChangeKind::NewTransfers);
    for t in &new.transfers {
        match old.transfers.iter().find(|x| x.id == t.id) {
            None => push(
                changes,
                kind,
                format!("new transfer abroad {:?} to {} ({})", t.id.as_str(), t.recipient, t.country),
            ),
            Some(before) => {
                let (added, _) = added_removed(&before.items, &t.items);
                if !added.is_empty() {
                    push(changes, kind, format!("transfer {:?} now also carries {}", t.id.as_str(), names(&added)));
                }
                if before.country != t.country || before.recipient != t.recipient {
                    push(
                        changes,
                        kind,
                        format!("transfer {:?} now goes to {} ({})", t.id.as_str(), t.recipient, t.country),
                    );
                }
                let other = |x: &Transfer| {
                    (
                        x.purpose.clone(),
                        x.retention.clone(),
                        x.timing.clone(),
                        x.method.clone(),
                        x.mechanism.clone(),
                        x.contact.clone(),
                        x.processor.clone(),
                    )
                };
                if other(before) != other(t) {
                    push(
                        changes,
                        kind,
                        format!(
                            "transfer {:?} changed its purpose, retention, method, safeguard, contact or processor",
                            t.id.as_str()
                        ),
                    );
                }
            }
        }
    }
    for t in &old.transfers {
        if !new.transfers.iter().any(|x| x.id == t.id) {
            push(changes, None, format!("transfer abroad {:?} to {} ended", t.id.as_str(), t.recipient));
        }
    }
}

fn retention(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    let kind = Some(ChangeKind::ChangedRetention);
    if old.retention.rules != new.retention.rules {
        push(changes, kind, "retention rules changed".to_owned());
    }
    match (&old.retention.dormancy, &new.retention.dormancy) {
        (None, Some(d)) => {
            push(changes, kind, format!("dormancy introduced: after {} without activity", d.inactive_for))
        }
        (Some(_), None) => push(changes, kind, "dormancy removed".to_owned()),
        (Some(a), Some(b)) if a != b => {
            let mut parts = Vec::new();
            if a.inactive_for != b.inactive_for {
                parts.push(format!("inactivity span {} → {}", a.inactive_for, b.inactive_for));
            }
            if a.destroy_after != b.destroy_after {
                parts.push(format!("destruction after {} → {}", a.destroy_after, b.destroy_after));
            }
            if a.notice_before != b.notice_before {
                parts.push("notice changed".to_owned());
            }
            if parts.is_empty() {
                parts.push("activity, release or exemptions changed".to_owned());
            }
            push(changes, kind, format!("dormancy changed: {}", parts.join("; ")));
        }
        _ => {}
    }
    for c in &new.record_classes {
        match old.record_classes.iter().find(|x| x.id == c.id) {
            None => {
                push(changes, kind, format!("new statutory hold {:?}: {} for {}", c.id.as_str(), c.name, c.retain_for))
            }
            Some(before) if before.retain_for != c.retain_for => push(
                changes,
                kind,
                format!("statutory hold {:?} changed from {} to {}", c.id.as_str(), before.retain_for, c.retain_for),
            ),
            Some(before) if before != c => push(changes, kind, format!("statutory hold {:?} redefined", c.id.as_str())),
            Some(_) => {}
        }
    }
    for c in &old.record_classes {
        if !new.record_classes.iter().any(|x| x.id == c.id) {
            push(changes, kind, format!("statutory hold {:?} removed", c.id.as_str()));
        }
    }
    if old.retention.destruction != new.retention.destruction || old.retention.principle != new.retention.principle {
        push(changes, None, "retention principle or destruction methods are worded differently".to_owned());
    }
}

/// Sections whose changes are reported without a significance class.
fn sections(old: &Policy, new: &Policy, changes: &mut Vec<Change>) {
    let mut compare = |name: &str, differs: bool| {
        if differs {
            push(changes, None, format!("{name} changed"));
        }
    };
    compare(
        "preamble or closing text",
        old.meta.preamble != new.meta.preamble
            || old.meta.annex_preamble != new.meta.annex_preamble
            || old.meta.closing != new.meta.closing,
    );
    compare("channels", old.channels != new.channels);
    compare("laws", old.laws != new.laws);
    compare("jurisdictions and annexes", old.jurisdictions != new.jurisdictions);
    compare("subject kinds", old.subject_kinds != new.subject_kinds);
    compare("categories of personal information", old.categories != new.categories);
    compare("sources of personal information", old.sources != new.sources);
    compare("staff roles or privileges", old.roles != new.roles || old.privileges != new.privileges);
    compare("events that count as activity", old.events != new.events);
    compare("rights and how to exercise them", old.rights != new.rights);
    compare("safety measures", old.safety != new.safety);
    compare("cookies", old.cookies != new.cookies);
    compare("privacy officer", old.officer != new.officer);
    compare("remedy agencies", old.remedies != new.remedies);
    compare("children's personal information", old.children != new.children);
    compare("amendment rules", old.amendments != new.amendments);
    compare("entrustment terms", old.entrustment != new.entrustment);
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "changes from version {} to version {}:", self.old_version, self.new_version)?;
        if self.changes.is_empty() {
            writeln!(f, "  none")?;
        }
        for c in &self.changes {
            match c.kind {
                Some(k) if self.significant_kinds.contains(&k) => writeln!(f, "  - {} [significant: {k}]", c.text)?,
                _ => writeln!(f, "  - {}", c.text)?,
            }
        }
        if self.is_significant() {
            let kinds: Vec<&str> = self.significant_kinds.iter().map(|k| k.as_str()).collect();
            writeln!(f, "significant: yes ({})", kinds.join(", "))?;
        } else {
            writeln!(f, "significant: no")?;
        }
        match self.notice {
            Some(n) => writeln!(f, "notice required: {n}")?,
            None => writeln!(f, "notice required: not stated in the policy in force (no period applied)")?,
        }
        writeln!(f, "announced: {}", self.announced)?;
        writeln!(f, "earliest effective date: {}", self.earliest_effective)?;
        if self.effective_date_allowed() {
            write!(f, "the new version's effective date {} respects the notice period", self.new_effective)
        } else {
            write!(
                f,
                "the new version's effective date {} is too early: it may take effect on {} at the earliest",
                self.new_effective, self.earliest_effective
            )
        }
    }
}

#[cfg(test)]
mod tests;
