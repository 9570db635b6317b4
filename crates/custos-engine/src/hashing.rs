//! The password-hashing pool: a fixed set of OS threads that do nothing
//! but Argon2id. Hashing is memory-hard (19 MiB per hash) and slow on
//! purpose; on dedicated threads it never starves request handling, and each
//! thread reuses one working buffer, so memory stays at workers × 19 MiB
//! (allocating per hash, resident memory grew to gigabytes under load).

use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::{EngineError, Result};

type Job = (Zeroizing<String>, oneshot::Sender<Result<String, crate::password::PasswordError>>);

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
                        let Ok((password, reply)) = job else { return };
                        let _ = reply.send(crate::password::hash_password_with_memory(&password, &mut memory));
                    }
                })
                .map_err(|e| EngineError::Config(format!("cannot start the hashing threads: {e}")))?;
        }
        Ok(HashPool { sender: Mutex::new(Some(sender)) })
    }

    /// Hashes on the pool; waits (asynchronously) for a free worker.
    pub(crate) async fn hash(&self, password: Zeroizing<String>) -> Result<Zeroizing<String>> {
        let (reply, answer) = oneshot::channel();
        {
            let sender = self.sender.lock().map_err(|_| EngineError::Unavailable("the hashing pool failed".into()))?;
            sender
                .as_ref()
                .ok_or_else(|| EngineError::Unavailable("the hashing pool is closed".into()))?
                .send((password, reply))
                .map_err(|_| EngineError::Unavailable("the hashing pool is closed".into()))?;
        }
        let hashed = answer
            .await
            .map_err(|_| EngineError::Unavailable("the hashing pool stopped".into()))?
            .map_err(|e| EngineError::Unavailable(format!("password hashing failed: {e}")))?;
        Ok(Zeroizing::new(hashed))
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
