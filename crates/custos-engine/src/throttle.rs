//! Login throttling: failed attempts per account and per client address in
//! a sliding window; over the limit, attempts are refused (before any
//! password is checked) until the oldest failure leaves the window. Time is
//! a parameter. The counts live in this process's memory: a restart forgets
//! them, and several nodes count apart (see ARCHITECTURE.md).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Attempts allowed per account within [`WINDOW_SECONDS`] (successes are
/// given back).
pub(crate) const PER_ACCOUNT: usize = 5;
/// Attempts allowed per client address within [`WINDOW_SECONDS`].
pub(crate) const PER_ADDRESS: usize = 20;
pub(crate) const WINDOW_SECONDS: i64 = 15 * 60;
/// Keys remembered at most; beyond it, keys without recent failures go.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    /// Counts an attempt for `key`, or refuses it with the seconds to wait
    /// when `limit` attempts are already in the window. Checking and
    /// counting are one step, so parallel attempts cannot all slip through
    /// before the first failure is recorded; a success takes its attempt
    /// back ([`Throttle::succeeded`]).
    pub(crate) fn attempt(&self, key: &str, limit: usize, now: jiff::Timestamp) -> Result<(), i64> {
        let now = now.as_second();
        let Ok(mut map) = self.failures.lock() else { return Err(WINDOW_SECONDS) };
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, times| times.back().is_some_and(|t| *t > now - WINDOW_SECONDS));
            if map.len() >= MAX_KEYS {
                // Still full of live keys: refuse rather than grow.
                return Err(WINDOW_SECONDS);
            }
        }
        let times = map.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|t| *t <= now - WINDOW_SECONDS) {
            times.pop_front();
        }
        match times.front() {
            Some(oldest) if times.len() >= limit => Err((oldest + WINDOW_SECONDS - now).max(1)),
            _ => {
                times.push_back(now);
                Ok(())
            }
        }
    }

    /// A successful attempt: it does not count against `key`, and with
    /// `clear` every earlier failure of `key` is forgiven too (an account
    /// that logged in; an address keeps its other failures).
    pub(crate) fn succeeded(&self, key: &str, clear: bool) {
        if let Ok(mut map) = self.failures.lock() {
            if clear {
                map.remove(key);
            } else if let Some(times) = map.get_mut(key) {
                times.pop_back();
            }
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
            assert_eq!(t.attempt("a", PER_ACCOUNT, at(i)), Ok(()));
        }
        assert_eq!(t.attempt("a", PER_ACCOUNT, at(10)), Err(WINDOW_SECONDS - 10));
        assert_eq!(t.attempt("b", PER_ACCOUNT, at(10)), Ok(()), "other keys are not affected");
        assert_eq!(t.attempt("a", PER_ACCOUNT, at(WINDOW_SECONDS)), Ok(()), "the oldest attempt left the window");
        t.succeeded("a", true);
        for i in 0..PER_ACCOUNT as i64 {
            assert_eq!(t.attempt("a", PER_ACCOUNT, at(WINDOW_SECONDS + i)), Ok(()), "forgiven");
        }
    }

    #[test]
    fn a_success_gives_its_attempt_back() {
        let t = Throttle::default();
        for _ in 0..PER_ACCOUNT * 3 {
            assert_eq!(t.attempt("address", PER_ACCOUNT, at(0)), Ok(()));
            t.succeeded("address", false);
        }
    }
}
