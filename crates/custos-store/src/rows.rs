//! Row types: what the store reads and writes. Values are ciphertext and
//! digests; ids and timestamps (RFC 3339, UTC) are plain.

/// A subject (member, operator) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRow {
    pub id: String,
    /// `None` for subjects of the platform itself (operators).
    pub service_id: Option<String>,
    pub kind: String,
    pub status: String,
    pub profile_key: String,
    pub policy_version: String,
    pub created_at: String,
    pub last_activity_at: String,
}

/// One encrypted item of a subject.
#[derive(Clone, PartialEq, Eq)]
pub struct ItemRow {
    pub subject_id: String,
    pub item: String,
    pub value: Vec<u8>,
    pub key_version: u32,
    pub source: String,
    pub point: Option<String>,
    pub collected_at: String,
}

impl std::fmt::Debug for ItemRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemRow")
            .field("subject_id", &self.subject_id)
            .field("item", &self.item)
            .field("value", &format_args!("<{} bytes of ciphertext>", self.value.len()))
            .finish_non_exhaustive()
    }
}

/// A record under a statutory hold, encrypted under its hold key.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub id: String,
    pub subject_id: String,
    pub class: String,
    pub record_date: String,
    pub key_id: String,
    pub value: Vec<u8>,
    pub created_at: String,
}

impl std::fmt::Debug for RecordRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordRow")
            .field("id", &self.id)
            .field("class", &self.class)
            .field("value", &format_args!("<{} bytes of ciphertext>", self.value.len()))
            .finish_non_exhaustive()
    }
}

/// A wrapped data key from the key store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub subject_id: String,
    pub scope: String,
    pub version: u32,
    pub wrapped: Vec<u8>,
    pub created_at: String,
}

/// One entry of the consent ledger (append-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// `None` for entries written before ids existed.
    pub id: Option<String>,
    pub subject_id: String,
    pub purpose: String,
    pub policy_version: String,
    pub granted: bool,
    pub channel: String,
    pub at: String,
    /// SHA-256 (hex) of the notice text shown, when given.
    pub notice_hash: Option<String>,
    /// IP address and user agent, sealed under the subject's key `key_id`.
    pub evidence: Option<Vec<u8>>,
    pub key_id: Option<String>,
}

/// An amendment of the policy, announced ahead of its effective date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmendmentRow {
    pub version: String,
    pub text: String,
    /// The version it amends.
    pub previous: String,
    pub announced_at: String,
    pub effective_date: String,
    pub significant: bool,
    /// The changes in words, as a JSON list of strings.
    pub changes: String,
    /// Set when it took effect.
    pub in_force_at: Option<String>,
    /// Set when a later announcement replaced it before its date.
    pub superseded_at: Option<String>,
}

/// A notification waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub kind: String,
    /// A subject id, or `None` for a notice to every member.
    pub subject: Option<String>,
    /// JSON; never personal data (ids and the notice's facts).
    pub body: String,
    pub created_at: String,
}

/// A policy version this instance has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRow {
    pub version: String,
    /// The policy file's text, as it was.
    pub text: String,
    pub in_force_at: String,
}

/// A platform API key: the secret is stored as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: String,
    pub secret_hash: Vec<u8>,
    /// `None` for a platform-wide key.
    pub service_id: Option<String>,
    /// Allowed purposes, comma-separated ids.
    pub purposes: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The stored answer to a create call, replayed for a repeated idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    pub api_key: String,
    pub key: String,
    pub request_hash: Vec<u8>,
    pub status: u16,
    pub body: String,
    pub created_at: String,
}

/// One audit entry. Never holds personal data: the subject is its
/// pseudonymous id, items are item ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub operation: String,
    pub purpose: Option<String>,
    pub subject_id: Option<String>,
    /// Item ids touched, comma-separated.
    pub items: String,
    pub outcome: String,
    pub policy_version: String,
    /// The entry's Merkle leaf hash; `None` only for entries written before
    /// the log became a tree, until the engine fills it in.
    pub leaf_hash: Option<Vec<u8>>,
}

/// A signed checkpoint of the audit tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub size: u64,
    pub root: Vec<u8>,
    pub time: String,
    pub signature: Vec<u8>,
}

/// A service (tenant) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub id: String,
    pub operator_id: String,
    pub created_at: String,
    /// Networks staff may log in from (CIDR, comma-separated); empty: any.
    pub allowed_ips: String,
}

/// A staff account. `email`, `password` and `totp_secret` are ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffRow {
    pub id: String,
    pub email_digest: Vec<u8>,
    pub email: Vec<u8>,
    pub key_id: String,
    pub role: String,
    /// The role has one holder per service (the head admin).
    pub single: bool,
    pub service_id: Option<String>,
    /// Granted privileges, comma-separated ids.
    pub privileges: String,
    /// `invited`, `active` or `disabled`.
    pub status: String,
    pub invite_hash: Option<Vec<u8>>,
    pub invite_expires_at: Option<String>,
    pub password: Option<Vec<u8>>,
    pub totp_secret: Option<Vec<u8>>,
    /// The last TOTP time step accepted: a code is never accepted twice.
    pub totp_last_step: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for StaffRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffRow")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("service_id", &self.service_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A staff session; the token's secret is stored as its SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub staff_id: String,
    pub secret_hash: Vec<u8>,
    pub created_at: String,
    pub last_seen_at: String,
    pub ended_at: Option<String>,
}

/// One cookie choice of a visitor, or a GPC signal recorded for them
/// (append-only). No IP address or user agent: see the migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConsentRow {
    pub visitor_id: String,
    /// The member it was linked to at sign-in, if any.
    pub subject_id: Option<String>,
    pub category: String,
    pub granted: bool,
    /// `choice` or `gpc`.
    pub source: String,
    /// Whether the request carried `Sec-GPC: 1`.
    pub gpc: bool,
    pub policy_version: String,
    pub at: String,
}

/// Group-commit counters, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub batches: u64,
    pub jobs: u64,
}

/// A member as the lifecycle jobs see it: no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRow {
    pub id: String,
    pub service_id: Option<String>,
    pub kind: String,
    pub status: String,
    pub last_activity_at: String,
    pub notified_at: Option<String>,
    pub dormant_at: Option<String>,
    /// Roles held by staff accounts linked to this member, comma-separated.
    pub roles: String,
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub kind: String,
    pub subject: Option<String>,
    pub body: String,
    pub created_at: String,
    pub attempts: i64,
}

/// What one destruction removed, for its certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destroyed {
    /// Ids of the data keys removed from the key store.
    pub keys: Vec<String>,
    pub items: usize,
    pub dormant_items: usize,
    pub indexes: usize,
}

/// A key removed from the key store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedKey {
    pub id: String,
    pub subject_id: String,
    pub scope: String,
}

/// A rights request, complaint or inquiry. `details`, `letter`, `outcome`
/// and `extension_reason` are ciphertext under the request's key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub id: String,
    pub service_id: Option<String>,
    pub subject_id: Option<String>,
    pub kind: String,
    pub channel: String,
    pub jurisdiction: String,
    /// `member` or `agent`.
    pub requester: String,
    pub status: String,
    pub received_at: String,
    pub acknowledge_by: Option<String>,
    pub answer_by: Option<String>,
    pub extended_by: Option<String>,
    pub acknowledged_at: Option<String>,
    pub verified_by: Option<String>,
    pub verified_at: Option<String>,
    pub assigned_to: Option<String>,
    pub closed_at: Option<String>,
    pub key_id: String,
    pub details: Vec<u8>,
    pub letter_sha256: Option<String>,
    pub letter: Option<Vec<u8>>,
    pub outcome: Option<Vec<u8>>,
    pub extension_reason: Option<Vec<u8>>,
    pub created_by: String,
    /// Complaints and inquiries: the day they are destroyed.
    pub destroy_on: Option<String>,
}

/// One step of a request's timeline (no personal data in `note`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStepRow {
    pub request_id: String,
    pub at: String,
    pub actor: String,
    pub step: String,
    pub status: String,
    pub note: String,
}

/// Which requests a queue listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only these statuses (empty: all).
    pub statuses: Vec<String>,
    /// Only this service's (`Some(None)`: only the platform's; `None`: all).
    pub service: Option<Option<String>>,
    pub subject_id: Option<String>,
    /// Open requests whose answer deadline is before this date.
    pub due_before: Option<String>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<String>,
}

/// A hand-over of a member's data: a provision to a third party
/// (`kind = "provision"`) or a hand-over to a processor for its duty
/// (`"handover"`). `items` are the item ids, space-separated. `sealed` is a
/// provision's free text, ciphertext under the member's key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRow {
    pub id: String,
    pub kind: String,
    pub service_id: Option<String>,
    pub subject_id: String,
    /// A provision: the recipient's name; a hand-over: the processor's (or
    /// transfer's) id in the policy.
    pub recipient: String,
    /// A provision to a recipient the policy names: its id.
    pub recipient_id: Option<String>,
    pub items: String,
    /// A hand-over: the processor's declared duty.
    pub duty: Option<String>,
    /// A provision the recipient uses for its own marketing (Cal. Civ. Code
    /// § 1798.83).
    pub marketing: bool,
    /// The basis kind of a provision; `duty` for a hand-over.
    pub basis: String,
    pub consent_id: Option<String>,
    pub sealed: Option<Vec<u8>>,
    pub key_id: Option<String>,
    /// Set when the hand-over crossed a border: the recipient's country.
    pub country: Option<String>,
    pub transfer_basis: Option<String>,
    pub transfer_description: Option<String>,
    pub at: String,
    pub actor: String,
    pub policy_version: String,
}
