//! A small in-process cache with a time to live, for lookups every request makes (a key's
//! shop, a shop's checkout facts). Writers in this process clear what they change; the TTL
//! bounds how long another process's change can go unseen.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries older than `ttl` are misses; at most `max` entries are kept.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// An empty cache.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self { ttl, max, map: Mutex::new(HashMap::new()) }
    }

    /// A fresh value.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.lock().expect("cache lock");
        map.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    /// Stores a value; when full, expired entries go first, then everything.
    pub fn insert(&self, key: K, value: V) {
        let mut map = self.map.lock().expect("cache lock");
        if map.len() >= self.max {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), value));
    }

    /// Forgets one entry.
    pub fn remove(&self, key: &K) {
        self.map.lock().expect("cache lock").remove(key);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.map.lock().expect("cache lock").clear();
    }

    /// Keeps only the entries `keep` accepts.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.map.lock().expect("cache lock").retain(|k, (_, v)| keep(k, v));
    }

    /// Entries held, expired ones included (never more than the bound).
    pub fn len(&self) -> usize {
        self.map.lock().expect("cache lock").len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No test here waits on the clock: a TTL of an hour is never reached while the test
    /// runs, however slow the machine, and a TTL of zero has every entry expired at once.
    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn fresh_entries_are_hits_and_expired_ones_misses() {
        let fresh = TtlCache::new(LONG, 10);
        fresh.insert("a", 1);
        assert_eq!(fresh.get(&"a"), Some(1));
        let expired = TtlCache::new(Duration::ZERO, 10);
        expired.insert("a", 1);
        assert_eq!(expired.get(&"a"), None, "older than a TTL of zero");
        assert_eq!(expired.len(), 1, "held until room is needed");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_everything() {
        let expired = TtlCache::new(Duration::ZERO, 2);
        expired.insert("a", 1);
        expired.insert("b", 2);
        expired.insert("c", 3);
        assert_eq!(expired.len(), 1, "the expired entries made room");
        let c = TtlCache::new(LONG, 2);
        c.insert("b", 2);
        c.insert("c", 3);
        c.insert("d", 4);
        assert_eq!((c.get(&"b"), c.get(&"c")), (None, None), "none expired: all went");
        assert_eq!(c.get(&"d"), Some(4));
        c.remove(&"d");
        assert_eq!(c.get(&"d"), None);
        for i in 0..100 {
            c.insert("k", i);
            assert!(c.len() <= 2);
        }
        assert_eq!(c.get(&"k"), Some(99));
        c.retain(|_, v| *v != 99);
        assert!(c.is_empty());
        c.insert("x", 1);
        c.clear();
        assert_eq!(c.get(&"x"), None);
    }
}
