//! What Custos leaves on disk, and what it does when that is altered
//! (design brief §4; issue 3 "Must show"):
//!
//! - **at rest**: no personal value sent through the API — typed or in its
//!   normal form, accepted or refused, in UTF-8 or UTF-16LE — is in any file
//!   of the data folder, neither while the instance runs (write-ahead logs
//!   present) nor after it closed. The scan is shown to work: it finds a
//!   planted canary, and the plain ids that are stored;
//! - **audit**: the audit trail names items, never their values;
//! - **tampering**: a ciphertext copied to another subject, moved to another
//!   field or record, altered by one byte, or left without its key is never
//!   answered with data: 500 `urn:custos:problem:integrity`, an
//!   `integrity_failure` audit entry, and untouched subjects still read;
//! - **restart**: everything acknowledged reads back identical after the
//!   instance is closed and reopened; a foreign root key is refused, and a
//!   missing one is neither replaced nor silently accepted.
//!
//! The database files are read and altered directly with rusqlite, as an
//! attacker with the files (or a second process) could.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;
use custos_engine::Engine;
use custos_engine::crypto::RootKey;
use custos_server::config::BUNDLED_POLICY;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Value, json};

use crate::support::{Scratch, TestApp, engine_config};

const INTEGRITY: &str = "urn:custos:problem:integrity";

// ---------------------------------------------------------------------------
// Files and connections
// ---------------------------------------------------------------------------

fn data_dir(dir: &Scratch) -> PathBuf {
    dir.0.join("data")
}

/// A read-write connection to an existing file of the data folder (never
/// creates one), patient with the instance's writer.
fn connect(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

fn data_db(dir: &Scratch) -> Connection {
    connect(&data_dir(dir).join("custos.db"))
}

fn keys_db(dir: &Scratch) -> Connection {
    connect(&data_dir(dir).join("keys.db"))
}

/// Every row of a query, each column as text (blobs in hex).
fn dump(conn: &Connection, sql: &str) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let columns = stmt.column_count();
    let rows = stmt
        .query_map([], |row| {
            (0..columns)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        ValueRef::Null => "NULL".to_owned(),
                        ValueRef::Integer(n) => n.to_string(),
                        ValueRef::Real(x) => x.to_string(),
                        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                        ValueRef::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
                    })
                })
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .unwrap();
    rows.collect::<rusqlite::Result<Vec<_>>>().unwrap()
}

/// Closes an instance for good and hands back its folder.
///
/// Dropping the last clone of the engine (the test's and the router's state)
/// drops the store, whose `Drop` closes the writer's queue and *joins* the
/// writer thread; the writer commits what is queued, checkpoints both files
/// with `wal_checkpoint(TRUNCATE)` and exits. So once the drops return the
/// files are final — and an empty (or absent) `-wal` is the proof, since the
/// instance wrote many frames that nothing else would have truncated.
fn close(app: TestApp) -> Scratch {
    let TestApp { router, engine, clock, key: _, dir } = app;
    drop(router);
    drop(engine);
    drop(clock);
    for wal in ["custos.db-wal", "keys.db-wal"] {
        if let Ok(meta) = std::fs::metadata(data_dir(&dir).join(wal)) {
            assert_eq!(meta.len(), 0, "{wal} still holds frames after close: the writer did not checkpoint and exit");
        }
    }
    dir
}

// ---------------------------------------------------------------------------
// Scanning for canaries
// ---------------------------------------------------------------------------

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `folder`, with its bytes.
fn files(folder: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out.sort();
    out
}

/// Where each needle occurs, byte by byte, in UTF-8 and in UTF-16LE:
/// `file: needle (encoding)` for every hit.
fn scan(folder: &Path, needles: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for (path, bytes) in files(folder) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for needle in needles {
            if contains(&bytes, needle.as_bytes()) {
                hits.push(format!("{name}: {needle:?} (UTF-8)"));
            }
            if contains(&bytes, &utf16le(needle)) {
                hits.push(format!("{name}: {needle:?} (UTF-16LE)"));
            }
        }
    }
    hits
}

/// The scan of the data folder finds none of the world's personal values,
/// and is shown not to be blind: the database files are there and not
/// empty, a canary planted in a file of our own is found in either encoding,
/// and the ids (stored in plain) are found.
fn assert_no_canary_on_disk(data: &Path, world: &World, when: &str) {
    for file in ["custos.db", "keys.db"] {
        let len = std::fs::metadata(data.join(file)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{when}: {file} is missing or empty");
    }

    // The scan finds what is there: a planted canary in each encoding…
    let planted = ["CanaryPlanted7f3a91c2Utf8".to_owned(), "CanaryPlanted7f3a91c2Utf16".to_owned()];
    let probe = data.join("probe-of-the-test.bin");
    let mut bytes = vec![0xa5u8; 4099];
    bytes.extend_from_slice(planted[0].as_bytes());
    bytes.extend_from_slice(&[0u8; 3]);
    bytes.extend_from_slice(&utf16le(&planted[1]));
    bytes.push(0x5a);
    std::fs::write(&probe, &bytes).unwrap();
    let found = scan(data, &planted);
    std::fs::remove_file(&probe).unwrap();
    assert_eq!(
        found,
        [
            "probe-of-the-test.bin: \"CanaryPlanted7f3a91c2Utf8\" (UTF-8)",
            "probe-of-the-test.bin: \"CanaryPlanted7f3a91c2Utf16\" (UTF-16LE)",
        ],
        "{when}: the scan does not find a planted canary"
    );
    // …and the plain ids the instance stored (in the data file or its log).
    let ids: Vec<String> = world.subject_ids().into_iter().map(str::to_owned).collect();
    let id_hits = scan(data, &ids);
    for id in &ids {
        assert!(id_hits.iter().any(|h| h.contains(id.as_str())), "{when}: the scan does not find the stored id {id}");
    }

    let hits = scan(data, &world.canaries);
    assert!(hits.is_empty(), "{when}: personal values found on disk:\n{}", hits.join("\n"));
}

// ---------------------------------------------------------------------------
// The scenario: subjects, a service, records, reads, corrections, refusals
// ---------------------------------------------------------------------------

/// What the scenario made: ids, the values it expects to read back, and
/// every personal value it sent, in every form it was typed or may be
/// stored in (lower-cased e-mail; E.164 and bare digits of a phone number).
struct World {
    /// Business operator, consents to marketing, signed up with an
    /// idempotency key, runs `service_a`, has two records.
    alpha: String,
    /// Business operator with a Korean name, no marketing consent; e-mail
    /// and name corrected; logged in at `bravo_login`.
    bravo: String,
    /// Non-business operator who created `service_c` (name, date of birth,
    /// country collected there).
    charlie: String,
    /// A member of `service_c` with generated items and a record.
    member: String,
    service_a: String,
    service_c: String,
    canaries: Vec<String>,
}

impl World {
    fn subject_ids(&self) -> Vec<&str> {
        vec![&self.alpha, &self.bravo, &self.charlie, &self.member]
    }
}

const ALPHA_NAME: &str = "CanaryName7f3a91c2Alpha";
const ALPHA_EMAIL: &str = "canary-7f3a91c2-alpha@example.com";
const ALPHA_PHONE: &str = "010-4821-7395";
const ALPHA_PHONE_E164: &str = "+821048217395";
const ALPHA_PHONE_RETYPED: &str = "+82 10 4821 7395";
const ALPHA_PASSWORD: &str = "CanaryPassword7f3a91c2Alpha";
const ALPHA_PAYMENT: &str = "CanaryRecordPayment7f3a91c2 order 55,000 KRW";
const ALPHA_TAX: &str = "CanaryRecordTax7f3a91c2 ledger line";

const BRAVO_NAME: &str = "카나리아7f3a91c2브라보";
const BRAVO_EMAIL_TYPED: &str = "Canary-7F3A91C2-Bravo@Example.COM";
const BRAVO_EMAIL: &str = "canary-7f3a91c2-bravo@example.com";
const BRAVO_PHONE: &str = "+82 10-5937-2468";
const BRAVO_PHONE_E164: &str = "+821059372468";
const BRAVO_PASSWORD: &str = "CanaryPassword7f3a91c2Bravo 비밀번호";
const BRAVO_NAME_CORRECTED: &str = "CanaryName7f3a91c2BravoCorrected";
const BRAVO_EMAIL_CORRECTED: &str = "canary-7f3a91c2-bravo-corrected@example.com";

const CHARLIE_NAME: &str = "CanaryName7f3a91c2Charlie";
const CHARLIE_LEGAL_NAME: &str = "CanaryName7f3a91c2CharlieLegal";
const CHARLIE_EMAIL: &str = "canary-7f3a91c2-charlie@example.com";
const CHARLIE_PHONE: &str = "01073164825";
const CHARLIE_PHONE_E164: &str = "+821073164825";
const CHARLIE_PASSWORD: &str = "CanaryPassword7f3a91c2Charlie";
/// Low-entropy, but 10 bytes that occur nowhere else (timestamps are 2024).
const CHARLIE_BIRTH: &str = "1971-08-29";

const MEMBER_DEVICE: &str = "CanaryDevice7f3a91c2 Galaxy S24";
const MEMBER_USAGE: &str = "CanaryUsageLog7f3a91c2 watched live";
const MEMBER_IP: &str = "198.51.100.173";
const MEMBER_VISIT: &str = "CanaryRecordVisit7f3a91c2 entered the fan room";

const REFUSED_DUPLICATE_NAME: &str = "CanaryName7f3a91c2RefusedDuplicate";
const REFUSED_DUPLICATE_PHONE: &str = "010-6285-1947";
const REFUSED_DUPLICATE_PHONE_E164: &str = "+821062851947";
const REFUSED_DUPLICATE_PASSWORD: &str = "CanaryPassword7f3a91c2RefusedDuplicate";
const REFUSED_INVALID_NAME: &str = "CanaryName7f3a91c2RefusedInvalid";
const REFUSED_INVALID_EMAIL: &str = "canary-7f3a91c2-refused-invalid@example.com";
const UNKNOWN_EMAIL: &str = "canary-7f3a91c2-nobody@example.com";
const REQUEST_AGENT_NAME: &str = "CanaryAgent7f3a91c2Name";
const REQUEST_AGENT_CONTACT: &str = "canary-7f3a91c2-agent@example.net";
const REQUEST_LETTER: &str = "CanaryLetter7f3a91c2 I authorise my agent";
const REQUEST_NOTE: &str = "CanaryNote7f3a91c2 please hurry";
const REQUEST_CORRECTION: &str = "CanaryCorrection7f3a91c2";
const COMPLAINT_BODY: &str = "CanaryComplaint7f3a91c2 charged twice";
const INQUIRY_COMPANY: &str = "CanaryCompany7f3a91c2 Ltd";

fn all_canaries() -> Vec<String> {
    let mut canaries: Vec<String> = [
        ALPHA_NAME,
        ALPHA_EMAIL,
        ALPHA_PHONE,
        ALPHA_PHONE_E164,
        ALPHA_PHONE_RETYPED,
        ALPHA_PASSWORD,
        ALPHA_PAYMENT,
        ALPHA_TAX,
        BRAVO_NAME,
        BRAVO_EMAIL_TYPED,
        BRAVO_EMAIL,
        BRAVO_PHONE,
        BRAVO_PHONE_E164,
        BRAVO_PASSWORD,
        BRAVO_NAME_CORRECTED,
        BRAVO_EMAIL_CORRECTED,
        CHARLIE_NAME,
        CHARLIE_LEGAL_NAME,
        CHARLIE_EMAIL,
        CHARLIE_PHONE,
        CHARLIE_PHONE_E164,
        CHARLIE_PASSWORD,
        CHARLIE_BIRTH,
        MEMBER_DEVICE,
        MEMBER_USAGE,
        MEMBER_IP,
        MEMBER_VISIT,
        REFUSED_DUPLICATE_NAME,
        REFUSED_DUPLICATE_PHONE,
        REFUSED_DUPLICATE_PHONE_E164,
        REFUSED_DUPLICATE_PASSWORD,
        REFUSED_INVALID_NAME,
        REFUSED_INVALID_EMAIL,
        UNKNOWN_EMAIL,
        REQUEST_AGENT_NAME,
        REQUEST_AGENT_CONTACT,
        REQUEST_LETTER,
        REQUEST_NOTE,
        REQUEST_CORRECTION,
        COMPLAINT_BODY,
        INQUIRY_COMPANY,
    ]
    .map(str::to_owned)
    .to_vec();
    // A phone number stored in any other layout still carries its national
    // significant number: the digits after +82.
    for e164 in [ALPHA_PHONE_E164, BRAVO_PHONE_E164, CHARLIE_PHONE_E164, REFUSED_DUPLICATE_PHONE_E164] {
        canaries.push(e164.trim_start_matches("+82").to_owned());
    }
    // Values also as a case-folding layer might keep them.
    for value in [ALPHA_NAME, CHARLIE_NAME, BRAVO_NAME_CORRECTED, CHARLIE_LEGAL_NAME, MEMBER_DEVICE] {
        canaries.push(value.to_lowercase());
    }
    canaries
}

fn sign_up_body(kind: &str, name: &str, email: &str, phone: &str, password: &str) -> Value {
    let point = if kind == "business_operator" { "business_operator_signup" } else { "non_business_operator_signup" };
    json!({
        "kind": kind,
        "collection_point": point,
        "source": "direct_entry",
        "items": {"name": name, "email": email, "mobile_phone": phone, "password": password}
    })
}

/// Signs up a business operator; returns its id.
async fn sign_up(app: &TestApp, name: &str, email: &str, phone: &str) -> String {
    let body = sign_up_body("business_operator", name, email, phone, "a long enough password");
    let (status, body) = app.send("POST", "/v1/subjects", Some(&app.key), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn add_record(app: &TestApp, subject: &str, class: &str, content: &str) -> String {
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/subjects/{subject}/records"),
            Some(&app.key),
            Some(json!({"class": class, "record_date": "2024-05-20", "content": content})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn read(app: &TestApp, subject: &str, query: &str) -> (StatusCode, Value) {
    app.send("GET", &format!("/v1/subjects/{subject}?{query}"), Some(&app.key), None).await
}

async fn records(app: &TestApp, subject: &str) -> (StatusCode, Value) {
    app.send("GET", &format!("/v1/subjects/{subject}/records?purpose=statutory_retention"), Some(&app.key), None).await
}

async fn lookup(app: &TestApp, item: &str, value: &str) -> (StatusCode, Value) {
    app.send(
        "POST",
        "/v1/lookup",
        Some(&app.key),
        Some(json!({"item": item, "value": value, "purpose": "member_management"})),
    )
    .await
}

/// Runs the scenario through the API: sign-ups (one idempotent and
/// replayed), a refused duplicate and a refused invalid sign-up, two
/// services (one through the age-checked collection point), a member with
/// generated items, records, a correction, an activity, reads and
/// look-ups. Asserts that every read returns what was written, so that the
/// values are known to be stored.
async fn populate(app: &TestApp) -> World {
    // Alpha: idempotent sign-up with marketing consent, replayed once.
    let mut alpha_body = sign_up_body("business_operator", ALPHA_NAME, ALPHA_EMAIL, ALPHA_PHONE, ALPHA_PASSWORD);
    alpha_body["consents"] = json!(["marketing"]);
    let raw = alpha_body.to_string().into_bytes();
    let idem = [("idempotency-key", "signup-alpha-7f3a91c2")];
    let (status, created, _) = app.send_full("POST", "/v1/subjects", Some(&app.key), Some(raw.clone()), &idem).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let alpha = created["id"].as_str().unwrap().to_owned();
    let (status, replay, _) = app.send_full("POST", "/v1/subjects", Some(&app.key), Some(raw), &idem).await;
    assert_eq!((status, &replay["id"]), (StatusCode::OK, &created["id"]), "{replay}");

    // Bravo: e-mail typed in mixed case, phone typed with +82.
    let body = sign_up_body("business_operator", BRAVO_NAME, BRAVO_EMAIL_TYPED, BRAVO_PHONE, BRAVO_PASSWORD);
    let (status, body) = app.send("POST", "/v1/subjects", Some(&app.key), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let bravo = body["id"].as_str().unwrap().to_owned();

    // Charlie: a non-business operator, whose service creation collects
    // name, date of birth and country under the age check.
    let body = sign_up_body("non_business_operator", CHARLIE_NAME, CHARLIE_EMAIL, CHARLIE_PHONE, CHARLIE_PASSWORD);
    let (status, body) = app.send("POST", "/v1/subjects", Some(&app.key), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let charlie = body["id"].as_str().unwrap().to_owned();

    // Refused: Alpha's e-mail again (409), and a phone that is no number (422).
    let body = sign_up_body(
        "business_operator",
        REFUSED_DUPLICATE_NAME,
        ALPHA_EMAIL,
        REFUSED_DUPLICATE_PHONE,
        REFUSED_DUPLICATE_PASSWORD,
    );
    let (status, body) = app.send("POST", "/v1/subjects", Some(&app.key), Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let body = sign_up_body("business_operator", REFUSED_INVALID_NAME, REFUSED_INVALID_EMAIL, "12", "long password");
    let (status, body) = app.send("POST", "/v1/subjects", Some(&app.key), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Services.
    let (status, body) = app.send("POST", "/v1/services", Some(&app.key), Some(json!({"operator": alpha}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let service_a = body["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .send(
            "POST",
            "/v1/services",
            Some(&app.key),
            Some(json!({
                "operator": charlie,
                "collection_point": "non_business_operator_service_creation",
                "items": {"name": CHARLIE_LEGAL_NAME, "date_of_birth": CHARLIE_BIRTH, "country": "KR"}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let service_c = body["id"].as_str().unwrap().to_owned();

    // A member of Charlie's service, with generated items.
    let (status, body) = app
        .send(
            "POST",
            "/v1/subjects",
            Some(&app.key),
            Some(json!({
                "service": service_c,
                "kind": "service_member",
                "collection_point": "automatic_generation",
                "source": "generated",
                "items": {"device_info": MEMBER_DEVICE, "service_usage_log": MEMBER_USAGE, "ip_address": MEMBER_IP}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let member = body["id"].as_str().unwrap().to_owned();

    // Records.
    add_record(app, &alpha, "payment_supply_records", ALPHA_PAYMENT).await;
    add_record(app, &alpha, "tax_ledgers", ALPHA_TAX).await;
    add_record(app, &member, "service_visitation_records", MEMBER_VISIT).await;

    // Rights requests: an agent's (with a letter of attorney and a note)
    // and a correction; what they carry is sealed.
    let letter = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, REQUEST_LETTER.as_bytes());
    for body in [
        json!({"kind": "access", "channel": "writing", "subject": charlie, "verification": "staff", "note": REQUEST_NOTE,
               "agent": {"name": REQUEST_AGENT_NAME, "contact": REQUEST_AGENT_CONTACT, "letter": letter,
                         "letter_type": "text/plain"}}),
        json!({"kind": "correction", "channel": "email", "subject": charlie, "verification": "staff",
               "corrections": {"name": REQUEST_CORRECTION}}),
        json!({"kind": "complaint", "channel": "email", "collection_point": "business_operator_service_inquiry",
               "items": {"name": "Kim", "company_name": INQUIRY_COMPANY, "email": "kim@example.org",
                         "inquiry_body": COMPLAINT_BODY},
               "keep_as": "complaint_dispute_records"}),
    ] {
        let (status, body) = app.send("POST", "/v1/requests", Some(&app.key), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // Bravo corrects name and e-mail, then logs in a day later.
    let (status, body) = app
        .send(
            "PATCH",
            &format!("/v1/subjects/{bravo}"),
            Some(&app.key),
            Some(json!({"items": {"name": BRAVO_NAME_CORRECTED, "email": BRAVO_EMAIL_CORRECTED}, "source": "direct_entry"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.set(bravo_login());
    let (status, body) = app
        .send("POST", &format!("/v1/subjects/{bravo}/activity"), Some(&app.key), Some(json!({"event": "login"})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let world = World { alpha, bravo, charlie, member, service_a, service_c, canaries: all_canaries() };
    assert_reads(app, &world).await;
    world
}

fn bravo_login() -> jiff::Timestamp {
    "2024-06-02T09:30:00Z".parse().unwrap()
}

/// Reads everything back and checks it is what was written; returns the
/// answers, so that a restart can be compared with them.
async fn assert_reads(app: &TestApp, w: &World) -> Vec<(String, StatusCode, Value)> {
    let mut answers = Vec::new();
    let mut get = |label: String, (status, body): (StatusCode, Value)| {
        answers.push((label, status, body.clone()));
        (status, body)
    };

    let (status, body) = get("alpha".into(), read(app, &w.alpha, "purpose=member_management").await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["items"],
        json!({"name": ALPHA_NAME, "email": ALPHA_EMAIL, "mobile_phone": ALPHA_PHONE_E164}),
        "the password hash is never returned"
    );
    let (status, body) = get("alpha marketing".into(), read(app, &w.alpha, "purpose=marketing").await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"]["name"], ALPHA_NAME);

    let (status, body) = get("bravo".into(), read(app, &w.bravo, "purpose=member_management").await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["items"],
        json!({"name": BRAVO_NAME_CORRECTED, "email": BRAVO_EMAIL_CORRECTED, "mobile_phone": BRAVO_PHONE_E164})
    );
    let (status, body) = get("bravo marketing".into(), read(app, &w.bravo, "purpose=marketing").await);
    assert_eq!((status, &body["type"]), (StatusCode::FORBIDDEN, &json!("urn:custos:problem:consent_required")));

    let (status, body) = get("charlie".into(), read(app, &w.charlie, "purpose=member_management").await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["items"],
        json!({
            "name": CHARLIE_LEGAL_NAME,
            "email": CHARLIE_EMAIL,
            "mobile_phone": CHARLIE_PHONE_E164,
            "date_of_birth": CHARLIE_BIRTH,
            "country": "KR"
        })
    );

    let (status, body) = get("member".into(), read(app, &w.member, "purpose=member_management").await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"], json!({"device_info": MEMBER_DEVICE, "ip_address": MEMBER_IP}));
    let (status, body) = get("member fees".into(), read(app, &w.member, "purpose=service_fees").await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"], json!({"service_usage_log": MEMBER_USAGE}));

    let (status, body) = get("alpha records".into(), records(app, &w.alpha).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    // Both made in the same millisecond of the test clock: their order is not fixed.
    let mut contents: Vec<&str> =
        body["items"].as_array().unwrap().iter().map(|r| r["content"].as_str().unwrap()).collect();
    contents.sort_unstable();
    assert_eq!(contents, [ALPHA_PAYMENT, ALPHA_TAX]);
    let (status, body) = get("member records".into(), records(app, &w.member).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["content"], MEMBER_VISIT);

    for (item, value, expected) in [
        ("email", ALPHA_EMAIL.to_uppercase(), &w.alpha),
        ("mobile_phone", ALPHA_PHONE_RETYPED.to_owned(), &w.alpha),
        ("email", BRAVO_EMAIL_CORRECTED.to_owned(), &w.bravo),
        ("mobile_phone", CHARLIE_PHONE.to_owned(), &w.charlie),
    ] {
        let (status, body) = get(format!("lookup {item} {value}"), lookup(app, item, &value).await);
        assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(expected.as_str())), "{item}: {body}");
    }
    for (item, value) in [("email", BRAVO_EMAIL), ("email", UNKNOWN_EMAIL)] {
        let (status, body) = get(format!("lookup {item} {value}"), lookup(app, item, value).await);
        assert_eq!(status, StatusCode::NOT_FOUND, "{value} is not (or no longer) registered: {body}");
    }
    answers
}

// ---------------------------------------------------------------------------
// 1. At rest, 4. audit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn no_personal_value_is_on_disk_while_running_or_after_close() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: scans the bytes of the SQLite files and their write-ahead logs
    }
    let app = TestApp::new("at-rest-scan").await;
    let world = populate(&app).await;
    let data = data_dir(&app.dir);

    // Running: the newest pages are still in the write-ahead logs.
    let wal = std::fs::metadata(data.join("custos.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert!(wal > 0, "expected the data file's write-ahead log to hold the scenario's frames");
    assert_no_canary_on_disk(&data, &world, "while running");

    // Closed: the logs are checkpointed into the files.
    let dir = close(app);
    assert_no_canary_on_disk(&data_dir(&dir), &world, "after close");
}

#[tokio::test]
async fn audit_entries_hold_no_personal_values() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: reads the closed SQLite file directly with rusqlite
    }
    let app = TestApp::new("at-rest-audit").await;
    let world = populate(&app).await;
    let dir = close(app);

    let rows = dump(&data_db(&dir), "SELECT * FROM audit ORDER BY seq");
    // Not vacuous: every kind of act of the scenario is in the trail, and
    // the items are named.
    let operations: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    for op in ["api_key_create", "collect", "read", "lookup", "record_add", "record_read", "correct", "activity"] {
        assert!(operations.contains(op), "no {op:?} entry in the audit trail: {operations:?}");
    }
    assert!(operations.contains("service_create"), "{operations:?}");
    assert!(rows.iter().any(|r| r[6] == world.alpha && r[7].contains("email")), "items are named in the audit trail");

    let folded: Vec<String> = world.canaries.iter().map(|c| c.to_lowercase()).collect();
    for row in &rows {
        for column in row {
            let column = column.to_lowercase();
            for canary in &folded {
                assert!(!column.contains(canary.as_str()), "audit row {row:?} holds the personal value {canary:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Tampering
// ---------------------------------------------------------------------------

fn item_value(conn: &Connection, subject: &str, item: &str) -> Vec<u8> {
    conn.query_row("SELECT value FROM items WHERE subject_id = ?1 AND item = ?2", params![subject, item], |r| r.get(0))
        .unwrap()
}

fn set_item_value(conn: &Connection, subject: &str, item: &str, value: &[u8]) {
    let n = conn
        .execute("UPDATE items SET value = ?3 WHERE subject_id = ?1 AND item = ?2", params![subject, item, value])
        .unwrap();
    assert_eq!(n, 1);
}

fn integrity_failures(dir: &Scratch, subject: &str) -> Vec<String> {
    let conn = data_db(dir);
    let mut stmt = conn
        .prepare("SELECT outcome FROM audit WHERE operation = 'integrity_failure' AND subject_id = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map(params![subject], |r| r.get(0)).unwrap().collect::<rusqlite::Result<Vec<String>>>().unwrap()
}

/// The answer is the integrity problem and carries none of `foreign`.
fn assert_integrity_problem(what: &str, status: StatusCode, body: &Value, foreign: &[&str]) {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}: {body}");
    assert_eq!(body["type"], INTEGRITY, "{what}: {body}");
    assert_eq!(body["status"], 500, "{what}: {body}");
    let text = body.to_string();
    for value in foreign {
        assert!(!text.contains(value), "{what}: the answer leaks {value:?}: {text}");
    }
}

/// Three business operators with distinct names: A, B and C.
async fn three_operators(app: &TestApp) -> [String; 3] {
    [
        sign_up(app, "Tamper Subject Alpha", "tamper-alpha@example.com", "010-5101-0001").await,
        sign_up(app, "Tamper Subject Bravo", "tamper-bravo@example.com", "010-5101-0002").await,
        sign_up(app, "Tamper Subject Charlie", "tamper-charlie@example.com", "010-5101-0003").await,
    ]
}

async fn assert_reads_name(app: &TestApp, subject: &str, name: &str) {
    let (status, body) = read(app, subject, "purpose=member_management").await;
    assert_eq!((status, &body["items"]["name"]), (StatusCode::OK, &json!(name)), "{body}");
}

/// (a) A's name ciphertext copied onto B's name row: B's read fails closed,
/// even when B's key pointer is also redirected to A's key (the owner is in
/// the associated data, not only the key).
#[tokio::test]
async fn a_value_copied_to_another_subject_fails_closed() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: alters the SQLite file directly with rusqlite
    }
    let app = TestApp::new("tamper-copy").await;
    let [a, b, c] = three_operators(&app).await;
    let conn = data_db(&app.dir);
    let a_name = item_value(&conn, &a, "name");
    set_item_value(&conn, &b, "name", &a_name);

    for query in ["purpose=member_management&items=name", "purpose=member_management"] {
        let (status, body) = read(&app, &b, query).await;
        assert_integrity_problem("copied name", status, &body, &["Tamper Subject Alpha", "tamper-alpha"]);
    }
    assert_eq!(integrity_failures(&app.dir, &b).len(), 2, "each failed read is audited");

    let a_key: String = conn.query_row("SELECT profile_key FROM subjects WHERE id = ?1", [&a], |r| r.get(0)).unwrap();
    conn.execute("UPDATE subjects SET profile_key = ?2 WHERE id = ?1", params![b, a_key]).unwrap();
    let (status, body) = read(&app, &b, "purpose=member_management&items=name").await;
    assert_integrity_problem("copied name under the owner's key", status, &body, &["Tamper Subject Alpha"]);
    assert_eq!(integrity_failures(&app.dir, &b).len(), 3);

    // The source and a bystander are untouched.
    assert_reads_name(&app, &a, "Tamper Subject Alpha").await;
    assert_reads_name(&app, &c, "Tamper Subject Charlie").await;
    assert!(integrity_failures(&app.dir, &a).is_empty() && integrity_failures(&app.dir, &c).is_empty());
}

/// (b) A's e-mail ciphertext moved into A's name row: the name no longer
/// opens (the field is in the associated data); the e-mail row itself does.
#[tokio::test]
async fn a_value_moved_to_another_field_fails_closed() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: alters the SQLite file directly with rusqlite
    }
    let app = TestApp::new("tamper-field").await;
    let [a, b, _] = three_operators(&app).await;
    let conn = data_db(&app.dir);
    let a_email = item_value(&conn, &a, "email");
    set_item_value(&conn, &a, "name", &a_email);

    for query in ["purpose=member_management&items=name", "purpose=member_management"] {
        let (status, body) = read(&app, &a, query).await;
        assert_integrity_problem("moved e-mail", status, &body, &["tamper-alpha@example.com"]);
    }
    assert_eq!(integrity_failures(&app.dir, &a).len(), 2);
    let (status, body) = read(&app, &a, "purpose=member_management&items=email").await;
    assert_eq!((status, &body["items"]), (StatusCode::OK, &json!({"email": "tamper-alpha@example.com"})), "{body}");
    assert_reads_name(&app, &b, "Tamper Subject Bravo").await;
}

/// (c) One byte flipped — in the format byte, the nonce, the ciphertext and
/// the tag in turn — on a reopened instance: each read fails closed and is
/// audited; restoring the bytes makes the value readable again.
#[tokio::test]
async fn a_flipped_byte_fails_closed_after_reopen() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: alters the SQLite file directly with rusqlite
    }
    let app = TestApp::new("tamper-flip").await;
    let [a, b, _] = three_operators(&app).await;
    let dir = close(app);
    let original = item_value(&data_db(&dir), &a, "mobile_phone");
    let app = TestApp::in_folder(dir).await;

    let conn = data_db(&app.dir);
    let positions = [0, 1, 12, 13, original.len() / 2, original.len() - 16, original.len() - 1];
    for (n, &position) in positions.iter().enumerate() {
        let mut altered = original.clone();
        altered[position] ^= 0x01;
        set_item_value(&conn, &a, "mobile_phone", &altered);
        let (status, body) = read(&app, &a, "purpose=member_management").await;
        assert_integrity_problem(&format!("byte {position} flipped"), status, &body, &["+82105101"]);
        assert_eq!(integrity_failures(&app.dir, &a).len(), n + 1, "byte {position}: the failure is audited");
    }
    set_item_value(&conn, &a, "mobile_phone", &original);
    let (status, body) = read(&app, &a, "purpose=member_management").await;
    assert_eq!((status, &body["items"]["mobile_phone"]), (StatusCode::OK, &json!("+821051010001")), "{body}");
    assert_reads_name(&app, &b, "Tamper Subject Bravo").await;
}

/// Two records of one class of A (so under the same hold key) with their
/// values swapped.
async fn swapped_records(app: &TestApp) -> (String, String) {
    let [a, b, _] = three_operators(app).await;
    let r1 = add_record(app, &a, "payment_supply_records", "tamper record one").await;
    let r2 = add_record(app, &a, "payment_supply_records", "tamper record two").await;
    add_record(app, &b, "payment_supply_records", "tamper record of bravo").await;
    let conn = data_db(&app.dir);
    let value = |id: &str| -> Vec<u8> {
        conn.query_row("SELECT value FROM records WHERE id = ?1", [id], |r| r.get(0)).unwrap()
    };
    let (v1, v2) = (value(&r1), value(&r2));
    conn.execute("UPDATE records SET value = ?2 WHERE id = ?1", params![r1, v2]).unwrap();
    conn.execute("UPDATE records SET value = ?2 WHERE id = ?1", params![r2, v1]).unwrap();
    (a, b)
}

/// (d) Record values swapped between two records of the same class and key:
/// the list fails closed (the record id is in the associated data).
#[tokio::test]
async fn record_values_swapped_between_records_fail_closed() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: alters the SQLite file directly with rusqlite
    }
    let app = TestApp::new("tamper-records").await;
    let (a, b) = swapped_records(&app).await;
    let (status, body) = records(&app, &a).await;
    assert_integrity_problem("swapped records", status, &body, &["tamper record one", "tamper record two"]);
    let (status, body) = records(&app, &b).await;
    assert_eq!((status, &body["items"][0]["content"]), (StatusCode::OK, &json!("tamper record of bravo")), "{body}");
}

/// (d, audit) The same failure leaves an `integrity_failure` audit entry,
/// as item reads do.
#[tokio::test]

async fn record_values_swapped_between_records_are_audited() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: alters the SQLite file directly with rusqlite
    }
    let app = TestApp::new("tamper-records-audit").await;
    let (a, _) = swapped_records(&app).await;
    let (status, body) = records(&app, &a).await;
    assert_integrity_problem("swapped records", status, &body, &[]);
    assert_eq!(integrity_failures(&app.dir, &a).len(), 1, "the record integrity failure is not audited");
}

/// (e) A's profile key deleted from the key store, on a reopened instance:
/// A's items cannot be read (and are not replaced by anything), B's can.
#[tokio::test]
async fn a_deleted_profile_key_fails_closed_after_reopen() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: alters the SQLite key file directly with rusqlite
    }
    let app = TestApp::new("tamper-key").await;
    let [a, b, _] = three_operators(&app).await;
    let dir = close(app);
    let key: String =
        data_db(&dir).query_row("SELECT profile_key FROM subjects WHERE id = ?1", [&a], |r| r.get(0)).unwrap();
    let n = keys_db(&dir).execute("DELETE FROM data_keys WHERE id = ?1", [&key]).unwrap();
    assert_eq!(n, 1);
    let app = TestApp::in_folder(dir).await;

    let (status, body) = read(&app, &a, "purpose=member_management").await;
    assert_integrity_problem("deleted key", status, &body, &["Tamper Subject Alpha"]);
    let audited = integrity_failures(&app.dir, &a);
    assert_eq!(audited.len(), 1);
    assert!(audited[0].contains("key is gone"), "{audited:?}");
    assert_reads_name(&app, &b, "Tamper Subject Bravo").await;
}

// ---------------------------------------------------------------------------
// 3. Restart
// ---------------------------------------------------------------------------

/// The tables whose rows must survive a restart unchanged (audit apart:
/// it only grows).
const DURABLE_TABLES: &[&str] = &[
    "SELECT * FROM services ORDER BY id",
    "SELECT * FROM subjects ORDER BY id",
    "SELECT * FROM items ORDER BY subject_id, item",
    "SELECT * FROM blind_index ORDER BY scope, item, digest",
    "SELECT * FROM records ORDER BY id",
    "SELECT * FROM consents ORDER BY seq",
    "SELECT * FROM idempotency ORDER BY api_key, key",
];

fn durable_rows(dir: &Scratch) -> Vec<Vec<Vec<String>>> {
    let conn = data_db(dir);
    let mut all: Vec<_> = DURABLE_TABLES.iter().map(|sql| dump(&conn, sql)).collect();
    all.push(dump(&keys_db(dir), "SELECT * FROM data_keys ORDER BY id"));
    all
}

#[tokio::test]
async fn everything_acknowledged_survives_a_restart() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: dumps the SQLite files with rusqlite across a close
    }
    let app = TestApp::new("restart").await;
    let world = populate(&app).await;
    // A key scoped to Charlie's service, made before the restart.
    let service_key = app.key_for(Some(&world.service_c), &["member_management"]).await;
    let before = assert_reads(&app, &world).await;
    let audit_before = dump(&data_db(&app.dir), "SELECT * FROM audit ORDER BY seq");
    let rows_before = durable_rows(&app.dir);
    let api_keys_before = dump(&data_db(&app.dir), "SELECT * FROM api_keys ORDER BY id");

    let dir = close(app);
    let app = TestApp::in_folder(dir).await;

    // The audit trail kept every entry; the reopen added only its API key.
    let audit_after = dump(&data_db(&app.dir), "SELECT * FROM audit ORDER BY seq");
    assert_eq!(audit_after[..audit_before.len()], audit_before[..], "audit entries changed across the restart");
    let added: Vec<&str> = audit_after[audit_before.len()..].iter().map(|r| r[4].as_str()).collect();
    assert_eq!(added, ["api_key_create"]);
    // Nothing else changed; the activity time is among what survived.
    assert_eq!(durable_rows(&app.dir), rows_before);
    let api_keys_after = dump(&data_db(&app.dir), "SELECT * FROM api_keys ORDER BY id");
    assert_eq!(api_keys_after.len(), api_keys_before.len() + 1, "the reopen made one key");
    assert!(api_keys_before.iter().all(|k| api_keys_after.contains(k)), "an API key changed across the restart");
    let last_activity: String = data_db(&app.dir)
        .query_row("SELECT last_activity_at FROM subjects WHERE id = ?1", [&world.bravo], |r| r.get(0))
        .unwrap();
    assert_eq!(last_activity, bravo_login().to_string());

    // Every read, consent decision and look-up answers as before.
    let after = assert_reads(&app, &world).await;
    assert_eq!(after, before);

    // Keys made before still authenticate, with their scope.
    let (status, body) = app
        .send("GET", &format!("/v1/subjects/{}?purpose=member_management", world.member), Some(&service_key), None)
        .await;
    assert_eq!((status, &body["items"]["device_info"]), (StatusCode::OK, &json!(MEMBER_DEVICE)), "{body}");
    let (status, _) = app
        .send("GET", &format!("/v1/subjects/{}?purpose=member_management", world.alpha), Some(&service_key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a service key still does not reach platform subjects");

    // The unique indexes still hold, and the services still take members.
    let body = sign_up_body("business_operator", "Someone Else", ALPHA_EMAIL, "010-5202-0001", "long enough pw");
    let (status, body) = app.send("POST", "/v1/subjects", Some(&app.key), Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    for service in [&world.service_a, &world.service_c] {
        let (status, body) = app
            .send(
                "POST",
                "/v1/subjects",
                Some(&app.key),
                Some(json!({
                    "service": service,
                    "kind": "service_member",
                    "collection_point": "automatic_generation",
                    "source": "generated",
                    "items": {"device_info": "after restart"}
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

async fn open_engine(dir: &Scratch) -> Result<Engine, String> {
    let policy = custos_engine::policy::parse(BUNDLED_POLICY).unwrap();
    Engine::open(&engine_config(dir), policy).await.map(|(engine, _)| engine).map_err(|e| e.to_string())
}

/// A folder with one operator in it, closed.
async fn closed_folder(name: &str) -> (Scratch, String) {
    let app = TestApp::new(name).await;
    let id = sign_up(&app, "Root Key Subject", "root-key@example.com", "010-5303-0001").await;
    (close(app), id)
}

#[tokio::test]
async fn a_foreign_root_key_is_refused_and_harms_nothing() {
    use std::io::Write;
    let (dir, id) = closed_folder("foreign-root-key").await;
    let key_file = dir.0.join("root.key");
    let original = std::fs::read_to_string(&key_file).unwrap();

    std::fs::remove_file(&key_file).unwrap();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let fresh = RootKey::generate().unwrap().to_file_text();
    assert_ne!(fresh, original);
    options.open(&key_file).unwrap().write_all(fresh.as_bytes()).unwrap();

    let error = open_engine(&dir).await.expect_err("a foreign root key must be refused");
    assert!(error.contains("the root key does not belong to this data folder"), "{error}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), fresh, "the refused key file is left as it was");

    // The right key opens the folder as it was.
    std::fs::write(&key_file, &original).unwrap();
    let app = TestApp::in_folder(dir).await;
    assert_reads_name(&app, &id, "Root Key Subject").await;
}

#[tokio::test]
async fn a_missing_root_key_is_not_replaced() {
    let (dir, _) = closed_folder("missing-root-key").await;
    let key_file = dir.0.join("root.key");
    std::fs::remove_file(&key_file).unwrap();

    for attempt in 1..=2 {
        let error = open_engine(&dir).await.expect_err("a folder with data must not open without its key");
        assert!(error.contains("restore the key"), "attempt {attempt}: {error}");
        assert!(!key_file.exists(), "attempt {attempt}: a new root key was created");
    }
}
