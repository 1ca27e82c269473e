//! Where a sync's time went, stage by stage, so a benchmark (and a
//! developer chasing a slow wake) sees what each change moved. Measured
//! with a monotonic clock around each stage: a few clock reads per
//! envelope, nothing when no sync runs.

use std::time::{Duration, Instant};

/// Time spent in each stage of one sync (summed over its pages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStages {
    /// Waiting for pages from the relay, as this device saw it (network
    /// and the relay's own work). Prefetch hides most of it behind the
    /// previous page's work: only the wait counts.
    pub fetch: Duration,
    /// Envelope checks: size, kind, the inner message's parse.
    pub parse: Duration,
    /// Sealed sender: opening the outer layer (libsignal).
    pub unseal: Duration,
    /// Sealed sender: the sender certificate's signatures and expiry.
    pub certificate: Duration,
    /// The Double Ratchet decrypt itself (libsignal), store callbacks
    /// excluded.
    pub decrypt: Duration,
    /// libsignal's callbacks into our identity and session stores.
    pub callbacks: Duration,
    /// The replay check (each envelope's GUID recorded once).
    pub dedup: Duration,
    /// Content decoded and dispatched: messages, receipts, conversation
    /// rows inserted.
    pub inserts: Duration,
    /// Session records written back and the page's transaction committed.
    pub commit: Duration,
    /// Acknowledging stored pages to the relay (wait only, as for fetch).
    pub ack: Duration,
    /// The relay's own work inside those round trips (its `Server-Timing`),
    /// waited for or not: part of `fetch` and `ack`, not added to the total.
    pub relay: Duration,
    /// Relay calls made by the sync (each one round trip).
    pub relay_calls: u32,
    /// Pages received a second time, envelope by envelope, because one
    /// envelope failed after writing (see `inbound::Isolation`): each
    /// costs about one page of work more.
    pub retried_pages: u32,
    /// Second pages asked for before the first came back (`skip`: the
    /// first was slower than `SECOND_PAGE_AFTER`, a slow link).
    pub early_pages: u32,
    /// Early pages that did not follow the first (a relay from before
    /// `skip`, or mail expired in between): dropped unread, asked again.
    pub dropped_pages: u32,
}

impl SyncStages {
    /// The stages as (name, time) rows, in the order they happen.
    pub fn rows(&self) -> [(&'static str, Duration); 10] {
        [
            ("fetch (network + relay)", self.fetch),
            ("parse", self.parse),
            ("unseal", self.unseal),
            ("certificate check", self.certificate),
            ("decrypt (libsignal)", self.decrypt),
            ("identity + session callbacks", self.callbacks),
            ("dedup (GUID)", self.dedup),
            ("inserts (content dispatch)", self.inserts),
            ("commit (sessions + transaction)", self.commit),
            ("ack", self.ack),
        ]
    }

    /// The sum of the stages.
    pub fn total(&self) -> Duration {
        self.rows().iter().map(|(_, d)| *d).sum()
    }

    pub(crate) fn add(&mut self, other: &SyncStages) {
        self.fetch += other.fetch;
        self.parse += other.parse;
        self.unseal += other.unseal;
        self.certificate += other.certificate;
        self.decrypt += other.decrypt;
        self.callbacks += other.callbacks;
        self.dedup += other.dedup;
        self.inserts += other.inserts;
        self.commit += other.commit;
        self.ack += other.ack;
        self.relay += other.relay;
        self.relay_calls += other.relay_calls;
        self.retried_pages += other.retried_pages;
        self.early_pages += other.early_pages;
        self.dropped_pages += other.dropped_pages;
    }
}

/// Times one stage: `let t = Lap::start(); …; stages.x += t.lap();`.
pub(crate) struct Lap(Instant);

impl Lap {
    pub(crate) fn start() -> Lap {
        Lap(Instant::now())
    }

    /// Time since the start (or the previous lap); starts the next.
    pub(crate) fn lap(&mut self) -> Duration {
        let now = Instant::now();
        let d = now - self.0;
        self.0 = now;
        d
    }
}
