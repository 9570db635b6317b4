//! A local SMTP receiver for the server's tests: it listens on 127.0.0.1,
//! accepts every message (AUTH PLAIN with any credentials included) and
//! keeps what arrived, so a test reads the mail Custos sent. It can refuse
//! the next recipients, to test retries, and stops when dropped.
//!
//! Plain std threads (one to accept, one per connection), so it works the
//! same under any test runtime and never blocks one.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A message as the sink received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Received {
    /// The envelope sender (MAIL FROM).
    pub(crate) from: String,
    /// The envelope recipients (RCPT TO), in order.
    pub(crate) to: Vec<String>,
    /// Headers and body: dot-unstuffed, CRLF line endings, without the
    /// final ".".
    pub(crate) data: String,
}

pub(crate) struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    /// The accepting thread; it hands back the connection threads.
    acceptor: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a message is stored.
    arrived: Condvar,
    stopping: AtomicBool,
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    /// Reply codes for the next RCPT TO commands, one each.
    rcpt_failures: VecDeque<u16>,
    /// Open connections (a clone of each), shut when the sink stops.
    connections: Vec<(u64, TcpStream)>,
    next_connection: u64,
}

impl SmtpSink {
    /// Listens on a free port of 127.0.0.1.
    pub(crate) fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the SMTP sink binds 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let acceptor = std::thread::Builder::new()
            .name("smtp-sink".into())
            .spawn({
                let shared = shared.clone();
                move || accept(listener, &shared)
            })
            .unwrap();
        SmtpSink { port, shared, acceptor: Some(acceptor) }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Every message received so far, in order.
    pub(crate) fn messages(&self) -> Vec<Received> {
        self.shared.state.lock().unwrap().messages.clone()
    }

    /// The messages once there are at least `n`, or what arrived within
    /// `timeout` (fewer: the caller's assertion says so). A wait for a
    /// network event, not time logic: no clock is read.
    pub(crate) fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let state = self.shared.state.lock().unwrap();
        let (state, _) = self.shared.arrived.wait_timeout_while(state, timeout, |s| s.messages.len() < n).unwrap();
        state.messages.clone()
    }

    /// Answers the next RCPT TO with `code` (451: try again later; 550:
    /// refused) instead of accepting it. Each call refuses one more.
    pub(crate) fn fail_next_rcpt(&self, code: u16) {
        assert!((400..600).contains(&code), "a refusal is a 4xx or 5xx code");
        self.shared.state.lock().unwrap().rcpt_failures.push_back(code);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which sees `stopping` and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let handlers = self.acceptor.take().map(|acceptor| acceptor.join().unwrap_or_default()).unwrap_or_default();
        for (_, connection) in self.shared.state.lock().unwrap().connections.drain(..) {
            let _ = connection.shutdown(Shutdown::Both);
        }
        for handler in handlers {
            let _ = handler.join();
        }
    }
}

fn accept(listener: TcpListener, shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    let mut handlers = Vec::new();
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let Ok(clone) = stream.try_clone() else { continue };
        let id = {
            let mut state = shared.state.lock().unwrap();
            let id = state.next_connection;
            state.next_connection += 1;
            state.connections.push((id, clone));
            id
        };
        let shared = shared.clone();
        handlers.push(std::thread::spawn(move || {
            // A client that goes away mid-dialogue is no error of the sink.
            let _ = serve(stream, &shared);
            shared.state.lock().unwrap().connections.retain(|(other, _)| *other != id);
        }));
    }
    handlers
}

const EHLO_REPLY: &str = "250-custos-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN";

/// One connection's dialogue, until QUIT or the client leaves.
fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut say = |reply: &str| writer.write_all(format!("{reply}\r\n").as_bytes());
    say("220 custos-sink ESMTP ready")?;
    let mut greeted = false;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    while let Some(line) = read_line(&mut reader)? {
        let (verb, argument) = line.split_once(' ').unwrap_or((&line, ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" => {
                greeted = true;
                (from, to) = (None, Vec::new());
                say(if verb.eq_ignore_ascii_case("EHLO") { EHLO_REPLY } else { "250 custos-sink" })?;
            }
            "AUTH" => {
                let mut words = argument.split_whitespace();
                if !words.next().is_some_and(|m| m.eq_ignore_ascii_case("PLAIN")) {
                    say("504 5.5.4 only AUTH PLAIN here")?;
                    continue;
                }
                // Any credentials are accepted; without an initial
                // response, they come on the next line.
                if words.next().is_none() {
                    say("334 ")?;
                    match read_line(&mut reader)? {
                        Some(answer) if answer != "*" => {}
                        Some(_) => {
                            say("501 5.7.0 authentication cancelled")?;
                            continue;
                        }
                        None => return Ok(()),
                    }
                }
                say("235 2.7.0 authentication succeeded")?;
            }
            "MAIL" if !greeted => say("503 5.5.1 say EHLO first")?,
            "MAIL" => match path(argument, "FROM:") {
                Some(sender) => {
                    (from, to) = (Some(sender), Vec::new());
                    say("250 2.1.0 sender ok")?;
                }
                None => say("501 5.5.4 expected FROM:<address>")?,
            },
            "RCPT" if from.is_none() => say("503 5.5.1 MAIL first")?,
            "RCPT" => match path(argument, "TO:") {
                Some(recipient) => {
                    let failure = shared.state.lock().unwrap().rcpt_failures.pop_front();
                    match failure {
                        Some(code) => say(&format!("{code} {}.0.0 recipient refused by the test sink", code / 100))?,
                        None => {
                            to.push(recipient);
                            say("250 2.1.5 recipient ok")?;
                        }
                    }
                }
                None => say("501 5.5.4 expected TO:<address>")?,
            },
            "DATA" if to.is_empty() => say("503 5.5.1 no valid recipients")?,
            "DATA" => {
                say("354 end data with <CR><LF>.<CR><LF>")?;
                let Some(data) = read_data(&mut reader)? else { return Ok(()) };
                let message = Received { from: from.take().unwrap_or_default(), to: std::mem::take(&mut to), data };
                shared.state.lock().unwrap().messages.push(message);
                shared.arrived.notify_all();
                say("250 2.0.0 queued")?;
            }
            "RSET" => {
                (from, to) = (None, Vec::new());
                say("250 2.0.0 reset")?;
            }
            "NOOP" => say("250 2.0.0 ok")?,
            "QUIT" => {
                say("221 2.0.0 bye")?;
                // Closes now, though the sink still holds a clone of the socket.
                return reader.get_ref().shutdown(Shutdown::Both);
            }
            _ => say("502 5.5.2 command not recognised")?,
        }
    }
    Ok(())
}

/// The address in `FROM:<address> PARAMS` (`keyword` "FROM:" or "TO:").
fn path(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start().strip_prefix('<')?;
    let (address, _parameters) = rest.split_once('>')?;
    Some(address.to_owned())
}

/// One line without its CRLF (or bare LF); `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Some(String::from_utf8_lossy(line).into_owned()))
}

/// The message up to the "." line, dot-unstuffed, CRLF line endings.
fn read_data(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut data = String::new();
    while let Some(line) = read_line(reader)? {
        if line == "." {
            return Ok(Some(data));
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
        data.push_str("\r\n");
    }
    Ok(None)
}

mod tests {
    use custos_engine::Zeroizing;
    use custos_engine::mail::{MailError, Message, Security, SmtpConfig, SmtpSender};

    use super::*;

    fn sender(port: u16) -> SmtpSender {
        SmtpSender::new(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: Security::None,
            // Loopback: AUTH PLAIN goes in plain text.
            username: Some("custos".into()),
            password: Some(Zeroizing::new("sink-password".into())),
            from: "custos@example.org".into(),
            helo_name: "custos.test".into(),
            timeout: Duration::from_secs(10),
        })
    }

    fn message(to: &str, subject: &str, body: &str) -> Message {
        Message { to: to.into(), subject: subject.into(), body: body.into() }
    }

    #[tokio::test]
    async fn sink_receives_what_the_sender_sends() {
        let sink = SmtpSink::start();
        let sender = sender(sink.port());
        sender.send(&message("member@example.com", "Policy update", "Line one\n.starts with a dot\n")).await.unwrap();
        sender.send(&message("other@example.com", "Grüße", "Hallo")).await.unwrap();

        let received = sink.wait_for(2, Duration::from_secs(10));
        assert_eq!(received.len(), 2, "{received:?}");
        assert_eq!(received[0].from, "custos@example.org");
        assert_eq!(received[0].to, ["member@example.com"]);
        let (headers, body) = received[0].data.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "Line one\r\n.starts with a dot\r\n");
        assert!(
            headers.starts_with("From: custos@example.org\r\nTo: member@example.com\r\nSubject: Policy update\r\n")
        );
        assert_eq!(received[1].to, ["other@example.com"]);
        assert!(received[1].data.contains("\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"), "{}", received[1].data);
        assert!(received[1].data.ends_with("\r\n\r\nHallo\r\n"));
        assert_eq!(sink.messages(), received);
    }

    #[tokio::test]
    async fn a_refused_recipient_fails_once_then_delivers() {
        let sink = SmtpSink::start();
        let sender = sender(sink.port());
        let note = message("member@example.com", "Notice", "Text");
        sink.fail_next_rcpt(451);
        assert!(matches!(sender.send(&note).await, Err(MailError::Transient(_))));
        assert!(sink.messages().is_empty());
        sender.send(&note).await.unwrap();
        assert_eq!(sink.wait_for(1, Duration::from_secs(10)).len(), 1);

        sink.fail_next_rcpt(550);
        assert!(matches!(sender.send(&note).await, Err(MailError::Permanent(_))));
        assert_eq!(sink.messages().len(), 1);
    }

    #[test]
    fn sink_keeps_the_dialogue_rules_and_stops_when_dropped() {
        let sink = SmtpSink::start();
        let port = sink.port();
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        assert_eq!(read_line(&mut reader).unwrap().unwrap(), "220 custos-sink ESMTP ready");
        let mut ask = |command: &str| {
            writer.write_all(format!("{command}\r\n").as_bytes()).unwrap();
            read_line(&mut reader).unwrap().unwrap()
        };
        assert_eq!(&ask("MAIL FROM:<a@example.org>")[..3], "503", "HELO or EHLO first");
        assert_eq!(ask("HELO client"), "250 custos-sink");
        assert_eq!(&ask("MAIL FROM:<a@example.org> BODY=8BITMIME")[..3], "250");
        assert_eq!(&ask("RSET")[..3], "250");
        assert_eq!(&ask("RCPT TO:<b@example.org>")[..3], "503", "RSET ended the transaction");
        assert_eq!(&ask("NOOP")[..3], "250");
        assert_eq!(&ask("MAIL FROM:<a@example.org>")[..3], "250");
        assert_eq!(&ask("DATA")[..3], "503", "no recipients yet");
        assert_eq!(&ask("VRFY b")[..3], "502");
        assert_eq!(ask("QUIT"), "221 2.0.0 bye");
        assert_eq!(read_line(&mut reader).unwrap(), None, "the sink closed the connection");

        drop(sink);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the port is closed");
    }
}
