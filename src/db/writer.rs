//! SQLite's one writer. SQLite lets one transaction write at a time; with every pooled
//! connection trying `BEGIN IMMEDIATE`, the losers sleep in the busy handler and poll, so a few
//! requests wait up to a second behind a queue they are not in. Here every write transaction of
//! a `Db` goes to one thread with its own connection, in arrival order. The thread takes what
//! has queued up (a group, at most [`MAX_GROUP`]), runs each job in its own savepoint — a job
//! that fails is rolled back alone — and commits the group once; only then does each caller
//! get its answer, so nobody is told "done" about a write that did not reach the database.
//! Reads keep using the pool's other connections (WAL lets them run beside the writer).
//!
//! Copying the WAL back into the database file (a checkpoint, with its two `fsync`s) is not the
//! writer's work either: SQLite's automatic checkpoint would run it inside whichever commit
//! crossed 1,000 WAL pages, stalling every job queued behind it. A checkpointer thread with a
//! connection of its own runs a passive checkpoint shortly after commits instead, beside the
//! writer; the writer checkpoints by itself only if the WAL grows far past that (the
//! checkpointer stuck or gone), so the file stays bounded either way.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{changes, DbConn, Target};
use crate::error::{AppError, AppResult};
use crate::live::Hub;

/// Most jobs committed together. A group's first job waits for the whole group, so this bounds
/// the latency a group adds (a create takes well under 0.2 ms in the writer).
const MAX_GROUP: usize = 64;
/// Jobs waiting for the writer; beyond this callers wait to queue (back-pressure on the
/// blocking pool rather than unbounded memory).
const QUEUE: usize = 4096;

/// WAL pages past which the writer checkpoints by itself (SQLite's default is 1,000): only
/// reached when the checkpointer falls far behind, ~40 MiB of WAL.
const WRITER_AUTOCHECKPOINT: u32 = 10_000;
/// How long the checkpointer lets commits gather before it copies them back: one checkpoint
/// (two `fsync`s) per interval at most, however many groups committed in it.
const CHECKPOINT_AFTER: Duration = Duration::from_millis(250);

/// How a group ended, handed to each of its jobs.
type Outcome = Result<(), Failure>;

#[derive(Debug, Clone)]
enum Failure {
    /// The group's transaction could not start (another process held the database).
    NotStarted(String),
    /// The commit failed, or another job left the transaction unusable: the group rolled back.
    RolledBack(String),
}

/// Delivers a job's answer once its group has ended.
type Finish = Box<dyn FnOnce(Outcome) + Send>;
/// A write: runs on the writer's connection inside the group's transaction (or, with `None`,
/// learns that the transaction never started) and returns how to deliver its answer.
type Job = Box<dyn FnOnce(Option<&mut DbConn>) -> Finish + Send>;

thread_local! {
    /// The number of the group the writer is running (tests check which jobs shared one).
    static GROUP: Cell<u64> = const { Cell::new(0) };
}

/// Inside a job: the number of the group it runs in (0 outside the writer).
pub fn current_group() -> u64 {
    GROUP.with(Cell::get)
}

pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
    /// Jobs sent and not yet taken into a group.
    waiting: Arc<AtomicUsize>,
}

impl Writer {
    /// Opens the writer's connection and starts its thread, which ends when the last `Db`
    /// clone (and so the queue's sender) is gone.
    pub(super) fn spawn(target: &Target) -> anyhow::Result<Writer> {
        let conn = open(target)
            .map_err(|e| anyhow::anyhow!("cannot open the writer's connection: {e}"))?;
        let checkpointer = target
            .connect()
            .map_err(|e| anyhow::anyhow!("cannot open the checkpointer's connection: {e}"))?;
        let (committed, commits) = sync_channel(1);
        std::thread::Builder::new()
            .name("huying-sqlite-checkpointer".into())
            .spawn(move || checkpoint_after_commits(checkpointer, &commits))?;
        let (queue, jobs) = mpsc::channel(QUEUE);
        let waiting = Arc::new(AtomicUsize::new(0));
        let counted = waiting.clone();
        std::thread::Builder::new()
            .name("huying-sqlite-writer".into())
            .spawn({
                let target = target.clone();
                move || run(conn, &target, jobs, &counted, &committed)
            })?;
        Ok(Writer { queue, waiting })
    }

    /// Jobs queued and not yet started.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `f` as one job: its changes are committed (and its live changes published to
    /// `live`) before the answer comes back; an error rolls back only `f`'s own writes.
    pub(super) async fn write<T, F>(&self, live: Option<Arc<Hub>>, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(AppError::Unavailable("database writer".into())),
            };
            let published = changes::take();
            Box::new(move |outcome: Outcome| {
                let answer = match (result, outcome) {
                    (Ok(value), Ok(())) => {
                        if let Some(hub) = &live {
                            changes::publish(hub, published);
                        }
                        Ok(value)
                    }
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(Failure::NotStarted(e))) => {
                        tracing::error!(error = %e, "write group did not start");
                        Err(AppError::Unavailable("database writer".into()))
                    }
                    (Ok(_), Err(Failure::RolledBack(e))) => Err(AppError::Internal(
                        anyhow::anyhow!("write group rolled back: {e}"),
                    )),
                };
                // The caller may have gone away (its request was cancelled); nothing to tell.
                let _ = reply.send(answer);
            })
        });
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.queue.send(job).await.is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(AppError::Internal(anyhow::anyhow!(
                "the database writer has stopped"
            )));
        }
        answer
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the database writer dropped a job")))?
    }

    /// Whether the writer runs a job and commits within `wait` (for `/readyz`). Blocking.
    pub(super) fn probe(&self, wait: Duration) -> bool {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let started = conn.is_some();
            Box::new(move |outcome: Outcome| {
                let _ = reply.send(started && outcome.is_ok());
            })
        });
        // Counted before it is sent: the writer may take it (and count it off) at once.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send(job).is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        answer.recv_timeout(wait).unwrap_or(false)
    }
}

type Tm = <DbConn as Connection>::TransactionManager;

/// Runs `f` in a savepoint of the group's transaction: released when it succeeds, rolled back
/// to when it fails or panics, so that the other jobs of the group are untouched.
fn in_savepoint<T>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> AppResult<T>) -> AppResult<T> {
    Tm::begin_transaction(conn)?;
    changes::begin();
    let result = catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
        Err(AppError::Internal(anyhow::anyhow!(
            "a write job panicked; its savepoint was rolled back"
        )))
    });
    match result {
        Ok(value) => {
            Tm::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            changes::discard();
            if let Err(rollback) = Tm::rollback_transaction(conn) {
                tracing::error!(error = %rollback, "rollback to savepoint failed");
            }
            Err(e)
        }
    }
}

/// The transaction depth (1 = inside the group's transaction, no savepoint open).
fn depth(conn: &mut DbConn) -> Option<u32> {
    let DbConn::Sqlite(c) = conn else {
        return None;
    };
    AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()
        .ok()
        .flatten()
        .map(|d| d.get())
}

/// The writer's connection: its plans do not depend on bound values, so its cached statements
/// are not compiled again on each run (`sqlite_plans`). Each job runs in a savepoint, and SQLite
/// keeps the pages a job changes again in a statement journal that spills to a temporary file
/// past 64 KiB, which a ticket's create (some 25 pages) always did: in memory it is a copy
/// instead of file writes. Checkpoints are the checkpointer's (see the module's comment).
fn open(target: &Target) -> Result<DbConn, diesel::ConnectionError> {
    let mut conn = super::sqlite_plans::open_with_stable_plans(|| target.connect())?;
    conn.batch_execute(&format!(
        "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT};"
    ))
    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

/// The checkpointer's loop: waits for a commit, lets more gather for [`CHECKPOINT_AFTER`], then
/// copies what readers no longer need back into the database file. A passive checkpoint takes
/// no lock the writer waits for. Ends when the writer does.
fn checkpoint_after_commits(mut conn: DbConn, commits: &Receiver<()>) {
    while commits.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_AFTER);
        // Commits made during the pause are in this checkpoint.
        let _ = commits.try_recv();
        if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the next commit tries again");
        }
    }
}

fn run(
    mut conn: DbConn,
    target: &Target,
    mut jobs: mpsc::Receiver<Job>,
    waiting: &AtomicUsize,
    committed: &SyncSender<()>,
) {
    let mut group_no = 0u64;
    let mut alone = false;
    while let Some(first) = jobs.blocking_recv() {
        // A failed rollback leaves diesel's transaction manager unusable: start afresh.
        if Tm::is_broken_transaction_manager(&mut conn) {
            match open(target) {
                Ok(fresh) => conn = fresh,
                Err(e) => tracing::error!(error = %e, "cannot reopen the writer's connection"),
            }
        }
        let mut group = Vec::with_capacity(MAX_GROUP);
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        waiting.fetch_sub(group.len(), Ordering::Relaxed);
        group_no += 1;
        GROUP.with(|g| g.set(group_no));
        if run_group(&mut conn, group) {
            // One signal pending is enough: the checkpointer copies everything committed.
            if let Err(TrySendError::Disconnected(())) = committed.try_send(()) {
                if !alone {
                    tracing::error!(
                        "the SQLite checkpointer has stopped; the writer checkpoints alone"
                    );
                    alone = true;
                }
            }
        }
        GROUP.with(|g| g.set(0));
    }
}

/// Runs one group; whether it committed.
fn run_group(conn: &mut DbConn, group: Vec<Job>) -> bool {
    let began = match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        DbConn::Pg(c) => AnsiTransactionManager::begin_transaction(c),
    };
    if let Err(e) = began {
        let failure = Failure::NotStarted(e.to_string());
        for job in group {
            job(None)(Err(failure.clone()));
        }
        return false;
    }
    let mut finishes = Vec::with_capacity(group.len());
    let mut broken = None;
    for job in group {
        if broken.is_some() {
            finishes.push(job(None));
            continue;
        }
        finishes.push(job(Some(conn)));
        // A savepoint left open (or a transaction gone) would make the commit wrong for all.
        if depth(conn) != Some(1) {
            broken = Some("a job left the transaction in an unexpected state".to_string());
        }
    }
    let outcome = match broken {
        None => Tm::commit_transaction(conn).map_err(|e| Failure::RolledBack(e.to_string())),
        Some(why) => {
            if let Err(e) = Tm::rollback_transaction(conn) {
                tracing::error!(error = %e, "rollback of a broken write group failed");
            }
            Err(Failure::RolledBack(why))
        }
    };
    if let Err(e) = &outcome {
        tracing::error!(error = ?e, "write group failed");
    }
    let committed = outcome.is_ok();
    for finish in finishes {
        finish(outcome.clone());
    }
    committed
}
