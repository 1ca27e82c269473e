//! How many requests wake-ups may cost. Retries multiply: one account with
//! many devices behind an endpoint that answers 503 could turn a few sends
//! into thousands of requests. Token buckets bound every attempt to one
//! endpoint, and the retries of one account and of the whole relay.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;

/// `[push.budget]`: bursts and refill rates (per minute) of the buckets.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetPolicy {
    /// Attempts (first sends and retries) to one endpoint URL.
    pub per_target_burst: u32,
    pub per_target_per_minute: u32,
    /// Retries for the devices of one account.
    pub per_account_retry_burst: u32,
    pub per_account_retries_per_minute: u32,
    /// Retries across the relay.
    pub global_retry_burst: u32,
    pub global_retries_per_minute: u32,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        Self {
            per_target_burst: 10,
            per_target_per_minute: 60,
            per_account_retry_burst: 20,
            per_account_retries_per_minute: 20,
            global_retry_burst: 500,
            global_retries_per_minute: 1200,
        }
    }
}

/// Most buckets kept per kind before full ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Rate {
    burst: f64,
    per_sec: f64,
}

impl Rate {
    fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: burst as f64,
            per_sec: per_minute as f64 / 60.0,
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.per_sec).min(self.burst);
        b.at = now;
    }

    fn full(&self, now: Instant) -> Bucket {
        Bucket {
            tokens: self.burst,
            at: now,
        }
    }
}

struct Buckets {
    targets: HashMap<String, Bucket>,
    accounts: HashMap<String, Bucket>,
    global: Bucket,
}

/// The budget shared by every wake-up of one sender.
pub(crate) struct Budget {
    target: Rate,
    account: Rate,
    global: Rate,
    state: Mutex<Buckets>,
}

tokio::task_local! {
    /// The account whose device is being woken (set by the dispatcher).
    static WAKE_ACCOUNT: String;
}

/// Runs `fut` (a wake-up) on behalf of `account`, so its retries count
/// against that account's budget.
pub(crate) async fn for_account<F: std::future::Future>(account: &str, fut: F) -> F::Output {
    WAKE_ACCOUNT.scope(account.to_owned(), fut).await
}

impl Budget {
    pub(crate) fn new(p: &BudgetPolicy) -> Self {
        let global = Rate::new(p.global_retry_burst, p.global_retries_per_minute);
        let now = Instant::now();
        Self {
            target: Rate::new(p.per_target_burst, p.per_target_per_minute),
            account: Rate::new(p.per_account_retry_burst, p.per_account_retries_per_minute),
            state: Mutex::new(Buckets {
                targets: HashMap::new(),
                accounts: HashMap::new(),
                global: global.full(now),
            }),
            global,
        }
    }

    /// May attempt number `attempt` (1 = the first send) go to `endpoint`?
    /// Takes the tokens when it may; a retry also needs the account's and
    /// the relay's.
    pub(crate) fn allow(&self, endpoint: &str, attempt: u32) -> bool {
        let account = WAKE_ACCOUNT.try_with(|a| a.clone()).ok();
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let s = &mut *s;
        forget_full(&mut s.targets, &self.target, now);
        forget_full(&mut s.accounts, &self.account, now);
        let mut t = s
            .targets
            .get(endpoint)
            .copied()
            .unwrap_or_else(|| self.target.full(now));
        self.target.refill(&mut t, now);
        if t.tokens < 1.0 {
            return false;
        }
        if attempt > 1 {
            let mut a = account
                .as_ref()
                .and_then(|a| s.accounts.get(a).copied())
                .unwrap_or_else(|| self.account.full(now));
            self.account.refill(&mut a, now);
            self.global.refill(&mut s.global, now);
            if a.tokens < 1.0 || s.global.tokens < 1.0 {
                return false;
            }
            a.tokens -= 1.0;
            s.global.tokens -= 1.0;
            if let Some(acc) = account {
                s.accounts.insert(acc, a);
            }
        }
        t.tokens -= 1.0;
        s.targets.insert(endpoint.to_owned(), t);
        true
    }
}

/// Keeps the maps bounded: a bucket that has refilled is the same as none.
fn forget_full(map: &mut HashMap<String, Bucket>, rate: &Rate, now: Instant) {
    if map.len() < MAX_BUCKETS {
        return;
    }
    map.retain(|_, b| {
        let mut b = *b;
        rate.refill(&mut b, now);
        b.tokens < rate.burst
    });
    if map.len() >= MAX_BUCKETS {
        // Still full of busy buckets: forgetting one is cheaper than
        // growing without bound (it only grants its key a fresh burst).
        if let Some(k) = map.keys().next().cloned() {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tight() -> BudgetPolicy {
        BudgetPolicy {
            per_target_burst: 3,
            per_target_per_minute: 0,
            per_account_retry_burst: 2,
            per_account_retries_per_minute: 0,
            global_retry_burst: 3,
            global_retries_per_minute: 0,
        }
    }

    #[test]
    fn attempts_to_one_target_are_bounded() {
        let b = Budget::new(&tight());
        assert!(b.allow("https://a.example/1", 1));
        assert!(b.allow("https://a.example/1", 1));
        assert!(b.allow("https://a.example/1", 1));
        assert!(!b.allow("https://a.example/1", 1));
        assert!(b.allow("https://a.example/2", 1));
    }

    #[tokio::test]
    async fn retries_are_bounded_per_account_and_globally() {
        let b = Budget::new(&tight());
        let (a1, a2) = for_account("acct-1", async {
            (
                b.allow("https://a.example/1", 2),
                b.allow("https://a.example/2", 2),
            )
        })
        .await;
        assert!(a1 && a2);
        // acct-1 spent its two retries; another account still may retry,
        // until the relay-wide budget (3) is spent.
        let third = for_account("acct-1", async { b.allow("https://a.example/3", 2) }).await;
        assert!(!third);
        let other = for_account("acct-2", async {
            (
                b.allow("https://b.example/1", 2),
                b.allow("https://b.example/2", 2),
            )
        })
        .await;
        assert_eq!(other, (true, false));
        // First sends do not need retry tokens.
        assert!(b.allow("https://c.example/1", 1));
    }

    #[test]
    fn buckets_refill_over_time() {
        let rate = Rate::new(2, 60);
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: 0.0,
            at: t0,
        };
        rate.refill(&mut b, t0 + Duration::from_millis(1500));
        assert!((b.tokens - 1.5).abs() < 1e-9);
        rate.refill(&mut b, t0 + Duration::from_secs(10));
        assert_eq!(b.tokens, 2.0);
    }
}
