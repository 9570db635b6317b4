//! The load generator: closed-loop clients, each on its own keep-alive
//! HTTP/1.1 connection, sending its next request as soon as the previous
//! answer has arrived in full. Latency is per request, from sending to the
//! last byte of the answer; only successful requests count towards
//! throughput and latency, every other answer is an error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::clock;

pub(crate) type Body = Full<Bytes>;

/// When a phase ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until {
    /// After this many requests in all.
    Count(u64),
    /// When this much time has passed (requests in flight finish).
    For(Duration),
}

/// What a phase sends: request number → request, and the status of success.
pub(crate) struct Work {
    pub(crate) make: Box<dyn Fn(u64) -> Request<Body> + Send + Sync>,
    pub(crate) expect: StatusCode,
    /// Keep the `id` of every successful answer (sign-ups, for the reads).
    pub(crate) keep_ids: bool,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work").field("expect", &self.expect).finish_non_exhaustive()
    }
}

/// What one phase measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// When the first and the last error came, from the start of the phase.
    pub(crate) errors_between: Option<(Duration, Duration)>,
    pub(crate) elapsed: Duration,
    pub(crate) latencies_us: Vec<u32>,
    pub(crate) ids: Vec<String>,
}

impl Outcome {
    pub(crate) fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn error(&mut self, message: String, at: Duration) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
        self.errors_between = Some(match self.errors_between {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
    }

    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.errors_between = match (self.errors_between, other.errors_between) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (mine, theirs) => mine.or(theirs),
        };
        self.latencies_us.extend(other.latencies_us);
        self.ids.extend(other.ids);
    }
}

/// Builds a request; the parts come from the harness itself, so a failure
/// is a bug in the harness.
pub(crate) fn request(method: &str, addr: SocketAddr, path: &str, token: &str, json: Option<Vec<u8>>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"));
    let (builder, body) = match json {
        Some(b) => (builder.header("content-type", "application/json"), Bytes::from(b)),
        None => (builder, Bytes::new()),
    };
    builder.body(Full::new(body)).expect("the harness builds well-formed requests")
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Body>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr} failed: {e}"))?;
    tokio::spawn(async move {
        // The connection ends when the client drops its sender.
        let _ = connection.await;
    });
    Ok(sender)
}

async fn exchange(sender: &mut SendRequest<Body>, request: Request<Body>) -> Result<(StatusCode, Bytes), String> {
    sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| format!("answer cut short: {e}"))?.to_bytes();
    Ok((status, body))
}

/// Runs `clients` clients until `until`. All connections are open before the
/// clock starts.
pub(crate) async fn run(addr: SocketAddr, clients: usize, until: Until, work: Arc<Work>) -> Result<Outcome, String> {
    let mut senders = Vec::with_capacity(clients);
    for _ in 0..clients {
        senders.push(connect(addr).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let start = clock::now();
    let (limit, deadline) = match until {
        Until::Count(n) => (n, None),
        Until::For(d) => (u64::MAX, Some(start + d)),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for sender in senders {
        tasks.spawn(client(addr, sender, work.clone(), next.clone(), limit, (start, deadline)));
    }
    let mut total = Outcome::default();
    while let Some(part) = tasks.join_next().await {
        total.merge(part.map_err(|e| format!("a client task failed: {e}"))?);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

async fn client(
    addr: SocketAddr,
    mut sender: SendRequest<Body>,
    work: Arc<Work>,
    next: Arc<AtomicU64>,
    limit: u64,
    (start, deadline): (Instant, Option<Instant>),
) -> Outcome {
    let mut out = Outcome::default();
    loop {
        if deadline.is_some_and(|d| clock::now() >= d) {
            break;
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= limit {
            break;
        }
        let request = (work.make)(n);
        let sent = clock::now();
        match exchange(&mut sender, request).await {
            Ok((status, body)) if status == work.expect => {
                out.ok += 1;
                out.latencies_us.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                if work.keep_ids {
                    match serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_owned))
                    {
                        Some(id) => out.ids.push(id),
                        None => out.error("a success answer without an id".to_owned(), start.elapsed()),
                    }
                }
            }
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body);
                out.error(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()), start.elapsed());
            }
            Err(e) => {
                out.error(e, start.elapsed());
                // The connection is gone: open another one, or stop this client.
                match connect(addr).await {
                    Ok(s) => sender = s,
                    Err(e) => {
                        out.error(e, start.elapsed());
                        break;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_when_they_came() {
        let s = Duration::from_secs;
        let mut a = Outcome::default();
        a.error("first".into(), s(3));
        a.error("second".into(), s(1));
        assert_eq!((a.errors, a.first_error.as_deref(), a.errors_between), (2, Some("first"), Some((s(1), s(3)))));
        let mut b = Outcome::default();
        b.error("later".into(), s(7));
        a.merge(b);
        assert_eq!((a.errors, a.first_error.as_deref(), a.errors_between), (3, Some("first"), Some((s(1), s(7)))));
        let mut none = Outcome::default();
        none.merge(Outcome::default());
        assert_eq!(none.errors_between, None);
        none.merge(a);
        assert_eq!(none.errors_between, Some((s(1), s(7))));
    }
}
