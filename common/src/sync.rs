//! Locks that outlive a panic.
//!
//! A panic inside a background task or a query is caught, logged and counted
//! (the task restarts, the query or SLO reports an error), so the process
//! goes on — and the standard library's locks would then refuse every later
//! caller with a `PoisonError`, turning one caught panic into a dead
//! subsystem. smolder's shared state is written in single assignments or
//! whole replacements (a new snapshot, a new runtime map, a pushed entry),
//! so what a panicking holder leaves behind is consistent; these helpers take
//! the lock whether or not it is poisoned. Use them for every `std::sync`
//! lock, so poisoning is handled one way.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks a mutex, poisoned or not.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes a read lock, poisoned or not.
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Takes a write lock, poisoned or not.
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_still_serves_its_value() {
        use std::sync::Arc;
        let m = Arc::new(Mutex::new(1));
        let l = Arc::new(RwLock::new(2));
        let (m2, l2) = (Arc::clone(&m), Arc::clone(&l));
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            let _w = l2.write().unwrap();
            panic!("a task fails while holding both");
        })
        .join();
        assert!(m.is_poisoned() && l.is_poisoned());
        *lock(&m) += 1;
        *write(&l) += 1;
        assert_eq!((*lock(&m), *read(&l)), (2, 3));
    }
}
