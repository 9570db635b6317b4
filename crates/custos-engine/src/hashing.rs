//! The password-hashing pool: a fixed set of OS threads that do nothing
//! but Argon2id. Hashing is memory-hard (19 MiB per hash) and slow on
//! purpose; on dedicated threads it never starves request handling, and each
//! thread reuses one working buffer, so memory stays at workers × 19 MiB
//! (allocating per hash, resident memory grew to gigabytes under load).

use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::{EngineError, Result};

type Reply<T> = oneshot::Sender<Result<T, crate::password::PasswordError>>;

/// Work for the pool: hashing a new password, or checking one against a
/// stored hash. Both run here so that at most `workers` Argon2 computations
/// (and their memory) exist at once, whatever the number of log-ins.
enum Job {
    Hash(Zeroizing<String>, Reply<String>),
    Verify(Zeroizing<String>, Zeroizing<String>, Reply<bool>),
}

pub(crate) struct HashPool {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
}

impl HashPool {
    pub(crate) fn new(workers: usize) -> Result<HashPool> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..workers.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("custos-hash-{n}"))
                .spawn(move || {
                    // One working buffer per thread, reused for every hash.
                    let mut memory = crate::password::memory();
                    loop {
                        // Hold the lock only to take a job, not while hashing.
                        let job = match receiver.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(Job::Hash(password, reply)) => {
                                let _ = reply.send(crate::password::hash_password_with_memory(&password, &mut memory));
                            }
                            Ok(Job::Verify(password, phc, reply)) => {
                                let _ = reply.send(crate::password::verify_password(&password, &phc));
                            }
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| EngineError::Config(format!("cannot start the hashing threads: {e}")))?;
        }
        Ok(HashPool { sender: Mutex::new(Some(sender)) })
    }

    fn send(&self, job: Job) -> Result<()> {
        let sender = self.sender.lock().map_err(|_| EngineError::Unavailable("the hashing pool failed".into()))?;
        sender
            .as_ref()
            .ok_or_else(|| EngineError::Unavailable("the hashing pool is closed".into()))?
            .send(job)
            .map_err(|_| EngineError::Unavailable("the hashing pool is closed".into()))
    }

    /// Hashes on the pool; waits (asynchronously) for a free worker.
    pub(crate) async fn hash(&self, password: Zeroizing<String>) -> Result<Zeroizing<String>> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Hash(password, reply))?;
        let hashed = answer
            .await
            .map_err(|_| EngineError::Unavailable("the hashing pool stopped".into()))?
            .map_err(|e| EngineError::Unavailable(format!("password hashing failed: {e}")))?;
        Ok(Zeroizing::new(hashed))
    }

    /// Checks a password against a stored PHC string on the pool. A hash
    /// that cannot be read is an integrity failure, never a wrong password.
    pub(crate) async fn verify(&self, password: Zeroizing<String>, phc: Zeroizing<String>) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Verify(password, phc, reply))?;
        answer
            .await
            .map_err(|_| EngineError::Unavailable("the hashing pool stopped".into()))?
            .map_err(|e| EngineError::Integrity(e.to_string()))
    }
}

impl Drop for HashPool {
    /// Closing the channel ends the workers once the queue is empty.
    fn drop(&mut self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
    }
}
