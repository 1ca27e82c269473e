//! Who holds a connection and what it is doing with it: the connection
//! cap, the per-address cap, eviction of the stalest unproductive
//! connection when the cap is reached, and the request/response body
//! wrappers that enforce the body-progress timeout and mark a connection
//! busy while a response is still being written.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

/// One IPv4 address, or one IPv6 /64 (what one subscriber usually gets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AddrKey(IpAddr);

impl AddrKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Self(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

/// What one connection is doing, shared by its task and the registry.
pub(crate) struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    started: AtomicU64,
    /// Milliseconds after `born` when the last request finished.
    last_done_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }

    /// A request began; it stays in flight until the guard (carried by the
    /// response body) is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    fn last_active(&self) -> Instant {
        self.born + Duration::from_millis(self.last_done_ms.load(Ordering::SeqCst))
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0
    }

    /// Why this connection should be closed now, if it should: it never
    /// completed a first request's headers in time, or it sat idle.
    pub(crate) fn expired(&self, header_timeout: Duration, idle_timeout: Duration) -> bool {
        if self.busy() {
            return false;
        }
        if self.started.load(Ordering::SeqCst) == 0 {
            // hyper's header timeout starts only once it reads a request;
            // this also covers a client that never sends a byte.
            return self.born.elapsed() >= header_timeout.min(idle_timeout);
        }
        self.last_active().elapsed() >= idle_timeout
    }
}

pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = a.born.elapsed().as_millis().min(u64::MAX as u128) as u64;
        a.last_done_ms.store(ms, Ordering::SeqCst);
        a.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Entry {
    key: AddrKey,
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    conns: HashMap<u64, Entry>,
    per_addr: HashMap<AddrKey, usize>,
}

impl State {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.conns.remove(&id)?;
        if let Some(n) = self.per_addr.get_mut(&e.key) {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&e.key);
            }
        }
        Some(e)
    }
}

/// Every connection the relay holds.
pub(crate) struct Registry {
    cap: usize,
    per_addr_cap: usize,
    state: Mutex<State>,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// This address already holds its share.
    PerAddress,
    /// The cap is reached and every connection is busy with a request.
    Full,
}

impl Registry {
    pub(crate) fn new(cap: usize, per_addr_cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            per_addr_cap,
            state: Mutex::new(State::default()),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().map(|s| s.conns.len()).unwrap_or(0)
    }

    /// Admits a connection from `ip`. At the cap, the connection with no
    /// request in flight that has been unproductive longest (idle, or
    /// trickling its headers) is evicted to make room: an attacker holding
    /// the cap with slow or idle sockets cannot lock a real client out.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let key = AddrKey::of(ip);
        let Ok(mut s) = self.state.lock() else {
            return Err(Refused::Full);
        };
        let from_addr = s.per_addr.get(&key).copied().unwrap_or(0);
        if self.per_addr_cap > 0 && from_addr >= self.per_addr_cap {
            return Err(Refused::PerAddress);
        }
        if s.conns.len() >= self.cap {
            let victim = s
                .conns
                .iter()
                .filter(|(_, e)| !e.activity.busy())
                .min_by_key(|(_, e)| e.activity.last_active())
                .map(|(id, _)| *id);
            match victim.and_then(|id| s.remove(id)) {
                Some(e) => e.evict.notify_one(),
                None => return Err(Refused::Full),
            }
        }
        let id = s.next_id;
        s.next_id += 1;
        let activity = Arc::new(Activity::new());
        let evict = Arc::new(Notify::new());
        s.conns.insert(
            id,
            Entry {
                key,
                activity: Arc::clone(&activity),
                evict: Arc::clone(&evict),
            },
        );
        *s.per_addr.entry(key).or_default() += 1;
        Ok(Ticket {
            id,
            registry: Arc::clone(self),
            activity,
            evict,
        })
    }
}

/// A held place under the cap; released when dropped.
pub(crate) struct Ticket {
    id: u64,
    registry: Arc<Registry>,
    pub(crate) activity: Arc<Activity>,
    evict: Arc<Notify>,
}

impl Ticket {
    /// Resolves when the registry evicts this connection.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut s) = self.registry.state.lock() {
            s.remove(self.id);
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client sent its body too slowly.
#[derive(Debug, thiserror::Error)]
#[error("request body too slow")]
pub(crate) struct BodyTooSlow;

/// A request body that fails unless at least `min_bytes` arrive in every
/// `window`.
pub(crate) struct ProgressBody<B> {
    inner: B,
    window: Duration,
    min_bytes: usize,
    got: usize,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> ProgressBody<B> {
    pub(crate) fn new(inner: B, window: Duration, min_bytes: usize) -> Self {
        Self {
            inner,
            window,
            min_bytes,
            got: 0,
            deadline: Box::pin(tokio::time::sleep(window)),
        }
    }
}

impl<B> Body for ProgressBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.got += d.len();
                    if this.got >= this.min_bytes {
                        this.got = 0;
                        let next = tokio::time::Instant::now() + this.window;
                        this.deadline.as_mut().reset(next);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTooSlow)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its connection marked busy until written.
pub(crate) struct BusyBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> BusyBody<B> {
    pub(crate) fn new(inner: B, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B> Body for BusyBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_v4_as_v4() {
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2:aaaa::1")),
            AddrKey::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:192.0.2.7")),
            AddrKey::of(ip("192.0.2.7"))
        );
    }

    #[tokio::test]
    async fn per_address_cap_then_eviction_of_the_stalest_idle_connection() {
        let r = Registry::new(3, 2);
        let a1 = r.admit(ip("10.0.0.1")).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let _a2 = r.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(r.admit(ip("10.0.0.1")).err(), Some(Refused::PerAddress));
        let b1 = r.admit(ip("10.0.0.2")).unwrap();
        // Full: the busy ones stay, the stalest idle one (a1) goes.
        let _busy = b1.activity.begin();
        let _c1 = r.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(r.len(), 3);
        tokio::time::timeout(Duration::from_secs(1), a1.evicted())
            .await
            .unwrap();
        drop(a1);
        assert_eq!(r.len(), 3);
        // Every connection busy: a newcomer is refused, nobody evicted.
        let r = Registry::new(1, 0);
        let only = r.admit(ip("10.0.0.1")).unwrap();
        let _g = only.activity.begin();
        assert_eq!(r.admit(ip("10.0.0.2")).err(), Some(Refused::Full));
    }

    #[test]
    fn expiry_for_silent_and_idle_connections_not_busy_ones() {
        let a = Arc::new(Activity::new());
        assert!(!a.expired(Duration::from_secs(5), Duration::from_secs(5)));
        assert!(a.expired(Duration::ZERO, Duration::from_secs(5)));
        let g = a.begin();
        assert!(!a.expired(Duration::ZERO, Duration::ZERO));
        drop(g);
        assert!(a.expired(Duration::from_secs(5), Duration::ZERO));
        assert!(!a.expired(Duration::ZERO, Duration::from_secs(5)));
    }
}
