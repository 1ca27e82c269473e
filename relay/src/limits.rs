//! Connection limits: how many sockets the relay holds, for how long it
//! waits for headers, bodies and the next request, and what one HTTP/2
//! connection may ask of it. Every value is a `[limits]` key (CONFIG.md).

use std::time::Duration;

/// Descriptors kept free for everything that is not a client connection:
/// the database and its WAL, push-provider sockets, key files, logs.
const FD_HEADROOM_MIN: u64 = 256;
/// The largest connection cap derived from the descriptor limit.
const DERIVED_CAP_MAX: u64 = 50_000;
/// The smallest cap the relay runs with.
const CAP_MIN: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most client connections held at once; `None` derives it from the
    /// open-file limit (after raising that to its hard limit), leaving a
    /// quarter of it (at least 256) as headroom.
    pub max_connections: Option<usize>,
    /// Most connections from one address (one IPv4 address or one IPv6
    /// /64). Keeps one client from filling the cap; 0 turns it off.
    pub max_connections_per_ip: usize,
    /// A new connection must finish its TLS handshake, and every request
    /// its headers, within this time.
    pub header_timeout: Duration,
    /// A request body must deliver at least `body_min_bytes` in every
    /// window of this length, or the request fails and the connection
    /// closes. Progress-based: a slow but steady upload succeeds.
    pub body_window: Duration,
    pub body_min_bytes: usize,
    /// A connection with no request in flight is closed after this time.
    /// HTTP/1.1 waits for the next request's headers under
    /// `header_timeout`, so there the shorter of the two applies.
    pub idle_timeout: Duration,
    /// HTTP/2: most streams open at once on one connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: most streams the client opened and reset before we
    /// accepted them (the "rapid reset" flood, CVE-2023-44487).
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2: most streams we reset for protocol errors before the
    /// connection is closed (CVE-2024-27316-style floods).
    pub h2_max_local_error_reset_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: None,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            body_window: Duration::from_secs(10),
            body_min_bytes: 1024,
            idle_timeout: Duration::from_secs(60),
            h2_max_concurrent_streams: 64,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 64,
        }
    }
}

/// Raises the soft open-file limit to the hard limit and returns the soft
/// limit now in force (or `None` where the platform has no such limit).
pub(crate) fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The connection cap: the configured one (lowered to fit below the
/// descriptor limit with headroom) or one derived from that limit.
pub(crate) fn connection_cap(limits: &Limits, nofile: Option<u64>) -> usize {
    let budget = nofile.map(|n| {
        let headroom = (n / 4).max(FD_HEADROOM_MIN);
        n.saturating_sub(headroom)
    });
    let cap = match (limits.max_connections, budget) {
        (Some(c), Some(b)) if c as u64 > b => {
            tracing::warn!(
                configured = c,
                allowed = b,
                "max_connections lowered to fit the open-file limit"
            );
            b as usize
        }
        (Some(c), _) => c,
        (None, Some(b)) => b.min(DERIVED_CAP_MAX) as usize,
        (None, None) => 1024,
    };
    cap.max(CAP_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_derives_from_and_fits_under_the_fd_limit() {
        let d = Limits::default();
        assert_eq!(connection_cap(&d, Some(1024)), 768);
        assert_eq!(connection_cap(&d, Some(1_048_576)), 50_000);
        assert_eq!(connection_cap(&d, Some(300)), 44);
        assert_eq!(connection_cap(&d, Some(200)), CAP_MIN);
        assert_eq!(connection_cap(&d, None), 1024);
        let set = Limits {
            max_connections: Some(64),
            ..Limits::default()
        };
        assert_eq!(connection_cap(&set, Some(1024)), 64);
        let too_many = Limits {
            max_connections: Some(100_000),
            ..Limits::default()
        };
        assert_eq!(connection_cap(&too_many, Some(4096)), 3072);
    }

    #[test]
    fn raising_the_fd_limit_reaches_the_hard_limit() {
        let now = raise_fd_limit().unwrap();
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(now, soft);
        assert!(soft == hard || hard == rlimit::INFINITY);
    }
}
