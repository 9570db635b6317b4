//! `custos serve --demo`: a sample service to click through, **demo data
//! only**. On the first start of a fresh demo data folder it signs up
//! made-up operators (names start with "Demo", addresses at example.com),
//! one runs a service, they get records, consents and open rights
//! requests, and a privacy officer is enrolled with a known password (the
//! TOTP secret is printed). Everything goes through the engine's own
//! operations, as the API would, so it is stored, encrypted and audited
//! like real data.
//!
//! E-mail (the privacy center's sign-in codes, notices) goes to a catcher
//! inside the process: a small SMTP receiver on 127.0.0.1 that keeps the
//! last messages in memory and shows them at `/demo/mail`. Nothing leaves
//! the machine.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use custos_engine::requests::{NewAgent, NewComplaint, NewRequest, Verification};
use custos_engine::{Engine, NewInvitation, NewRecord, NewService, NewSubject, Zeroizing};
use jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::http::pages::{esc, page};

/// The demo privacy officer's password (demo data only).
pub const OFFICER_PASSWORD: &str = "demo officer passphrase";
/// The demo privacy officer's address.
pub const OFFICER_EMAIL: &str = "demo-officer@example.com";
/// Messages the catcher keeps.
const KEEP: usize = 50;

/// One caught message: recipients and the whole text.
#[derive(Clone)]
struct Caught {
    to: Vec<String>,
    data: String,
}

/// The messages caught so far, newest last.
#[derive(Clone, Default)]
pub struct Mailbox(Arc<Mutex<Vec<Caught>>>);

// Debug output never shows a message or a secret.
impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DemoAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAccounts").field("members", &self.member_emails.len()).finish_non_exhaustive()
    }
}

impl Mailbox {
    fn keep(&self, message: Caught) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.push(message);
        let extra = all.len().saturating_sub(KEEP);
        all.drain(..extra);
    }
}

/// Listens for SMTP on a free port of 127.0.0.1; answers the port.
pub async fn start_mail_catcher(mailbox: Mailbox) -> std::io::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mailbox = mailbox.clone();
            tokio::spawn(async move {
                let _ = converse(stream, mailbox).await;
            });
        }
    });
    Ok(port)
}

/// One SMTP conversation: accepts every message (no authentication, no
/// TLS: loopback only).
async fn converse(stream: tokio::net::TcpStream, mailbox: Mailbox) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 custos-demo ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-custos-demo\r\n250 8BITMIME\r\n"
        } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") || command == "RSET" {
            to.clear();
            b"250 ok\r\n"
        } else if command.starts_with("RCPT TO") {
            let address = line.trim_end()[8..].trim().trim_start_matches('<').trim_end_matches('>').to_owned();
            to.push(address);
            b"250 ok\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 go on\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line.trim_end() == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                if data.len() > 1 << 20 {
                    return Ok(());
                }
            }
            mailbox.keep(Caught { to: std::mem::take(&mut to), data });
            b"250 kept\r\n"
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        write.write_all(reply).await?;
    }
}

#[derive(Clone)]
struct MailState {
    mailbox: Mailbox,
    engine: Engine,
}

/// `GET /demo/mail`: the caught messages, newest first.
pub fn mail_router(mailbox: Mailbox, engine: Engine) -> Router {
    Router::new().route("/demo/mail", get(show_mail)).with_state(MailState { mailbox, engine })
}

async fn show_mail(State(state): State<MailState>) -> Response {
    let all = state.mailbox.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut body = String::from(
        "<p class=\"notice\">Demo only: the e-mail this demo instance sent, caught before it left the machine.</p>",
    );
    if all.is_empty() {
        body.push_str("<p>No message yet.</p>");
    }
    for m in all.iter().rev() {
        // Headers first, then the text: show the subject and the body.
        let (head, text) = m.data.split_once("\r\n\r\n").unwrap_or(("", &m.data));
        let subject = head.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("(no subject)");
        body.push_str(&format!(
            "<section class=\"card\"><h2>{}</h2><p class=\"hint\">To {}</p><blockquote>{}</blockquote></section>",
            esc(subject),
            esc(&m.to.join(", ")),
            esc(text.trim())
        ));
    }
    page(&state.engine.policy(), "Demo mailbox", &[], "", &body)
}

/// What the demo printed for the newcomer.
pub struct DemoAccounts {
    pub member_emails: Vec<String>,
    pub officer_totp_secret: String,
    pub officer_otpauth: String,
}

/// Fills a fresh demo data folder. Demo data only.
pub async fn seed(engine: &Engine, now: Timestamp) -> Result<DemoAccounts, String> {
    let e = |e: custos_engine::EngineError| e.to_string();
    let purposes = engine.policy().purposes.iter().map(|p| p.id.to_string()).collect();
    let key = engine.create_api_key(None, purposes, "demo".into(), now).await.map_err(e)?;
    let platform = engine.authenticate(&key.token, now).await.map_err(e)?;
    let people = [
        ("Demo Operator Kim", "demo-operator@example.com", "010-5550-0001", vec!["marketing"]),
        ("Demo Member Lee", "demo-member-1@example.com", "010-5550-0002", vec!["marketing"]),
        ("Demo Member Park", "demo-member-2@example.com", "010-5550-0003", vec![]),
        ("Demo Member Choi", "demo-member-3@example.com", "010-5550-0004", vec!["marketing"]),
    ];
    let mut ids = Vec::new();
    for (name, email, phone, consents) in &people {
        let created = engine
            .create_subject(
                &platform,
                NewSubject {
                    service: None,
                    kind: "business_operator".into(),
                    point: "business_operator_signup".into(),
                    source: "direct_entry".into(),
                    items: vec![
                        ("name".into(), (*name).into()),
                        ("email".into(), (*email).into()),
                        ("mobile_phone".into(), (*phone).into()),
                        ("password".into(), "demo password, not real".into()),
                    ],
                    consents: consents.iter().map(|c| (*c).to_owned()).collect(),
                },
                None,
                now,
            )
            .await
            .map_err(e)?;
        ids.push(created.id);
    }
    engine
        .create_service(
            &platform,
            NewService { operator: ids[0].clone(), point: None, source: "direct_entry".into(), items: Vec::new() },
            now,
        )
        .await
        .map_err(e)?;
    let today = now.strftime("%Y-%m-%d").to_string();
    for id in &ids[1..] {
        engine
            .add_record(
                &platform,
                id,
                NewRecord {
                    class: "payment_supply_records".into(),
                    record_date: today.clone(),
                    content: "Demo payment: fan-club membership, 9,900 KRW".into(),
                },
                now,
            )
            .await
            .map_err(e)?;
    }
    let invitation = engine
        .invite_staff(
            &platform,
            NewInvitation { email: OFFICER_EMAIL.into(), role: "privacy_officer".into(), service: None, subject: None },
            now,
        )
        .await
        .map_err(e)?;
    let enrolment = engine
        .accept_invitation(&invitation.token, Zeroizing::new(OFFICER_PASSWORD.to_owned()), now)
        .await
        .map_err(e)?;
    // Open requests in the queue: a correction by the member, and an
    // access request an agent sent with a letter of attorney.
    let request = |subject: &str, kind: &str, agent: Option<NewAgent>| NewRequest {
        kind: kind.into(),
        channel: "email".into(),
        jurisdiction: None,
        subject: subject.to_owned(),
        verification: if agent.is_some() { Verification::Staff } else { Verification::PlatformSession },
        agent,
        purposes: Vec::new(),
        corrections: if kind == "correction" {
            vec![("mobile_phone".into(), "010-5550-0099".into())]
        } else {
            Vec::new()
        },
        note: Some("Demo request".into()),
        received_on: None,
    };
    engine.file_request(&platform, request(&ids[2], "correction", None), now).await.map_err(e)?;
    let agent = NewAgent {
        name: "Demo Agent Jung".into(),
        contact: "demo-agent@example.com".into(),
        letter: b"Demo letter of attorney: Demo Member Choi authorises Demo Agent Jung to ask for a copy.".to_vec(),
        letter_type: "text/plain".into(),
    };
    // Staff log an agent's request: file it as the officer would, with
    // the platform key here (the demo has no officer session yet).
    engine.file_request(&platform, request(&ids[3], "access", Some(agent)), now).await.map_err(e)?;
    // A complaint received by e-mail at the inquiry point, kept three years.
    let complaint = NewComplaint {
        kind: "complaint".into(),
        channel: "email".into(),
        subject: Some(ids[0].clone()),
        collection_point: "business_operator_service_inquiry".into(),
        items: vec![
            ("name".into(), people[0].0.into()),
            ("company_name".into(), "Demo Company".into()),
            ("email".into(), people[0].1.into()),
            ("inquiry_body".into(), "Demo complaint: the fan-club fee was charged twice this month.".into()),
        ],
        keep_as: "complaint_dispute_records".into(),
        received_on: None,
    };
    engine.file_complaint(&platform, complaint, now).await.map_err(e)?;
    Ok(DemoAccounts {
        member_emails: people.iter().map(|p| p.1.to_owned()).collect(),
        officer_totp_secret: enrolment.totp_secret,
        officer_otpauth: enrolment.otpauth_uri,
    })
}
