//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), the second
//! factor of every staff login: HMAC-SHA-1, 30-second steps, 6 digits — what
//! authenticator apps expect from an `otpauth://totp/` URI.

use aws_lc_rs::{constant_time, hmac};

/// Seconds per time step.
pub(crate) const STEP: i64 = 30;
const DIGITS: u32 = 6;
/// Steps either side of now that still count (clock drift).
const WINDOW: i64 = 1;

/// HOTP (RFC 4226 §5.3) of `counter`, as `digits` decimal digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // SHA-1 is what RFC 6238 and every authenticator app use for TOTP; it
    // serves as a PRF under HMAC here, not as a collision-resistant hash.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let code = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    code % 10u32.pow(digits)
}

/// The code of time step `step`, zero-padded.
fn code_at(secret: &[u8], step: i64, digits: u32) -> String {
    format!("{:0width$}", hotp(secret, step.max(0) as u64, digits), width = digits as usize)
}

/// The time step of an instant.
pub(crate) fn step_of(now: jiff::Timestamp) -> i64 {
    now.as_second().div_euclid(STEP)
}

/// The step whose code `code` is, within the window around `now`, and later
/// than `last_used` (a code is accepted once). `None` if it is no such code.
pub(crate) fn verify(secret: &[u8], code: &str, now: jiff::Timestamp, last_used: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut found = None;
    // Every step of the window is computed, so the time taken does not say
    // which one matched.
    for step in current - WINDOW..=current + WINDOW {
        let expected = code_at(secret, step, DIGITS);
        if constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok() && step > last_used {
            found = Some(step);
        }
    }
    found
}

/// The code for `now`: what an authenticator app shows (tests, tools).
pub fn code(secret: &[u8], now: jiff::Timestamp) -> String {
    code_at(secret, step_of(now), DIGITS)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(BASE32[((n >> (35 - i * 5)) & 31) as usize] as char);
        }
    }
    out
}

/// Reads base32 (case-insensitive, padding and spaces ignored).
pub fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let v = BASE32.iter().position(|x| *x == c.to_ascii_uppercase())? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(seconds).unwrap()
    }

    /// RFC 6238 Appendix B, SHA-1 column (8 digits).
    #[test]
    fn rfc_6238_vectors() {
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (seconds, expected) in vectors {
            assert_eq!(code_at(SECRET, step_of(at(seconds)), 8), expected, "T = {seconds}");
            assert_eq!(code(SECRET, at(seconds)), expected[2..], "6 digits at T = {seconds}");
        }
    }

    /// RFC 4226 Appendix D.
    #[test]
    fn rfc_4226_vectors() {
        let expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(hotp(SECRET, counter as u64, 6), *value);
        }
    }

    #[test]
    fn a_code_counts_once_and_only_near_its_time() {
        let now = at(1_700_000_000);
        let current = code(SECRET, now);
        let step = verify(SECRET, &current, now, 0).expect("the current code");
        assert_eq!(verify(SECRET, &current, now, step), None, "replayed");
        let previous = code(SECRET, at(1_700_000_000 - 30));
        assert!(verify(SECRET, &previous, now, 0).is_some(), "one step of drift");
        let old = code(SECRET, at(1_700_000_000 - 90));
        assert_eq!(verify(SECRET, &old, now, 0), None, "three steps back");
        assert_eq!(verify(SECRET, "12345", now, 0), None);
        assert_eq!(verify(SECRET, "abcdef", now, 0), None);
    }

    #[test]
    fn base32_round_trips_rfc_4648_vectors() {
        for (plain, encoded) in
            [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB")]
        {
            assert_eq!(base32(plain.as_bytes()), encoded);
            assert_eq!(unbase32(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32(SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(unbase32("not base32!"), None);
    }
}
