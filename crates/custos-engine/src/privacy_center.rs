//! The member privacy center's sign-in (issue 10): a member types their
//! e-mail address, gets a one-time code at the address on file, and typing
//! the code opens a short session. Signed in, the member acts through the
//! engine's own audited operations (their access package, consents, rights
//! requests) as the caller `member:<subject id>`, and only on themselves:
//! the session names the subject, the pages never take one from the URL.
//!
//! Invariants:
//! - a pending sign-in keeps only the HMAC of its code, keyed per sign-in;
//!   the code expires after [`SIGN_IN_CODE_MINUTES`] minutes and dies after
//!   [`SIGN_IN_ATTEMPTS`] wrong tries; it is mailed at once and never queued
//!   (a late code is useless), so it is stored nowhere in clear;
//! - a session token carries 256 random bits and is stored only as its
//!   SHA-256; it ends [`SESSION_MINUTES`] after sign-in, after
//!   [`SESSION_IDLE_MINUTES`] idle minutes, at sign-out, and once the member
//!   is no longer active;
//! - an unknown address is answered exactly like a known one (a sign-in id
//!   and "check your mail"), so the page reveals no membership; at most
//!   [`SIGN_IN_CODES_PER_WINDOW`] codes go to one address in 15 minutes;
//! - every step appends its audit entry in the job that does it.

use aws_lc_rs::{constant_time, digest};
use base64::Engine as _;
use custos_core::collect::{ErrorCode, FieldError};
use custos_core::policy::model::ItemType;
use jiff::Timestamp;

use crate::auth::Caller;
use crate::ids::{new_id, random_bytes};
use crate::{Engine, EngineError, Result, stamp};

/// Minutes a sign-in code stays valid.
pub const SIGN_IN_CODE_MINUTES: i64 = 15;
/// Wrong codes before a sign-in is void.
pub const SIGN_IN_ATTEMPTS: i64 = 5;
/// Codes sent to one address (known or not) per throttle window (15
/// minutes): no one floods a member's mailbox from the sign-in page.
pub const SIGN_IN_CODES_PER_WINDOW: usize = 5;
/// A session's absolute lifetime, in minutes.
pub const SESSION_MINUTES: i64 = 30;
/// A session's idle limit, in minutes.
pub const SESSION_IDLE_MINUTES: i64 = 15;

/// A signed-in member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSession {
    pub subject: String,
    pub service: Option<String>,
    /// The caller the member acts as in the engine's operations.
    pub caller: Caller,
    /// The token every form of this session carries (derived from the
    /// session token, which a page on another origin cannot read).
    pub csrf: String,
}

fn invalid(field: &str, code: ErrorCode, message: &str) -> EngineError {
    EngineError::Invalid(vec![FieldError::new(field, code, message)])
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The CSRF token of the forms of a session (a member's or a staff
/// member's): derived from the session token, so it needs no storage, and
/// a page of another origin, which cannot read the token, cannot make it.
pub fn form_token(session_token: &str) -> String {
    hex(&sha256(format!("custos-csrf:{session_token}").as_bytes())[..16])
}

fn minutes_after(now: Timestamp, minutes: i64) -> Timestamp {
    now.checked_add(jiff::SignedDuration::from_mins(minutes)).unwrap_or(now)
}

fn audit_entry(at: &str, actor: &str, subject: Option<&str>, outcome: &str, version: &str) -> custos_store::AuditRow {
    crate::audit::row(custos_core::audit::Entry {
        at: at.to_owned(),
        actor: actor.to_owned(),
        role: "member".into(),
        operation: "member_sign_in".into(),
        purpose: None,
        subject: subject.map(str::to_owned),
        items: String::new(),
        outcome: outcome.to_owned(),
        policy_version: version.to_owned(),
    })
}

/// The caller a signed-in member acts as: their service's scope, every
/// purpose of the policy (the pages only ever name the member themselves).
fn member_caller(subject: &str, service: Option<String>, purposes: Vec<String>) -> Caller {
    Caller { key_id: format!("member:{subject}"), service, purposes, staff: None }
}

impl Engine {
    fn sign_in_mac(&self, id: &str, code: &str) -> String {
        hex(&self.inner.keyring.blind_index("member-sign-in", id, code))
    }

    /// Starts a sign-in for the member of `service` (None: the platform)
    /// whose e-mail address is `email`: mails them a one-time code. Answers
    /// a sign-in id whether or not such a member exists.
    pub async fn start_member_sign_in(&self, service: Option<&str>, email: &str, now: Timestamp) -> Result<String> {
        if self.inner.mail.is_none() {
            return Err(EngineError::Unavailable(
                "no e-mail relay is configured ([smtp]): a code cannot be sent".into(),
            ));
        }
        let policy = self.policy();
        let def = policy
            .items
            .iter()
            .find(|i| i.kind == ItemType::Email && i.unique)
            .ok_or_else(|| EngineError::Unavailable("the policy declares no unique e-mail item".into()))?;
        if email.len() > 320 {
            return Err(invalid("email", ErrorCode::InvalidFormat, "not an e-mail address"));
        }
        let normal = custos_core::collect::normalise(&policy, def, email)
            .map_err(|_| invalid("email", ErrorCode::InvalidFormat, "not an e-mail address"))?;
        let scope = service.map(str::to_owned).unwrap_or_else(|| crate::subjects::PLATFORM_SCOPE.to_owned());
        let digest = self.inner.keyring.blind_index(&scope, def.id.as_str(), &normal);
        // Counted by the address's blind index, never given back.
        let throttle_key = format!("member-sign-in:{}", hex(&digest));
        self.inner.throttle.attempt(&throttle_key, SIGN_IN_CODES_PER_WINDOW, now).map_err(EngineError::Throttled)?;
        let id = new_id("sgn")?;
        let code = crate::requests::one_time_code()?;
        let mac = self.sign_in_mac(&id, &code);
        let (item, at, version) = (def.id.to_string(), stamp(now), policy.meta.version.clone());
        let expires = stamp(minutes_after(now, SIGN_IN_CODE_MINUTES));
        let id_c = id.clone();
        let found = self
            .write_job(move |tx| {
                tx.remove_expired_member_sign_ins(&at)?;
                let subject = match tx.find_index(&scope, &item, &digest)? {
                    Some(s) => tx.subject(&s)?.filter(|row| row.status == "active"),
                    None => None,
                };
                let Some(subject) = subject else {
                    tx.append_audit(&audit_entry(
                        &at,
                        "privacy_center",
                        None,
                        "code asked: no active member",
                        &version,
                    ))?;
                    return Ok(None);
                };
                tx.insert_member_sign_in(&id_c, &subject.id, &mac, &expires, &at)?;
                tx.append_audit(&audit_entry(&at, "privacy_center", Some(&subject.id), "code sent", &version))?;
                Ok(Some(subject.id))
            })
            .await?;
        if let Some(subject) = found {
            let body = serde_json::json!({ "code": code }).to_string();
            if let Err(e) = self.send_now(&subject, "sign_in_code", &body, now).await {
                tracing::warn!(error = %e, "a sign-in code could not be sent");
                return Err(EngineError::Unavailable("the code could not be sent: try again shortly".into()));
            }
        }
        Ok(id)
    }

    /// Checks a sign-in code; answers a new session token and the session.
    pub async fn finish_member_sign_in(&self, id: &str, code: &str, now: Timestamp) -> Result<(String, MemberSession)> {
        let code = code.trim();
        if id.len() > 64 || code.len() > 32 {
            return Err(invalid("code", ErrorCode::InvalidFormat, "not a code"));
        }
        let mac = self.sign_in_mac(id, code);
        let token = format!("ms_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32)?));
        let hash = sha256(token.as_bytes());
        let (id_c, at, version) = (id.to_owned(), stamp(now), self.policy().meta.version.clone());
        let expires = stamp(minutes_after(now, SESSION_MINUTES));
        let signed_in = self
            .write_job(move |tx| {
                let wrong = || invalid("code", ErrorCode::NotAllowed, "the code does not match, or it has expired");
                let Some((subject, stored, expires_at, attempts)) = tx.member_sign_in(&id_c)? else {
                    return Ok(Err(wrong()));
                };
                if expires_at < at || attempts >= SIGN_IN_ATTEMPTS {
                    tx.remove_member_sign_in(&id_c)?;
                    tx.append_audit(&audit_entry(&at, "privacy_center", Some(&subject), "code void", &version))?;
                    return Ok(Err(wrong()));
                }
                if constant_time::verify_slices_are_equal(stored.as_bytes(), mac.as_bytes()).is_err() {
                    tx.count_member_sign_in_attempt(&id_c)?;
                    let outcome = format!("wrong code ({} of {SIGN_IN_ATTEMPTS})", attempts + 1);
                    tx.append_audit(&audit_entry(&at, "privacy_center", Some(&subject), &outcome, &version))?;
                    return Ok(Err(wrong()));
                }
                tx.remove_member_sign_in(&id_c)?;
                let Some(row) = tx.subject(&subject)?.filter(|row| row.status == "active") else {
                    return Ok(Err(wrong()));
                };
                tx.insert_member_session(&hash, &row.id, &at, &expires)?;
                let actor = format!("member:{}", row.id);
                tx.append_audit(&audit_entry(&at, &actor, Some(&row.id), "signed in", &version))?;
                Ok(Ok((row.id, row.service_id)))
            })
            .await??;
        let session = self.session_of(&token, signed_in.0, signed_in.1);
        Ok((token, session))
    }

    fn session_of(&self, token: &str, subject: String, service: Option<String>) -> MemberSession {
        let purposes = self.policy().purposes.iter().map(|p| p.id.to_string()).collect();
        let csrf = form_token(token);
        MemberSession { caller: member_caller(&subject, service.clone(), purposes), subject, service, csrf }
    }

    /// The member a session token belongs to, while the session lives.
    pub async fn member_session(&self, token: &str, now: Timestamp) -> Result<MemberSession> {
        if !token.starts_with("ms_") || token.len() > 128 {
            return Err(EngineError::Unauthenticated);
        }
        let hash = sha256(token.as_bytes());
        let at = stamp(now);
        let idle_since = stamp(now.checked_sub(jiff::SignedDuration::from_mins(SESSION_IDLE_MINUTES)).unwrap_or(now));
        let found = self
            .write_job(move |tx| {
                let Some((subject, last_seen, expires)) = tx.member_session(&hash)? else { return Ok(None) };
                let live = tx.subject(&subject)?.filter(|row| row.status == "active");
                match live {
                    Some(row) if expires >= at && last_seen >= idle_since => {
                        tx.touch_member_session(&hash, &at)?;
                        Ok(Some((row.id, row.service_id)))
                    }
                    _ => {
                        tx.remove_member_session(&hash)?;
                        Ok(None)
                    }
                }
            })
            .await?;
        let (subject, service) = found.ok_or(EngineError::Unauthenticated)?;
        Ok(self.session_of(token, subject, service))
    }

    /// Signs out: the session ends at once.
    pub async fn end_member_session(&self, token: &str, now: Timestamp) -> Result<()> {
        let hash = sha256(token.as_bytes());
        let (at, version) = (stamp(now), self.policy().meta.version.clone());
        self.write_job(move |tx| {
            if let Some((subject, _, _)) = tx.member_session(&hash)? {
                tx.remove_member_session(&hash)?;
                let actor = format!("member:{subject}");
                tx.append_audit(&audit_entry(&at, &actor, Some(&subject), "signed out", &version))?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// The member's own rights requests, newest first, with their status
    /// and deadlines (the listing is audited).
    pub async fn member_requests(
        &self,
        session: &MemberSession,
        now: Timestamp,
    ) -> Result<Vec<crate::requests::RequestView>> {
        let filter = custos_store::RequestFilter {
            statuses: Vec::new(),
            service: Some(session.service.clone()),
            subject_id: Some(session.subject.clone()),
            due_before: None,
            kinds: Vec::new(),
        };
        let rows = self.inner.store.read(move |r| r.requests(&filter, None, 200)).await?;
        let (at, version, subject, actor) =
            (stamp(now), self.policy().meta.version.clone(), session.subject.clone(), session.caller.actor());
        self.write_job(move |tx| {
            tx.append_audit(&crate::audit::row(custos_core::audit::Entry {
                at,
                actor,
                role: "member".into(),
                operation: "member_requests".into(),
                purpose: None,
                subject: Some(subject),
                items: String::new(),
                outcome: "allowed: own requests listed".into(),
                policy_version: version,
            }))
        })
        .await?;
        let today = crate::utc_date(now);
        let mut views: Vec<_> = rows.iter().map(|r| crate::requests::view(r, today)).collect();
        views.sort_by(|a, b| b.received_at.cmp(&a.received_at));
        Ok(views)
    }
}

/// A request an agent files on the privacy center's public form, for the
/// member whose e-mail address they give.
pub struct AgentRequest {
    /// The member's service (`None`: a platform member).
    pub service: Option<String>,
    pub member_email: String,
    pub kind: String,
    pub agent: crate::requests::NewAgent,
    pub note: Option<String>,
}

// Debug output never shows an address, a name or a letter.
impl std::fmt::Debug for AgentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRequest").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Engine {
    /// Files an agent's request for the active member with that address,
    /// to be verified by staff who check the letter of attorney; answers
    /// the same whether or not there is such a member (the request then
    /// simply is not filed), so the form reveals no membership. The filer
    /// is recorded as `privacy_center`.
    pub async fn file_agent_request(&self, req: AgentRequest, now: Timestamp) -> Result<()> {
        let policy = self.policy();
        let def = policy
            .items
            .iter()
            .find(|i| i.kind == ItemType::Email && i.unique)
            .ok_or_else(|| EngineError::Unavailable("the policy declares no unique e-mail item".into()))?;
        if req.member_email.len() > 320 {
            return Err(invalid("member_email", ErrorCode::InvalidFormat, "not an e-mail address"));
        }
        let normal = custos_core::collect::normalise(&policy, def, &req.member_email)
            .map_err(|_| invalid("member_email", ErrorCode::InvalidFormat, "not an e-mail address"))?;
        let scope = req.service.clone().unwrap_or_else(|| crate::subjects::PLATFORM_SCOPE.to_owned());
        let digest = self.inner.keyring.blind_index(&scope, def.id.as_str(), &normal);
        let throttle_key = format!("agent-request:{}", hex(&digest));
        self.inner.throttle.attempt(&throttle_key, SIGN_IN_CODES_PER_WINDOW, now).map_err(EngineError::Throttled)?;
        let (item, at, version) = (def.id.to_string(), stamp(now), policy.meta.version.clone());
        let found = self
            .write_job(move |tx| {
                let subject = match tx.find_index(&scope, &item, &digest)? {
                    Some(s) => tx.subject(&s)?.filter(|row| row.status == "active"),
                    None => None,
                };
                if subject.is_none() {
                    let entry = crate::audit::row(custos_core::audit::Entry {
                        at,
                        actor: "privacy_center".into(),
                        role: "privacy_center".into(),
                        operation: "agent_request".into(),
                        purpose: None,
                        subject: None,
                        items: String::new(),
                        outcome: "not filed: no active member".into(),
                        policy_version: version,
                    });
                    tx.append_audit(&entry)?;
                }
                Ok(subject.map(|row| (row.id, row.service_id)))
            })
            .await?;
        let Some((subject, service)) = found else { return Ok(()) };
        let purposes = policy.purposes.iter().map(|p| p.id.to_string()).collect();
        let caller = Caller { key_id: PRIVACY_CENTER.into(), service, purposes, staff: None };
        let request = crate::requests::NewRequest {
            kind: req.kind,
            channel: "web_page".into(),
            jurisdiction: None,
            subject,
            verification: crate::requests::Verification::Staff,
            agent: Some(req.agent),
            purposes: Vec::new(),
            corrections: Vec::new(),
            note: req.note,
            received_on: None,
        };
        self.file_request(&caller, request, now).await.map(|_| ())
    }
}

/// The caller id of what the privacy center's public forms file.
pub(crate) const PRIVACY_CENTER: &str = "privacy_center";
