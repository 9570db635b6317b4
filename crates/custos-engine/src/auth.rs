//! Platform API keys: `ck_<id>_<secret>`, stored as a SHA-256 hash of the
//! secret (the secret is 256 random bits, so a slow hash adds nothing), each
//! scoped to one service or to the platform and to a set of purposes.

use aws_lc_rs::{constant_time, digest};
use base64::Engine as _;
use custos_store::ApiKeyRow;

use crate::ids::{new_id, random_bytes};
use crate::{Engine, EngineError, Result, stamp};

/// Who is calling: an API key, or a staff member with a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The API key's id, or the staff member's id.
    pub key_id: String,
    /// The scope: `None` for a platform-wide key or platform staff.
    pub service: Option<String>,
    /// An API key's purposes (staff use their role's, from the policy).
    pub purposes: Vec<String>,
    /// Set for staff.
    pub staff: Option<StaffAuth>,
}

/// What a staff caller holds, read from the store on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAuth {
    pub role: String,
    pub privileges: Vec<String>,
    pub session_id: String,
}

impl Caller {
    pub(crate) fn actor(&self) -> String {
        match self.staff {
            Some(_) => format!("staff:{}", self.key_id),
            // A member signed in to the privacy center (`member:<subject>`;
            // API key ids are hexadecimal, so the two never meet).
            None if self.key_id.starts_with("member:") => self.key_id.clone(),
            // The privacy center's public agent form.
            None if self.key_id == crate::privacy_center::PRIVACY_CENTER => self.key_id.clone(),
            None => format!("api_key:{}", self.key_id),
        }
    }

    pub(crate) fn role(&self) -> &str {
        match &self.staff {
            Some(staff) => &staff.role,
            None if self.key_id.starts_with("member:") => "member",
            None if self.key_id == crate::privacy_center::PRIVACY_CENTER => "privacy_center",
            None if self.service.is_some() => "service_api",
            None => "platform_api",
        }
    }

    /// The caller as the access decision sees it.
    pub(crate) fn as_actor(&self) -> custos_core::authz::Actor<'_> {
        use custos_core::authz::Actor;
        match &self.staff {
            Some(staff) => {
                Actor::Staff { role: &staff.role, service: self.service.as_deref(), privileges: &staff.privileges }
            }
            None => Actor::ApiKey { service: self.service.as_deref(), purposes: &self.purposes },
        }
    }
}

/// A newly created API key: the token is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub token: String,
}

fn hash_secret(secret: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret).as_ref().to_vec()
}

impl Engine {
    /// Creates an API key for `service` (or the platform) limited to
    /// `purposes`, which must all be declared by the policy.
    pub async fn create_api_key(
        &self,
        service: Option<String>,
        purposes: Vec<String>,
        label: String,
        now: jiff::Timestamp,
    ) -> Result<NewApiKey> {
        let mut unknown: Vec<String> = purposes
            .iter()
            .filter(|p| self.policy().purposes.iter().all(|x| x.id.as_str() != p.as_str()))
            .cloned()
            .collect();
        unknown.dedup();
        if !unknown.is_empty() {
            return Err(EngineError::Invalid(vec![crate::FieldError::new(
                "purposes",
                crate::ErrorCode::UnknownItem,
                format!("the policy declares no purpose {}", unknown.join(", ")),
            )]));
        }
        if purposes.is_empty() {
            return Err(EngineError::Invalid(vec![crate::FieldError::new(
                "purposes",
                crate::ErrorCode::MissingRequired,
                "an API key needs at least one purpose",
            )]));
        }
        let id = new_id("key")?.trim_start_matches("key_").to_owned();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32)?);
        let row = ApiKeyRow {
            id: id.clone(),
            secret_hash: hash_secret(secret.as_bytes()),
            service_id: service.clone(),
            purposes: purposes.join(","),
            label,
            created_at: stamp(now),
            revoked_at: None,
        };
        let policy_version = self.policy().meta.version.clone();
        self.write_job(move |tx| {
            if let Some(s) = &row.service_id
                && tx.service(s)?.is_none()
            {
                return Err(custos_store::StoreError::NotFound(format!("service {s}")));
            }
            tx.insert_api_key(&row)?;
            tx.append_audit(&crate::audit::row(custos_core::audit::Entry {
                at: row.created_at.clone(),
                actor: "admin:cli".into(),
                role: "operator".into(),
                operation: "api_key_create".into(),
                purpose: None,
                subject: None,
                items: String::new(),
                outcome: format!("created key {}", row.id),
                policy_version,
            }))?;
            Ok(())
        })
        .await?;
        Ok(NewApiKey { token: format!("ck_{id}_{secret}"), id })
    }

    /// Checks a bearer token: an API key (`ck_…`) or a staff session
    /// (`cs_…`); the same error for every kind of failure.
    pub async fn authenticate(&self, token: &str, now: jiff::Timestamp) -> Result<Caller> {
        if token.starts_with("cs_") {
            return self.authenticate_session(token, now).await;
        }
        let rest = token.strip_prefix("ck_").ok_or(EngineError::Unauthenticated)?;
        let (id, secret) = rest.split_once('_').ok_or(EngineError::Unauthenticated)?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() > 128 {
            return Err(EngineError::Unauthenticated);
        }
        let presented = hash_secret(secret.as_bytes());
        // Keys never change once created (there is no revocation yet), so a
        // verified key is remembered: the hot path skips a store read. The
        // secret is still checked on every request, in constant time.
        let cached = self.inner.api_keys.lock().ok().and_then(|cache| cache.get(id).cloned());
        let (hash, caller) = match cached {
            Some(entry) => entry,
            None => {
                let key = id.to_owned();
                let row = self.inner.store.read(move |r| r.api_key(&key)).await?.ok_or(EngineError::Unauthenticated)?;
                if row.revoked_at.is_some() {
                    return Err(EngineError::Unauthenticated);
                }
                let caller = Caller {
                    staff: None,
                    key_id: row.id,
                    service: row.service_id,
                    purposes: row.purposes.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect(),
                };
                (row.secret_hash, caller)
            }
        };
        if constant_time::verify_slices_are_equal(&presented, &hash).is_err() {
            return Err(EngineError::Unauthenticated);
        }
        if let Ok(mut cache) = self.inner.api_keys.lock()
            && cache.len() < 10_000
        {
            cache.entry(id.to_owned()).or_insert_with(|| (hash, caller.clone()));
        }
        Ok(caller)
    }
}
