//! Per-account and per-address rate limits (GCRA, from `governor`): what
//! one enrolled account or one address may ask of the relay per unit of
//! time. The defaults sit far above what a practice does by honest use;
//! they stop floods (a stranger filling a mailbox, draining a victim's
//! one-time prekeys, guessing credentials, scripting registrations).
//!
//! On SQLite the state is in process memory ([`RateLimits`], GCRA). On
//! PostgreSQL, where several relay processes serve one database, the
//! same limits count in a table every process shares (fixed windows:
//! `storage/postgres/rate_limits.rs`), so adding a process does not
//! multiply them; [`RateCheck`] is what the API asks, whichever it is.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::connections::AddrKey;
use crate::storage::postgres::rate_limits as pg;
use crate::storage::PostgresStorage;
use std::sync::Arc;

/// `count` requests per `window`, all of which may come at once. A count
/// of zero turns the limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub window: Duration,
}

impl Rate {
    pub const fn per_minute(count: u32) -> Self {
        Self {
            count,
            window: Duration::from_secs(60),
        }
    }

    pub const fn per_hour(count: u32) -> Self {
        Self {
            count,
            window: Duration::from_secs(3600),
        }
    }

    fn quota(self) -> Option<Quota> {
        let burst = NonZeroU32::new(self.count)?;
        let period = self.window.checked_div(self.count)?;
        Quota::with_period(period.max(Duration::from_nanos(1))).map(|q| q.allow_burst(burst))
    }
}

/// The `[rate_limits]` section of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Signed sends by one account (a sealed send names no account).
    pub sends_per_account: Rate,
    /// Signed (not sealed) sends from one account to one recipient. Sealed
    /// sends need the recipient's delivery key, which only its contacts
    /// hold; a stranger can only send signed, so this is the cap on
    /// unsolicited mail.
    pub signed_sends_per_pair: Rate,
    /// Prekey bundle fetches by one account.
    pub bundle_fetches_per_requester: Rate,
    /// Prekey bundle fetches of one account's keys, by anyone: a victim's
    /// one-time keys cannot be drained faster than this.
    pub bundle_fetches_per_target: Rate,
    /// Registration attempts from one address.
    pub registrations_per_address: Rate,
    /// Failed authentications from one address; past it, the address is
    /// refused before its credentials are checked until the bucket refills.
    pub failed_auth_per_address: Rate,
    /// Client invites minted by one account (`POST /v1/invites`), on top
    /// of the quota of open invites (`[invites]`).
    pub invite_mints_per_account: Rate,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            sends_per_account: Rate::per_minute(120),
            signed_sends_per_pair: Rate::per_hour(60),
            bundle_fetches_per_requester: Rate::per_hour(120),
            bundle_fetches_per_target: Rate::per_hour(30),
            registrations_per_address: Rate::per_hour(20),
            failed_auth_per_address: Rate {
                count: 20,
                window: Duration::from_secs(300),
            },
            invite_mints_per_account: Rate::per_hour(60),
        }
    }
}

impl RateLimitConfig {
    /// Every limit off: for test fixtures that simulate volume on purpose
    /// (a drained prekey supply, a thousand-message backlog) while testing
    /// something else. Never a production setting.
    pub fn off() -> Self {
        let off = Rate {
            count: 0,
            window: Duration::from_secs(1),
        };
        Self {
            sends_per_account: off,
            signed_sends_per_pair: off,
            bundle_fetches_per_requester: off,
            bundle_fetches_per_target: off,
            registrations_per_address: off,
            failed_auth_per_address: off,
            invite_mints_per_account: off,
        }
    }
}

/// A request over its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Which limit (the `ErrorBody` code names it).
    pub limit: &'static str,
    /// When the same request would next be allowed.
    pub retry_after: Duration,
}

struct Limiter<K: Hash + Eq + Clone> {
    name: &'static str,
    inner: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(name: &'static str, rate: Rate) -> Self {
        Self {
            name,
            inner: rate.quota().map(governor::RateLimiter::keyed),
        }
    }

    fn check(&self, key: K) -> Result<(), Refused> {
        let Some(l) = &self.inner else { return Ok(()) };
        l.check_key(&key).map_err(|not_until| Refused {
            limit: self.name,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }
}

/// What the sweeper does to every limiter, whatever its key.
trait Remembered {
    /// Forgets keys whose bucket has refilled.
    fn sweep(&self);
    /// How many keys it remembers.
    fn len(&self) -> usize;
}

impl<K: Hash + Eq + Clone> Remembered for Limiter<K> {
    fn sweep(&self) {
        if let Some(l) = &self.inner {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |l| l.len())
    }
}

/// Most addresses remembered as blocked for failed logins: memory stays
/// bounded under a flood from many addresses. When full (after dropping
/// ended blocks), a newly blocked address is not remembered; the ones
/// already blocked stay blocked.
const MAX_BLOCKED: usize = 100_000;

/// Every rate limit of one relay process.
/// Addresses count as the connection limits count them
/// ([`AddrKey`]: an IPv4 address, or the /64 of an IPv6 one).
pub struct RateLimits {
    sends: Limiter<String>,
    signed_pairs: Limiter<(String, String)>,
    bundle_requesters: Limiter<String>,
    bundle_targets: Limiter<String>,
    registrations: Limiter<AddrKey>,
    failed_auth: Limiter<AddrKey>,
    invite_mints: Limiter<String>,
    /// Addresses over the failed-login limit, and until when.
    blocked: Mutex<std::collections::HashMap<AddrKey, Instant>>,
}

impl RateLimits {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            sends: Limiter::new("rate_limited_sends", cfg.sends_per_account),
            signed_pairs: Limiter::new("rate_limited_unsolicited", cfg.signed_sends_per_pair),
            bundle_requesters: Limiter::new(
                "rate_limited_bundles",
                cfg.bundle_fetches_per_requester,
            ),
            bundle_targets: Limiter::new("rate_limited_bundles", cfg.bundle_fetches_per_target),
            registrations: Limiter::new(
                "rate_limited_registrations",
                cfg.registrations_per_address,
            ),
            failed_auth: Limiter::new("rate_limited_auth", cfg.failed_auth_per_address),
            invite_mints: Limiter::new("rate_limited_invites", cfg.invite_mints_per_account),
            blocked: Mutex::default(),
        }
    }

    /// A send by `sender` (any kind).
    pub fn send(&self, sender: &str) -> Result<(), Refused> {
        self.sends.check(sender.to_owned())
    }

    /// A signed send from `sender` to `recipient`.
    pub fn signed_send(&self, sender: &str, recipient: &str) -> Result<(), Refused> {
        self.signed_pairs
            .check((sender.to_owned(), recipient.to_owned()))
    }

    /// `requester` fetching `target`'s prekey bundles.
    pub fn bundle_fetch(&self, requester: &str, target: &str) -> Result<(), Refused> {
        self.bundle_requesters.check(requester.to_owned())?;
        self.bundle_targets.check(target.to_owned())
    }

    /// A registration attempt from `addr`.
    pub fn registration(&self, addr: IpAddr) -> Result<(), Refused> {
        self.registrations.check(AddrKey::of(addr))
    }

    /// A client invite minted by `account`.
    pub fn invite_mint(&self, account: &str) -> Result<(), Refused> {
        self.invite_mints.check(account.to_owned())
    }

    /// Whether `addr` may try to authenticate now.
    pub fn auth_allowed(&self, addr: IpAddr) -> Result<(), Refused> {
        let key = AddrKey::of(addr);
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&key) {
            Some(until) if *until > Instant::now() => Err(Refused {
                limit: "rate_limited_auth",
                retry_after: until.saturating_duration_since(Instant::now()),
            }),
            _ => Ok(()),
        }
    }

    /// Records a failed authentication from `addr`; once over the limit
    /// the address is refused until its bucket refills.
    pub fn failed_auth(&self, addr: IpAddr) {
        let key = AddrKey::of(addr);
        if let Err(r) = self.failed_auth.check(key) {
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            if blocked.len() >= MAX_BLOCKED {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            if blocked.len() < MAX_BLOCKED || blocked.contains_key(&key) {
                blocked.insert(key, Instant::now() + r.retry_after);
            }
        }
    }

    /// Forgets buckets that have refilled and blocks that have ended
    /// (the relay's sweeper calls this every minute).
    pub fn sweep(&self) {
        for l in self.limiters() {
            l.sweep();
        }
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }

    /// How many keys the limiters remember (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.limiters().iter().map(|l| l.len()).sum()
    }

    fn limiters(&self) -> [&dyn Remembered; 7] {
        [
            &self.sends,
            &self.signed_pairs,
            &self.bundle_requesters,
            &self.bundle_targets,
            &self.registrations,
            &self.failed_auth,
            &self.invite_mints,
        ]
    }
}

/// The rate limits the API checks: this process's [`RateLimits`], or on
/// PostgreSQL counters shared by every relay process on the database. A
/// shared check that cannot reach the database lets the request through
/// (it then meets the same database and gets its 503).
pub(crate) struct RateCheck {
    local: RateLimits,
    shared: Option<Shared>,
}

struct Shared {
    storage: Arc<PostgresStorage>,
    cfg: RateLimitConfig,
    clock: crate::clock::Clock,
}

impl Shared {
    async fn hit(&self, limit: &'static str, rate: Rate, parts: &[&[u8]]) -> Result<(), Refused> {
        if rate.count == 0 {
            return Ok(());
        }
        let key = pg::key(limit_key_name(limit, rate, &self.cfg), parts);
        match pg::hit(&self.storage, &key, rate.count, rate.window, (self.clock)()).await {
            Ok(None) => Ok(()),
            Ok(Some(retry_after)) => Err(Refused { limit, retry_after }),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limit unavailable");
                Ok(())
            }
        }
    }
}

/// Two limits share a code (bundle fetches by requester and by target):
/// their counters need distinct names.
fn limit_key_name(limit: &'static str, rate: Rate, cfg: &RateLimitConfig) -> &'static str {
    if limit == "rate_limited_bundles" && rate == cfg.bundle_fetches_per_target {
        "bundle_target"
    } else {
        limit
    }
}

fn addr_bytes(addr: IpAddr) -> Vec<u8> {
    // The address as the in-memory limits count it: IPv4, or the /64.
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets()[..8].to_vec(),
    }
}

impl RateCheck {
    pub(crate) fn local(cfg: &RateLimitConfig) -> Self {
        Self {
            local: RateLimits::new(cfg),
            shared: None,
        }
    }

    pub(crate) fn shared(
        cfg: &RateLimitConfig,
        storage: Arc<PostgresStorage>,
        clock: crate::clock::Clock,
    ) -> Self {
        Self {
            local: RateLimits::new(cfg),
            shared: Some(Shared {
                storage,
                cfg: cfg.clone(),
                clock,
            }),
        }
    }

    pub(crate) async fn send(&self, sender: &str) -> Result<(), Refused> {
        match &self.shared {
            Some(s) => {
                s.hit(
                    "rate_limited_sends",
                    s.cfg.sends_per_account,
                    &[sender.as_bytes()],
                )
                .await
            }
            None => self.local.send(sender),
        }
    }

    pub(crate) async fn signed_send(&self, sender: &str, recipient: &str) -> Result<(), Refused> {
        match &self.shared {
            Some(s) => {
                s.hit(
                    "rate_limited_unsolicited",
                    s.cfg.signed_sends_per_pair,
                    &[sender.as_bytes(), recipient.as_bytes()],
                )
                .await
            }
            None => self.local.signed_send(sender, recipient),
        }
    }

    pub(crate) async fn bundle_fetch(&self, requester: &str, target: &str) -> Result<(), Refused> {
        match &self.shared {
            Some(s) => {
                s.hit(
                    "rate_limited_bundles",
                    s.cfg.bundle_fetches_per_requester,
                    &[requester.as_bytes()],
                )
                .await?;
                s.hit(
                    "rate_limited_bundles",
                    s.cfg.bundle_fetches_per_target,
                    &[target.as_bytes()],
                )
                .await
            }
            None => self.local.bundle_fetch(requester, target),
        }
    }

    pub(crate) async fn registration(&self, addr: IpAddr) -> Result<(), Refused> {
        match &self.shared {
            Some(s) => {
                s.hit(
                    "rate_limited_registrations",
                    s.cfg.registrations_per_address,
                    &[&addr_bytes(addr)],
                )
                .await
            }
            None => self.local.registration(addr),
        }
    }

    pub(crate) async fn invite_mint(&self, account: &str) -> Result<(), Refused> {
        match &self.shared {
            Some(s) => {
                s.hit(
                    "rate_limited_invites",
                    s.cfg.invite_mints_per_account,
                    &[account.as_bytes()],
                )
                .await
            }
            None => self.local.invite_mint(account),
        }
    }

    pub(crate) async fn auth_allowed(&self, addr: IpAddr) -> Result<(), Refused> {
        match &self.shared {
            Some(s) if s.cfg.failed_auth_per_address.count > 0 => {
                let rate = s.cfg.failed_auth_per_address;
                let key = pg::key("rate_limited_auth", &[&addr_bytes(addr)]);
                match pg::over(&s.storage, &key, rate.count, rate.window, (s.clock)()).await {
                    Ok(Some(retry_after)) => Err(Refused {
                        limit: "rate_limited_auth",
                        retry_after,
                    }),
                    Ok(None) => Ok(()),
                    Err(e) => {
                        tracing::warn!(error = %e, "shared rate limit unavailable");
                        Ok(())
                    }
                }
            }
            Some(_) => Ok(()),
            None => self.local.auth_allowed(addr),
        }
    }

    pub(crate) async fn failed_auth(&self, addr: IpAddr) {
        match &self.shared {
            Some(s) => {
                let _ = s
                    .hit(
                        "rate_limited_auth",
                        s.cfg.failed_auth_per_address,
                        &[&addr_bytes(addr)],
                    )
                    .await;
            }
            None => self.local.failed_auth(addr),
        }
    }

    /// Forgets what has refilled or ended (every minute).
    pub(crate) async fn sweep(&self) {
        self.local.sweep();
        if let Some(s) = &self.shared {
            let c = &s.cfg;
            let longest = [
                c.sends_per_account,
                c.signed_sends_per_pair,
                c.bundle_fetches_per_requester,
                c.bundle_fetches_per_target,
                c.registrations_per_address,
                c.failed_auth_per_address,
                c.invite_mints_per_account,
            ]
            .iter()
            .map(|r| r.window)
            .max()
            .unwrap_or_default();
            let before = (s.clock)().saturating_sub(longest.as_millis() as u64);
            if let Err(e) = pg::sweep(&s.storage, before).await {
                tracing::warn!(error = %e, "sweeping shared rate limits failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn tight() -> RateLimitConfig {
        RateLimitConfig {
            sends_per_account: Rate::per_hour(5),
            signed_sends_per_pair: Rate::per_hour(3),
            bundle_fetches_per_requester: Rate::per_hour(10),
            bundle_fetches_per_target: Rate::per_hour(4),
            registrations_per_address: Rate::per_hour(2),
            failed_auth_per_address: Rate::per_hour(3),
            invite_mints_per_account: Rate::per_hour(2),
        }
    }

    #[test]
    fn invite_mints_are_capped_per_account() {
        let l = RateLimits::new(&tight());
        l.invite_mint("therapist").unwrap();
        l.invite_mint("therapist").unwrap();
        let r = l.invite_mint("therapist").unwrap_err();
        assert_eq!(r.limit, "rate_limited_invites");
        assert!(r.retry_after > Duration::ZERO);
        l.invite_mint("colleague").unwrap();
    }

    #[test]
    fn a_burst_passes_then_the_next_is_refused_with_a_retry_after() {
        let l = RateLimits::new(&tight());
        for _ in 0..5 {
            l.send("a").unwrap();
        }
        let r = l.send("a").unwrap_err();
        assert_eq!(r.limit, "rate_limited_sends");
        // One cell refills every 12 minutes.
        assert!(r.retry_after > Duration::from_secs(600));
        assert!(r.retry_after <= Duration::from_secs(720));
        // Another account is untouched.
        l.send("b").unwrap();
    }

    #[test]
    fn unsolicited_mail_is_capped_per_pair() {
        let l = RateLimits::new(&tight());
        for _ in 0..3 {
            l.signed_send("stranger", "victim").unwrap();
        }
        assert!(l.signed_send("stranger", "victim").is_err());
        // The same stranger to someone else, and a contact to the victim.
        l.signed_send("stranger", "other").unwrap();
        l.signed_send("contact", "victim").unwrap();
    }

    #[test]
    fn a_victims_prekeys_cannot_be_drained_by_many_requesters() {
        let l = RateLimits::new(&tight());
        let mut ok = 0;
        for i in 0..100 {
            if l.bundle_fetch(&format!("r{i}"), "victim").is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 4);
        // One requester is capped across targets too.
        let mut ok = 0;
        for i in 0..100 {
            if l.bundle_fetch("greedy", &format!("t{i}")).is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 10);
    }

    #[test]
    fn failed_logins_block_the_address_and_ipv6_counts_per_64() {
        let l = RateLimits::new(&tight());
        let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1));
        let same64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        for _ in 0..3 {
            l.auth_allowed(a).unwrap();
            l.failed_auth(a);
        }
        l.auth_allowed(a).unwrap();
        l.failed_auth(a);
        let r = l.auth_allowed(same64).unwrap_err();
        assert_eq!(r.limit, "rate_limited_auth");
        assert!(r.retry_after > Duration::ZERO);
        l.auth_allowed(other).unwrap();
        // An IPv4-mapped address is its IPv4 address.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(AddrKey::of(mapped), AddrKey::of(other));
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let mut cfg = tight();
        cfg.registrations_per_address = Rate::per_hour(0);
        let l = RateLimits::new(&cfg);
        for _ in 0..1000 {
            l.registration(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
        }
    }

    #[test]
    fn thousands_of_keys_are_remembered_only_while_they_matter() {
        let mut cfg = tight();
        cfg.sends_per_account = Rate {
            count: 1,
            window: Duration::from_millis(1),
        };
        let l = RateLimits::new(&cfg);
        for i in 0..5_000 {
            let _ = l.send(&format!("acct{i}"));
        }
        assert!(l.tracked_keys() >= 5_000);
        // Refilled after a millisecond: the sweep forgets them.
        std::thread::sleep(Duration::from_millis(5));
        l.sweep();
        assert_eq!(l.tracked_keys(), 0);
    }
}
