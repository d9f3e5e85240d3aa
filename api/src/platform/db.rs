//! Databases: the registry and one database per shop, on SQLite files (the embedded
//! default) or a PostgreSQL server, behind one code path (`sqlx::Any`).
//!
//! SQL is written once in the common dialect (`$1` parameters, `BIGINT` and `TEXT`
//! columns, times as Unix milliseconds); the few places that differ ask `Backend`.
//! Shop pools are opened on demand under one connection budget (`pools`), so a thousand
//! shops do not hold a thousand pools.

use crate::error::{ApiError, ApiResult};
use crate::sqlite_writer::Writer;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::platform::pools::{Budget, Pools, ShopPools};

/// Where the databases live.
#[derive(Debug, Clone)]
pub enum Backend {
    /// `registry.db` plus `shops/<name>.db` under a directory.
    Sqlite {
        /// The data directory.
        dir: PathBuf,
        /// Each database's write turn and writer thread, by database URL.
        writes: Arc<Mutex<HashMap<String, Arc<Writes>>>>,
    },
    /// A PostgreSQL server: the registry in the URL's database, each shop in its own.
    Postgres {
        /// The registry's URL.
        url: url::Url,
    },
}

/// A migration: a version and the statements that bring a database to it. A statement
/// that starts with `-- sqlite only` or `-- postgres only` runs on that backend alone (for
/// the few things the two spell differently, such as constraints on existing tables).
pub type Migration = (i64, &'static [&'static str]);

/// Whether a migration statement runs on `backend` (see `Migration`).
fn runs_on(statement: &str, backend: &Backend) -> bool {
    match (statement.starts_with("-- sqlite only"), statement.starts_with("-- postgres only")) {
        (true, _) => !backend.is_postgres(),
        (_, true) => backend.is_postgres(),
        _ => true,
    }
}

impl Backend {
    /// From `--database-url` (PostgreSQL) or the data directory (SQLite).
    pub fn new(database_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        match database_url {
            None => Ok(Self::Sqlite { dir: data_dir.to_owned(), writes: Arc::default() }),
            Some(raw) => {
                let url = url::Url::parse(raw)
                    .map_err(|e| anyhow::anyhow!("--database-url `{raw}`: {e}"))?;
                match url.scheme() {
                    "postgres" | "postgresql" => Ok(Self::Postgres { url }),
                    "sqlite" => anyhow::bail!(
                        "--database-url: for SQLite use --data DIR (one file per shop under it)"
                    ),
                    other => anyhow::bail!("--database-url: unsupported scheme `{other}`"),
                }
            }
        }
    }

    /// `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    /// Whether this is PostgreSQL (for the few statements that differ).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    fn registry_options(&self) -> anyhow::Result<AnyConnectOptions> {
        match self {
            Self::Sqlite { dir, .. } => {
                std::fs::create_dir_all(dir)?;
                sqlite_options(&dir.join("registry.db"))
            }
            Self::Postgres { url } => Ok(AnyConnectOptions::from_str(url.as_str())?),
        }
    }

    /// The name of a shop's database: PostgreSQL names are prefixed with the registry's
    /// (shortened to fit PostgreSQL's 63-byte limit).
    pub fn shop_db_name(&self, shop_id: &str) -> String {
        match self {
            Self::Sqlite { .. } => shop_id.to_owned(),
            Self::Postgres { url } => {
                let registry = url.path().trim_start_matches('/');
                let registry = if registry.is_empty() { "aurelio" } else { registry };
                // PostgreSQL names are at most 63 bytes: the registry's part gives way (shop
                // ids are random, so names stay unique).
                let room = 63usize.saturating_sub(shop_id.len() + 1);
                let prefix = registry.get(..registry.len().min(room)).unwrap_or(registry);
                format!("{prefix}_{shop_id}")
            }
        }
    }

    fn shop_path(&self, db_name: &str) -> Option<PathBuf> {
        match self {
            Self::Sqlite { dir, .. } => Some(dir.join("shops").join(format!("{db_name}.db"))),
            Self::Postgres { .. } => None,
        }
    }

    fn shop_options(&self, db_name: &str) -> anyhow::Result<AnyConnectOptions> {
        match self {
            Self::Sqlite { .. } => {
                let path = self.shop_path(db_name).expect("sqlite shops have paths");
                sqlite_options(&path)
            }
            Self::Postgres { url } => {
                let mut url = url.clone();
                url.set_path(&format!("/{db_name}"));
                Ok(AnyConnectOptions::from_str(url.as_str())?)
            }
        }
    }

    /// Opens the registry with at most `max` connections, creating it (and the PostgreSQL
    /// database) when missing.
    pub async fn open_registry(&self, max: u32) -> anyhow::Result<AnyPool> {
        install_drivers();
        let options = self.registry_options()?;
        let pool = match pool_options(self, max, false).connect_with(options.clone()).await {
            Ok(pool) => pool,
            // PostgreSQL: a registry database that does not exist yet is created.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
                let Self::Postgres { url } = self else { unreachable!("3D000 is PostgreSQL's") };
                let name = url.path().trim_start_matches('/').to_owned();
                check_identifier(&name)?;
                let mut admin = url.clone();
                admin.set_path("/postgres");
                let admin = pool_options(self, 1, false)
                    .connect_with(AnyConnectOptions::from_str(admin.as_str())?)
                    .await?;
                admin.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).await?;
                admin.close().await;
                pool_options(self, max, false).connect_with(options).await?
            }
            Err(e) => {
                anyhow::bail!("cannot open the registry database ({}): {e}", self.name())
            }
        };
        Ok(pool)
    }

    /// Creates a shop's empty database.
    pub async fn create_shop_db(&self, registry: &AnyPool, db_name: &str) -> anyhow::Result<()> {
        match self {
            Self::Sqlite { .. } => {
                let path = self.shop_path(db_name).expect("sqlite shops have paths");
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                Ok(())
            }
            Self::Postgres { .. } => {
                check_identifier(db_name)?;
                registry.execute(AssertSqlSafe(format!("CREATE DATABASE \"{db_name}\""))).await?;
                Ok(())
            }
        }
    }

    /// Drops a shop's database; its pool must be closed first.
    pub async fn drop_shop_db(&self, registry: &AnyPool, db_name: &str) -> anyhow::Result<()> {
        match self {
            Self::Sqlite { writes, .. } => {
                let path = self.shop_path(db_name).expect("sqlite shops have paths");
                let key = sqlite_options(&path)?.database_url.to_string();
                let gone =
                    writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                if let Some(gone) = gone {
                    gone.writer.close();
                }
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    match std::fs::remove_file(&p) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                        _ => {}
                    }
                }
                Ok(())
            }
            Self::Postgres { .. } => {
                check_identifier(db_name)?;
                registry
                    .execute(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
                    )))
                    .await?;
                Ok(())
            }
        }
    }

    /// A pool of at most `max` connections on a shop's database, connecting on first use.
    /// On SQLite its database is checkpointed in the background until `retire` is
    /// notified (the pool left the cache) or the pool is closed.
    pub(crate) fn shop_pool(
        &self,
        db_name: &str,
        max: u32,
        retire: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<AnyPool> {
        install_drivers();
        let options = self.shop_options(db_name)?;
        let pool = pool_options(self, max, true).connect_lazy_with(options);
        if !self.is_postgres() {
            tokio::spawn(checkpoint_in_background(self.clone(), pool.clone(), retire));
        }
        Ok(pool)
    }

    /// Waits for this process's turn to write to a database and holds it until dropped.
    ///
    /// SQLite has one writer at a time; a second connection that finds the lock taken
    /// sleeps in SQLite's busy handler (1, 2, 5, 10… ms), which is where tail latency came
    /// from. Writers of one process therefore queue here, first come first served, and
    /// meet SQLite's lock free. PostgreSQL locks rows, not the database: no turn is needed.
    /// A turn not given within the busy timeout is `PoolTimedOut`, as a busy SQLite is.
    pub async fn write_turn(
        &self,
        pool: &AnyPool,
    ) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, sqlx::Error> {
        let Some(writes) = self.writes(pool) else { return Ok(None) };
        match tokio::time::timeout(BUSY_TIMEOUT, Arc::clone(&writes.turn).lock_owned()).await {
            Ok(guard) => Ok(Some(guard)),
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    /// This process's write turn and writer thread (`sqlite_writer`) of a SQLite pool's
    /// database; `None` on PostgreSQL.
    pub fn writes(&self, pool: &AnyPool) -> Option<Arc<Writes>> {
        let Self::Sqlite { writes, .. } = self else { return None };
        let url = &pool.connect_options().database_url;
        let mut writes = writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = writes.get(url.as_str()) {
            return Some(Arc::clone(w));
        }
        let path = sqlite_file(pool);
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        // Up to 64 MiB of pages (used as touched, freed when the idle thread ends): with
        // SQLite's default 2 MiB the writer re-read and re-allocated a tenth of its pages
        // on every batch once carts outgrew it (writer CPU per add-to-cart 48 → 44 µs).
        let pragmas = sqlite_pragmas(0) + " PRAGMA cache_size = -65536;";
        let writer = Writer::new(path, pragmas, Arc::clone(&turn));
        let w = Arc::new(Writes { turn, writer });
        writes.insert(url.to_string(), Arc::clone(&w));
        Some(w)
    }

    /// Runs `read` on a read-only connection of its own to a SQLite pool's database, on a
    /// blocking thread: a query of many rows then costs no thread hand-off per row, as it
    /// does through `sqlx`. `None` on PostgreSQL.
    pub async fn read_sqlite<T, F>(&self, pool: &AnyPool, read: F) -> Option<ApiResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> ApiResult<T> + Send + 'static,
    {
        let Self::Sqlite { .. } = self else { return None };
        let path = sqlite_file(pool);
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let done = tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open_with_flags(path, flags)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            read(&conn)
        });
        Some(done.await.unwrap_or_else(|e| Err(ApiError::internal(&e))))
    }

    /// Runs one writing statement outside a transaction, in this process's write turn.
    pub async fn write<'q>(
        &self,
        pool: &AnyPool,
        statement: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
        let _turn = self.write_turn(pool).await?;
        statement.execute(pool).await
    }

    /// Starts a write transaction in this process's write turn (`write_turn`). On SQLite it
    /// takes the write lock at once (`BEGIN IMMEDIATE`), so a writer of another process
    /// queues in SQLite's busy handler instead of failing to upgrade.
    pub async fn begin_write<'c>(&self, pool: &'c AnyPool) -> Result<WriteTx<'c>, sqlx::Error> {
        let turn = self.write_turn(pool).await?;
        let tx = match self {
            Self::Sqlite { .. } => pool.begin_with("BEGIN IMMEDIATE").await?,
            Self::Postgres { .. } => pool.begin().await?,
        };
        Ok(WriteTx { tx, turn })
    }
}

/// What this process keeps per SQLite database: its write turn (`Backend::write_turn`)
/// and its writer thread, which writes in that turn.
#[derive(Debug)]
pub struct Writes {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Runs whole operations on the database's own thread.
    pub writer: Writer,
}

/// A write transaction holding its write turn until it commits or is dropped; used as the
/// connection it runs on (`&mut *tx`).
pub struct WriteTx<'c> {
    tx: sqlx::Transaction<'c, sqlx::Any>,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx<'_> {
    /// Commits, then gives the turn to the next writer.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let Self { tx, turn } = self;
        tx.commit().await?;
        drop(turn);
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// How long a writer waits for SQLite's lock (and for its write turn) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn install_drivers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

fn sqlite_options(path: &Path) -> anyhow::Result<AnyConnectOptions> {
    let url = url::Url::from_file_path(path)
        .map_err(|()| anyhow::anyhow!("`{}` is not an absolute path", path.display()))?;
    let url = format!("sqlite://{}?mode=rwc", url.path());
    Ok(AnyConnectOptions::from_str(&url)?)
}

/// How often an open shop database's write-ahead log is copied into it (SQLite).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A log this long (frames of one page, as SQLite's own autocheckpoint counts) is copied to
/// its end and started over (see below).
const RESTART_AFTER_FRAMES: i64 = 1000;

/// Passes of the catch-up before the last checkpoint, at most, and the frames written
/// during one that are few enough to stop.
const CATCH_UP_PASSES: usize = 4;
const CATCH_UP_FRAMES: i64 = 256;

/// Checkpoints a SQLite shop database every `CHECKPOINT_EVERY` while its pool is open.
///
/// Commits append to the write-ahead log without `fsync` (`synchronous = NORMAL`); the
/// checkpoint, which copies the log into the database, is what syncs. Left to SQLite, the
/// commit that takes the log past 1,000 pages runs it, with two `fsync`s, while every other
/// writer waits for its turn (an add-to-cart took over a second once, on a busy disk). Shop
/// connections switch that off (`wal_autocheckpoint = 0`) and this task does it instead.
///
/// A passive checkpoint never blocks writers or readers, but under a steady stream of
/// writes it never reaches the end of the log either, and SQLite starts the log over only
/// when a write finds it wholly copied: the log grew without end (2 GB in a 30-second
/// add-to-cart benchmark), and every commit paid for new file blocks. So after a long log,
/// a few more passes catch up with what was written meanwhile, and a last one runs in this
/// process's write turn (`Backend::write_turn`): nobody writes during it, so it reaches the
/// end, and the next commit starts the log over (unless a reader still reads its end). The
/// turn is held for a few milliseconds a second under full load (25 ms without catch-up).
async fn checkpoint_in_background(
    backend: Backend,
    pool: AnyPool,
    retire: Arc<tokio::sync::Notify>,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // Let go, so the pool can end when its requests are done (`pools`).
            () = retire.notified() => break,
        }
        if pool.is_closed() {
            break;
        }
        if let Err(e) = checkpoint(&backend, &pool).await
            && !pool.is_closed()
        {
            tracing::warn!(error = %e, "background checkpoint failed");
        }
    }
}

/// One round of `checkpoint_in_background`.
async fn checkpoint(backend: &Backend, pool: &AnyPool) -> Result<(), sqlx::Error> {
    const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
    // (busy, frames in the log when the checkpoint started, frames copied)
    let passive = || sqlx::query_as::<_, (i64, i64, i64)>(PASSIVE).fetch_one(pool);
    let (_, mut log, _) = passive().await?;
    if log < RESTART_AFTER_FRAMES {
        return Ok(());
    }
    // Each pass copies what was written during the one before; a few passes leave little
    // for the one in the write turn, which holds writers up only while it runs.
    for _ in 0..CATCH_UP_PASSES {
        let (_, now, copied) = passive().await?;
        let written = now - log;
        log = now;
        if written == 0 && copied == now {
            return Ok(()); // all copied and nobody wrote: the next commit starts over
        }
        if written <= CATCH_UP_FRAMES {
            break;
        }
    }
    let _turn = backend.write_turn(pool).await?;
    pool.execute(PASSIVE).await?;
    Ok(())
}

/// Pool settings; `background_checkpoint`: a shop database, checkpointed by
/// `checkpoint_in_background` rather than by the commit that fills the log.
fn pool_options(backend: &Backend, max: u32, background_checkpoint: bool) -> AnyPoolOptions {
    let sqlite = !backend.is_postgres();
    let autocheckpoint = if background_checkpoint { 0 } else { 1000 };
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(Some(Duration::from_secs(60)))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    conn.execute(AssertSqlSafe(sqlite_pragmas(autocheckpoint))).await?;
                }
                Ok(())
            })
        })
}

/// Every SQLite connection's settings. WAL: readers never wait for the writer;
/// `busy_timeout`: writers of other processes queue; `wal_autocheckpoint`: 0 for shop
/// databases (see `checkpoint_in_background`).
/// The file of a SQLite pool's database.
fn sqlite_file(pool: &AnyPool) -> PathBuf {
    let url = &pool.connect_options().database_url;
    url.to_file_path().unwrap_or_else(|()| PathBuf::from(url.path()))
}

fn sqlite_pragmas(autocheckpoint: u32) -> String {
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {autocheckpoint};",
        BUSY_TIMEOUT.as_millis()
    )
}

/// PostgreSQL database names are built from shop ids, never from user input; checked anyway.
fn check_identifier(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 63
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        anyhow::bail!("`{name}` is not a safe database name");
    }
    Ok(())
}

/// Brings a database to the newest version, one transaction per migration, recorded in
/// `schema_migrations`.
pub async fn migrate(
    backend: &Backend,
    pool: &AnyPool,
    migrations: &[Migration],
) -> anyhow::Result<i64> {
    pool.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let mut current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(pool)
            .await?;
    for (version, statements) in migrations {
        if *version <= current {
            continue;
        }
        let mut tx = backend.begin_write(pool).await?;
        // Two processes may migrate at once: the second finds the version recorded.
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_none() {
            for statement in statements.iter().filter(|s| runs_on(s, backend)) {
                tx.execute(*statement).await.map_err(|e| {
                    anyhow::anyhow!("migration {version} failed: {e}\n  in: {statement}")
                })?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        current = *version;
    }
    Ok(current)
}

/// A result row of either driver, read by column name, so one decoder serves `sqlx` rows
/// and the SQLite writer's (`sqlite_writer`).
pub trait Columns {
    /// A text column; `None` for NULL.
    fn text(&self, column: &str) -> ApiResult<Option<String>>;
    /// An integer column; `None` for NULL.
    fn int(&self, column: &str) -> ApiResult<Option<i64>>;
    /// A text column that is never NULL.
    fn text_of(&self, column: &str) -> ApiResult<String> {
        self.text(column)?.ok_or_else(|| ApiError::internal(&format!("`{column}` is NULL")))
    }
    /// An integer column that is never NULL.
    fn int_of(&self, column: &str) -> ApiResult<i64> {
        self.int(column)?.ok_or_else(|| ApiError::internal(&format!("`{column}` is NULL")))
    }
}

impl Columns for sqlx::any::AnyRow {
    fn text(&self, column: &str) -> ApiResult<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> ApiResult<Option<i64>> {
        Ok(self.try_get(column)?)
    }
}

/// Milliseconds since the Unix epoch: how times are stored.
pub fn now_ms() -> i64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// A stored time as RFC 3339, for JSON.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A SQLite backend in a temporary directory with one open shop database, `shop_a`.
    async fn shop_a() -> (tempfile::TempDir, Backend, AnyPool, ShopPools, AnyPool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = Backend::new(None, dir.path()).expect("backend");
        let registry = backend.open_registry(2).await.expect("registry");
        backend.create_shop_db(&registry, "shop_a").await.expect("create");
        let budget = Budget::new(8, 2).expect("a budget");
        let pools = ShopPools::new(backend.clone(), budget, 4, Duration::from_secs(60));
        let pool = pools.get("shop_a", &[]).await.expect("pool");
        (dir, backend, registry, pools, pool)
    }

    /// Shop databases are checkpointed by the background task, not by a commit.
    #[tokio::test]
    async fn shop_databases_are_checkpointed_in_the_background() {
        let (dir, backend, registry, pools, pool) = shop_a().await;
        let autocheckpoint: i64 =
            sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(&pool).await.expect("pragma");
        assert_eq!(autocheckpoint, 0, "no commit checkpoints a shop database");
        // 8 MB: past SQLite's own threshold (1,000 pages of 4 KB), so a commit would have
        // checkpointed it were that not switched off.
        pool.execute("CREATE TABLE t (v TEXT)").await.expect("create");
        let mut tx = backend.begin_write(&pool).await.expect("begin");
        for _ in 0..2000 {
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind("x".repeat(4000))
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
        let db = dir.path().join("shops").join("shop_a.db");
        let size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while size() < 8_000_000 {
            assert!(
                Instant::now() < deadline,
                "not checkpointed: the database has {} bytes",
                size()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pools.close_all().await;
        let registry_autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&registry)
            .await
            .expect("pragma");
        assert_eq!(registry_autocheckpoint, 1000, "the registry checkpoints as SQLite does");
    }

    /// Under a steady stream of writes the log starts over (it does not grow with every
    /// page ever written, as it did when passive checkpoints never reached its end). The
    /// writers keep writing until it has, or until a deadline no machine is slow enough to
    /// reach (a fixed span of writes was too short for a loaded machine to fill the log).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_starts_over_under_steady_writes() {
        let (dir, backend, _registry, pools, pool) = shop_a().await;
        pool.execute("CREATE TABLE t (v TEXT)").await.expect("create");
        let writes = backend.writes(&pool).expect("a SQLite writer");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers = (0..4)
            .map(|_| {
                let (writes, stop) = (Arc::clone(&writes), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut rows = 0_u64;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        writes
                            .writer
                            .run(|c, _| {
                                let row = "x".repeat(4000); // a page of its own
                                Ok(c.execute("INSERT INTO t (v) VALUES (?1)", [row])?)
                            })
                            .await
                            .expect("insert");
                        rows += 1;
                    }
                    rows
                })
            })
            .collect::<Vec<_>>();
        // The log's header counts its restarts (the checkpoint sequence number, bytes 12-16).
        let wal = dir.path().join("shops").join("shop_a.db-wal");
        let restarts = || {
            use std::io::Read;
            let mut header = [0u8; 16];
            std::fs::File::open(&wal).and_then(|mut f| f.read_exact(&mut header)).map_or(0, |()| {
                u32::from_be_bytes([header[12], header[13], header[14], header[15]])
            })
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while restarts() < 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let restarted = restarts();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut rows = 0;
        for w in writers {
            rows += w.await.expect("writer");
        }
        assert!(restarted >= 1, "the log never started over in {rows} writes");
        pools.close_all().await;
    }

    #[test]
    fn shop_database_names_fit_postgres() {
        let shop = "shop_0123456789abcdef0123456789abcdef";
        let short = Backend::new(Some("postgres://u@h/aurelio"), Path::new("/x")).expect("a URL");
        assert_eq!(short.shop_db_name(shop), format!("aurelio_{shop}"));
        let long = format!("postgres://u@h/{}", "r".repeat(60));
        let long = Backend::new(Some(&long), Path::new("/x")).expect("a URL");
        let name = long.shop_db_name(shop);
        assert_eq!(name.len(), 63);
        assert!(name.ends_with(shop));
        assert!(check_identifier(&name).is_ok());
    }
}
