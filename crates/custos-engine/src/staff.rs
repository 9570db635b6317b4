//! Staff accounts and sessions: invitations by token, enrolment with a
//! password and a TOTP second factor, login, sessions, and the acts of staff
//! management (disable, privileges, handing over the head admin's role, the
//! service's login IP list).
//!
//! Invariants:
//! - every login needs the password *and* a TOTP code; a code counts once;
//! - session and invitation secrets are 256 random bits, stored as SHA-256
//!   digests; a session is checked against the store on every request, so
//!   logout, disabling and a password change end it at once;
//! - a session ends after [`IDLE_SECONDS`] without use and
//!   [`ABSOLUTE_SECONDS`] after login, whatever its use;
//! - failed logins are throttled per account and per client address and the
//!   answer never says which factor was wrong;
//! - a staff member's e-mail, password hash and TOTP secret are sealed under
//!   their own data key; the e-mail is found through a blind index.

use std::net::IpAddr;
use std::sync::OnceLock;

use aws_lc_rs::{constant_time, digest};
use base64::Engine as _;
use custos_core::authz::{Operation, Target};
use custos_core::net::{self, Cidr};
use custos_core::policy::model::Scope;
use custos_store::{KeyRow, SessionRow, StaffRow, StoreError, WriteTx};
use zeroize::Zeroizing;

use crate::auth::{Caller, StaffAuth};
use crate::crypto::Aad;
use crate::gate;
use crate::ids::{new_id, random_bytes};
use crate::throttle::{PER_ACCOUNT, PER_ADDRESS};
use crate::{Engine, EngineError, ErrorCode, FieldError, Result, stamp, totp};

/// A session unused for this long has ended.
pub const IDLE_SECONDS: i64 = 30 * 60;
/// A session ends this long after its login, however it is used.
pub const ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;
/// An invitation can be accepted for this long.
pub const INVITATION_SECONDS: i64 = 7 * 24 * 60 * 60;
/// A session's last use is written at most this often.
const TOUCH_SECONDS: i64 = 60;
const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_BYTES: usize = 1024;
/// Blind-index scope of staff e-mail addresses.
const STAFF_SCOPE: &str = "~staff";
const KEY_SCOPE: &str = "staff";

const INVITED: &str = "invited";
const ACTIVE: &str = "active";
const DISABLED: &str = "disabled";

/// An invitation to create.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub email: String,
    pub role: String,
    pub service: Option<String>,
}

/// A created invitation: the token is shown once, for the e-mail.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub staff_id: String,
    pub token: String,
    pub expires_at: String,
}

/// What an accepted invitation gives: the TOTP secret to put in an
/// authenticator app, shown once.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub staff_id: String,
    pub totp_secret: String,
    pub otpauth_uri: String,
}

/// A login attempt.
#[derive(Clone)]
pub struct Login {
    pub email: String,
    pub password: Zeroizing<String>,
    pub code: String,
    /// The client's address, as the connection shows it.
    pub address: Option<IpAddr>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("address", &self.address).finish_non_exhaustive()
    }
}

/// A new session: the token is shown once.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub staff_id: String,
    pub expires_at: String,
    pub idle_timeout_seconds: i64,
}

/// A staff account as its holder or a manager sees it (no personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffView {
    pub id: String,
    pub role: String,
    pub service: Option<String>,
    pub privileges: Vec<String>,
    pub status: String,
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

fn invalid(field: &str, code: ErrorCode, message: impl Into<String>) -> EngineError {
    EngineError::Invalid(vec![FieldError::new(field, code, message)])
}

fn secret() -> Result<String> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32)?))
}

/// Trimmed and lower-cased; a plausible address or `None`.
fn normal_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let fine = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    fine.then_some(email)
}

fn check_new_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(
            "password",
            ErrorCode::TooShort,
            format!("a staff password has at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(invalid("password", ErrorCode::TooLong, format!("at most {MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

fn seconds_between(from: &str, to: jiff::Timestamp) -> Option<i64> {
    from.parse::<jiff::Timestamp>().ok().map(|t| to.as_second() - t.as_second())
}

fn view(row: &StaffRow) -> StaffView {
    StaffView {
        id: row.id.clone(),
        role: row.role.clone(),
        service: row.service_id.clone(),
        privileges: list(&row.privileges),
        status: row.status.clone(),
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// An audit entry written without a `Caller` (logins, enrolment).
struct Entry<'a> {
    actor: String,
    role: &'a str,
    operation: &'a str,
    subject: Option<&'a str>,
    outcome: &'a str,
    at: &'a str,
    policy_version: &'a str,
}

impl Entry<'_> {
    fn append(&self, tx: &mut WriteTx<'_>) -> Result<i64, StoreError> {
        tx.append_audit(&crate::audit::row(custos_core::audit::Entry {
            at: self.at.to_owned(),
            actor: self.actor.clone(),
            role: self.role.to_owned(),
            operation: self.operation.to_owned(),
            purpose: None,
            subject: self.subject.map(str::to_owned),
            items: String::new(),
            outcome: self.outcome.to_owned(),
            policy_version: self.policy_version.to_owned(),
        }))
    }
}

/// A PHC string to verify against when the account does not exist, so that
/// an unknown e-mail takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| crate::password::hash_password("custos decoy password").unwrap_or_default())
}

impl Engine {
    fn staff_aad<'a>(row_id: &'a str, field: &'a str, key_id: &'a str) -> Aad<'a> {
        Aad { owner: row_id, field, key_id, key_version: 1 }
    }

    /// Invites a staff member: a token for the e-mail, valid for
    /// [`INVITATION_SECONDS`]. A single-holder role (the head admin) is
    /// invited only by a platform API key and only while the service has
    /// none; staff hand it over instead.
    pub async fn invite_staff(&self, caller: &Caller, req: NewInvitation, now: jiff::Timestamp) -> Result<Invitation> {
        let policy = self.policy();
        let role = policy.roles.iter().find(|r| r.id.as_str() == req.role).ok_or_else(|| {
            let known: Vec<&str> = policy.roles.iter().map(|r| r.id.as_str()).collect();
            invalid(
                "role",
                ErrorCode::UnknownItem,
                format!("the policy declares no role {:?} (declared: {})", req.role, known.join(", ")),
            )
        })?;
        match (role.scope, &req.service) {
            (Scope::Platform, Some(_)) => {
                return Err(invalid("service", ErrorCode::NotAllowed, "a platform role belongs to no service"));
            }
            (Scope::Service, None) => {
                return Err(invalid("service", ErrorCode::MissingRequired, "a service role needs its service"));
            }
            _ => {}
        }
        let email = normal_email(&req.email)
            .ok_or_else(|| invalid("email", ErrorCode::InvalidFormat, "expected an e-mail address"))?;
        if role.single && caller.staff.is_some() {
            return Err(EngineError::Forbidden(format!(
                "the {} role is handed over by its holder, not invited",
                role.id
            )));
        }
        // Staff invite only to roles of their own scope that can do no more
        // than their own role: nobody raises another above themselves.
        if let Some(staff) = &caller.staff {
            let mine = policy.roles.iter().find(|r| r.id.as_str() == staff.role);
            let within =
                mine.is_some_and(|m| m.scope == role.scope && role.operations.iter().all(|o| m.operations.contains(o)));
            if !within {
                let denied = custos_core::authz::Denied::Forbidden;
                return Err(self.audit_denial(caller, Operation::InviteStaff, None, None, denied, now).await);
            }
        }
        self.permit(caller, Operation::InviteStaff, Target::Scope(req.service.as_deref()), None, None, now).await?;
        let staff_id = new_id("stf")?;
        let key_id = new_id("key")?;
        let (key, wrapped) = self.inner.keyring.new_data_key(&key_id)?;
        let sealed = key.seal(&Self::staff_aad(&staff_id, "email", &key_id), email.as_bytes())?;
        drop(key);
        let digest = self.inner.keyring.blind_index(STAFF_SCOPE, "email", &email);
        let token = secret()?;
        let at = stamp(now);
        let expires_at = stamp(now + jiff::SignedDuration::from_secs(INVITATION_SECONDS));
        let row = StaffRow {
            id: staff_id.clone(),
            email_digest: digest.to_vec(),
            email: sealed,
            key_id: key_id.clone(),
            role: role.id.to_string(),
            single: role.single,
            service_id: req.service.clone(),
            privileges: String::new(),
            status: INVITED.into(),
            invite_hash: Some(sha256(token.as_bytes())),
            invite_expires_at: Some(expires_at.clone()),
            password: None,
            totp_secret: None,
            totp_last_step: 0,
            created_at: at.clone(),
            updated_at: at.clone(),
        };
        let version = policy.meta.version.clone();
        let caller = caller.clone();
        self.write_job(move |tx| {
            if let Some(s) = &row.service_id
                && tx.service(s)?.is_none()
            {
                return Ok(Err(EngineError::NotFound));
            }
            if tx.staff_by_email(&row.email_digest)?.is_some() {
                return Ok(Err(EngineError::Conflict("a staff account with this e-mail address exists".into())));
            }
            tx.insert_key(&KeyRow {
                id: key_id.clone(),
                subject_id: row.id.clone(),
                scope: KEY_SCOPE.into(),
                version: 1,
                wrapped,
                created_at: at.clone(),
            })?;
            match tx.put_staff(&row, false) {
                Err(StoreError::Conflict(_)) => {
                    return Err(StoreError::Conflict(format!("the {} role already has its holder here", row.role)));
                }
                other => other?,
            }
            crate::subjects::Audit {
                caller: &caller,
                operation: Operation::InviteStaff.as_str(),
                purpose: None,
                subject: Some(&row.id),
                items: &[],
                outcome: &format!("invited as {}", row.role),
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(Ok(()))
        })
        .await??;
        Ok(Invitation { staff_id, token, expires_at })
    }

    /// Accepts an invitation: sets the password and makes the TOTP secret.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: Zeroizing<String>,
        now: jiff::Timestamp,
    ) -> Result<Enrolment> {
        let refused = || invalid("token", ErrorCode::NotAllowed, "the invitation is unknown, used or expired");
        if token.is_empty() || token.len() > 128 {
            return Err(refused());
        }
        check_new_password(&password)?;
        let hash = sha256(token.as_bytes());
        let lookup = hash.clone();
        let row = self.inner.store.read(move |r| r.staff_by_invite(&lookup)).await?.ok_or_else(refused)?;
        let expired = row.invite_expires_at.as_deref().and_then(|e| seconds_between(e, now)).is_none_or(|s| s > 0);
        if row.status != INVITED || expired {
            return Err(refused());
        }
        let phc = self.inner.hashing.hash(password).await?;
        let totp_secret = random_bytes(20)?;
        let key_id = row.key_id.clone();
        let key_row = self.write_job(move |tx| tx.key(&key_id)).await?.ok_or_else(refused)?;
        let key = self.inner.keyring.unwrap_data_key(&key_row.id, &key_row.wrapped)?;
        let sealed_password = key.seal(&Self::staff_aad(&row.id, "password", &key_row.id), phc.as_bytes())?;
        let sealed_totp = key.seal(&Self::staff_aad(&row.id, "totp", &key_row.id), &totp_secret)?;
        drop(key);
        let at = stamp(now);
        let version = self.policy().meta.version.clone();
        let staff_id = row.id.clone();
        self.write_job(move |tx| {
            let Some(mut current) = tx.staff_by_invite(&hash)? else { return Ok(Err(refused())) };
            if current.status != INVITED {
                return Ok(Err(refused()));
            }
            current.status = ACTIVE.into();
            current.invite_hash = None;
            current.invite_expires_at = None;
            current.password = Some(sealed_password);
            current.totp_secret = Some(sealed_totp);
            current.updated_at = at.clone();
            tx.put_staff(&current, true)?;
            Entry {
                actor: format!("staff:{}", current.id),
                role: &current.role,
                operation: "staff_enrol",
                subject: Some(&current.id),
                outcome: "enrolled",
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(Ok(()))
        })
        .await??;
        let encoded = totp::base32(&totp_secret);
        Ok(Enrolment {
            otpauth_uri: format!(
                "otpauth://totp/Custos:{staff_id}?secret={encoded}&issuer=Custos&algorithm=SHA1&digits=6&period={}",
                totp::STEP
            ),
            staff_id,
            totp_secret: encoded,
        })
    }

    /// Logs a staff member in with e-mail, password and TOTP code.
    pub async fn login(&self, attempt: Login, now: jiff::Timestamp) -> Result<NewSession> {
        let email = normal_email(&attempt.email).unwrap_or_default();
        let digest = self.inner.keyring.blind_index(STAFF_SCOPE, "email", &email);
        let account_key = format!("account:{}", crate::rootkey::hex(&digest));
        let address_key = format!("address:{}", attempt.address.map(|a| a.to_string()).unwrap_or_default());
        for (key, limit) in [(&account_key, PER_ACCOUNT), (&address_key, PER_ADDRESS)] {
            if let Err(seconds) = self.inner.throttle.check(key, limit, now) {
                return Err(EngineError::Throttled(seconds));
            }
        }
        let found = self.inner.store.read(move |r| r.staff_by_email(&digest)).await?;
        let outcome = self.check_login(found.as_ref(), &attempt, now).await?;
        let at = stamp(now);
        let version = self.policy().meta.version.clone();
        let (actor, role, subject) = match &found {
            Some(row) => (format!("staff:{}", row.id), row.role.clone(), Some(row.id.clone())),
            None => ("anonymous".to_owned(), "anonymous".to_owned(), None),
        };
        let Ok(step) = outcome else {
            let reason = outcome.err().unwrap_or("refused");
            self.inner.throttle.fail(&account_key, now);
            self.inner.throttle.fail(&address_key, now);
            let written = self
                .write_job(move |tx| {
                    Entry {
                        actor,
                        role: &role,
                        operation: "login",
                        subject: subject.as_deref(),
                        outcome: &format!("denied: {reason}"),
                        at: &at,
                        policy_version: &version,
                    }
                    .append(tx)
                })
                .await;
            written?;
            return Err(EngineError::Unauthenticated);
        };
        let Some(row) = found else { return Err(EngineError::Unauthenticated) };
        let session_id = new_id("ses")?.trim_start_matches("ses_").to_owned();
        let token_secret = secret()?;
        let session = SessionRow {
            id: session_id.clone(),
            staff_id: row.id.clone(),
            secret_hash: sha256(token_secret.as_bytes()),
            created_at: at.clone(),
            last_seen_at: at.clone(),
            ended_at: None,
        };
        let staff_id = row.id.clone();
        self.write_job(move |tx| {
            // The code is spent in the same job that opens the session, so
            // two logins racing with one code cannot both succeed.
            let Some(mut current) = tx.staff(&row.id)? else { return Ok(Err(EngineError::Unauthenticated)) };
            if current.status != ACTIVE || current.totp_last_step >= step {
                return Ok(Err(EngineError::Unauthenticated));
            }
            current.totp_last_step = step;
            tx.put_staff(&current, true)?;
            tx.insert_session(&session)?;
            Entry {
                actor: format!("staff:{}", current.id),
                role: &current.role,
                operation: "login",
                subject: Some(&current.id),
                outcome: &format!("allowed: session {}", session.id),
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(Ok(()))
        })
        .await??;
        self.inner.throttle.clear(&account_key);
        Ok(NewSession {
            token: format!("cs_{session_id}_{token_secret}"),
            staff_id,
            expires_at: stamp(now + jiff::SignedDuration::from_secs(ABSOLUTE_SECONDS)),
            idle_timeout_seconds: IDLE_SECONDS,
        })
    }

    /// The TOTP step the login may spend, or the reason it fails (for the
    /// audit log only; the caller is told nothing more than "invalid").
    async fn check_login(
        &self,
        found: Option<&StaffRow>,
        attempt: &Login,
        now: jiff::Timestamp,
    ) -> Result<Result<i64, &'static str>> {
        let Some(row) = found else {
            let password = attempt.password.clone();
            let _ =
                tokio::task::spawn_blocking(move || crate::password::verify_password(&password, decoy_hash())).await;
            return Ok(Err("unknown_account"));
        };
        let (Some(sealed_password), Some(sealed_totp)) = (&row.password, &row.totp_secret) else {
            return Ok(Err("not_enrolled"));
        };
        let key_id = row.key_id.clone();
        let Some(key_row) = self.inner.store.read(move |r| r.key(&key_id)).await? else {
            return Ok(Err("key_gone"));
        };
        let key = self.inner.keyring.unwrap_data_key(&key_row.id, &key_row.wrapped)?;
        let phc = key.open(&Self::staff_aad(&row.id, "password", &key_row.id), sealed_password)?;
        let totp_secret = key.open(&Self::staff_aad(&row.id, "totp", &key_row.id), sealed_totp)?;
        drop(key);
        let phc = String::from_utf8(phc.to_vec()).map_err(|_| EngineError::Integrity("a password hash".into()))?;
        let password = attempt.password.clone();
        let matches = tokio::task::spawn_blocking(move || crate::password::verify_password(&password, &phc))
            .await
            .map_err(|_| EngineError::Unavailable("password verification stopped".into()))?
            .map_err(|e| EngineError::Integrity(e.to_string()))?;
        if !matches {
            return Ok(Err("wrong_password"));
        }
        let Some(step) = totp::verify(&totp_secret, &attempt.code, now, row.totp_last_step) else {
            return Ok(Err("wrong_code"));
        };
        if row.status != ACTIVE {
            return Ok(Err("disabled"));
        }
        if let Some(service) = &row.service_id {
            let id = service.clone();
            let allowed = self.inner.store.read(move |r| r.service(&id)).await?.map(|s| s.allowed_ips);
            let cidrs: Vec<Cidr> =
                list(&allowed.unwrap_or_default()).iter().filter_map(|c| Cidr::parse(c).ok()).collect();
            if !net::allowed(&cidrs, attempt.address) {
                return Ok(Err("address_not_allowed"));
            }
        }
        Ok(Ok(step))
    }

    /// Checks a session token (`cs_<id>_<secret>`) and returns its caller.
    pub(crate) async fn authenticate_session(&self, token: &str, now: jiff::Timestamp) -> Result<Caller> {
        let rest = token.strip_prefix("cs_").ok_or(EngineError::Unauthenticated)?;
        let (id, secret) = rest.split_once('_').ok_or(EngineError::Unauthenticated)?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() > 128 {
            return Err(EngineError::Unauthenticated);
        }
        let key = id.to_owned();
        let (session, staff) = self
            .inner
            .store
            .read(move |r| {
                let Some(session) = r.session(&key)? else { return Ok(None) };
                let staff = r.staff(&session.staff_id)?;
                Ok(staff.map(|s| (session, s)))
            })
            .await?
            .ok_or(EngineError::Unauthenticated)?;
        if constant_time::verify_slices_are_equal(&sha256(secret.as_bytes()), &session.secret_hash).is_err() {
            return Err(EngineError::Unauthenticated);
        }
        let age = seconds_between(&session.created_at, now).ok_or(EngineError::Unauthenticated)?;
        let idle = seconds_between(&session.last_seen_at, now).ok_or(EngineError::Unauthenticated)?;
        if session.ended_at.is_some() || staff.status != ACTIVE || age > ABSOLUTE_SECONDS || idle > IDLE_SECONDS {
            return Err(EngineError::Unauthenticated);
        }
        if idle >= TOUCH_SECONDS {
            let (id, at) = (session.id.clone(), stamp(now));
            self.write_job(move |tx| tx.touch_session(&id, &at)).await?;
        }
        Ok(Caller {
            key_id: staff.id.clone(),
            service: staff.service_id.clone(),
            purposes: Vec::new(),
            staff: Some(StaffAuth { role: staff.role, privileges: list(&staff.privileges), session_id: session.id }),
        })
    }

    /// The caller's own account.
    pub fn whoami(&self, caller: &Caller) -> Result<StaffView> {
        let staff = caller.staff.as_ref().ok_or_else(|| EngineError::Forbidden("not a staff session".into()))?;
        Ok(StaffView {
            id: caller.key_id.clone(),
            role: staff.role.clone(),
            service: caller.service.clone(),
            privileges: staff.privileges.clone(),
            status: ACTIVE.into(),
        })
    }

    /// Ends the caller's session.
    pub async fn logout(&self, caller: &Caller, now: jiff::Timestamp) -> Result<()> {
        let staff = caller.staff.as_ref().ok_or_else(|| EngineError::Forbidden("not a staff session".into()))?;
        let (session, at, caller) = (staff.session_id.clone(), stamp(now), caller.clone());
        let version = self.policy().meta.version.clone();
        self.write_job(move |tx| {
            tx.end_session(&session, &at)?;
            crate::subjects::Audit {
                caller: &caller,
                operation: "logout",
                purpose: None,
                subject: Some(&caller.key_id),
                items: &[],
                outcome: &format!("session {session} ended"),
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Changes the caller's own password; every session of theirs ends,
    /// this one included.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: Zeroizing<String>,
        new: Zeroizing<String>,
        now: jiff::Timestamp,
    ) -> Result<()> {
        if caller.staff.is_none() {
            return Err(EngineError::Forbidden("not a staff session".into()));
        }
        check_new_password(&new).map_err(|e| match e {
            EngineError::Invalid(mut errors) => {
                errors.iter_mut().for_each(|e| e.field = "new_password".into());
                EngineError::Invalid(errors)
            }
            other => other,
        })?;
        let id = caller.key_id.clone();
        let row = self.inner.store.read(move |r| r.staff(&id)).await?.ok_or(EngineError::Unauthenticated)?;
        let key_id = row.key_id.clone();
        let key_row = self.inner.store.read(move |r| r.key(&key_id)).await?.ok_or(EngineError::Unauthenticated)?;
        let key = self.inner.keyring.unwrap_data_key(&key_row.id, &key_row.wrapped)?;
        let sealed = row.password.as_deref().ok_or(EngineError::Unauthenticated)?;
        let phc = key.open(&Self::staff_aad(&row.id, "password", &key_row.id), sealed)?;
        let phc = String::from_utf8(phc.to_vec()).map_err(|_| EngineError::Integrity("a password hash".into()))?;
        let matches = tokio::task::spawn_blocking(move || crate::password::verify_password(&current, &phc))
            .await
            .map_err(|_| EngineError::Unavailable("password verification stopped".into()))?
            .map_err(|e| EngineError::Integrity(e.to_string()))?;
        if !matches {
            return Err(invalid("current_password", ErrorCode::NotAllowed, "the current password is wrong"));
        }
        let new_phc = self.inner.hashing.hash(new).await?;
        let sealed_new = key.seal(&Self::staff_aad(&row.id, "password", &key_row.id), new_phc.as_bytes())?;
        drop(key);
        let (at, version, caller) = (stamp(now), self.policy().meta.version.clone(), caller.clone());
        self.write_job(move |tx| {
            let Some(mut current) = tx.staff(&caller.key_id)? else { return Ok(Err(EngineError::Unauthenticated)) };
            current.password = Some(sealed_new);
            current.updated_at = at.clone();
            tx.put_staff(&current, true)?;
            let ended = tx.end_sessions_of(&current.id, &at)?;
            crate::subjects::Audit {
                caller: &caller,
                operation: "password_change",
                purpose: None,
                subject: Some(&current.id),
                items: &[],
                outcome: &format!("changed; {ended} session(s) ended"),
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(Ok(()))
        })
        .await?
    }

    /// Loads a staff member the caller may manage through `operation`; a
    /// refusal (another service's staff included) is audited and looks
    /// like a missing account.
    async fn managed_staff(
        &self,
        caller: &Caller,
        operation: Operation,
        id: &str,
        now: jiff::Timestamp,
    ) -> Result<StaffRow> {
        let key = id.to_owned();
        let row = self.inner.store.read(move |r| r.staff(&key)).await?;
        let target = match &row {
            Some(r) => Target::Scope(r.service_id.as_deref()),
            None => Target::Missing,
        };
        // Service staff manage only service staff: a platform account is
        // outside every service.
        match (gate::ask(self.policy(), caller, operation, target, None, None), row) {
            (Ok(_), Some(row)) => Ok(row),
            (Ok(_), None) => Err(self
                .audit_denial(caller, operation, Some(id), None, custos_core::authz::Denied::NotFound, now)
                .await),
            (Err(denied), _) => Err(self.audit_denial(caller, operation, Some(id), None, denied, now).await),
        }
    }

    /// Writes a changed staff row with its audit entry.
    async fn save_staff(
        &self,
        caller: &Caller,
        operation: Operation,
        rows: Vec<StaffRow>,
        end_sessions: bool,
        outcome: String,
        now: jiff::Timestamp,
    ) -> Result<()> {
        let (at, version, caller) = (stamp(now), self.policy().meta.version.clone(), caller.clone());
        self.write_job(move |tx| {
            for row in &rows {
                let mut row = row.clone();
                row.updated_at = at.clone();
                tx.put_staff(&row, true)?;
                if end_sessions {
                    tx.end_sessions_of(&row.id, &at)?;
                }
            }
            crate::subjects::Audit {
                caller: &caller,
                operation: operation.as_str(),
                purpose: None,
                subject: rows.first().map(|r| r.id.as_str()),
                items: &[],
                outcome: &outcome,
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Disables a staff account and ends its sessions at once.
    pub async fn disable_staff(&self, caller: &Caller, id: &str, now: jiff::Timestamp) -> Result<StaffView> {
        let mut row = self.managed_staff(caller, Operation::DisableStaff, id, now).await?;
        if row.id == caller.key_id && caller.staff.is_some() {
            return Err(EngineError::Conflict("you cannot disable your own account".into()));
        }
        if row.single && row.status != DISABLED {
            return Err(EngineError::Conflict(format!(
                "the {} must hand the role over before the account is disabled",
                row.role
            )));
        }
        row.status = DISABLED.into();
        row.invite_hash = None;
        self.save_staff(caller, Operation::DisableStaff, vec![row.clone()], true, "disabled".into(), now).await?;
        Ok(view(&row))
    }

    /// Grants or withdraws a privilege the staff member's role may be given.
    pub async fn set_privilege(
        &self,
        caller: &Caller,
        id: &str,
        privilege: &str,
        granted: bool,
        now: jiff::Timestamp,
    ) -> Result<StaffView> {
        let mut row = self.managed_staff(caller, Operation::GrantPrivilege, id, now).await?;
        // Staff grant only a privilege they hold themselves, and never to
        // themselves: an admin cannot widen their own view.
        if let Some(staff) = &caller.staff {
            let holds = staff.privileges.iter().any(|p| p == privilege)
                || self
                    .policy()
                    .roles
                    .iter()
                    .find(|r| r.id.as_str() == staff.role)
                    .is_some_and(|r| r.privileges.iter().any(|p| p.as_str() == privilege));
            if row.id == caller.key_id || !holds {
                let denied = custos_core::authz::Denied::Forbidden;
                return Err(self.audit_denial(caller, Operation::GrantPrivilege, Some(id), None, denied, now).await);
            }
        }
        let grantable = self
            .policy()
            .roles
            .iter()
            .find(|r| r.id.as_str() == row.role)
            .is_some_and(|r| r.grantable.iter().any(|g| g.as_str() == privilege));
        if !grantable {
            return Err(invalid(
                "privilege",
                ErrorCode::NotAllowed,
                format!("the {} role cannot be granted {privilege:?}", row.role),
            ));
        }
        let mut held = list(&row.privileges);
        held.retain(|p| p != privilege);
        if granted {
            held.push(privilege.to_owned());
            held.sort();
        }
        row.privileges = held.join(",");
        let outcome = format!("{} {privilege}", if granted { "granted" } else { "withdrawn" });
        self.save_staff(caller, Operation::GrantPrivilege, vec![row.clone()], false, outcome, now).await?;
        Ok(view(&row))
    }

    /// Hands the caller's single-holder role (the head admin) to another
    /// active staff member of the same service, whose role the policy lists
    /// in `transferable_to`; the caller takes that member's former role.
    pub async fn transfer_role(&self, caller: &Caller, to: &str, now: jiff::Timestamp) -> Result<StaffView> {
        let Some(staff) = &caller.staff else {
            return Err(EngineError::Forbidden("only the holder of the role hands it over".into()));
        };
        self.permit(caller, Operation::TransferRole, Target::Scope(caller.service.as_deref()), None, None, now).await?;
        let mut target = self.managed_staff(caller, Operation::TransferRole, to, now).await?;
        let role = self.policy().roles.iter().find(|r| r.id.as_str() == staff.role).cloned();
        let Some(role) = role else { return Err(EngineError::Forbidden("unknown role".into())) };
        if target.service_id != caller.service || target.id == caller.key_id {
            return Err(EngineError::NotFound);
        }
        if target.status != ACTIVE {
            return Err(EngineError::Conflict("the role goes only to staff who accepted their invitation".into()));
        }
        if !role.transferable_to.iter().any(|r| r.as_str() == target.role) {
            return Err(EngineError::Conflict(format!("the {} role cannot go to a {}", role.id, target.role)));
        }
        let id = caller.key_id.clone();
        let mut me = self.inner.store.read(move |r| r.staff(&id)).await?.ok_or(EngineError::Unauthenticated)?;
        me.role = std::mem::replace(&mut target.role, me.role.clone());
        me.single = false;
        target.single = true;
        // The holder's privileges came with the role; granted ones stay.
        let outcome = format!("{} handed to {}", target.role, target.id);
        self.save_staff(caller, Operation::TransferRole, vec![me, target.clone()], false, outcome, now).await?;
        Ok(view(&target))
    }

    /// Sets the networks the service's staff may log in from (empty: any).
    pub async fn set_allowed_ips(
        &self,
        caller: &Caller,
        service: &str,
        networks: &[String],
        now: jiff::Timestamp,
    ) -> Result<Vec<String>> {
        let mut errors = Vec::new();
        let mut parsed = Vec::new();
        for (i, text) in networks.iter().enumerate() {
            match Cidr::parse(text) {
                Ok(c) => parsed.push(c.to_string()),
                Err(message) => {
                    errors.push(FieldError::new(format!("networks.{i}"), ErrorCode::InvalidFormat, message))
                }
            }
        }
        if networks.len() > 256 {
            errors.push(FieldError::new("networks", ErrorCode::TooLong, "at most 256 networks"));
        }
        if !errors.is_empty() {
            return Err(EngineError::Invalid(errors));
        }
        self.permit(caller, Operation::ChangeSettings, Target::Scope(Some(service)), None, None, now).await?;
        let (service, joined) = (service.to_owned(), parsed.join(","));
        let (at, version, caller) = (stamp(now), self.policy().meta.version.clone(), caller.clone());
        self.write_job(move |tx| {
            if tx.service(&service)?.is_none() {
                return Ok(Err(EngineError::NotFound));
            }
            tx.set_allowed_ips(&service, &joined)?;
            crate::subjects::Audit {
                caller: &caller,
                operation: Operation::ChangeSettings.as_str(),
                purpose: None,
                subject: None,
                items: &[],
                outcome: &format!(
                    "allowed staff login networks of {service}: {}",
                    if joined.is_empty() { "any" } else { &joined }
                ),
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(Ok(()))
        })
        .await??;
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses_are_normalised_or_refused() {
        assert_eq!(normal_email("  Ann@Example.COM "), Some("ann@example.com".into()));
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "a nn@example.com", "ann@.com"] {
            assert_eq!(normal_email(bad), None, "{bad:?}");
        }
    }
}
