//! Shop pools under one connection budget: the database connections this process holds
//! stay within `Config::db_connections` whatever the number of shops.
//!
//! The budget is split once: the registry's pool gets a fixed part (`Budget::registry`),
//! and the shops share the rest (`Budget::shops`). A shop's pool is opened on demand and
//! borrows a share of the shops' part — `pool_size` connections, or fewer (at least two)
//! when no more are free — which is its `max_connections`; the share comes back when the pool is gone. So
//! the connections of all shop pools together never exceed the shops' part, on PostgreSQL
//! (where a connection serves one database, so every shop needs its own) and on SQLite.
//!
//! When no share is free, idle shops are closed first: the least recently used pool with
//! no connection in use leaves the cache. It is never closed under a request: it only
//! stops being handed out, its idle connections are closed, and its share returns when the
//! last request holding it is done (the pool's inner state drops, `close_event` fires). A
//! shop that finds no share free, and no idle shop to close, waits up to `BUDGET_WAIT`,
//! then is answered `503 unavailable` (`Platform::shop_db`), never left hanging.

use crate::db::{Backend, Migration, migrate};
use sqlx::AnyPool;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long a shop waits for a share of the budget before its request fails (the same as
/// a connection's acquire timeout, `db::pool_options`).
pub const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// How often a shop waiting for a share looks again for a pool that has become idle.
const RECHECK: Duration = Duration::from_millis(20);

/// How `Config::db_connections` is split between the registry and the shops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Every connection this process holds.
    pub total: u32,
    /// The registry's pool (its `max_connections`).
    pub registry: u32,
    /// What the shops' pools share.
    pub shops: u32,
    /// The most one shop's pool borrows (`pool_size`, at most `shops`).
    pub per_shop: u32,
}

impl Budget {
    /// The smallest budget: two registry connections and one for shops.
    pub const MIN: u32 = 3;

    /// Splits `total`: an eighth for the registry (2 to 8), the rest for shops, of which
    /// one shop borrows at most `per_shop`.
    pub fn new(total: u32, per_shop: u32) -> anyhow::Result<Self> {
        if total < Self::MIN {
            anyhow::bail!(
                "db_connections is {total}: at least {} (the registry needs 2, shops 1)",
                Self::MIN
            );
        }
        let registry = (total / 8).clamp(2, 8);
        let shops = total - registry;
        Ok(Self { total, registry, shops, per_shop: per_shop.clamp(1, shops) })
    }
}

/// An open shop pool in the cache.
#[derive(Debug)]
struct Open {
    pool: AnyPool,
    /// When it was last handed out.
    used: Instant,
    /// Its share of the budget until it is gone (see `hold_share`).
    share: Share,
    /// Ends the pool's background work (SQLite checkpoints) when it leaves the cache.
    retire: Arc<Notify>,
}

/// A pool's share of the budget, taken by whoever ends the pool: `hold_share` when its
/// last handle drops, `ShopPools::close` after closing it.
type Share = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// Whether a pool has a connection in use (checked out, or being opened).
fn busy(pool: &AnyPool) -> bool {
    usize::try_from(pool.size()).unwrap_or(usize::MAX) > pool.num_idle()
}

/// The pool to close first for room: the least recently used of those with no connection
/// in use; `None` when every pool is busy. A busy pool is never chosen.
pub fn victim<'a>(pools: impl IntoIterator<Item = (&'a str, Instant, bool)>) -> Option<&'a str> {
    pools.into_iter().filter(|(_, _, busy)| !busy).min_by_key(|(_, used, _)| *used).map(|(n, ..)| n)
}

/// Open shop pools under the connection budget.
#[derive(Debug)]
pub struct ShopPools {
    backend: Backend,
    budget: Budget,
    max_open: usize,
    idle: Duration,
    wait: Duration,
    /// The shops' part of the budget: a permit per connection a pool may open.
    lent: Arc<Semaphore>,
    /// A share came back.
    freed: Arc<Notify>,
    open: Mutex<HashMap<String, Open>>,
    /// One opener per shop, so two requests for a cold shop open one pool.
    opening: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Databases migrated by this process (a reopened pool skips the check).
    migrated: Mutex<HashSet<String>>,
}

impl ShopPools {
    /// Pools sharing `budget.shops` connections, at most `max_open` of them open; pools
    /// unused for `idle` are closed by `evict_idle`.
    pub fn new(backend: Backend, budget: Budget, max_open: usize, idle: Duration) -> Self {
        Self {
            backend,
            budget,
            max_open: max_open.max(1),
            idle,
            wait: BUDGET_WAIT,
            lent: Arc::new(Semaphore::new(budget.shops as usize)),
            freed: Arc::new(Notify::new()),
            open: Mutex::new(HashMap::new()),
            opening: Mutex::new(HashMap::new()),
            migrated: Mutex::new(HashSet::new()),
        }
    }

    /// The same with another wait for a share (tests).
    #[must_use]
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    fn cached(&self, db_name: &str) -> Option<AnyPool> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get_mut(db_name).map(|o| {
            o.used = Instant::now();
            o.pool.clone()
        })
    }

    /// The pool of a shop's database, opened and migrated on first use. Waits up to the
    /// budget wait for a share of connections; an error after it.
    pub async fn get(&self, db_name: &str, migrations: &[Migration]) -> anyhow::Result<AnyPool> {
        if let Some(pool) = self.cached(db_name) {
            return Ok(pool);
        }
        let opener = {
            let mut opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(opening.entry(db_name.to_owned()).or_default())
        };
        let opened = {
            let _turn = opener.lock().await;
            match self.cached(db_name) {
                Some(pool) => Ok(pool),
                None => self.open_new(db_name, migrations).await,
            }
        };
        {
            let mut opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
            if Arc::strong_count(&opener) <= 2 {
                opening.remove(db_name);
            }
        }
        opened
    }

    async fn open_new(&self, db_name: &str, migrations: &[Migration]) -> anyhow::Result<AnyPool> {
        let permit = self.borrow().await?;
        let max = permit.num_permits().try_into().unwrap_or(1);
        let retire = Arc::new(Notify::new());
        // A request dropped before the pool is in the cache lets it go.
        let mut unplaced = RetireOnDrop(Some(Arc::clone(&retire)));
        let pool = self.backend.shop_pool(db_name, max, Arc::clone(&retire))?;
        let share: Share = Arc::new(Mutex::new(Some(permit)));
        tokio::spawn(hold_share(pool.close_event(), Arc::clone(&share), Arc::clone(&self.freed)));
        let migrated =
            self.migrated.lock().unwrap_or_else(PoisonError::into_inner).contains(db_name);
        if !migrated {
            if let Err(e) = migrate(&self.backend, &pool, migrations).await {
                close_with_share(&pool, &share, &self.freed).await;
                return Err(e);
            }
            self.migrated.lock().unwrap_or_else(PoisonError::into_inner).insert(db_name.into());
        }
        unplaced.0 = None;
        let open = Open { pool: pool.clone(), used: Instant::now(), share, retire };
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert(db_name.to_owned(), open);
        Ok(pool)
    }

    /// Takes a share for a new pool: up to `per_shop` connections of those free; when
    /// fewer than `min_share` are (or the cache is full), lets the least recently used
    /// idle pool go and waits for its share, or any, up to the budget wait.
    async fn borrow(&self) -> anyhow::Result<OwnedSemaphorePermit> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let free = u32::try_from(self.lent.available_permits()).unwrap_or(u32::MAX);
            if free >= self.min_share()
                && self.open_count() < self.max_open
                && let Ok(p) =
                    Arc::clone(&self.lent).try_acquire_many_owned(free.min(self.budget.per_shop))
            {
                return Ok(p);
            }
            // An idle pool makes room; its share comes back when its last handle drops (at
            // once unless a request still holds it), which wakes this loop. With every pool
            // busy, a connection returned makes one idle: looked for again shortly.
            self.retire_one();
            tokio::select! {
                () = &mut freed => {}
                () = tokio::time::sleep(RECHECK) => {}
                () = tokio::time::sleep_until(deadline) => anyhow::bail!(
                    "no database connection of the budget ({} for shops) came free within {} s",
                    self.budget.shops,
                    self.wait.as_secs_f32()
                ),
            }
        }
    }

    /// The smallest share a pool opens with: two connections (one `per_shop` allows
    /// fewer), so a request that holds a transaction can still run a query beside it.
    fn min_share(&self) -> u32 {
        self.budget.per_shop.min(2)
    }

    /// Lets go of the pool `victim` picks, if any.
    fn retire_one(&self) {
        let gone = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let name = victim(open.iter().map(|(k, o)| (k.as_str(), o.used, busy(&o.pool))))
                .map(str::to_owned);
            name.and_then(|n| open.remove(&n))
        };
        if let Some(open) = gone {
            retire(open);
        }
    }

    /// Closes and forgets a shop's pool (before its database is dropped).
    pub async fn close(&self, db_name: &str) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner).remove(db_name);
        self.migrated.lock().unwrap_or_else(PoisonError::into_inner).remove(db_name);
        if let Some(open) = open {
            open.retire.notify_one();
            close_with_share(&open.pool, &open.share, &self.freed).await;
        }
    }

    /// Lets go of pools unused for longer than the idle limit and with no connection in
    /// use; returns how many.
    pub async fn evict_idle(&self) -> usize {
        let stale: Vec<Open> = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let names: Vec<String> = open
                .iter()
                .filter(|(_, o)| o.used.elapsed() >= self.idle && !busy(&o.pool))
                .map(|(k, _)| k.clone())
                .collect();
            names.iter().filter_map(|k| open.remove(k)).collect()
        };
        let n = stale.len();
        stale.into_iter().for_each(retire);
        n
    }

    /// How many pools are open (in the cache).
    pub fn open_count(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Connections of the shops' part lent to pools (open, or let go but still held).
    pub fn lent(&self) -> u32 {
        let free = u32::try_from(self.lent.available_permits()).unwrap_or(u32::MAX);
        self.budget.shops.saturating_sub(free)
    }

    /// The budget in effect.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Closes every pool (at shutdown).
    pub async fn close_all(&self) {
        let all: Vec<Open> = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, o)| o)
            .collect();
        for open in all {
            open.retire.notify_one();
            close_with_share(&open.pool, &open.share, &self.freed).await;
        }
    }
}

/// Notifies a pool's `retire` when dropped, unless emptied.
struct RetireOnDrop(Option<Arc<Notify>>);

impl Drop for RetireOnDrop {
    fn drop(&mut self) {
        if let Some(retire) = self.0.take() {
            retire.notify_one();
        }
    }
}

/// Lets go of a pool that left the cache, without closing it under a request that may
/// hold it: its idle connections are closed now, the rest when returned after it drops.
fn retire(open: Open) {
    open.retire.notify_one();
    let pool = open.pool;
    tokio::spawn(async move {
        while let Some(conn) = pool.try_acquire() {
            let _ = conn.close().await;
        }
        // Dropping the last handle here (or in the request holding one) ends the pool,
        // which gives its share back (`hold_share`).
        drop(pool);
    });
}

/// Gives a pool's share back to the budget when the pool is gone (its last handle dropped,
/// which closes its connections) and wakes shops waiting for one.
async fn hold_share(closed: sqlx::pool::CloseEvent, share: Share, freed: Arc<Notify>) {
    closed.await;
    let permit = share.lock().unwrap_or_else(PoisonError::into_inner).take();
    if permit.is_some() {
        drop(permit);
        freed.notify_waiters();
    }
}

/// Closes a pool (waiting for connections in use to come back), then gives its share back.
async fn close_with_share(pool: &AnyPool, share: &Share, freed: &Notify) {
    // Taken first: `close` fires the close event at once, before connections are closed.
    let permit = share.lock().unwrap_or_else(PoisonError::into_inner).take();
    pool.close().await;
    drop(permit);
    freed.notify_waiters();
}

/// Shared handle to the pool cache.
pub type Pools = Arc<ShopPools>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_split_between_registry_and_shops() {
        let b = Budget::new(64, 4).expect("a budget");
        assert_eq!((b.registry, b.shops, b.per_shop), (8, 56, 4));
        let b = Budget::new(8, 4).expect("a budget");
        assert_eq!((b.registry, b.shops, b.per_shop), (2, 6, 4));
        let b = Budget::new(3, 4).expect("a budget");
        assert_eq!((b.registry, b.shops, b.per_shop), (2, 1, 1));
        assert!(Budget::new(2, 4).is_err());
        assert_eq!(Budget::new(1000, 0).expect("a budget").registry, 8);
    }

    #[test]
    fn a_busy_pool_is_never_the_victim() {
        let t0 = Instant::now();
        let t = |ms| t0 + Duration::from_millis(ms);
        // The oldest is busy: the least recently used idle one goes.
        let pools = [("a", t(0), true), ("b", t(20), false), ("c", t(10), false)];
        assert_eq!(victim(pools), Some("c"));
        assert_eq!(victim([("a", t(0), true), ("b", t(5), true)]), None);
        assert_eq!(victim([]), None);
    }

    /// A SQLite backend with databases `a`, `b`, `c` in a temporary directory.
    async fn three_shops() -> (tempfile::TempDir, Backend) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = Backend::new(None, dir.path()).expect("backend");
        let registry = backend.open_registry(2).await.expect("registry");
        for name in ["a", "b", "c"] {
            backend.create_shop_db(&registry, name).await.expect("create");
        }
        registry.close().await;
        (dir, backend)
    }

    /// With room for two shops, a third closes the least recently used idle pool, never
    /// the one whose connection is in use, and shops never hold more than their part.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_shops_make_room_and_busy_ones_stay() {
        let (_dir, backend) = three_shops().await;
        let budget = Budget { total: 4, registry: 2, shops: 2, per_shop: 1 };
        let pools = ShopPools::new(backend, budget, 100, Duration::from_secs(60))
            .with_wait(Duration::from_millis(300));
        let a = pools.get("a", &[]).await.expect("a");
        let in_use = a.acquire().await.expect("a connection of a");
        let b = pools.get("b", &[]).await.expect("b");
        sqlx::query("SELECT 1").execute(&b).await.expect("b answers");
        drop(b);
        assert_eq!(pools.lent(), 2);
        // `a` is the least recently used but busy: `b` goes.
        let c = pools.get("c", &[]).await.expect("c, in b's place");
        sqlx::query("SELECT 1").execute(&c).await.expect("c answers");
        assert_eq!(pools.open_count(), 2);
        assert!(pools.open.lock().expect("lock").contains_key("a"), "the busy pool stayed");
        assert!(pools.lent() <= 2, "{} lent", pools.lent());
        // Everything busy: the next shop waits, then fails (no hang).
        let c_conn = c.acquire().await.expect("a connection of c");
        let started = Instant::now();
        let err = pools.get("b", &[]).await.expect_err("no room");
        assert!(err.to_string().contains("came free"), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        // The request holding `a` still works; once it is done, `b` gets its room back.
        drop(in_use);
        sqlx::query("SELECT 1").execute(&a).await.expect("a still answers");
        drop(a);
        let b = pools.get("b", &[]).await.expect("b, in a's place");
        sqlx::query("SELECT 1").execute(&b).await.expect("b answers again");
        drop(c_conn);
        assert!(pools.lent() <= 2);
        pools.close_all().await;
    }

    /// A pool let go while a request still holds it keeps working for that request, and
    /// its share comes back only when the request is done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pool_let_go_under_a_request_still_answers() {
        let (_dir, backend) = three_shops().await;
        let budget = Budget { total: 3, registry: 2, shops: 1, per_shop: 1 };
        let pools = ShopPools::new(backend, budget, 100, Duration::from_secs(60))
            .with_wait(Duration::from_secs(5));
        let held = pools.get("a", &[]).await.expect("a");
        sqlx::query("SELECT 1").execute(&held).await.expect("a answers");
        let waiting = {
            let pools = &pools;
            async move { pools.get("b", &[]).await }
        };
        let late_use = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // `a` left the cache for `b`, but this request still holds it: it answers.
            assert_eq!(pools.open_count(), 0, "a left the cache");
            sqlx::query("SELECT 1").execute(&held).await.expect("a still answers");
            assert_eq!(pools.lent(), 1, "a keeps its share while held");
            drop(held);
        };
        let (b, ()) = tokio::join!(waiting, late_use);
        let b = b.expect("b, once a is done");
        sqlx::query("SELECT 1").execute(&b).await.expect("b answers");
        assert_eq!(pools.lent(), 1);
        pools.close_all().await;
    }
}
