//! argon2id password hashing at the OWASP recommendation (m = 19 MiB, t = 2, p = 1), run on a
//! fixed pool of threads with a bounded queue: each hash takes 19 MiB and a core for tens of
//! milliseconds, so unbounded parallel sign-ins would grow memory and threads without limit.
//!
//! Each hash maps its 19 MiB of argon2 memory and gives it back when done: the binary fixes
//! glibc's mmap threshold at 1 MiB (`main.rs`), so such blocks never move into malloc's arenas,
//! which had kept them (RSS climbing by hundreds of MB under a login flood), and no thread holds
//! 19 MiB between sign-ins (it had: 20 MB for the life of the process after the first one).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, Decimal, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::{AppError, AppResult};

/// Memory cost in KiB (19 MiB), iterations and lanes recommended by OWASP for argon2id.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default()
}

/// Runs argon2 with memory of its own for this hash, given back afterwards.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    f(&mut vec![Block::default(); blocks])
}

pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let params = params();
    let mut out = [0u8; 32];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    with_memory(params.block_count(), |m| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, m)
    })
    .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Decimal::from(Version::V0x13)),
        params: (&params)
            .try_into()
            .map_err(|e| anyhow::anyhow!("hash parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("hash output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Checks with the algorithm, version and parameters stored in the hash itself, so hashes made
/// with other parameters still verify.
pub fn verify(password: &str, stored: &str) -> bool {
    check(password, stored).unwrap_or(false)
}

fn check(password: &str, stored: &str) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    let (salt, expected) = (parsed.salt?, parsed.hash?);
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).ok()?;
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    with_memory(params.block_count(), |m| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, m)
    })
    .ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(&out).ok()? == expected)
}

/// A valid hash of a random password, verified against when the user does not exist so that
/// a wrong username costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed number of hashing threads fed through a bounded queue. A sign-in takes its place
/// (`admit`) before anything else, even before reading the account, so a flood beyond
/// `workers + queue` costs neither a database connection nor a thread: it gets 503 `busy` at
/// once.
pub struct HashPool {
    jobs: SyncSender<Job>,
    capacity: usize,
    admitted: AtomicUsize,
    last_full_warning: Mutex<Option<Instant>>,
}

/// A place in the pool, held from admission until the hash is done.
pub struct Admitted(Arc<HashPool>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// `workers` = 0 means one per CPU core; `queue` ≥ 1.
    pub fn new(workers: usize, queue: usize) -> std::io::Result<HashPool> {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            workers
        };
        let queue = queue.max(1);
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    work(&rx)
                })?;
        }
        Ok(HashPool {
            jobs,
            capacity: workers + queue,
            admitted: AtomicUsize::new(0),
            last_full_warning: Mutex::new(None),
        })
    }

    /// A place for one hash, or 503 `busy` when every thread and queue slot is taken.
    pub fn admit(self: &Arc<Self>) -> AppResult<Admitted> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            self.warn_full();
            return Err(busy());
        }
        Ok(Admitted(self.clone()))
    }

    /// Queues `f`; admission keeps the queue from ever being full, this is the backstop.
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
                Err(busy())
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

    pub async fn hash(self: &Arc<Self>, password: String) -> AppResult<String> {
        let _place = self.admit()?;
        self.run(move || hash(&password))
            .await?
            .map_err(AppError::Internal)
    }
}

impl Admitted {
    /// `stored` = `None` (no such user, or no password) still costs one verification.
    pub async fn verify(self, password: String, stored: Option<String>) -> AppResult<bool> {
        self.0
            .run(move || match stored {
                Some(h) => verify(&password, &h),
                None => {
                    let _ = verify(&password, dummy_hash());
                    false
                }
            })
            .await
    }
}

fn busy() -> AppError {
    AppError::Busy {
        what: "password hashing queue full",
        retry_after: 1,
    }
}

/// Hashing threads yield the CPU to the HTTP workers (nice 10): under a flood of sign-ins,
/// health checks and everything else still answer promptly.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id (Linux: per-thread nice); no memory involved.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0 {
            tracing::debug!("could not lower the priority of a password hashing thread");
        }
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
        use argon2::password_hash::PasswordHasher;
        // The crate's own hasher, as earlier versions of this service used it, with smaller,
        // larger and default parameters, and argon2i.
        for (alg, m, t) in [
            (Algorithm::Argon2id, 8 * 1024, 3),
            (Algorithm::Argon2id, 32 * 1024, 1),
            (Algorithm::Argon2i, 4 * 1024, 2),
        ] {
            let params = Params::new(m, t, 1, None).expect("params");
            let salt = SaltString::generate(&mut OsRng);
            let old = Argon2::new(alg, Version::V0x13, params)
                .hash_password(b"old password", &salt)
                .expect("hash")
                .to_string();
            assert!(verify("old password", &old), "{old}");
            assert!(!verify("other", &old), "{old}");
        }
        let default = Argon2::default()
            .hash_password(b"old password", &SaltString::generate(&mut OsRng))
            .expect("hash")
            .to_string();
        assert!(verify("old password", &default));
        // And ours verify with the crate's own verifier.
        use argon2::password_hash::PasswordVerifier;
        let ours = hash("new password").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default()
            .verify_password(b"new password", &parsed)
            .is_ok());
    }

    #[test]
    fn a_full_pool_answers_busy_at_once() {
        let pool = Arc::new(HashPool::new(1, 1).expect("pool"));
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        // One thread and one queue slot: two places.
        let first = pool.admit().expect("first");
        let _second = pool.admit().expect("second");
        assert_eq!(
            pool.admit().err().map(|e| e.code().to_string()).as_deref(),
            Some("busy")
        );
        // A place given back is free again.
        drop(first);
        let third = pool.admit().expect("third");
        let running = pool
            .submit(move || {
                let _ = blocked.recv();
            })
            .expect("runs");
        std::thread::sleep(Duration::from_millis(100));
        let waiting = pool.submit(|| ()).expect("waits in the queue");
        // The backstop: a full channel refuses too.
        assert_eq!(
            pool.submit(|| ())
                .err()
                .map(|e| e.code().to_string())
                .as_deref(),
            Some("busy")
        );
        let _ = release.send(());
        drop((third, running, waiting));
    }
}
