//! argon2id password hashing at the OWASP recommendation (m = 19 MiB, t = 2, p = 1), run on a
//! fixed pool of threads with a bounded queue: each hash takes 19 MiB and a core for tens of
//! milliseconds, so unbounded parallel sign-ins would grow memory and threads without limit.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{AppError, AppResult};

/// Memory cost in KiB (19 MiB), iterations and lanes recommended by OWASP for argon2id.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Checks with the parameters stored in the hash itself, so hashes made with other parameters
/// still verify.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A valid hash of a random password, verified against when the user does not exist so that
/// a wrong username costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed number of hashing threads fed through a bounded queue. When the queue is full the
/// caller gets 503 `busy` at once instead of another thread and another 19 MiB.
pub struct HashPool {
    jobs: SyncSender<Job>,
    last_full_warning: Mutex<Option<Instant>>,
}

impl HashPool {
    /// `workers` = 0 means one per CPU core; `queue` ≥ 1.
    pub fn new(workers: usize, queue: usize) -> std::io::Result<HashPool> {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            workers
        };
        let (jobs, rx) = sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(HashPool {
            jobs,
            last_full_warning: Mutex::new(None),
        })
    }

    /// Queues `f` at once, or refuses with 503 `busy` when the queue is full.
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<tokio::sync::oneshot::Receiver<T>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        match self.jobs.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => {
                self.warn_full();
                Err(AppError::Busy {
                    what: "password hashing queue full",
                    retry_after: 1,
                })
            }
            Err(TrySendError::Disconnected(_)) => Err(AppError::Internal(anyhow::anyhow!(
                "password hashing threads stopped"
            ))),
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
        self.submit(f)?
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("password hashing job lost")))
    }

    fn warn_full(&self) {
        let Ok(mut last) = self.last_full_warning.lock() else {
            return;
        };
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
            *last = Some(now);
            tracing::warn!("password hashing queue full: sign-ins answered 503 busy (logged at most once a minute)");
        }
    }

    /// `stored` = `None` (no such user, or no password) still costs one verification.
    pub async fn verify(&self, password: String, stored: Option<String>) -> AppResult<bool> {
        self.run(move || match stored {
            Some(h) => verify(&password, &h),
            None => {
                let _ = verify(&password, dummy_hash());
                false
            }
        })
        .await
    }

    pub async fn hash(&self, password: String) -> AppResult<String> {
        self.run(move || hash(&password))
            .await?
            .map_err(AppError::Internal)
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            // The pool was dropped with its application.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = hash("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn hashes_made_with_other_parameters_still_verify() {
        let params = Params::new(8 * 1024, 3, 1, None).expect("params");
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"old password", &salt)
            .expect("hash")
            .to_string();
        assert!(verify("old password", &old));
        assert!(!verify("other", &old));
    }

    #[test]
    fn a_full_queue_answers_busy_at_once() {
        let pool = HashPool::new(1, 1).expect("pool");
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        // Occupy the only thread, then fill the one queue slot.
        let first = pool
            .submit(move || {
                let _ = blocked.recv();
            })
            .expect("first");
        std::thread::sleep(Duration::from_millis(100));
        let second = pool.submit(|| ()).expect("second waits in the queue");
        let err = pool.submit(|| ()).expect_err("queue full");
        assert_eq!(err.code(), "busy");
        let _ = release.send(());
        drop((first, second));
    }
}
