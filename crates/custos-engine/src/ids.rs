//! Identifiers: 128 random bits, hex, with a prefix that says what they
//! name. Record ids start with the time so that a subject's records list in
//! the order they were made.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::rootkey::hex;
use crate::{EngineError, Result};

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| EngineError::Unavailable("the random number generator failed".into()))?;
    Ok(hex(&buf))
}

pub(crate) fn new_id(prefix: &str) -> Result<String> {
    Ok(format!("{prefix}_{}", random_hex(16)?))
}

pub(crate) fn new_record_id(now: jiff::Timestamp) -> Result<String> {
    let millis = u64::try_from(now.as_millisecond()).unwrap_or(0);
    Ok(format!("rec_{millis:012x}{}", random_hex(10)?))
}

/// Fresh random bytes (API key secrets).
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| EngineError::Unavailable("the random number generator failed".into()))?;
    Ok(buf)
}
