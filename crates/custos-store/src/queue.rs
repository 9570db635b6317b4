//! What both backends share around their writer thread: write jobs erased
//! to run in a batch and answered once the batch's fate is known, and a
//! pool of read connections.

use std::sync::{Condvar, Mutex};

use crate::tx::WriteTx;
use crate::{Result, StoreError};

/// A job erased to run on the writer thread. It returns the function that
/// delivers its result once the batch's fate (committed or not) is known.
/// It is called with `None` when the batch could not even begin.
pub(crate) type Job = Box<dyn FnOnce(Option<&mut WriteTx<'_>>) -> Completion + Send>;
pub(crate) type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// Wraps `job` to run inside its own savepoint of a batch; the receiver
/// gets its result after the batch committed (or the error that stopped
/// it).
pub(crate) fn erase<T, F>(job: F) -> (Job, tokio::sync::oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    F: FnOnce(&mut WriteTx<'_>) -> Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let erased: Job = Box::new(move |w: Option<&mut WriteTx<'_>>| -> Completion {
        let begun = w.is_some();
        let outcome = match w {
            // The caller stopped waiting (its deadline passed and it was
            // told the write failed): the job must not take effect later.
            Some(_) if tx.is_closed() => Err(StoreError::Database("the caller stopped waiting".into())),
            Some(w) => w.in_savepoint(job),
            None => Err(StoreError::Database("the transaction could not begin".into())),
        };
        Box::new(move |batch_error: Option<&StoreError>| {
            let result = match (outcome, batch_error) {
                (Ok(_), Some(e)) => Err(StoreError::Database(format!("commit failed: {e}"))),
                (Err(_), Some(e)) if !begun => {
                    Err(StoreError::Database(format!("the transaction could not begin: {e}")))
                }
                (outcome, _) => outcome,
            };
            // The caller may have gone away (timeout, client closed); the
            // write is durable either way.
            let _ = tx.send(result);
        })
    });
    (erased, rx)
}

/// Answers every job of a batch that could not begin with its error.
pub(crate) fn refuse(batch: Vec<Job>, error: &StoreError) {
    for job in batch {
        job(None)(Some(error));
    }
}

/// Read connections, lent one at a time.
pub(crate) struct Pool<C> {
    idle: Mutex<Vec<C>>,
    available: Condvar,
}

impl<C> Pool<C> {
    pub(crate) fn new(conns: Vec<C>) -> Pool<C> {
        Pool { idle: Mutex::new(conns), available: Condvar::new() }
    }

    /// Takes the idle connections out (to close them somewhere else).
    pub(crate) fn drain(&self) -> Vec<C> {
        self.idle.lock().map(|mut idle| std::mem::take(&mut *idle)).unwrap_or_default()
    }

    /// Runs `f` with a connection, waiting for one to be free.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut C) -> T) -> Result<T> {
        let mut conn = {
            let mut idle = self.idle.lock().map_err(|_| StoreError::Closed)?;
            loop {
                if let Some(c) = idle.pop() {
                    break c;
                }
                idle = self.available.wait(idle).map_err(|_| StoreError::Closed)?;
            }
        };
        let out = f(&mut conn);
        self.idle.lock().map_err(|_| StoreError::Closed)?.push(conn);
        self.available.notify_one();
        Ok(out)
    }
}
