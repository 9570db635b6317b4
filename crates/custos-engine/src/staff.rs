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

/// Anonymous writes (cookie choices) one address may make in 15 minutes.
pub const PER_ADDRESS_PUBLIC: usize = 300;
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
#[derive(Clone)]
pub struct NewInvitation {
    pub email: String,
    pub role: String,
    pub service: Option<String>,
    /// The member account of the same person (see the lifecycle: a role
    /// exempt from dormancy protects it).
    pub subject: Option<String>,
}

/// A created invitation: the token is shown once, for the e-mail.
#[derive(Clone)]
pub struct Invitation {
    pub staff_id: String,
    pub token: String,
    pub expires_at: String,
}

/// What an accepted invitation gives: the TOTP secret to put in an
/// authenticator app, shown once.
#[derive(Clone)]
pub struct Enrolment {
    pub staff_id: String,
    pub totp_secret: String,
    pub otpauth_uri: String,
}

// Debug output never shows an e-mail address, a token or a secret.
impl std::fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvitation")
            .field("role", &self.role)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation").field("staff_id", &self.staff_id).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment").field("staff_id", &self.staff_id).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession").field("staff_id", &self.staff_id).finish_non_exhaustive()
    }
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
#[derive(Clone)]
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

    /// The privileges a staff caller holds: through the role, and granted
    /// ones the role may hold.
    fn held_privileges(&self, role: &str, granted: &[String]) -> Vec<String> {
        let policy = self.policy();
        let Some(def) = policy.roles.iter().find(|r| r.id.as_str() == role) else { return Vec::new() };
        let mut held: Vec<String> = def.privileges.iter().map(|p| p.to_string()).collect();
        held.extend(granted.iter().filter(|g| def.grantable.iter().any(|p| p.as_str() == g.as_str())).cloned());
        held
    }

    /// Invites a staff member: a token for the e-mail, valid for
    /// [`INVITATION_SECONDS`]. A single-holder role (the head admin) is
    /// invited only by a platform API key and only while the service has
    /// none; staff hand it over instead. Staff invite only to roles of their
    /// own scope that can do and see no more than they can.
    pub async fn invite_staff(&self, caller: &Caller, req: NewInvitation, now: jiff::Timestamp) -> Result<Invitation> {
        let policy = self.policy();
        let policy = &*policy;
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
        if let Some(staff) = &caller.staff {
            let mine = policy.roles.iter().find(|r| r.id.as_str() == staff.role);
            let held = self.held_privileges(&staff.role, &staff.privileges);
            let may = |op| custos_core::authz::staff_may(policy, &staff.role, &staff.privileges, op);
            let within = !role.single
                && mine.is_some_and(|m| {
                    m.scope == role.scope
                        && role.operations.iter().all(|o| may(*o))
                        && role.purposes.iter().all(|p| m.purposes.contains(p))
                })
                && role.privileges.iter().all(|p| held.iter().any(|h| h == p.as_str()));
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
        let linked = req.subject.clone();
        self.write_job(move |tx| {
            let refuse = |tx: &mut WriteTx<'_>, outcome: &str, error: EngineError| {
                audit_staff(tx, &caller, Operation::InviteStaff.as_str(), None, outcome, &at, &version)?;
                Ok(Err(error))
            };
            if let Some(s) = &row.service_id
                && tx.service(s)?.is_none()
            {
                return refuse(tx, "denied: not_found", EngineError::NotFound);
            }
            if tx.staff_by_email(&row.email_digest)?.is_some() {
                let error = EngineError::Conflict("a staff account with this e-mail address exists".into());
                return refuse(tx, "denied: conflict (e-mail taken)", error);
            }
            if row.single && tx.single_holder(row.service_id.as_deref(), &row.role)?.is_some() {
                let error = EngineError::Conflict(format!("the {} role already has its holder here", row.role));
                return refuse(tx, "denied: conflict (single role held)", error);
            }
            if let Some(subject) = &linked {
                // The person's own member account, named by the platform
                // (its key): of the platform or of the same service, active,
                // and linked to no other staff account.
                if caller.staff.is_some() || caller.service.is_some() {
                    let error = EngineError::Forbidden("only a platform key links a staff account to a member".into());
                    return refuse(tx, "denied: forbidden (subject link)", error);
                }
                let reachable = tx.subject(subject)?.is_some_and(|s| {
                    s.status == "active" && (s.service_id.is_none() || s.service_id == row.service_id)
                });
                if !reachable {
                    return refuse(tx, "denied: not_found (subject)", EngineError::NotFound);
                }
                if tx.staff_linked_to(subject)? {
                    let error =
                        EngineError::Conflict("this member account is linked to a staff account already".into());
                    return refuse(tx, "denied: conflict (subject linked)", error);
                }
            }
            tx.insert_key(&KeyRow {
                id: key_id.clone(),
                subject_id: row.id.clone(),
                scope: KEY_SCOPE.into(),
                version: 1,
                wrapped,
                created_at: at.clone(),
            })?;
            tx.insert_staff(&row)?;
            if let Some(subject) = &linked {
                tx.link_staff_subject(&row.id, subject)?;
            }
            let outcome = match &linked {
                Some(subject) => format!("invited as {}; member account {subject}", row.role),
                None => format!("invited as {}", row.role),
            };
            audit_staff(tx, &caller, Operation::InviteStaff.as_str(), Some(&row.id), &outcome, &at, &version)?;
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
        let live = move |row: &StaffRow| {
            row.status == INVITED
                && row.invite_expires_at.as_deref().and_then(|e| seconds_between(e, now)).is_some_and(|s| s <= 0)
        };
        if !live(&row) {
            return Err(refused());
        }
        let phc = self.inner.hashing.hash(password).await?;
        let totp_secret = random_bytes(20)?;
        let key_id = row.key_id.clone();
        let key_row = self.inner.store.read(move |r| r.key(&key_id)).await?.ok_or_else(refused)?;
        let key = self.inner.keyring.unwrap_data_key(&key_row.id, &key_row.wrapped)?;
        let sealed_password = key.seal(&Self::staff_aad(&row.id, "password", &key_row.id), phc.as_bytes())?;
        let sealed_totp = key.seal(&Self::staff_aad(&row.id, "totp", &key_row.id), &totp_secret)?;
        drop(key);
        let at = stamp(now);
        let version = self.policy().meta.version.clone();
        let staff_id = row.id.clone();
        self.write_job(move |tx| {
            // Read again inside the job: an invitation is spent once.
            let Some(mut current) = tx.staff_by_invite(&hash)? else { return Ok(Err(refused())) };
            if !live(&current) {
                return Ok(Err(refused()));
            }
            current.status = ACTIVE.into();
            current.invite_hash = None;
            current.invite_expires_at = None;
            current.password = Some(sealed_password);
            current.totp_secret = Some(sealed_totp);
            current.updated_at = at.clone();
            tx.update_staff(&current)?;
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
        let address_key = format!("address:{}", attempt.address.map(address_block).unwrap_or_default());
        // Both limits are checked and counted before any password is
        // looked at; a refused attempt counts against neither.
        if let Err(seconds) = self.inner.throttle.attempt(&account_key, PER_ACCOUNT, now) {
            return Err(EngineError::Throttled(seconds));
        }
        if let Err(seconds) = self.inner.throttle.attempt(&address_key, PER_ADDRESS, now) {
            self.inner.throttle.succeeded(&account_key, false);
            return Err(EngineError::Throttled(seconds));
        }
        let found = self.inner.store.read(move |r| r.staff_by_email(&digest)).await?;
        let outcome = self.check_login(found.as_ref(), &attempt, now).await?;
        let at = stamp(now);
        let version = self.policy().meta.version.clone();
        let (actor, role, subject) = match &found {
            Some(row) => (format!("staff:{}", row.id), row.role.clone(), Some(row.id.clone())),
            None => ("anonymous".to_owned(), "anonymous".to_owned(), None),
        };
        let (step, verified_password) = match (outcome, found) {
            (Ok(step), Some(row)) => (step, row.password.clone()),
            (outcome, _) => {
                let reason = outcome.err().unwrap_or("refused");
                self.write_job(move |tx| {
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
                .await?;
                return Err(EngineError::Unauthenticated);
            }
        };
        let staff_id = subject.unwrap_or_default();
        let session_id = new_id("ses")?.trim_start_matches("ses_").to_owned();
        let token_secret = secret()?;
        let session = SessionRow {
            id: session_id.clone(),
            staff_id: staff_id.clone(),
            secret_hash: sha256(token_secret.as_bytes()),
            created_at: at.clone(),
            last_seen_at: at.clone(),
            ended_at: None,
        };
        let id = staff_id.clone();
        self.write_job(move |tx| {
            // Checked again where the session is written: the code is spent
            // here (two logins with one code cannot both succeed), and a
            // password changed or an account disabled meanwhile wins.
            let Some(mut current) = tx.staff(&id)? else { return Ok(Err(EngineError::Unauthenticated)) };
            if current.status != ACTIVE || current.totp_last_step >= step || current.password != verified_password {
                Entry {
                    actor: format!("staff:{}", current.id),
                    role: &current.role,
                    operation: "login",
                    subject: Some(&current.id),
                    outcome: "denied: changed_meanwhile",
                    at: &at,
                    policy_version: &version,
                }
                .append(tx)?;
                return Ok(Err(EngineError::Unauthenticated));
            }
            current.totp_last_step = step;
            tx.update_staff(&current)?;
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
        self.inner.throttle.succeeded(&account_key, true);
        self.inner.throttle.succeeded(&address_key, false);
        Ok(NewSession {
            token: format!("cs_{session_id}_{token_secret}"),
            staff_id,
            expires_at: stamp(now + jiff::SignedDuration::from_secs(ABSOLUTE_SECONDS)),
            idle_timeout_seconds: IDLE_SECONDS,
        })
    }

    /// Admits one anonymous write (a cookie choice) from `address`, or
    /// refuses it when the address made [`PER_ADDRESS_PUBLIC`] in the last
    /// 15 minutes.
    pub fn admit_anonymous_write(&self, address: Option<IpAddr>, now: jiff::Timestamp) -> Result<()> {
        let key = format!("public:{}", address.map(address_block).unwrap_or_default());
        self.inner.throttle.attempt(&key, PER_ADDRESS_PUBLIC, now).map_err(EngineError::Throttled)
    }

    /// Runs a decoy verification, so that a refusal that needs no password
    /// check takes as long as one that does.
    async fn decoy(&self, password: &Zeroizing<String>) -> Result<()> {
        let decoy = Zeroizing::new(decoy_hash().to_owned());
        self.inner.hashing.verify(password.clone(), decoy).await.map(|_| ())
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
            self.decoy(&attempt.password).await?;
            return Ok(Err("unknown_account"));
        };
        let (Some(sealed_password), Some(sealed_totp)) = (&row.password, &row.totp_secret) else {
            self.decoy(&attempt.password).await?;
            return Ok(Err("not_enrolled"));
        };
        let key_id = row.key_id.clone();
        let Some(key_row) = self.inner.store.read(move |r| r.key(&key_id)).await? else {
            self.decoy(&attempt.password).await?;
            return Ok(Err("key_gone"));
        };
        let key = self.inner.keyring.unwrap_data_key(&key_row.id, &key_row.wrapped)?;
        let phc = key.open(&Self::staff_aad(&row.id, "password", &key_row.id), sealed_password)?;
        let totp_secret = key.open(&Self::staff_aad(&row.id, "totp", &key_row.id), sealed_totp)?;
        drop(key);
        let phc = String::from_utf8(phc.to_vec()).map_err(|_| EngineError::Integrity("a password hash".into()))?;
        if !self.inner.hashing.verify(attempt.password.clone(), Zeroizing::new(phc)).await? {
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
            // Fail closed: an entry that does not parse allows nobody.
            let parsed: std::result::Result<Vec<Cidr>, String> =
                list(&allowed.unwrap_or_default()).iter().map(|c| Cidr::parse(c)).collect();
            if !parsed.is_ok_and(|cidrs| net::allowed(&cidrs, attempt.address)) {
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
            let outcome = format!("session {session} ended");
            audit_staff(tx, &caller, "logout", Some(&caller.key_id), &outcome, &at, &version)?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Changes the caller's own password; every session of theirs ends,
    /// this one included. Wrong current passwords are throttled like
    /// logins and audited.
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
        let throttle_key = format!("password:{}", caller.key_id);
        if let Err(seconds) = self.inner.throttle.attempt(&throttle_key, PER_ACCOUNT, now) {
            return Err(EngineError::Throttled(seconds));
        }
        let id = caller.key_id.clone();
        let row = self.inner.store.read(move |r| r.staff(&id)).await?.ok_or(EngineError::Unauthenticated)?;
        let key_id = row.key_id.clone();
        let key_row = self.inner.store.read(move |r| r.key(&key_id)).await?.ok_or(EngineError::Unauthenticated)?;
        let key = self.inner.keyring.unwrap_data_key(&key_row.id, &key_row.wrapped)?;
        let sealed = row.password.clone().ok_or(EngineError::Unauthenticated)?;
        let phc = key.open(&Self::staff_aad(&row.id, "password", &key_row.id), &sealed)?;
        let phc = String::from_utf8(phc.to_vec()).map_err(|_| EngineError::Integrity("a password hash".into()))?;
        let (at, version, caller) = (stamp(now), self.policy().meta.version.clone(), caller.clone());
        if !self.inner.hashing.verify(current, Zeroizing::new(phc)).await? {
            let (at, version, caller) = (at.clone(), version.clone(), caller.clone());
            self.write_job(move |tx| {
                audit_staff(
                    tx,
                    &caller,
                    "password_change",
                    Some(&caller.key_id),
                    "denied: wrong_password",
                    &at,
                    &version,
                )
            })
            .await?;
            return Err(invalid("current_password", ErrorCode::NotAllowed, "the current password is wrong"));
        }
        let new_phc = self.inner.hashing.hash(new).await?;
        let sealed_new = key.seal(&Self::staff_aad(&row.id, "password", &key_row.id), new_phc.as_bytes())?;
        drop(key);
        self.inner.throttle.succeeded(&throttle_key, true);
        self.write_job(move |tx| {
            let Some(mut current) = tx.staff(&caller.key_id)? else { return Ok(Err(EngineError::Unauthenticated)) };
            if current.password.as_deref() != Some(sealed.as_slice()) || current.status != ACTIVE {
                audit_staff(
                    tx,
                    &caller,
                    "password_change",
                    Some(&current.id),
                    "denied: changed_meanwhile",
                    &at,
                    &version,
                )?;
                return Ok(Err(EngineError::Conflict("the account changed meanwhile: try again".into())));
            }
            current.password = Some(sealed_new);
            current.updated_at = at.clone();
            tx.update_staff(&current)?;
            let ended = tx.end_sessions_of(&current.id, &at)?;
            let outcome = format!("changed; {ended} session(s) ended");
            audit_staff(tx, &caller, "password_change", Some(&current.id), &outcome, &at, &version)?;
            Ok(Ok(()))
        })
        .await?
    }

    /// Asks whether the caller may act (`operation`) on staff member `id`:
    /// a refusal, another service's staff included, is audited and looks
    /// like a missing account.
    async fn managed_staff(&self, caller: &Caller, operation: Operation, id: &str, now: jiff::Timestamp) -> Result<()> {
        let key = id.to_owned();
        let row = self.inner.store.read(move |r| r.staff(&key)).await?;
        let target = match &row {
            Some(r) => Target::Scope(r.service_id.as_deref()),
            None => Target::Missing,
        };
        match gate::ask(&self.policy(), caller, operation, target, None, None) {
            Ok(_) => Ok(()),
            Err(denied) => Err(self.audit_denial(caller, operation, Some(id), None, denied, now).await),
        }
    }

    /// Changes staff accounts in one job: `change` reads the current rows
    /// (inside the job, so nothing read earlier is written back) and
    /// returns the rows to write, the outcome to audit and whether their
    /// sessions end; or a refusal, which is audited.
    async fn change_staff<F>(
        &self,
        caller: &Caller,
        operation: Operation,
        id: &str,
        now: jiff::Timestamp,
        change: F,
    ) -> Result<StaffView>
    where
        F: FnOnce(&WriteTx<'_>, StaffRow) -> Result<Changed, (String, EngineError)> + Send + 'static,
    {
        self.managed_staff(caller, operation, id, now).await?;
        let (at, version, caller, id) = (stamp(now), self.policy().meta.version.clone(), caller.clone(), id.to_owned());
        self.write_job(move |tx| {
            let Some(row) = tx.staff(&id)? else {
                audit_staff(tx, &caller, operation.as_str(), Some(&id), "denied: not_found", &at, &version)?;
                return Ok(Err(EngineError::NotFound));
            };
            let changed = match change(tx, row) {
                Ok(changed) => changed,
                Err((outcome, error)) => {
                    audit_staff(
                        tx,
                        &caller,
                        operation.as_str(),
                        Some(&id),
                        &format!("denied: {outcome}"),
                        &at,
                        &version,
                    )?;
                    return Ok(Err(error));
                }
            };
            for row in &changed.rows {
                let mut row = row.clone();
                row.updated_at = at.clone();
                tx.update_staff(&row)?;
                if changed.end_sessions {
                    tx.end_sessions_of(&row.id, &at)?;
                }
            }
            audit_staff(tx, &caller, operation.as_str(), Some(&id), &changed.outcome, &at, &version)?;
            Ok(Ok(changed.rows.last().map(view)))
        })
        .await??
        .ok_or(EngineError::NotFound)
    }

    /// Disables a staff account and ends its sessions at once. The holder
    /// of a single role hands it over first, unless the platform (its key
    /// or its staff) disables them: a departed head admin must not block a
    /// service for good.
    pub async fn disable_staff(&self, caller: &Caller, id: &str, now: jiff::Timestamp) -> Result<StaffView> {
        let platform = caller.service.is_none();
        let me = caller.key_id.clone();
        let is_staff = caller.staff.is_some();
        self.change_staff(caller, Operation::DisableStaff, id, now, move |_, mut row| {
            if is_staff && row.id == me {
                return Err(("self".into(), EngineError::Conflict("you cannot disable your own account".into())));
            }
            if row.single && row.status != DISABLED && !platform {
                let message = format!("the {} must hand the role over before the account is disabled", row.role);
                return Err(("single_holder".into(), EngineError::Conflict(message)));
            }
            row.status = DISABLED.into();
            row.invite_hash = None;
            Ok(Changed { rows: vec![row], outcome: "disabled".into(), end_sessions: true })
        })
        .await
    }

    /// Grants or withdraws a privilege the staff member's role may be given.
    /// Staff grant only a privilege they hold themselves, never to
    /// themselves.
    pub async fn set_privilege(
        &self,
        caller: &Caller,
        id: &str,
        privilege: &str,
        granted: bool,
        now: jiff::Timestamp,
    ) -> Result<StaffView> {
        if let Some(staff) = &caller.staff {
            let holds = self.held_privileges(&staff.role, &staff.privileges).iter().any(|p| p == privilege);
            if id == caller.key_id || !holds {
                let denied = custos_core::authz::Denied::Forbidden;
                return Err(self.audit_denial(caller, Operation::GrantPrivilege, Some(id), None, denied, now).await);
            }
        }
        let policy = self.policy();
        let privilege = privilege.to_owned();
        self.change_staff(caller, Operation::GrantPrivilege, id, now, move |_, mut row| {
            let grantable = policy
                .roles
                .iter()
                .find(|r| r.id.as_str() == row.role)
                .is_some_and(|r| r.grantable.iter().any(|g| g.as_str() == privilege));
            if !grantable {
                let message = format!("the {} role cannot be granted {privilege:?}", row.role);
                return Err(("not_grantable".into(), invalid("privilege", ErrorCode::NotAllowed, message)));
            }
            let mut held = list(&row.privileges);
            held.retain(|p| *p != privilege);
            if granted {
                held.push(privilege.clone());
                held.sort();
            }
            row.privileges = held.join(",");
            let outcome = format!("{} {privilege}", if granted { "granted" } else { "withdrawn" });
            Ok(Changed { rows: vec![row], outcome, end_sessions: false })
        })
        .await
    }

    /// Hands the caller's single-holder role (the head admin) to another
    /// active staff member of the same service, whose role the policy lists
    /// in `transferable_to`; the caller takes that member's former role.
    /// Privileges the new roles cannot hold are dropped.
    pub async fn transfer_role(&self, caller: &Caller, to: &str, now: jiff::Timestamp) -> Result<StaffView> {
        if caller.staff.is_none() {
            return Err(EngineError::Forbidden("only the holder of the role hands it over".into()));
        }
        self.permit(caller, Operation::TransferRole, Target::Scope(caller.service.as_deref()), None, None, now).await?;
        let policy = self.policy();
        let me = caller.key_id.clone();
        self.change_staff(caller, Operation::TransferRole, to, now, move |tx, mut target| {
            let store = |e: StoreError| ("store".to_owned(), EngineError::from(e));
            let mut mine = tx.staff(&me).map_err(store)?.ok_or(("not_found".into(), EngineError::NotFound))?;
            let role = policy.roles.iter().find(|r| r.id.as_str() == mine.role && r.single);
            let Some(role) = role else {
                return Err((
                    "not_holder".into(),
                    EngineError::Forbidden("only the holder of the role hands it over".into()),
                ));
            };
            if target.service_id != mine.service_id || target.id == mine.id {
                return Err(("not_found".into(), EngineError::NotFound));
            }
            if target.status != ACTIVE {
                let message = "the role goes only to staff who accepted their invitation";
                return Err(("not_active".into(), EngineError::Conflict(message.into())));
            }
            if !role.transferable_to.iter().any(|r| r.as_str() == target.role) {
                let message = format!("the {} role cannot go to a {}", role.id, target.role);
                return Err(("not_transferable".into(), EngineError::Conflict(message)));
            }
            let keep = |row: &StaffRow, role: &str| {
                let grantable = policy.roles.iter().find(|r| r.id.as_str() == role).map(|r| r.grantable.clone());
                let grantable = grantable.unwrap_or_default();
                list(&row.privileges)
                    .into_iter()
                    .filter(|p| grantable.iter().any(|g| g.as_str() == p))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            mine.role = std::mem::replace(&mut target.role, mine.role.clone());
            mine.single = false;
            target.single = true;
            mine.privileges = keep(&mine, &mine.role);
            target.privileges = keep(&target, &target.role);
            let outcome = format!("{} handed over by {}", target.role, mine.id);
            // The former holder is written first, so the role never has two.
            Ok(Changed { rows: vec![mine, target], outcome, end_sessions: false })
        })
        .await
    }

    /// Sets the networks the service's staff may log in from (empty: any).
    /// The list applies to logins: a session opened before it keeps its
    /// limits (disable or log the account out to end it sooner).
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
                audit_staff(tx, &caller, Operation::ChangeSettings.as_str(), None, "denied: not_found", &at, &version)?;
                return Ok(Err(EngineError::NotFound));
            }
            tx.set_allowed_ips(&service, &joined)?;
            let networks = if joined.is_empty() { "any" } else { &joined };
            let outcome = format!("staff of {service} may log in from {networks}");
            audit_staff(tx, &caller, Operation::ChangeSettings.as_str(), None, &outcome, &at, &version)?;
            Ok(Ok(()))
        })
        .await??;
        Ok(parsed)
    }
}

/// What a change of staff accounts writes.
struct Changed {
    rows: Vec<StaffRow>,
    outcome: String,
    end_sessions: bool,
}

/// An audit entry of a staff act by `caller`.
fn audit_staff(
    tx: &mut WriteTx<'_>,
    caller: &Caller,
    operation: &str,
    subject: Option<&str>,
    outcome: &str,
    at: &str,
    version: &str,
) -> Result<(), StoreError> {
    crate::subjects::Audit {
        caller,
        operation,
        purpose: None,
        subject,
        items: &[],
        outcome,
        at,
        policy_version: version,
    }
    .append(tx)
    .map(|_| ())
}

/// The part of a client address a throttle counts by: an IPv4 address, or
/// the /64 of an IPv6 address (one host can hold a whole /64).
fn address_block(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
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
