//! The relay's clock: milliseconds since the Unix epoch, injectable so
//! tests can move time. Depends on nothing else in the relay.

use std::sync::Arc;

pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    })
}
