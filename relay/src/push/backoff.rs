//! One retry policy for every provider: exponential backoff, bounded
//! attempts, and the provider's `Retry-After` when it gives one.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// How often and how patiently a wake-up is retried after a 429 or 5xx.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Delay before the first retry.
    #[serde(rename = "base_delay_ms", with = "millis")]
    pub base_delay: Duration,
    /// Each further retry waits this many times longer.
    pub factor: u32,
    /// No single wait is longer than this; a `Retry-After` beyond it ends
    /// the retries (the provider asked us not to come back sooner).
    #[serde(rename = "max_delay_ms", with = "millis")]
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            factor: 2,
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (after `attempt` failed, 1-based),
    /// or `None` when no attempt is left or the provider's `Retry-After` is
    /// longer than we are willing to hold the wake-up.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        if let Some(ra) = retry_after {
            return (ra <= self.max_delay).then_some(ra);
        }
        let exp = self
            .factor
            .max(1)
            .checked_pow(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        Some(
            self.base_delay
                .checked_mul(exp)
                .unwrap_or(self.max_delay)
                .min(self.max_delay),
        )
    }
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_cap_and_stop() {
        let p = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            factor: 3,
            max_delay: Duration::from_millis(500),
        };
        let d: Vec<_> = (1..=4).map(|a| p.next_delay(a, None)).collect();
        assert_eq!(
            d,
            vec![
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(300)),
                Some(Duration::from_millis(500)),
                None
            ]
        );
        assert_eq!(
            p.next_delay(1, Some(Duration::from_millis(50))),
            Some(Duration::from_millis(50))
        );
        assert_eq!(p.next_delay(1, Some(Duration::from_secs(1))), None);
    }
}
