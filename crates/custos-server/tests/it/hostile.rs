//! Hostile request bodies against the real binary (DESIGN §10): a 100 MB
//! body (declared, and chunked without a length), an array of 10,000
//! items, and JSON nested 100,000 deep. Each is refused with a 4xx within
//! two seconds, the server stays up and answers the next request, and its
//! resident memory does not grow over ten more rounds of the same.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::json;

use crate::crash::{custos, send, serve};
use crate::kit::stopwatch;
use crate::support::Scratch;

/// Sends `head` then up to `body_len` bytes of `fill` (stopping when the
/// server closes), and reads the answer: (status, seconds until the
/// status line, bytes the server took).
fn flood(addr: SocketAddr, head: &str, body_len: usize, chunked: bool) -> (u16, f64, usize) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = stopwatch();
    stream.write_all(head.as_bytes()).unwrap();
    let block = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < body_len {
        let piece = if chunked {
            let mut p = format!("{:x}\r\n", block.len()).into_bytes();
            p.extend_from_slice(&block);
            p.extend_from_slice(b"\r\n");
            p
        } else {
            block.clone()
        };
        if stream.write_all(&piece).is_err() {
            break;
        }
        sent += block.len();
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let elapsed = start.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, elapsed, sent)
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The four hostile bodies, each checked; their figures.
fn barrage(addr: SocketAddr, token: &str) -> Vec<String> {
    let mut figures = Vec::new();
    let hundred_mb = 100 * 1024 * 1024;
    let declared = format!(
        "POST /v1/subjects HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {hundred_mb}\r\nconnection: close\r\n\r\n"
    );
    let (status, secs, took) = flood(addr, &declared, hundred_mb, false);
    figures.push(format!("declared 100 MB: {status} in {:.1} ms, {took} bytes taken", secs * 1000.0));
    assert_eq!(status, 413, "a declared 100 MB body");
    assert!(secs < 2.0, "refused in {secs:.2} s");
    assert!(took < hundred_mb, "the server stopped reading: it took {took} bytes");

    let chunked = format!(
        "POST /v1/subjects HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let (status, secs, took) = flood(addr, &chunked, hundred_mb, true);
    figures.push(format!("chunked 100 MB: {status} in {:.1} ms, {took} bytes taken", secs * 1000.0));
    assert_eq!(status, 413, "a chunked 100 MB body");
    assert!(secs < 2.0, "refused in {secs:.2} s");

    // 10,000 items in one array (within the size limit).
    let wide = json!({"recipient": "cj_olivenetworks", "purpose": "member_management",
                      "items": (0..10_000).map(|i| format!("item_{i}")).collect::<Vec<_>>()});
    let start = stopwatch();
    let (status, body) = send(addr, "POST", "/v1/subjects/sub_x/handovers", token, Some(&wide)).unwrap();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    figures.push(format!("10,000 items: {status} in {ms:.1} ms"));
    assert_eq!(status, 422, "{body}");
    assert!(ms < 2000.0);

    // JSON nested 100,000 deep.
    let deep = format!("{{\"items\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let head = format!(
        "POST /v1/subjects HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{deep}",
        deep.len()
    );
    let (status, secs, _) = flood(addr, &head, 0, false);
    figures.push(format!("nested 100,000 deep: {status} in {:.1} ms", secs * 1000.0));
    assert_eq!(status, 400, "deep nesting");
    assert!(secs < 2.0);
    figures
}

#[test]
fn oversized_wide_and_deep_bodies_are_refused_quickly_without_memory_growth() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: a spawned `custos serve` on a SQLite data folder, not the test backend
    }
    let scratch = Scratch::new("hostile");
    let dir = scratch.0.clone();
    let created = custos(&dir, &["admin", "create-key", "--label", "hostile"]).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let (mut server, addr) = serve(&dir);
    // Once to warm up (the worker threads' first buffers), then the
    // resident size is taken; ten more barrages must not grow it.
    let mut figures = barrage(addr, &token);
    let before = resident_kib(server.id());
    for _ in 0..10 {
        figures = barrage(addr, &token);
    }
    let after = resident_kib(server.id());
    // Still serving.
    assert!(matches!(send(addr, "GET", "/ready", "", None), Ok((200, _))));
    figures.push(format!("resident memory after 1 barrage {before} KiB, after 11 {after} KiB"));
    let _ = writeln!(std::io::stderr(), "hostile bodies: {}", figures.join("; "));
    server.kill();
    assert!(after < before + 8 * 1024, "resident memory grew from {before} KiB to {after} KiB");
}
