//! Sending e-mail over SMTP (RFC 5321) for the engine's outbox: one
//! connection per message, every network step under the configured timeout.
//!
//! A small client written for this one job. What it keeps:
//!
//! - **no personal data in an error.** Errors name the step and the server's
//!   reply code, never the recipient address or the body. A server's reply
//!   text is quoted only for steps before the recipient was sent (greeting,
//!   EHLO, STARTTLS, AUTH, MAIL FROM): a refusal of RCPT TO or of the message
//!   often echoes the address. Nothing is logged.
//! - **no header injection.** Addresses with line breaks, spaces, angle
//!   brackets or list separators are refused before connecting; the subject's
//!   control characters become spaces, and a subject that is not plain ASCII
//!   is sent as RFC 2047 encoded words.
//! - **credentials only over TLS**, or to a loopback address (a local relay
//!   or a test), judged by the address actually connected to.
//! - **accepted means sent.** Once the server accepted the message (250 after
//!   the data), `send` succeeds whatever QUIT does, so a retry never delivers
//!   it twice.
//!
//! 4xx replies, connection failures, TLS failures and timeouts are
//! [`MailError::Transient`] (the outbox tries again later); 5xx replies and
//! what no retry can fix (an invalid address, credentials over plain text)
//! are [`MailError::Permanent`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;
use zeroize::Zeroizing;

#[cfg(test)]
mod tests;

/// How the connection to the mail server is protected.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain text throughout: for a relay on the same host. Credentials are
    /// sent only to a loopback address.
    None,
    /// A plain connection upgraded with STARTTLS before anything else
    /// (usually port 587). A server that does not offer it is not used.
    StartTls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

/// Where and how to send. The server's certificate is checked against
/// Mozilla's root certificates (built in, from `webpki-roots`).
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// AUTH PLAIN with `password` when both are set.
    pub username: Option<String>,
    pub password: Option<Zeroizing<String>>,
    /// The envelope sender and the `From:` header: a bare address.
    pub from: String,
    /// The name this client gives in EHLO (its own host name).
    pub helo_name: String,
    /// The limit of each network step (connecting, the TLS handshake, each
    /// command and its reply, the message), not of the whole exchange.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let SmtpConfig { host, port, security, username, password, from, helo_name, timeout } = self;
        f.debug_struct("SmtpConfig")
            .field("host", host)
            .field("port", port)
            .field("security", security)
            .field("username", username)
            .field("password", &password.as_ref().map(|_| "<redacted>"))
            .field("from", from)
            .field("helo_name", helo_name)
            .field("timeout", timeout)
            .finish()
    }
}

/// One plain-text message to one recipient.
pub struct Message {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl fmt::Debug for Message {
    /// The subject only: the address and the body are personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message").field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// Why a message was not sent. The text never contains the recipient
/// address, the body or the credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Worth trying again later: a 4xx reply, no connection, a failed TLS
    /// handshake, a timeout, a server that misbehaved.
    #[error("mail not sent, try again later: {0}")]
    Transient(String),
    /// Trying again will not help: a 5xx reply, an invalid address, a
    /// configuration this client refuses.
    #[error("mail not sent: {0}")]
    Permanent(String),
}

/// Sends messages with one configuration; cheap to share.
pub struct SmtpSender {
    config: SmtpConfig,
    /// The TLS client, or why none could be built (then TLS sends fail).
    tls: Result<tokio_rustls::TlsConnector, String>,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Reply lines longer than this are refused (RFC 5321 §4.5.3.1.5 allows 512
/// octets; servers exceed it in their greeting text).
const MAX_REPLY_LINE: usize = 2048;
/// A reply of more lines than this is refused, so a hostile server cannot
/// make the client collect without end.
const MAX_REPLY_LINES: usize = 128;
/// Body lines longer than this (in octets) are sent base64-encoded: a line
/// of SMTP text is at most 1,000 octets with its CRLF and a stuffed dot.
const MAX_BODY_LINE: usize = 990;
/// How much of a server's reply text an error quotes.
const MAX_QUOTED: usize = 200;

impl SmtpSender {
    pub fn new(config: SmtpConfig) -> Self {
        let tls = default_tls_config().map(tokio_rustls::TlsConnector::from);
        SmtpSender { config, tls }
    }

    /// A sender trusting other roots than the built-in ones (tests: a
    /// throwaway certificate authority).
    #[cfg(test)]
    fn with_tls_config(config: SmtpConfig, tls: Arc<rustls::ClientConfig>) -> Self {
        SmtpSender { config, tls: Ok(tokio_rustls::TlsConnector::from(tls)) }
    }

    /// Delivers `message` to the configured server: connect, (TLS), EHLO,
    /// (AUTH), MAIL FROM, RCPT TO, DATA, QUIT.
    pub async fn send(&self, message: &Message) -> Result<(), MailError> {
        let config = &self.config;
        check_address(&config.from, "the sender address")?;
        check_address(&message.to, "the recipient address")?;
        check_helo_name(&config.helo_name)?;
        let credentials = self.credentials()?;

        let tcp = within(config.timeout, Stage::Connect, async {
            TcpStream::connect((config.host.as_str(), config.port))
                .await
                .map_err(|e| MailError::Transient(format!("cannot connect to {}:{}: {e}", config.host, config.port)))
        })
        .await?;
        let loopback = tcp.peer_addr().is_ok_and(|peer| is_loopback(peer.ip()));
        match config.security {
            Security::None => {
                if credentials.is_some() && !loopback {
                    return Err(MailError::Permanent(
                        "refusing to send the SMTP password over an unencrypted connection to a host that is not a \
                         loopback address: set security to start_tls or tls"
                            .into(),
                    ));
                }
                self.session(Conn::new(tcp, config.timeout), false, message).await
            }
            Security::StartTls => {
                let tls = self.start_tls(Conn::new(tcp, config.timeout)).await?;
                self.session(Conn::new(tls, config.timeout), true, message).await
            }
            Security::Tls => {
                let tls = self.handshake(tcp).await?;
                self.session(Conn::new(tls, config.timeout), false, message).await
            }
        }
    }

    /// The username and password, both or neither.
    fn credentials(&self) -> Result<Option<(&str, &str)>, MailError> {
        match (&self.config.username, &self.config.password) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) => {
                // AUTH PLAIN separates its fields with NUL.
                if username.contains('\0') || password.contains('\0') {
                    return Err(MailError::Permanent("the SMTP username or password contains a NUL character".into()));
                }
                Ok(Some((username, password)))
            }
            _ => Err(MailError::Permanent("the SMTP configuration sets a username or a password, not both".into())),
        }
    }

    /// On a plain connection: greeting, EHLO, STARTTLS, then the handshake.
    async fn start_tls(&self, mut conn: Conn<TcpStream>) -> Result<TlsStream<TcpStream>, MailError> {
        if let Err(e) = self.offer_start_tls(&mut conn).await {
            conn.quit().await;
            return Err(e);
        }
        self.handshake(conn.stream).await
    }

    async fn offer_start_tls(&self, conn: &mut Conn<TcpStream>) -> Result<(), MailError> {
        greet(conn).await?;
        let extensions = hello(conn, &self.config.helo_name).await?;
        if !extensions.starttls {
            // Transient: a server that stopped offering it, or someone on the
            // path who strips it, may be gone on the next try; the message
            // itself is fine.
            return Err(MailError::Transient(
                "the server does not offer STARTTLS, which the configuration requires (security = start_tls)".into(),
            ));
        }
        expect(Stage::StartTls, conn.command(Stage::StartTls, "STARTTLS").await?, &[220])?;
        if !conn.pending.is_empty() {
            // Bytes sent before the handshake would be taken as if they came
            // over TLS (the STARTTLS command injection of CVE-2011-0411).
            conn.broken = true;
            return Err(MailError::Transient("the server sent data after agreeing to STARTTLS".into()));
        }
        Ok(())
    }

    async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, MailError> {
        let connector = self.tls.as_ref().map_err(|e| MailError::Permanent(format!("TLS is unavailable: {e}")))?;
        let name = ServerName::try_from(self.config.host.clone())
            .map_err(|_| MailError::Permanent("the mail server's host is not a valid name for TLS".into()))?;
        within(self.config.timeout, Stage::TlsHandshake, async {
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| MailError::Transient(format!("the TLS handshake with the mail server failed: {e}")))
        })
        .await
    }

    /// Delivers over `conn`, then says QUIT whatever happened (unless the
    /// connection is unusable). `greeted`: the greeting was read before a
    /// STARTTLS upgrade, and is not repeated after it.
    async fn session<S>(&self, mut conn: Conn<S>, greeted: bool, message: &Message) -> Result<(), MailError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let result = self.deliver(&mut conn, greeted, message).await;
        conn.quit().await;
        result
    }

    async fn deliver<S>(&self, conn: &mut Conn<S>, greeted: bool, message: &Message) -> Result<(), MailError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = &self.config;
        if !greeted {
            greet(conn).await?;
        }
        let extensions = hello(conn, &config.helo_name).await?;

        let body = Body::new(&message.body, extensions.eight_bit_mime);
        let mut mail_from = format!("MAIL FROM:<{}>", config.from);
        if body.encoding == Encoding::EightBit {
            mail_from.push_str(" BODY=8BITMIME");
        }
        if !config.from.is_ascii() || !message.to.is_ascii() {
            if !extensions.smtputf8 {
                return Err(MailError::Permanent(
                    "an address has non-ASCII characters and the server does not offer SMTPUTF8".into(),
                ));
            }
            mail_from.push_str(" SMTPUTF8");
        }

        if let Some((username, password)) = self.credentials()? {
            authenticate(conn, &extensions, username, password).await?;
        }
        expect(Stage::MailFrom, conn.command(Stage::MailFrom, &mail_from).await?, &[250])?;
        let rcpt_to = format!("RCPT TO:<{}>", message.to);
        expect(Stage::RcptTo, conn.command(Stage::RcptTo, &rcpt_to).await?, &[250, 251])?;
        expect(Stage::Data, conn.command(Stage::Data, "DATA").await?, &[354])?;
        let content = compose(&config.from, &message.to, &message.subject, &body);
        conn.send(Stage::Message, &dot_stuffed(&content)).await?;
        expect(Stage::Message, conn.reply(Stage::Message).await?, &[250])?;
        Ok(())
    }
}

/// TLS 1.2 and 1.3 with aws-lc-rs, Mozilla's roots, no client certificate.
fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Loopback, IPv4-mapped IPv6 (`::ffff:127.0.0.1`) included.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Refuses what could break out of `MAIL FROM:<…>`, `RCPT TO:<…>` or a
/// header, and what is plainly no address. The error names `what`, never
/// the value.
fn check_address(address: &str, what: &str) -> Result<(), MailError> {
    let problem = if address.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("contains a line break, a space or a control character")
    } else if address.contains(['<', '>', ',', ';', '"', '(', ')', '\\']) {
        Some("contains a character this sender does not put in an address (< > , ; \" ( ) \\)")
    } else if address.len() > 254 {
        Some("is longer than 254 octets")
    } else {
        match address.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => None,
            _ => Some("is not of the form local@domain"),
        }
    };
    match problem {
        Some(problem) => Err(MailError::Permanent(format!("{what} {problem}"))),
        None => Ok(()),
    }
}

fn check_helo_name(name: &str) -> Result<(), MailError> {
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(MailError::Permanent("the HELO name must be 1 to 255 printable ASCII characters".into()));
    }
    Ok(())
}

/// A step of the exchange, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Connect,
    TlsHandshake,
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    Message,
    Quit,
}

impl Stage {
    /// Whether the server's reply text may be quoted in an error: not once
    /// the recipient was sent, as replies from then on may echo it or the
    /// message.
    fn may_quote_reply(self) -> bool {
        !matches!(self, Stage::RcptTo | Stage::Data | Stage::Message | Stage::Quit)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connecting",
            Stage::TlsHandshake => "the TLS handshake",
            Stage::Greeting => "the greeting",
            Stage::Ehlo => "EHLO",
            Stage::Helo => "HELO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH PLAIN",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "the message",
            Stage::Quit => "QUIT",
        })
    }
}

/// Runs `step` under `timeout`; running out is a transient failure.
async fn within<T>(
    timeout: Duration,
    stage: Stage,
    step: impl Future<Output = Result<T, MailError>>,
) -> Result<T, MailError> {
    match tokio::time::timeout(timeout, step).await {
        Ok(result) => result,
        Err(_) => Err(MailError::Transient(format!("timed out after {} ms ({stage})", timeout.as_millis()))),
    }
}

/// A server's reply: its code and the text of each line.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// The RFC 3463 enhanced status code opening the first line, if any
    /// ("5.1.1").
    fn enhanced_code(&self) -> Option<&str> {
        let word = self.lines.first()?.split_whitespace().next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        let well_formed = matches!(class, "2" | "4" | "5")
            && rest.len() == 2
            && rest.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
        well_formed.then_some(word)
    }

    /// The reply text for an error: printable ASCII, shortened.
    fn quoted_text(&self) -> String {
        let joined = self.lines.join(" ");
        let text = joined.trim_start();
        let text = self.enhanced_code().and_then(|code| text.strip_prefix(code)).unwrap_or(text);
        let text: String = text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(MAX_QUOTED).collect();
        text.trim().to_owned()
    }
}

/// One reply line: its code, whether it is the last line, its text.
fn parse_reply_line(line: &str) -> Option<(u16, bool, &str)> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !(b'2'..=b'5').contains(&bytes[0]) || !bytes[1..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = line[..3].parse().ok()?;
    match bytes.get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

/// `reply` if its code is one of `accepted`, else the refusal as an error.
fn expect(stage: Stage, reply: Reply, accepted: &[u16]) -> Result<Reply, MailError> {
    if accepted.contains(&reply.code) {
        return Ok(reply);
    }
    let unexpected = if matches!(reply.code / 100, 4 | 5) { "" } else { "an unexpected " };
    let mut message = format!("the server answered {stage} with {unexpected}{}", reply.code);
    if let Some(code) = reply.enhanced_code() {
        message.push(' ');
        message.push_str(code);
    }
    if stage.may_quote_reply() {
        let text = reply.quoted_text();
        if !text.is_empty() {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    // An unexpected success or intermediate code is a confused server, not
    // a verdict on the message.
    Err(if reply.code / 100 == 5 { MailError::Permanent(message) } else { MailError::Transient(message) })
}

/// One SMTP connection: the stream and what was read past the last line.
struct Conn<S> {
    stream: S,
    pending: Vec<u8>,
    timeout: Duration,
    /// Set once the connection failed (I/O, timeout, a malformed reply):
    /// QUIT is not tried on it.
    broken: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S, timeout: Duration) -> Self {
        Conn { stream, pending: Vec::new(), timeout, broken: false }
    }

    /// Writes `bytes` whole.
    async fn send(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), MailError> {
        let stream = &mut self.stream;
        let result = within(self.timeout, stage, async move {
            stream.write_all(bytes).await.map_err(|e| io_failure(stage, &e))?;
            stream.flush().await.map_err(|e| io_failure(stage, &e))
        })
        .await;
        self.broken |= result.is_err();
        result
    }

    /// Reads one reply, all its lines.
    async fn reply(&mut self, stage: Stage) -> Result<Reply, MailError> {
        let timeout = self.timeout;
        let result = within(timeout, stage, self.read_reply(stage)).await;
        self.broken |= result.is_err();
        result
    }

    /// Sends `line` and reads the reply. The line may hold credentials: its
    /// copy with the CRLF is wiped after use.
    async fn command(&mut self, stage: Stage, line: &str) -> Result<Reply, MailError> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(line.len() + 2));
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.send(stage, &bytes).await?;
        self.reply(stage).await
    }

    /// Says goodbye if the connection still works; the answer does not
    /// matter any more.
    async fn quit(&mut self) {
        if self.broken {
            return;
        }
        if self.command(Stage::Quit, "QUIT").await.is_ok() {
            // Closes TLS with its close_notify; a plain socket just shuts.
            let _ = tokio::time::timeout(self.timeout, self.stream.shutdown()).await;
        }
    }

    async fn read_reply(&mut self, stage: Stage) -> Result<Reply, MailError> {
        let malformed = || MailError::Transient(format!("the server sent a malformed reply ({stage})"));
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(stage).await?;
            let (code, last, text) = parse_reply_line(&line).ok_or_else(malformed)?;
            let first = *lines.first().map(|(code, _)| code).unwrap_or(&code);
            if code != first {
                return Err(malformed());
            }
            lines.push((code, text.to_owned()));
            if last {
                return Ok(Reply { code, lines: lines.into_iter().map(|(_, text)| text).collect() });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(MailError::Transient(format!(
                    "the server's reply has more than {MAX_REPLY_LINES} lines ({stage})"
                )));
            }
        }
    }

    /// One line without its line ending (CRLF, or a bare LF from a lenient
    /// server).
    async fn read_line(&mut self, stage: Stage) -> Result<String, MailError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > MAX_REPLY_LINE {
                    break;
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.pending.len() > MAX_REPLY_LINE {
                break;
            }
            let mut chunk = [0u8; 1024];
            let n = self.stream.read(&mut chunk).await.map_err(|e| io_failure(stage, &e))?;
            if n == 0 {
                return Err(MailError::Transient(format!("the server closed the connection ({stage})")));
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
        Err(MailError::Transient(format!("the server sent a line longer than {MAX_REPLY_LINE} octets ({stage})")))
    }
}

fn io_failure(stage: Stage, error: &std::io::Error) -> MailError {
    MailError::Transient(format!("connection failed ({stage}): {error}"))
}

/// The greeting; 220 or a refusal.
async fn greet<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>) -> Result<(), MailError> {
    expect(Stage::Greeting, conn.reply(Stage::Greeting).await?, &[220]).map(drop)
}

/// What the server offers, from its EHLO reply.
#[derive(Debug, Default, PartialEq, Eq)]
struct Extensions {
    starttls: bool,
    auth_plain: bool,
    eight_bit_mime: bool,
    smtputf8: bool,
}

impl Extensions {
    fn from_ehlo(reply: &Reply) -> Extensions {
        let mut extensions = Extensions::default();
        // The first line is the server's name and greeting text.
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else { continue };
            let keyword = keyword.to_ascii_uppercase();
            let is_plain = |word: &str| word.eq_ignore_ascii_case("PLAIN");
            match keyword.as_str() {
                "STARTTLS" => extensions.starttls = true,
                "8BITMIME" => extensions.eight_bit_mime = true,
                "SMTPUTF8" => extensions.smtputf8 = true,
                "AUTH" => extensions.auth_plain |= words.any(is_plain),
                // The pre-RFC 4954 form some servers still send.
                other => {
                    if let Some(first) = other.strip_prefix("AUTH=") {
                        extensions.auth_plain |= is_plain(first) || words.any(is_plain);
                    }
                }
            }
        }
        extensions
    }
}

/// EHLO, or HELO (no extensions) when the server refuses EHLO with a 5xx.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>, name: &str) -> Result<Extensions, MailError> {
    let reply = conn.command(Stage::Ehlo, &format!("EHLO {name}")).await?;
    if reply.code / 100 == 5 {
        expect(Stage::Helo, conn.command(Stage::Helo, &format!("HELO {name}")).await?, &[250])?;
        return Ok(Extensions::default());
    }
    let reply = expect(Stage::Ehlo, reply, &[250])?;
    Ok(Extensions::from_ehlo(&reply))
}

/// AUTH PLAIN (RFC 4616) with the initial response; every copy of the
/// password is wiped after use.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    extensions: &Extensions,
    username: &str,
    password: &str,
) -> Result<(), MailError> {
    if !extensions.auth_plain {
        return Err(MailError::Permanent(
            "the server does not offer AUTH PLAIN, and credentials are configured".into(),
        ));
    }
    let mut token = Zeroizing::new(Vec::with_capacity(username.len() + password.len() + 2));
    token.push(0);
    token.extend_from_slice(username.as_bytes());
    token.push(0);
    token.extend_from_slice(password.as_bytes());
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*token));
    let line = Zeroizing::new(format!("AUTH PLAIN {}", *encoded));
    let mut reply = conn.command(Stage::Auth, &line).await?;
    if reply.code == 334 {
        // A server that ignores the initial response asks again.
        reply = conn.command(Stage::Auth, &encoded).await?;
    }
    expect(Stage::Auth, reply, &[235]).map(drop)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    SevenBit,
    EightBit,
    Base64,
}

/// The body as sent: CRLF line endings, encoded as the server allows.
#[derive(Debug)]
struct Body {
    encoding: Encoding,
    /// Each line ends with CRLF; not yet dot-stuffed.
    text: String,
}

impl Body {
    /// Plain ASCII is sent as it is (7bit); other UTF-8 as 8bit when the
    /// server offers 8BITMIME, else base64. Lines too long for SMTP are
    /// always base64.
    fn new(body: &str, eight_bit_mime: bool) -> Body {
        let normalised = body.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<&str> = normalised.split('\n').collect();
        if normalised.is_empty() || normalised.ends_with('\n') {
            lines.pop();
        }
        let text: String = lines.iter().flat_map(|line| [*line, "\r\n"]).collect();
        let fits = lines.iter().all(|line| line.len() <= MAX_BODY_LINE);
        let encoding = match (fits, normalised.is_ascii(), eight_bit_mime) {
            (true, true, _) => Encoding::SevenBit,
            (true, false, true) => Encoding::EightBit,
            _ => Encoding::Base64,
        };
        if encoding != Encoding::Base64 {
            return Body { encoding, text };
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        // 76 characters a line (RFC 2045 §6.8); base64 is ASCII.
        let text = encoded.as_bytes().chunks(76).flat_map(|chunk| [chunk, b"\r\n"]).flatten().map(|&b| b as char);
        Body { encoding, text: text.collect() }
    }
}

/// The message: headers, a blank line, the body; CRLF throughout.
///
/// No `Date:` or `Message-ID:`: the submission server adds them (RFC 6409
/// §8.1, §8.3), and the engine takes no clock here.
fn compose(from: &str, to: &str, subject: &str, body: &Body) -> String {
    let transfer_encoding = match body.encoding {
        Encoding::SevenBit => "7bit",
        Encoding::EightBit => "8bit",
        Encoding::Base64 => "base64",
    };
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {transfer_encoding}\r\n\r\n{}",
        subject_value(subject),
        body.text
    )
}

/// The `Subject:` value: control characters (line breaks above all) become
/// spaces; anything but plain, short ASCII is sent as RFC 2047 encoded words
/// (`=?UTF-8?B?…?=`, at most 75 characters each, folded onto continuation
/// lines). Text that looks like an encoded word is encoded too, so a reader
/// shows it as written.
fn subject_value(subject: &str) -> String {
    let subject: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if subject.is_ascii() && !subject.contains("=?") && subject.len() <= 900 {
        return subject;
    }
    // 75 characters less "=?UTF-8?B?" and "?=" leave 63 for base64: 60 of
    // them, whole groups, carry 45 octets. Characters are never split.
    const MAX_OCTETS: usize = 45;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in subject.chars() {
        if chunk.len() + c.len_utf8() > MAX_OCTETS {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    let encode = |word: &String| format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(word));
    words.iter().map(encode).collect::<Vec<_>>().join("\r\n ")
}

/// The DATA payload: every line starting with '.' gets another (RFC 5321
/// §4.5.2), then the terminating ".". `content` ends with CRLF.
fn dot_stuffed(content: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 16);
    for line in content.split_inclusive("\r\n") {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(b".\r\n");
    out
}
