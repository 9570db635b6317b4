//! The harness's only reading of the monotonic clock. The workspace bans
//! `Instant::now` so that the product takes time as a parameter; a benchmark
//! exists to measure elapsed time, so it reads the clock here and nowhere else.

use std::time::Instant;

#[allow(clippy::disallowed_methods)] // reason: measuring elapsed time is the point of a benchmark
pub(crate) fn now() -> Instant {
    Instant::now()
}
