//! What features keep in memory, by type: a feature defines its own state type (its
//! caches, its sessions) and reaches it with `platform.state.get::<T>()`, created on first
//! use. The core never names those types.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Drops what a feature cached of a shop (`State::on_forget`).
type Forget = Arc<dyn Fn(&super::Platform, &str) + Send + Sync>;

/// A map from a type to the one value of it this process keeps, and what each feature
/// does when a shop's cached data must go (`Platform::forget`).
#[derive(Default)]
pub struct State {
    values: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    forget: RwLock<Vec<Forget>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl State {
    /// The value of type `T`, created with `T::default()` the first time.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let id = TypeId::of::<T>();
        if let Some(v) = self.values.read().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Arc::clone(v).downcast::<T>().expect("keyed by its own type");
        }
        let mut values = self.values.write().unwrap_or_else(PoisonError::into_inner);
        let v = values.entry(id).or_insert_with(|| Arc::new(T::default()));
        Arc::clone(v).downcast::<T>().expect("keyed by its own type")
    }

    /// Registers what to drop when a shop's settings or site change.
    pub fn on_forget(&self, f: impl Fn(&super::Platform, &str) + Send + Sync + 'static) {
        self.forget.write().unwrap_or_else(PoisonError::into_inner).push(Arc::new(f));
    }

    /// Every registered forgetter.
    pub(super) fn forgetters(&self) -> Vec<Forget> {
        self.forget.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::State;

    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicU32);

    #[test]
    fn one_value_per_type() {
        let state = State::default();
        state.get::<Counter>().0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(state.get::<Counter>().0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(*state.get::<String>(), "");
    }
}
