//! Automatic logoff (HIPAA's technical safeguard): after a configured time
//! without activity the core locks itself — the database closes and the
//! key leaves memory — so every later call fails `ClientLocked` until the
//! app unlocks. The shell need not remember: a watchdog thread holds only
//! weak references and locks at the deadline. Activity is what the app
//! does through the client (`with_account`, sending, answering, unlocking);
//! a sync, and above all a push's sync, is not.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{lock_ignoring_poison, lock_state, Client, Unlocked};

#[derive(Debug)]
struct Activity {
    timeout: Option<Duration>,
    last: Instant,
    watching: bool,
}

/// The inactivity timer shared with the watchdog.
#[derive(Debug)]
pub(super) struct AutoLock {
    activity: Mutex<Activity>,
    changed: Condvar,
}

impl Default for AutoLock {
    fn default() -> Self {
        AutoLock {
            activity: Mutex::new(Activity {
                timeout: None,
                last: Instant::now(),
                watching: false,
            }),
            changed: Condvar::new(),
        }
    }
}

impl AutoLock {
    pub(super) fn touch(&self) {
        lock_ignoring_poison(&self.activity).last = Instant::now();
    }
}

impl Client {
    /// Locks the client after `timeout` without activity (`None`: never).
    /// Setting it counts as activity.
    pub fn set_auto_lock(&self, timeout: Option<Duration>) {
        let start = {
            let mut a = lock_ignoring_poison(&self.auto_lock.activity);
            a.timeout = timeout;
            a.last = Instant::now();
            let start = !a.watching && timeout.is_some();
            a.watching |= start;
            start
        };
        self.auto_lock.changed.notify_all();
        if start {
            let auto = Arc::downgrade(&self.auto_lock);
            let state = Arc::downgrade(&self.state);
            let temporary = Arc::downgrade(&self.temporary);
            let spawned = std::thread::Builder::new()
                .name("alcove-auto-lock".into())
                .spawn(move || watchdog(auto, state, temporary));
            if spawned.is_err() {
                // No thread: the deadline is still enforced at the next
                // call (`check_auto_lock`).
                lock_ignoring_poison(&self.auto_lock.activity).watching = false;
            }
        }
    }

    /// Counts as the app's activity.
    pub(super) fn touch(&self) {
        self.auto_lock.touch();
    }

    /// Locks now if the inactivity deadline has passed (the watchdog does
    /// this on time; this covers a call racing it).
    pub(super) fn check_auto_lock(&self) {
        let due = {
            let a = lock_ignoring_poison(&self.auto_lock.activity);
            a.timeout.is_some_and(|t| a.last.elapsed() >= t)
        };
        if due && lock_ignoring_poison(&self.temporary).holders() == 0 {
            if let Err(e) = lock_state(&self.state, Some(true)) {
                tracing::warn!(error = %e, "auto-lock failed");
            }
        }
    }
}

fn watchdog(
    auto: Weak<AutoLock>,
    state: Weak<Mutex<Option<Unlocked>>>,
    temporary: Weak<Mutex<super::lock::Temporary>>,
) {
    loop {
        let Some(auto) = auto.upgrade() else { return };
        let guard = lock_ignoring_poison(&auto.activity);
        let Some(timeout) = guard.timeout else {
            // Off: sleep until it changes (or the client goes: checked
            // every minute).
            let _ = auto
                .changed
                .wait_timeout(guard, Duration::from_secs(60))
                .map(|(g, _)| drop(g));
            continue;
        };
        let due = guard.last + timeout;
        let now = Instant::now();
        if now < due {
            let _ = auto
                .changed
                .wait_timeout(guard, (due - now).min(Duration::from_secs(60)))
                .map(|(g, _)| drop(g));
            continue;
        }
        drop(guard);
        let (Some(state), Some(temporary)) = (state.upgrade(), temporary.upgrade()) else {
            return;
        };
        // A push's sync in progress finishes first; its relock follows.
        let busy = lock_ignoring_poison(&temporary).holders() > 0;
        if !busy && lock_ignoring_poison(&state).is_some() {
            match lock_state(&state, Some(true)) {
                Ok(()) => tracing::info!("auto-locked after inactivity"),
                Err(e) => tracing::warn!(error = %e, "auto-lock failed"),
            }
        }
        drop((state, temporary));
        // Wait for the next activity or change.
        let guard = lock_ignoring_poison(&auto.activity);
        let _ = auto
            .changed
            .wait_timeout(guard, Duration::from_millis(if busy { 50 } else { 1000 }))
            .map(|(g, _)| drop(g));
    }
}
