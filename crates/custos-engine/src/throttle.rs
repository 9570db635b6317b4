//! Login throttling: failed attempts per account and per client address in
//! a sliding window; over the limit, attempts are refused (before any
//! password is checked) until the oldest failure leaves the window. Time is
//! a parameter. The counts live in this process's memory: a restart forgets
//! them, and several nodes count apart (see ARCHITECTURE.md).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Failures allowed per account within [`WINDOW_SECONDS`].
pub(crate) const PER_ACCOUNT: usize = 5;
/// Failures allowed per client address within [`WINDOW_SECONDS`].
pub(crate) const PER_ADDRESS: usize = 20;
pub(crate) const WINDOW_SECONDS: i64 = 15 * 60;
/// Keys remembered at most; beyond it, keys without recent failures go.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    /// `Err(seconds to wait)` when `key` has `limit` failures in the window.
    pub(crate) fn check(&self, key: &str, limit: usize, now: jiff::Timestamp) -> Result<(), i64> {
        let now = now.as_second();
        let Ok(mut map) = self.failures.lock() else { return Err(WINDOW_SECONDS) };
        let Some(times) = map.get_mut(key) else { return Ok(()) };
        while times.front().is_some_and(|t| *t <= now - WINDOW_SECONDS) {
            times.pop_front();
        }
        match times.front() {
            Some(oldest) if times.len() >= limit => Err((oldest + WINDOW_SECONDS - now).max(1)),
            _ => Ok(()),
        }
    }

    pub(crate) fn fail(&self, key: &str, now: jiff::Timestamp) {
        let now = now.as_second();
        let Ok(mut map) = self.failures.lock() else { return };
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| times.back().is_some_and(|t| *t > now - WINDOW_SECONDS));
        }
        let times = map.entry(key.to_owned()).or_default();
        times.push_back(now);
        // Only the last `PER_ADDRESS` failures can matter.
        while times.len() > PER_ADDRESS {
            times.pop_front();
        }
    }

    /// A successful login clears the account's failures.
    pub(crate) fn clear(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn refuses_after_the_limit_until_the_window_slides() {
        let t = Throttle::default();
        for i in 0..PER_ACCOUNT as i64 {
            assert_eq!(t.check("a", PER_ACCOUNT, at(i)), Ok(()));
            t.fail("a", at(i));
        }
        assert_eq!(t.check("a", PER_ACCOUNT, at(10)), Err(WINDOW_SECONDS - 10));
        assert_eq!(t.check("b", PER_ACCOUNT, at(10)), Ok(()), "other keys are not affected");
        assert_eq!(t.check("a", PER_ACCOUNT, at(WINDOW_SECONDS)), Ok(()), "the oldest failure left the window");
        t.clear("a");
        assert_eq!(t.check("a", PER_ACCOUNT, at(11)), Ok(()));
    }
}
