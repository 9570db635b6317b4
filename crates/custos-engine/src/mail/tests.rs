//! The SMTP client against a scripted fake server on 127.0.0.1: the whole
//! dialogue, replies of every class, TLS both ways, and what never appears
//! in an error.

use std::collections::HashMap;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::*;

const RECIPIENT: &str = "alice@example.com";

/// How the fake server answers. Each reply is written as given (lines
/// joined with CRLF) plus a final CRLF.
#[derive(Clone)]
struct Script {
    greeting: &'static str,
    ehlo: &'static str,
    /// Replies by the first word of the command ("MAIL", "RCPT", "QUIT",
    /// …); "250 2.0.0 ok" otherwise ("354 …" for DATA, "221 2.0.0 bye" for
    /// QUIT).
    replies: HashMap<&'static str, &'static str>,
    /// The reply to the message after DATA.
    message: &'static str,
    /// Serves TLS: after a 220 to STARTTLS, or from the start if `implicit`.
    tls: Option<Arc<rustls::ServerConfig>>,
    implicit: bool,
}

impl Script {
    fn new() -> Script {
        Script {
            greeting: "220 fake.test ESMTP",
            ehlo: "250-fake.test greets you\r\n250-8BITMIME\r\n250 AUTH LOGIN PLAIN",
            replies: HashMap::from([("DATA", "354 end data with <CR><LF>.<CR><LF>")]),
            message: "250 2.0.0 queued as 1",
            tls: None,
            implicit: false,
        }
    }

    fn reply(mut self, verb: &'static str, reply: &'static str) -> Script {
        self.replies.insert(verb, reply);
        self
    }
}

/// What the server received: each command line, and each message's data
/// as one entry exactly as sent (dot-stuffed, without the final ".").
type Transcript = Vec<String>;

/// A one-connection fake server; its transcript when the client is done.
async fn fake_server(script: Script) -> (u16, JoinHandle<Transcript>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut transcript = Vec::new();
        let acceptor = script.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        if script.implicit {
            if let Ok(tls) = acceptor.unwrap().accept(tcp).await {
                converse(tls, &script, true, &mut transcript).await;
            }
        } else if let Some(tcp) = converse(tcp, &script, true, &mut transcript).await
            && let Ok(tls) = acceptor.unwrap().accept(tcp).await
        {
            converse(tls, &script, false, &mut transcript).await;
        }
        transcript
    });
    (port, server)
}

/// Serves commands until QUIT or the end of the stream; the stream back
/// if STARTTLS was agreed to.
async fn converse<S>(stream: S, script: &Script, greet: bool, transcript: &mut Transcript) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    if greet {
        write_reply(&mut stream, script.greeting).await;
    }
    loop {
        let line = read_line(&mut stream).await?;
        transcript.push(line.clone());
        let verb = line.split([' ', ':']).next().unwrap_or_default();
        let reply = match verb {
            "EHLO" => script.ehlo,
            "QUIT" => script.replies.get("QUIT").copied().unwrap_or("221 2.0.0 bye"),
            _ => script.replies.get(verb).copied().unwrap_or("250 2.0.0 ok"),
        };
        write_reply(&mut stream, reply).await;
        match verb {
            "DATA" if reply.starts_with("354") => {
                transcript.push(read_data(&mut stream).await?);
                write_reply(&mut stream, script.message).await;
            }
            "STARTTLS" if reply.starts_with("220") && script.tls.is_some() => return Some(stream.into_inner()),
            "QUIT" => return None,
            _ => {}
        }
    }
}

async fn write_reply<S: AsyncWrite + Unpin>(stream: &mut S, reply: &str) {
    stream.write_all(format!("{reply}\r\n").as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
}

async fn read_line<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Option<String> {
    let mut line = Vec::new();
    if stream.read_until(b'\n', &mut line).await.ok()? == 0 {
        return None;
    }
    let line = String::from_utf8(line).unwrap();
    Some(line.strip_suffix("\r\n").expect("the client ends lines with CRLF").to_owned())
}

async fn read_data<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Option<String> {
    let mut data = String::new();
    loop {
        let line = read_line(stream).await?;
        if line == "." {
            return Some(data);
        }
        data.push_str(&line);
        data.push_str("\r\n");
    }
}

fn config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        username: None,
        password: None,
        from: "custos@example.org".into(),
        helo_name: "custos.test".into(),
        timeout: Duration::from_secs(10),
    }
}

fn message() -> Message {
    Message {
        to: RECIPIENT.into(),
        subject: "Our policy changes".into(),
        body: "Hello Alice,\n\nthe policy changes.\n".into(),
    }
}

/// Sends `message` with `config` to a fake server playing `script`.
async fn exchange(script: Script, config: SmtpConfig, message: &Message) -> (Result<(), MailError>, Transcript) {
    let (port, server) = fake_server(script).await;
    let result = SmtpSender::new(SmtpConfig { port, ..config }).send(message).await;
    (result, server.await.unwrap())
}

fn assert_no_personal_data(error: &MailError) {
    let text = error.to_string();
    for secret in ["alice", "Alice", "example.com", "Hello", "pass"] {
        assert!(!text.contains(secret), "{secret:?} in {text:?}");
    }
}

#[tokio::test]
async fn delivers_with_the_whole_dialogue() {
    let (result, transcript) = exchange(Script::new(), config(0), &message()).await;
    assert_eq!(result, Ok(()));
    let data = "From: custos@example.org\r\nTo: alice@example.com\r\nSubject: Our policy changes\r\n\
                MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\
                \r\nHello Alice,\r\n\r\nthe policy changes.\r\n";
    assert_eq!(
        transcript,
        ["EHLO custos.test", "MAIL FROM:<custos@example.org>", "RCPT TO:<alice@example.com>", "DATA", data, "QUIT"]
    );
}

#[tokio::test]
async fn lines_starting_with_a_dot_are_stuffed_and_line_endings_become_crlf() {
    let message = Message { body: ".hidden\r\n.\rmiddle\n..two\nlast".into(), ..message() };
    let (result, transcript) = exchange(Script::new(), config(0), &message).await;
    assert_eq!(result, Ok(()));
    let body = transcript[4].split_once("\r\n\r\n").unwrap().1;
    assert_eq!(body, "..hidden\r\n..\r\nmiddle\r\n...two\r\nlast\r\n");
}

#[tokio::test]
async fn multi_line_replies_are_read_whole() {
    let script = Script::new()
        .reply("MAIL", "250-2.1.0 first\r\n250-2.1.0 second\r\n250 2.1.0 sender ok")
        .reply("RCPT", "250-ok\r\n250 really")
        .reply("DATA", "354-go\r\n354 on");
    let script = Script { greeting: "220-fake.test ESMTP\r\n220-no spam please\r\n220 ready", ..script };
    let (result, transcript) = exchange(script, config(0), &message()).await;
    assert_eq!(result, Ok(()));
    // A misread reply would put the client a step behind the server.
    assert_eq!(transcript.len(), 6, "{transcript:?}");
    assert_eq!(transcript.last().unwrap(), "QUIT");
}

#[tokio::test]
async fn a_4xx_at_rcpt_is_transient_and_quotes_nothing() {
    let script = Script::new().reply("RCPT", "451 4.3.0 <alice@example.com> mailbox busy, try later");
    let (result, transcript) = exchange(script, config(0), &message()).await;
    let error = result.unwrap_err();
    assert_eq!(error, MailError::Transient("the server answered RCPT TO with 451 4.3.0".into()));
    assert_no_personal_data(&error);
    assert_eq!(transcript.last().unwrap(), "QUIT", "the client still says goodbye");
    assert!(!transcript.contains(&"DATA".to_owned()));
}

#[tokio::test]
async fn a_5xx_at_rcpt_is_permanent() {
    let script = Script::new().reply("RCPT", "550 5.1.1 <alice@example.com>: Recipient address rejected");
    let (result, _) = exchange(script, config(0), &message()).await;
    let error = result.unwrap_err();
    assert_eq!(error, MailError::Permanent("the server answered RCPT TO with 550 5.1.1".into()));
    assert_no_personal_data(&error);
}

#[tokio::test]
async fn a_refused_message_is_permanent_and_not_quoted() {
    let script = Script { message: "554 5.7.1 message from Alice looks like spam", ..Script::new() };
    let (result, _) = exchange(script, config(0), &message()).await;
    let error = result.unwrap_err();
    assert_eq!(error, MailError::Permanent("the server answered the message with 554 5.7.1".into()));
    assert_no_personal_data(&error);
}

#[tokio::test]
async fn replies_before_the_recipient_are_quoted() {
    let script = Script::new().reply("MAIL", "553 5.7.1 sender not allowed to relay");
    let (result, transcript) = exchange(script, config(0), &message()).await;
    assert_eq!(
        result,
        Err(MailError::Permanent("the server answered MAIL FROM with 553 5.7.1: sender not allowed to relay".into()))
    );
    assert!(!transcript.iter().any(|line| line.starts_with("RCPT")));

    let script = Script { greeting: "421 4.3.2 too busy", ..Script::new() };
    let (result, _) = exchange(script, config(0), &message()).await;
    assert_eq!(result, Err(MailError::Transient("the server answered the greeting with 421 4.3.2: too busy".into())));
}

#[tokio::test]
async fn ehlo_refused_falls_back_to_helo() {
    let script = Script::new().reply("HELO", "250 fake.test");
    let script = Script { ehlo: "502 5.5.1 command not recognised", ..script };
    let (result, transcript) = exchange(script, config(0), &message()).await;
    assert_eq!(result, Ok(()));
    assert_eq!(transcript[..3], ["EHLO custos.test", "HELO custos.test", "MAIL FROM:<custos@example.org>"]);
}

#[tokio::test]
async fn a_quit_refused_after_acceptance_is_still_sent() {
    let script = Script::new().reply("QUIT", "421 4.4.2 closing anyway");
    let (result, _) = exchange(script, config(0), &message()).await;
    assert_eq!(result, Ok(()));
}

#[tokio::test]
async fn header_injection_is_refused_before_connecting() {
    // Nothing listens on this port: a refusal after connecting would be
    // a transient connection failure, not this.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let bad = [
        "alice@example.com\r\nBcc: eve@example.org",
        "alice@example.com\nBcc: eve@example.org",
        "alice@example.com> NOTIFY=NEVER",
        "<alice@example.com",
        "alice@example.com, eve@example.org",
        "alice example.com",
        "alice",
        "@example.com",
        "alice@",
        "",
    ];
    for to in bad {
        let to_bad = Message { to: to.into(), ..message() };
        let error = SmtpSender::new(config(port)).send(&to_bad).await.unwrap_err();
        assert!(
            matches!(&error, MailError::Permanent(m) if m.starts_with("the recipient address ")),
            "{to:?}: {error}"
        );
        assert_no_personal_data(&error);
        let from = SmtpConfig { from: to.into(), ..config(port) };
        let error = SmtpSender::new(from).send(&message()).await.unwrap_err();
        assert!(matches!(&error, MailError::Permanent(m) if m.starts_with("the sender address ")), "{to:?}: {error}");
    }
    let helo = SmtpConfig { helo_name: "custos.test\r\nRSET".into(), ..config(port) };
    assert!(matches!(SmtpSender::new(helo).send(&message()).await, Err(MailError::Permanent(_))));
}

#[tokio::test]
async fn a_subject_cannot_add_a_header() {
    let message = Message { subject: "Hi\r\nBcc: eve@example.org\nX-Evil: 1".into(), ..message() };
    let (result, transcript) = exchange(Script::new(), config(0), &message).await;
    assert_eq!(result, Ok(()));
    let headers = transcript[4].split_once("\r\n\r\n").unwrap().0;
    assert!(headers.contains("\r\nSubject: Hi  Bcc: eve@example.org X-Evil: 1\r\n"), "{headers}");
    assert!(!headers.lines().any(|line| line.starts_with("Bcc") || line.starts_with("X-Evil")));
}

#[tokio::test]
async fn a_non_ascii_subject_is_sent_as_encoded_words() {
    let message = Message { subject: "Grüße".into(), ..message() };
    let (result, transcript) = exchange(Script::new(), config(0), &message).await;
    assert_eq!(result, Ok(()));
    assert!(transcript[4].contains("\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"), "{}", transcript[4]);
}

#[test]
fn long_subjects_fold_into_short_encoded_words_that_decode_back() {
    let subject = "Änderung der Datenschutzerklärung: 🎉 ".repeat(8);
    let value = subject_value(&subject);
    let mut decoded = Vec::new();
    for word in value.split("\r\n ") {
        assert!(word.len() <= 75, "{word}");
        let payload = word.strip_prefix("=?UTF-8?B?").unwrap().strip_suffix("?=").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(payload).unwrap();
        // No character is split across two words.
        String::from_utf8(bytes.clone()).unwrap();
        decoded.extend(bytes);
    }
    assert_eq!(String::from_utf8(decoded).unwrap(), subject);
    // Plain ASCII that looks like an encoded word is encoded, so it is shown as written.
    assert_eq!(subject_value("=?UTF-8?B?SGk=?="), "=?UTF-8?B?PT9VVEYtOD9CP1NHaz0/PQ==?=");
    assert_eq!(subject_value("Plain"), "Plain");
}

#[tokio::test]
async fn a_non_ascii_body_is_8bit_with_8bitmime_else_base64() {
    let message = Message { body: "Grüße, Alice\n.\n".into(), ..message() };
    let (result, transcript) = exchange(Script::new(), config(0), &message).await;
    assert_eq!(result, Ok(()));
    assert_eq!(transcript[1], "MAIL FROM:<custos@example.org> BODY=8BITMIME");
    let (headers, body) = transcript[4].split_once("\r\n\r\n").unwrap();
    assert!(headers.ends_with("Content-Transfer-Encoding: 8bit"), "{headers}");
    assert_eq!(body, "Grüße, Alice\r\n..\r\n");

    let script = Script { ehlo: "250-fake.test\r\n250 SIZE 1000000", ..Script::new() };
    let (result, transcript) = exchange(script, config(0), &message).await;
    assert_eq!(result, Ok(()));
    assert_eq!(transcript[1], "MAIL FROM:<custos@example.org>");
    let (headers, body) = transcript[4].split_once("\r\n\r\n").unwrap();
    assert!(headers.ends_with("Content-Transfer-Encoding: base64"), "{headers}");
    let decoded = base64::engine::general_purpose::STANDARD.decode(body.replace("\r\n", "")).unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), "Grüße, Alice\r\n.\r\n");
}

#[tokio::test]
async fn a_non_ascii_address_needs_smtputf8() {
    let message = Message { to: "jörg@example.de".into(), ..message() };
    let (result, _) = exchange(Script::new(), config(0), &message).await;
    assert!(matches!(result, Err(MailError::Permanent(m)) if m.contains("SMTPUTF8")));

    let script = Script { ehlo: "250-fake.test\r\n250-8BITMIME\r\n250 SMTPUTF8", ..Script::new() };
    let (result, transcript) = exchange(script, config(0), &message).await;
    assert_eq!(result, Ok(()));
    assert_eq!(transcript[1], "MAIL FROM:<custos@example.org> SMTPUTF8");
    assert_eq!(transcript[2], "RCPT TO:<jörg@example.de>");
}

fn with_credentials(config: SmtpConfig) -> SmtpConfig {
    SmtpConfig { username: Some("user".into()), password: Some(Zeroizing::new("pass".into())), ..config }
}

#[tokio::test]
async fn auth_plain_over_loopback_sends_the_right_base64() {
    let script = Script::new().reply("AUTH", "235 2.7.0 authenticated");
    let (result, transcript) = exchange(script, with_credentials(config(0)), &message()).await;
    assert_eq!(result, Ok(()));
    // base64("\0user\0pass")
    assert_eq!(transcript[..3], ["EHLO custos.test", "AUTH PLAIN AHVzZXIAcGFzcw==", "MAIL FROM:<custos@example.org>"]);
}

#[tokio::test]
async fn auth_asked_again_gets_the_response_alone() {
    let script = Script::new().reply("AUTH", "334 ").reply("AHVzZXIAcGFzcw==", "235 2.7.0 authenticated");
    let (result, transcript) = exchange(script, with_credentials(config(0)), &message()).await;
    assert_eq!(result, Ok(()));
    assert_eq!(transcript[1..3], ["AUTH PLAIN AHVzZXIAcGFzcw==", "AHVzZXIAcGFzcw=="]);
}

#[tokio::test]
async fn auth_failures_are_clear_and_hold_no_password() {
    let script = Script::new().reply("AUTH", "535 5.7.8 authentication credentials invalid");
    let (result, transcript) = exchange(script, with_credentials(config(0)), &message()).await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        MailError::Permanent(
            "the server answered AUTH PLAIN with 535 5.7.8: authentication credentials invalid".into()
        )
    );
    assert_no_personal_data(&error);
    assert!(!transcript.iter().any(|line| line.starts_with("MAIL")));

    let script = Script { ehlo: "250-fake.test\r\n250 AUTH LOGIN", ..Script::new() };
    let (result, _) = exchange(script, with_credentials(config(0)), &message()).await;
    assert!(matches!(result, Err(MailError::Permanent(m)) if m.contains("does not offer AUTH PLAIN")));

    let half = SmtpConfig { password: None, ..with_credentials(config(1)) };
    let result = SmtpSender::new(half).send(&message()).await;
    assert!(matches!(result, Err(MailError::Permanent(m)) if m.contains("not both")));
}

#[test]
fn credentials_go_in_plain_text_only_to_loopback() {
    for (ip, loopback) in [
        ("127.0.0.1", true),
        ("127.1.2.3", true),
        ("::1", true),
        ("::ffff:127.0.0.1", true),
        ("192.0.2.1", false),
        ("::ffff:192.0.2.1", false),
        ("2001:db8::1", false),
    ] {
        assert_eq!(is_loopback(ip.parse().unwrap()), loopback, "{ip}");
    }
}

#[tokio::test]
async fn a_silent_server_times_out_as_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let _connection = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let config = SmtpConfig { timeout: Duration::from_millis(200), ..config(port) };
    let result = SmtpSender::new(config).send(&message()).await;
    server.abort();
    assert_eq!(result, Err(MailError::Transient("timed out after 200 ms (the greeting)".into())));
}

#[tokio::test]
async fn no_server_is_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let result = SmtpSender::new(config(port)).send(&message()).await;
    assert!(matches!(result, Err(MailError::Transient(m)) if m.starts_with("cannot connect to 127.0.0.1:")));
}

#[tokio::test]
async fn garbage_replies_are_transient() {
    let script = Script { greeting: "hello there", ..Script::new() };
    let (result, _) = exchange(script, config(0), &message()).await;
    assert_eq!(result, Err(MailError::Transient("the server sent a malformed reply (the greeting)".into())));
}

#[tokio::test]
async fn starttls_not_offered_is_transient_and_nothing_is_sent() {
    let config = SmtpConfig { security: Security::StartTls, ..with_credentials(config(0)) };
    let (result, transcript) = exchange(Script::new(), config, &message()).await;
    assert_eq!(
        result,
        Err(MailError::Transient(
            "the server does not offer STARTTLS, which the configuration requires (security = start_tls)".into()
        ))
    );
    assert_eq!(transcript, ["EHLO custos.test", "QUIT"]);
}

/// A certificate for 127.0.0.1: the server's configuration, and a client
/// configuration that trusts it.
fn throwaway_tls() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

const EHLO_WITH_STARTTLS: &str = "250-fake.test\r\n250-STARTTLS\r\n250 AUTH PLAIN";

#[tokio::test]
async fn starttls_upgrades_then_says_ehlo_again() {
    let (server_tls, client_tls) = throwaway_tls();
    let script = Script { ehlo: EHLO_WITH_STARTTLS, tls: Some(server_tls), ..Script::new() }
        .reply("STARTTLS", "220 2.0.0 ready to start TLS")
        .reply("AUTH", "235 2.7.0 ok");
    let (port, server) = fake_server(script).await;
    let config = SmtpConfig { security: Security::StartTls, ..with_credentials(config(port)) };
    let result = SmtpSender::with_tls_config(config, client_tls).send(&message()).await;
    assert_eq!(result, Ok(()));
    let transcript = server.await.unwrap();
    assert_eq!(
        transcript[..5],
        [
            "EHLO custos.test",
            "STARTTLS",
            "EHLO custos.test",
            "AUTH PLAIN AHVzZXIAcGFzcw==",
            "MAIL FROM:<custos@example.org>"
        ]
    );
    assert_eq!(transcript.last().unwrap(), "QUIT");
}

#[tokio::test]
async fn data_sent_with_the_starttls_reply_is_refused() {
    let (server_tls, client_tls) = throwaway_tls();
    let script = Script { ehlo: EHLO_WITH_STARTTLS, tls: Some(server_tls), ..Script::new() }
        .reply("STARTTLS", "220 2.0.0 go ahead\r\n250 2.0.0 injected");
    let (port, server) = fake_server(script).await;
    let config = SmtpConfig { security: Security::StartTls, ..config(port) };
    let result = SmtpSender::with_tls_config(config, client_tls).send(&message()).await;
    // The stray line arrives with the 220 or during the handshake: refused either way.
    assert!(matches!(result, Err(MailError::Transient(_))), "{result:?}");
    let transcript = server.await.unwrap();
    assert!(!transcript.iter().any(|line| line.starts_with("MAIL")));
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let (server_tls, client_tls) = throwaway_tls();
    let script = Script { tls: Some(server_tls), implicit: true, ..Script::new() };
    let (port, server) = fake_server(script).await;
    let config = SmtpConfig { security: Security::Tls, ..config(port) };
    let result = SmtpSender::with_tls_config(config, client_tls).send(&message()).await;
    assert_eq!(result, Ok(()));
    let transcript = server.await.unwrap();
    assert_eq!(transcript[..2], ["EHLO custos.test", "MAIL FROM:<custos@example.org>"]);
    assert_eq!(transcript.len(), 6);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_handshake() {
    let (server_tls, _) = throwaway_tls();
    let script = Script { tls: Some(server_tls), implicit: true, ..Script::new() };
    let (port, server) = fake_server(script).await;
    // The built-in roots do not know the throwaway certificate.
    let config = SmtpConfig { security: Security::Tls, ..with_credentials(config(port)) };
    let result = SmtpSender::new(config).send(&message()).await;
    assert!(
        matches!(&result, Err(MailError::Transient(m)) if m.starts_with("the TLS handshake with the mail server failed")),
        "{result:?}"
    );
    assert!(server.await.unwrap().is_empty());
}

#[test]
fn debug_shows_no_password_address_or_body() {
    let config = with_credentials(config(25));
    let shown = format!("{config:?}");
    assert!(shown.contains("password: Some(\"<redacted>\")") && !shown.contains("pass\""), "{shown}");
    let shown = format!("{:?}", SmtpSender::new(config));
    assert!(!shown.contains("\"pass\""), "{shown}");
    let shown = format!("{:?}", message());
    assert_eq!(shown, "Message { subject: \"Our policy changes\", .. }");
}

#[test]
fn security_reads_from_snake_case() {
    let read = |s: &str| serde_json::from_str::<Security>(s).unwrap();
    assert_eq!(read("\"none\""), Security::None);
    assert_eq!(read("\"start_tls\""), Security::StartTls);
    assert_eq!(read("\"tls\""), Security::Tls);
}

#[test]
fn reply_lines_parse() {
    assert_eq!(parse_reply_line("250 ok"), Some((250, true, "ok")));
    assert_eq!(parse_reply_line("250-more"), Some((250, false, "more")));
    assert_eq!(parse_reply_line("354"), Some((354, true, "")));
    for bad in ["", "25", "hello", "650 no", "250_x", "2a0 no"] {
        assert_eq!(parse_reply_line(bad), None, "{bad:?}");
    }
    let reply = |line: &str| Reply { code: 550, lines: vec![line.to_owned()] };
    assert_eq!(reply("5.1.1 no such user").enhanced_code(), Some("5.1.1"));
    assert_eq!(reply("5.1 no").enhanced_code(), None);
    assert_eq!(reply("no such user").enhanced_code(), None);
    assert_eq!(reply("5.1.1 no\tsuch \u{7}user").quoted_text(), "nosuch user");
}

#[test]
fn extensions_are_read_from_ehlo() {
    let reply = |lines: &[&str]| Reply { code: 250, lines: lines.iter().map(|l| l.to_string()).collect() };
    let all = reply(&["fake.test STARTTLS", "starttls", "8bitmime", "SMTPUTF8", "AUTH LOGIN PLAIN"]);
    assert_eq!(
        Extensions::from_ehlo(&all),
        Extensions { starttls: true, auth_plain: true, eight_bit_mime: true, smtputf8: true }
    );
    // The first line is the server's name, not an extension.
    assert_eq!(Extensions::from_ehlo(&reply(&["STARTTLS"])), Extensions::default());
    assert!(Extensions::from_ehlo(&reply(&["x", "AUTH=PLAIN"])).auth_plain);
    assert!(!Extensions::from_ehlo(&reply(&["x", "AUTH LOGIN CRAM-MD5"])).auth_plain);
}

#[test]
fn the_send_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let sender = SmtpSender::new(config(25));
    let message = message();
    assert_send(&sender.send(&message));
}
