//! One writing thread per SQLite database, for the writes that must stay fast under
//! concurrency (adding to a cart).
//!
//! Through `sqlx`, every statement is a round trip to the connection's own thread: two
//! thread hand-offs, which cost tens of microseconds on a busy two-core machine and were
//! most of an add-to-cart's time. Here a whole operation is a closure run on the database's
//! writer thread, so it costs one hand-off there and one back, whatever it executes.
//! Operations that queue while the thread is busy share one transaction (group commit),
//! each in its own savepoint: an operation that fails rolls back alone, and nobody hears of
//! success before the commit. The thread takes the database's write turn
//! (`db::Backend::write_turn`) for each batch, so it queues fairly with `sqlx` writers of
//! the same process, and ends after a quiet spell (a new one starts on the next write).
//! Operations may remember what they read between batches (`Memo`): the thread forgets it
//! whenever another connection has changed the database.

use crate::db::Columns;
use crate::error::{ApiError, ApiResult};
use rusqlite::Connection;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A writer thread's quiet spell before it ends.
const IDLE: Duration = Duration::from_secs(30);

/// At most this many operations share a transaction.
const MAX_BATCH: usize = 128;

/// The outcome of an operation run in a batch: whether to keep its writes, and how to tell
/// its caller once the batch's commit has (or has not) happened.
struct Ran {
    keep: bool,
    tell: Tell,
}

/// Tells an operation's caller whether its batch committed.
type Tell = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;

/// An operation waiting for the thread; given the connection and the thread's memo, or
/// why there is no connection.
type Job = Box<dyn FnOnce(Result<(&Connection, &mut Memo), &rusqlite::Error>) -> Ran + Send>;

/// What operations remember between batches on the writer's connection, such as catalog
/// rows they read, one value per type. The writer forgets all of it whenever another
/// connection has changed the database (SQLite's `PRAGMA data_version`, read at the start
/// of each batch, once the batch holds the write lock and nobody else can change anything
/// until it commits), so a remembered row is as fresh as one read again. An operation that
/// itself writes what it remembered must forget that.
#[derive(Default)]
pub struct Memo {
    version: Option<i64>,
    kept: HashMap<TypeId, Box<dyn Any>>,
}

impl Memo {
    /// The remembered value of type `T`, made with `T::default()` at first.
    pub fn get<T: Default + 'static>(&mut self) -> &mut T {
        let kept = self.kept.entry(TypeId::of::<T>()).or_insert_with(|| Box::new(T::default()));
        kept.downcast_mut().expect("kept under its own type")
    }

    /// Forgets everything if another connection has written since the last look.
    fn refresh(&mut self, conn: &Connection) -> Result<(), rusqlite::Error> {
        let version = conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        if self.version != Some(version) {
            self.kept.clear();
            self.version = Some(version);
        }
        Ok(())
    }
}

/// The writer of one SQLite database file.
#[derive(Debug)]
pub struct Writer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    pragmas: String,
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The running thread's queue; `None` when no thread runs.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Writer {
    /// A writer for the database at `path`, set up with `pragmas` (as the pool's
    /// connections are), writing in `turn`. No thread runs until the first operation.
    pub fn new(path: PathBuf, pragmas: String, turn: Arc<tokio::sync::Mutex<()>>) -> Self {
        Self { shared: Arc::new(Shared { path, pragmas, turn, queue: Mutex::new(None) }) }
    }

    /// Runs `op` on the writer thread inside a write transaction, with the thread's memo,
    /// and returns its result once the transaction has committed. An `Err` from `op` undoes
    /// its writes (only its own); a failed commit is the caller's error too.
    pub async fn run<T, F>(&self, op: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Memo) -> ApiResult<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<ApiResult<T>>();
        let job: Job = Box::new(move |conn| match conn {
            Err(e) => {
                let _ = reply.send(Err(sqlite_error(e)));
                Ran { keep: false, tell: Box::new(|_| {}) }
            }
            Ok((conn, memo)) => {
                let result = op(conn, memo);
                Ran {
                    keep: result.is_ok(),
                    tell: Box::new(move |committed| {
                        let result = match (committed, result) {
                            (Err(e), Ok(_)) => Err(sqlite_error(e)),
                            (_, result) => result,
                        };
                        let _ = reply.send(result);
                    }),
                }
            }
        });
        self.send(job);
        answer.await.unwrap_or_else(|_| Err(ApiError::internal(&"the database writer stopped")))
    }

    /// Lets the thread end once it has run what is queued (the database is going away).
    pub fn close(&self) {
        *self.shared.queue() = None;
    }

    /// Queues a job, starting the thread when none runs.
    fn send(&self, job: Job) {
        let mut queue = self.shared.queue();
        let job = match queue.as_ref() {
            Some(q) => match q.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (sender, receiver) = mpsc::channel();
        let _ = sender.send(job);
        *queue = Some(sender);
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("aurelio-sqlite-writer".into())
            .spawn(move || shared.serve(&receiver));
        if let Err(e) = spawned {
            // The job is dropped with the queue: its caller hears that the writer stopped.
            tracing::error!(error = %e, "cannot start a database writer thread");
            *queue = None;
        }
    }
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<Job>>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: opens the connection, then runs batches until quiet for `IDLE`.
    fn serve(&self, receiver: &mpsc::Receiver<Job>) {
        // Never created here: the pool made and migrated it, and a shop deleted meanwhile
        // must not come back as an empty file.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)
            .and_then(|c| c.execute_batch(&self.pragmas).map(|()| c));
        let mut memo = Memo::default();
        loop {
            let first = match receiver.recv_timeout(IDLE) {
                Ok(job) => job,
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    // Stop taking jobs, then run what came in meanwhile.
                    *self.queue() = None;
                    let rest: Vec<Job> = receiver.try_iter().collect();
                    if !rest.is_empty() {
                        self.batch(conn.as_ref(), &mut memo, rest);
                    }
                    return;
                }
            };
            let mut jobs = vec![first];
            jobs.extend(receiver.try_iter().take(MAX_BATCH - 1));
            self.batch(conn.as_ref(), &mut memo, jobs);
        }
    }

    /// Runs jobs in one transaction, each in a savepoint, then tells their callers.
    fn batch(&self, conn: Result<&Connection, &rusqlite::Error>, memo: &mut Memo, jobs: Vec<Job>) {
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                for job in jobs {
                    (job(Err(e)).tell)(Err(e));
                }
                return;
            }
        };
        let turn = self.turn.blocking_lock();
        let begun = conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            memo.refresh(conn).inspect_err(|_| {
                let _ = conn.execute_batch("ROLLBACK");
            })
        });
        if let Err(e) = begun {
            drop(turn);
            for job in jobs {
                (job(Err(&e)).tell)(Err(&e));
            }
            return;
        }
        let mut ran = Vec::with_capacity(jobs.len());
        for job in jobs {
            let r = savepoint(conn, "SAVEPOINT op").and_then(|()| {
                let r = job(Ok((conn, &mut *memo)));
                if !r.keep {
                    savepoint(conn, "ROLLBACK TO op")?;
                }
                savepoint(conn, "RELEASE op").map(|()| r)
            });
            match r {
                Ok(r) => ran.push(r),
                // The transaction is unusable: everyone in it fails.
                Err(e) => return self.abandon(conn, ran, &e, turn),
            }
        }
        let committed = conn.execute_batch("COMMIT");
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        drop(turn);
        for r in ran {
            (r.tell)(committed.as_ref().copied());
        }
    }

    fn abandon(
        &self,
        conn: &Connection,
        ran: Vec<Ran>,
        e: &rusqlite::Error,
        turn: tokio::sync::MutexGuard<'_, ()>,
    ) {
        let _ = conn.execute_batch("ROLLBACK");
        drop(turn);
        tracing::error!(path = %self.path.display(), error = %e, "write batch abandoned");
        for r in ran {
            (r.tell)(Err(e));
        }
    }
}

fn savepoint(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// A SQLite error as the API reports it: busy or unreachable is 503, the rest 500.
pub fn sqlite_error(e: &rusqlite::Error) -> ApiError {
    match e.sqlite_error_code() {
        Some(
            rusqlite::ErrorCode::DatabaseBusy
            | rusqlite::ErrorCode::DatabaseLocked
            | rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::SystemIoFailure
            | rusqlite::ErrorCode::DiskFull,
        ) => {
            tracing::error!(error = %e, "database unavailable");
            ApiError::unavailable("the database is unavailable, try again")
        }
        _ => ApiError::internal(e),
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        sqlite_error(&e)
    }
}

/// A row with its statement's column names: looking a column up by name in the row itself
/// asks SQLite for every column's name each time, which was a quarter of the writer's time.
pub struct Named<'a, 'r> {
    row: &'a rusqlite::Row<'r>,
    names: &'a [String],
}

impl Named<'_, '_> {
    fn index(&self, column: &str) -> ApiResult<usize> {
        let found = self.names.iter().position(|n| n == column);
        found.ok_or_else(|| ApiError::internal(&format!("no column `{column}`")))
    }
}

impl Columns for Named<'_, '_> {
    fn text(&self, column: &str) -> ApiResult<Option<String>> {
        Ok(self.row.get(self.index(column)?)?)
    }
    fn int(&self, column: &str) -> ApiResult<Option<i64>> {
        Ok(self.row.get(self.index(column)?)?)
    }
}

/// Runs a statement (prepared once per connection) and decodes its rows with `decode`.
pub fn query<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut decode: impl FnMut(&Named<'_, '_>) -> ApiResult<T>,
) -> ApiResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let names: Vec<String> = statement.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(&Named { row, names: &names })?);
    }
    Ok(out)
}

/// Runs a writing statement (prepared once per connection); returns the rows changed.
pub fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> ApiResult<usize> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

/// Names `values` `$1`, `$2`, … as the common SQL dialect numbers its parameters (SQLite
/// would number named parameters by first appearance instead).
pub fn numbered<'a>(
    values: &[&'a dyn rusqlite::ToSql],
) -> Vec<(&'static str, &'a dyn rusqlite::ToSql)> {
    const NAMES: [&str; 12] =
        ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12"];
    assert!(values.len() <= NAMES.len(), "at most {} parameters", NAMES.len());
    NAMES.iter().copied().zip(values.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &tempfile::TempDir) -> Writer {
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY)")
            .expect("schema");
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        Writer::new(path, "PRAGMA busy_timeout = 1000;".into(), turn)
    }

    fn insert(conn: &Connection, k: &str) -> ApiResult<usize> {
        execute(conn, "INSERT INTO t (k) VALUES ($1)", &*numbered(&[&k]))
    }

    fn keys(dir: &tempfile::TempDir) -> Vec<String> {
        let conn = Connection::open(dir.path().join("w.db")).expect("open");
        query(&conn, "SELECT k FROM t ORDER BY k", [], |r| r.text_of("k")).expect("keys")
    }

    /// Operations queued while the thread is busy share a transaction; one that fails
    /// (here a duplicate key after two inserts of its own) undoes only its own writes,
    /// whatever order the three reach the thread in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_operation_in_a_batch_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Arc::new(writer(&dir));
        // Hold the thread in a first operation (a batch of its own) until the others are
        // queued; they form the next batch.
        let (go, wait) = mpsc::channel::<()>();
        let (running, started) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let w = Arc::clone(&w);
            tokio::spawn(async move {
                w.run(move |c, _| {
                    let _ = running.send(());
                    wait.recv().expect("go");
                    insert(c, "a")
                })
                .await
            })
        };
        started.await.expect("the first operation runs");
        // Polled once each, the three are queued (an operation is sent to the thread on its
        // first poll) before the first is let go: no sleep, no guess.
        let mut ops = ["b", "bad", "c"].map(|k| {
            Box::pin(w.run(move |c, _| {
                insert(c, k)?;
                if k == "bad" {
                    insert(c, "bad-too")?;
                    insert(c, "a")?; // committed by the first operation: fails
                }
                Ok(k)
            }))
        });
        for op in &mut ops {
            assert!(futures::poll!(op.as_mut()).is_pending(), "the thread is busy");
        }
        go.send(()).expect("go");
        assert_eq!(first.await.expect("join").expect("first"), 1);
        let mut answers = Vec::new();
        for op in ops {
            answers.push(op.await.map_err(|e| e.code));
        }
        assert_eq!(answers[0], Ok("b"));
        assert_eq!(answers[1], Err("internal"));
        assert_eq!(answers[2], Ok("c"));
        assert_eq!(keys(&dir), ["a", "b", "c"]);
    }

    /// The memo lasts from batch to batch, whatever the writer itself writes, until
    /// another connection writes.
    #[tokio::test]
    async fn the_memo_lasts_until_another_connection_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = writer(&dir);
        let remember = |k: &'static str| {
            w.run(move |c, memo| {
                insert(c, k)?;
                let seen: &mut Vec<&str> = memo.get();
                seen.push(k);
                Ok(seen.clone())
            })
        };
        assert_eq!(remember("a").await.expect("a"), ["a"]);
        assert_eq!(remember("b").await.expect("b"), ["a", "b"]);
        let other = Connection::open(dir.path().join("w.db")).expect("open");
        other.execute("INSERT INTO t (k) VALUES ('z')", []).expect("insert");
        assert_eq!(remember("c").await.expect("c"), ["c"]);
    }

    /// A closed writer's thread ends; the next operation starts another.
    #[tokio::test]
    async fn a_closed_writer_starts_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = writer(&dir);
        w.run(|c, _| insert(c, "one")).await.expect("one");
        w.close();
        w.run(|c, _| insert(c, "two")).await.expect("two");
        assert_eq!(keys(&dir), ["one", "two"]);
    }

    /// No database: every operation hears why, none runs, and no file is created.
    #[tokio::test]
    async fn a_missing_database_fails_each_operation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let path = dir.path().join("gone.db");
        let w = Writer::new(path.clone(), String::new(), turn);
        for _ in 0..2 {
            let e = w.run(|c, _| insert(c, "x")).await.expect_err("no database");
            assert_eq!(e.code, "unavailable");
        }
        assert!(!path.exists(), "the writer created {}", path.display());
    }
}
