//! Database access: one diesel code path over SQLite and PostgreSQL.

pub mod changes;
pub mod claim;
pub mod dialect;
pub mod models;
pub mod notify_schema;
pub mod open311_schema;
pub mod schema;
pub mod sqlite_plans;
pub mod timestamps;
pub mod types;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::error::{AppError, AppResult};

/// How long a SQLite writer waits for another's lock before "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend; queries written against it run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// Tickets the SLA sweeper stores per write transaction. SQLite has one writer, and every
    /// request's write waits behind a chunk, so its chunks stay short (50 call-ups, tens of
    /// milliseconds). PostgreSQL's writers run side by side, and each chunk costs a commit (a
    /// flush) and a dozen statements whatever its size, so its chunks are larger. A chunk has
    /// one savepoint; only when it fails does it take one per ticket, and PostgreSQL slows
    /// past 64 subtransactions in a transaction, which that rare path accepts.
    pub fn sweep_chunk(self) -> usize {
        match self {
            Engine::Sqlite => 50,
            Engine::Postgres => 250,
        }
    }
}

/// Where a database URL points, decided by its scheme (the derived `establish` would try each
/// backend in turn and hide the real error).
#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(String),
    Postgres(String),
}

impl Target {
    pub fn parse(url: &str) -> AppResult<Target> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Target::Postgres(url.to_string()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Target::Sqlite(path.to_string()))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            Ok(Target::Sqlite(path.to_string()))
        } else if url.contains("://") {
            Err(AppError::Internal(anyhow::anyhow!(
                "unsupported database URL scheme (use sqlite:// or postgres://)"
            )))
        } else {
            Ok(Target::Sqlite(url.to_string()))
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Target::Sqlite(_) => Engine::Sqlite,
            Target::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite database file, when there is one (not PostgreSQL, not `:memory:`).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        match self {
            Target::Sqlite(p) if p != ":memory:" && !p.is_empty() => Some(PathBuf::from(p)),
            _ => None,
        }
    }

    pub fn connect(&self) -> Result<DbConn, diesel::ConnectionError> {
        match self {
            Target::Postgres(url) => {
                init_openssl();
                Ok(DbConn::Pg(PgConnection::establish(url)?))
            }
            Target::Sqlite(path) => {
                if path != ":memory:" {
                    if let Some(parent) = std::path::Path::new(path).parent() {
                        if !parent.as_os_str().is_empty() {
                            std::fs::create_dir_all(parent).map_err(|e| {
                                diesel::ConnectionError::BadConnection(format!(
                                    "cannot create {}: {e}",
                                    parent.display()
                                ))
                            })?;
                        }
                    }
                }
                let mut conn = SqliteConnection::establish(path)?;
                // Per connection (busy_timeout first, so that switching to WAL waits too): WAL lets readers run beside the writer; busy_timeout makes a
                // second writer wait instead of failing; foreign keys are off by default.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                ))
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

/// Initialises OpenSSL the way rust-openssl does (without an exit handler) before libpq can
/// initialise it with one: OpenSSL's exit-time cleanup would otherwise run while other threads
/// still hold TLS connections and crash the process as it exits.
pub fn init_openssl() {
    openssl_sys::init();
}

pub struct Manager {
    target: Target,
    /// SQLite: plan each statement once, whatever values are bound (see `sqlite_plans`).
    stable_plans: bool,
}

/// Page cache of each pooled SQLite connection, KiB (see `Manager::connect`).
const READER_CACHE_KIB: u32 = 512;

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let mut conn = if self.stable_plans {
            sqlite_plans::open_with_stable_plans(|| self.target.connect())?
        } else {
            self.target.connect()?
        };
        if let DbConn::Sqlite(c) = &mut conn {
            // A pooled reader's page cache is private to it: at SQLite's default (2 MiB) the
            // pool's ten held 20 MiB of copies of pages that the OS page cache holds anyway, and
            // a miss is a pread from that cache. The writer keeps the default.
            c.batch_execute(&format!("PRAGMA cache_size = -{READER_CACHE_KIB};"))
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        }
        Ok(Pooled {
            conn,
            returned: Instant::now(),
            suspect: false,
        })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), Self::Error> {
        if !pooled.suspect && pooled.returned.elapsed() < UNCHECKED_REUSE {
            return Ok(());
        }
        pooled
            .conn
            .batch_execute("SELECT 1")
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        pooled.suspect = false;
        Ok(())
    }

    /// Called as a connection goes back to the pool: notes when, for `is_valid`.
    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.returned = Instant::now();
        false
    }
}

/// A connection given back to the pool less than this ago is handed out again without a
/// `SELECT 1` first. Under load every checkout reuses a connection returned milliseconds
/// before, and on PostgreSQL that ping was a round trip of its own: three of a create's 35,
/// two of a queue page's eight. A connection that sat idle longer (the server may have been
/// restarted meanwhile) is still checked, and so is one whose last work ended in an error
/// (`Pooled::suspect`): a connection the server dropped fails one request, then its
/// check fails and r2d2 replaces it.
const UNCHECKED_REUSE: Duration = Duration::from_secs(2);

/// A pooled connection and when it last went back to the pool.
pub struct Pooled {
    conn: DbConn,
    returned: Instant,
    /// Its last work failed: check it before handing it out again.
    suspect: bool,
}

/// A connection checked out of one of the pools (see [`Db::get`]); it goes back when dropped.
pub struct PooledConn(r2d2::PooledConnection<Manager>);

impl PooledConn {
    /// Runs `f` on the connection; if it fails, the connection is checked before its next use
    /// (the failure may have been the connection's).
    fn work<T>(&mut self, f: impl FnOnce(&mut DbConn) -> AppResult<T>) -> AppResult<T> {
        let result = f(&mut self.0.conn);
        if result.is_err() {
            self.0.suspect = true;
        }
        result
    }
}

impl std::ops::Deref for PooledConn {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        &self.0.conn
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.0.conn
    }
}

/// The pool plus which backend it talks to.
#[derive(Clone)]
pub struct Db {
    /// The request readers (see `run`) and the pool of blocking code (`get`).
    readers: Readers,
    engine: Engine,
    /// SQLite: the file opened at start and its identity then, to notice it deleted or replaced
    /// (the open connections would go on writing into the unlinked file).
    sqlite_file: Option<(PathBuf, Option<FileId>)>,
    /// Callers blocked in `pool.get()` right now (r2d2 does not count them).
    waiting: Arc<AtomicUsize>,
    /// Where the URL points (the LISTEN connection of live updates opens its own).
    target: Target,
    /// Live updates: the hub that changes committed through `run` reach (see `changes`).
    live: Option<Arc<crate::live::Hub>>,
    /// SQLite: the one thread that runs every `write`, in groups (see `writer`).
    writer: Option<Arc<writer::Writer>>,
    /// SQLite: the readers of [`Db::run_ranged`].
    ranged: Option<Readers>,
    pool_timeout: Duration,
}

/// Pooled connections and a permit per connection.
#[derive(Clone)]
struct Readers {
    pool: r2d2::Pool<Manager>,
    /// One permit per pooled connection: `run` waits here, on the async side, before it takes a
    /// blocking thread. Without it every request beyond the pool's size parked a blocking
    /// thread inside `pool.get()`; under load actix's blocking pools grew past 100 threads, and
    /// each kept its stack and its share of the allocator (see docs/benchmarks.md, "Memory").
    slots: Arc<tokio::sync::Semaphore>,
}

/// The pool as `/metrics` shows it.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub max: u32,
    pub connections: u32,
    pub idle: u32,
    pub waiting: usize,
    /// SQLite: write jobs queued for the writer and not yet started.
    pub writer_queue: usize,
}

/// Counts a caller as waiting for as long as it is inside `pool.get()`, even on a panic.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(n: &'a AtomicUsize) -> Waiting<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn pool_get(pool: &r2d2::Pool<Manager>, waiting: &AtomicUsize) -> Result<PooledConn, r2d2::Error> {
    let _w = Waiting::start(waiting);
    pool.get().map(PooledConn)
}

/// Device and inode of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId(u64, u64);

impl FileId {
    pub fn of(path: &Path) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(path)
                .ok()
                .map(|m| FileId(m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            std::fs::metadata(path).ok().map(|_| FileId(0, 0))
        }
    }
}

/// Why `/readyz` says no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The SQLite file is gone, or another file now has its name.
    FileGone,
    FileReplaced,
    /// Every pooled connection is in use.
    PoolExhausted,
    /// The write probe did not get the database in time, or failed.
    WriteBlocked,
}

impl NotReady {
    pub fn as_str(self) -> &'static str {
        match self {
            NotReady::FileGone => "database_file_gone",
            NotReady::FileReplaced => "database_file_replaced",
            NotReady::PoolExhausted => "pool_exhausted",
            NotReady::WriteBlocked => "write_blocked",
        }
    }
}

impl Db {
    pub fn connect(settings: &Settings) -> anyhow::Result<Db> {
        let target = Target::parse(settings.database.url.expose_secret())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let engine = target.engine();
        // Fail fast with the real connection error rather than r2d2's generic timeout.
        target
            .connect()
            .map_err(|e| anyhow::anyhow!("cannot connect to database: {e}"))?;
        let pool_timeout = Duration::from_secs(settings.database.pool_timeout_secs);
        // Connections are opened as they are needed, not all at start: `min_idle` of the request
        // readers is 1 (CLI commands need one), of the dashboard's 0.
        let readers_of = |size: u32, min_idle: u32, stable_plans: bool| {
            Ok::<_, r2d2::Error>(Readers {
                pool: r2d2::Pool::builder()
                    .max_size(size)
                    .min_idle(Some(min_idle))
                    .connection_timeout(pool_timeout)
                    .build(Manager {
                        target: target.clone(),
                        stable_plans,
                    })?,
                slots: Arc::new(tokio::sync::Semaphore::new(size as usize)),
            })
        };
        let readers = readers_of(settings.database.pool_size, 1, true)?;
        // The dashboard's range aggregates are better planned with the range's values (see
        // `sqlite_plans`): on SQLite they read on connections of their own that see them.
        let ranged = match &target {
            Target::Sqlite(_) => Some(readers_of(
                (settings.database.pool_size / 2).max(2),
                0,
                false,
            )?),
            Target::Postgres(_) => None,
        };
        let sqlite_file = target.sqlite_file().map(|p| {
            let id = FileId::of(&p);
            (p, id)
        });
        // `:memory:` is a new database per connection: the writer's would not be the pool's.
        let writer = match &target {
            Target::Sqlite(_) if sqlite_file.is_some() => {
                Some(Arc::new(writer::Writer::spawn(&target)?))
            }
            _ => None,
        };
        Ok(Db {
            readers,
            engine,
            sqlite_file,
            waiting: Arc::new(AtomicUsize::new(0)),
            target,
            live: None,
            writer,
            ranged,
            pool_timeout,
        })
    }

    /// Changes committed through this `Db` reach `hub`: on PostgreSQL through one LISTEN
    /// connection started here (a thread that ends when the hub is dropped), on SQLite
    /// directly after each commit.
    pub fn with_live(mut self, hub: &Arc<crate::live::Hub>) -> anyhow::Result<Db> {
        if let Target::Postgres(url) = &self.target {
            changes::spawn_listener(url.clone(), hub)?;
        }
        self.live = Some(hub.clone());
        Ok(self)
    }

    /// The SQLite database file, if that is the backend.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_file.as_ref().map(|(p, _)| p.as_path())
    }

    /// Whether this instance can serve: its SQLite file is still the one it opened, a pooled
    /// connection is free, and a write transaction starts within `wait` (SQLite: `BEGIN
    /// IMMEDIATE` under a short busy timeout; PostgreSQL: `BEGIN READ WRITE` under a short
    /// statement timeout, which also fails on a read-only standby). Blocking: run it off the
    /// async executor.
    pub fn readiness(&self, wait: Duration) -> Result<(), NotReady> {
        if let Some((path, opened)) = &self.sqlite_file {
            match FileId::of(path) {
                None => return Err(NotReady::FileGone),
                Some(now) if Some(now) != *opened => return Err(NotReady::FileReplaced),
                Some(_) => {}
            }
        }
        let state = self.readers.pool.state();
        if state.idle_connections == 0 && state.connections >= self.readers.pool.max_size() {
            return Err(NotReady::PoolExhausted);
        }
        // SQLite: writes queue for the writer, which holds the lock while it works; the question
        // is whether it takes a job and commits in time, not whether the lock is free.
        if let Some(writer) = &self.writer {
            return if writer.probe(wait) {
                Ok(())
            } else {
                tracing::warn!("readiness: the SQLite writer did not commit in time");
                Err(NotReady::WriteBlocked)
            };
        }
        let mut conn = self
            .readers
            .pool
            .get_timeout(wait)
            .map(PooledConn)
            .map_err(|_| NotReady::PoolExhausted)?;
        let ms = wait.as_millis().max(1);
        let probe = match &mut *conn {
            DbConn::Sqlite(c) => {
                let r = c.batch_execute(&format!(
                    "PRAGMA busy_timeout = {ms}; BEGIN IMMEDIATE; ROLLBACK;"
                ));
                // Back to the pool's normal wait whatever happened.
                let restored =
                    c.batch_execute(&format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"));
                r.and(restored)
            }
            DbConn::Pg(c) => c
                .batch_execute(&format!(
                    "BEGIN READ WRITE; SET LOCAL statement_timeout = {ms}; SELECT 1; ROLLBACK;"
                ))
                .inspect_err(|_| {
                    // Never hand the pool a connection inside a failed transaction.
                    let _ = c.batch_execute("ROLLBACK");
                }),
        };
        probe.map_err(|e| {
            tracing::warn!(error = %e, "readiness write probe failed");
            NotReady::WriteBlocked
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn pool_stats(&self) -> PoolStats {
        let state = self.readers.pool.state();
        PoolStats {
            max: self.readers.pool.max_size(),
            connections: state.connections,
            idle: state.idle_connections,
            waiting: self.waiting.load(Ordering::Relaxed),
            writer_queue: self.writer.as_ref().map_or(0, |w| w.waiting()),
        }
    }

    /// A pooled connection for blocking code (CLI, jobs).
    pub fn get(&self) -> AppResult<PooledConn> {
        Ok(pool_get(&self.readers.pool, &self.waiting)?)
    }

    /// A connection of [`Db::run_ranged`]'s kind for blocking code (the statistics benchmark
    /// times the dashboard's calls on what the service runs them on).
    pub fn get_ranged(&self) -> AppResult<PooledConn> {
        match &self.ranged {
            Some(r) => Ok(pool_get(&r.pool, &self.waiting)?),
            None => self.get(),
        }
    }

    /// Runs blocking database work off the async executor. On SQLite its statements are planned
    /// once whatever values they are run with (a request's short lookups and pages: planning
    /// again on every run was a sixth of a queue request's time).
    pub async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    {
        self.run_in(&self.readers, f).await
    }

    /// [`Db::run`] for reads whose best plan depends on the values (the dashboard's aggregates
    /// over a date range): on SQLite these run on connections that plan each run with its
    /// values. The same as `run` on PostgreSQL, which always does.
    pub async fn run_ranged<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    {
        match &self.ranged {
            Some(r) => self.run_in(r, f).await,
            None => self.run(f).await,
        }
    }

    async fn run_in<T, F>(&self, readers: &Readers, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    {
        let permit = {
            let _w = Waiting::start(&self.waiting);
            tokio::time::timeout(self.pool_timeout, readers.slots.clone().acquire_owned()).await
        };
        let permit = match permit {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(AppError::Unavailable("database pool closed".into())),
            Err(_) => {
                return Err(AppError::Unavailable(
                    "database pool: timed out waiting for a connection".into(),
                ))
            }
        };
        let pool = readers.pool.clone();
        let waiting = self.waiting.clone();
        let live = self.live.clone();
        actix_web::web::block(move || {
            let _permit = permit;
            let mut conn = pool_get(&pool, &waiting)?;
            changes::with_hub(live.as_ref(), || conn.work(f))
        })
        .await?
    }

    /// Runs `f` in a write transaction off the async executor: on SQLite as one job of the
    /// writer (its own savepoint in a group commit, see `writer`), on PostgreSQL on a pooled
    /// connection (see [`write_tx`]). Either way `f`'s writes are committed, or none of them,
    /// before this returns.
    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(self.live.clone(), f).await,
            None => self.run(move |conn| write_tx(conn, f)).await,
        }
    }

    /// Runs `pre`, then `f` with what `pre` returned, as one write. On SQLite both run in the
    /// same job of the writer (one transaction). On PostgreSQL `pre` commits first in a short
    /// transaction of its own that does not wait for its WAL flush ([`write_tx_unflushed`]),
    /// then `f` runs in its own transaction: for a counter whose row lock would otherwise be
    /// held until `f`'s commit and queue every writer behind that commit's flush. `pre` must
    /// be safe to keep when `f` fails (the counter then has a gap).
    pub async fn write_after<P, T, G, F>(&self, pre: G, f: F) -> AppResult<T>
    where
        P: Send + 'static,
        T: Send + 'static,
        G: FnOnce(&mut DbConn) -> AppResult<P> + Send + 'static,
        F: FnOnce(&mut DbConn, P) -> AppResult<T> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => {
                writer
                    .write(self.live.clone(), move |c| {
                        let p = pre(c)?;
                        f(c, p)
                    })
                    .await
            }
            None => {
                self.run(move |c| {
                    let p = write_tx_unflushed(c, pre)?;
                    write_tx(c, move |c| f(c, p))
                })
                .await
            }
        }
    }

    /// Runs the pending migrations, then `after` (see [`run_migrations`]).
    pub fn migrate(
        &self,
        after: impl FnOnce(&mut DbConn) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<String>> {
        let mut conn = PooledConn(self.readers.pool.get()?);
        run_migrations(&mut conn, after)
    }
}

/// A transaction that will write. SQLite needs `BEGIN IMMEDIATE` here: a deferred transaction
/// that reads first and writes later fails with "database is locked" under concurrency instead
/// of waiting for the busy timeout.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConn::Pg(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    in_write_tx(conn, f)
}

/// The body of [`write_tx`] once its transaction has begun: the live updates around `f`, then
/// the commit, or the rollback if anything failed.
fn in_write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    changes::begin();
    // Live updates: PostgreSQL sends the transaction's changes inside it, to be delivered only
    // if it commits; SQLite publishes them once it has committed.
    let result = f(conn).and_then(|value| {
        changes::before_commit(conn)?;
        Ok(value)
    });
    match result {
        Ok(value) => {
            if let Err(e) = <DbConn as Connection>::TransactionManager::commit_transaction(conn) {
                changes::discard();
                return Err(e.into());
            }
            changes::after_commit(conn);
            Ok(value)
        }
        Err(e) => {
            changes::discard();
            if let Err(rollback) =
                <DbConn as Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// A write transaction whose commit does not wait for the WAL flush on PostgreSQL
/// (`synchronous_commit = off` for it alone); elsewhere [`write_tx`]. Only for a write whose
/// loss in a crash harms nothing: whatever later depends on it commits after it, and
/// PostgreSQL flushes the WAL in order, so a flushed later commit implies this one. Not inside
/// another transaction.
pub fn write_tx_unflushed<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        // One round trip for both: the setting is the transaction's first statement anyway.
        DbConn::Pg(c) => {
            AnsiTransactionManager::begin_transaction_sql(
                c,
                "BEGIN; SET LOCAL synchronous_commit = off",
            )?;
            in_write_tx(conn, f)
        }
        DbConn::Sqlite(_) => write_tx(conn, f),
    }
}

/// Runs the pending migrations, then `after`: the work that must follow them before anyone
/// uses the database (the caller's, e.g. back-filling data computed in Rust). On PostgreSQL
/// both run under an advisory lock: when several instances start at once, one migrates and
/// runs `after`, the others wait and then find nothing to do.
pub fn run_migrations(
    conn: &mut DbConn,
    after: impl FnOnce(&mut DbConn) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<String>> {
    let applied = match conn {
        DbConn::Sqlite(c) => {
            let applied = c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?
                .iter()
                .map(|v| v.to_string())
                .collect();
            after(conn)?;
            applied
        }
        DbConn::Pg(c) => {
            c.batch_execute("SELECT pg_advisory_lock(4826001)")?;
            let result = c
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect::<Vec<_>>())
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
            let result = result.and_then(|applied| after(conn).map(|()| applied));
            if let DbConn::Pg(c) = conn {
                c.batch_execute("SELECT pg_advisory_unlock(4826001)")?;
            }
            result?
        }
    };
    Ok(applied)
}

/// `now()` for the database: UTC, rounded to microseconds because PostgreSQL keeps no more.
pub fn round_ts(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    t.naive_utc().trunc_subsecs(6)
}
