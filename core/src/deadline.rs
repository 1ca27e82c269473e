//! The time a sync may take, handed to every relay call inside it, so a
//! push-woken sync (the iOS Notification Service Extension gives about 30
//! seconds in all) returns by its deadline whatever the relay does.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Less than this left: no relay call is started (it could not finish).
pub const MIN_CALL_TIME: Duration = Duration::from_millis(20);

/// When the work must end; `unbounded()` for calls outside a sync, which
/// keep the relay client's own 30-second timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    pub fn at(when: Instant) -> Self {
        Self(Some(when))
    }

    pub fn unbounded() -> Self {
        Self(None)
    }

    pub fn instant(&self) -> Option<Instant> {
        self.0
    }

    /// The time left, `None` when unbounded.
    pub fn remaining(&self) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Too little time is left to start another relay call.
    pub fn expired(&self) -> bool {
        self.remaining().is_some_and(|r| r < MIN_CALL_TIME)
    }

    /// The timeout for a relay call started now, or a timed-out `Network`
    /// error when none fits.
    pub fn call_timeout(&self) -> Result<Option<Duration>> {
        match self.remaining() {
            Some(r) if r < MIN_CALL_TIME => Err(Error::Network("timed out".into())),
            r => Ok(r),
        }
    }
}

impl From<Option<Instant>> for Deadline {
    fn from(d: Option<Instant>) -> Self {
        Self(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_time_bounds_each_call() {
        assert_eq!(Deadline::unbounded().call_timeout().unwrap(), None);
        assert!(!Deadline::unbounded().expired());
        let d = Deadline::at(Instant::now() + Duration::from_secs(5));
        let t = d.call_timeout().unwrap().unwrap();
        assert!(t <= Duration::from_secs(5) && t > Duration::from_secs(4));
        let past = Deadline::at(Instant::now());
        assert!(past.expired());
        assert!(matches!(past.call_timeout(), Err(Error::Network(_))));
    }
}
