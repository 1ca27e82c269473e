//! Fixtures shared by Alcove's tests and benchmarks, so each suite runs the
//! real parts the same way: a relay on a loopback socket (in process or the
//! `alcove relay` binary), a local UnifiedPush endpoint, local servers that
//! speak APNs' and FCM's documented APIs, and libsignal's
//! in-memory sessions, the baseline every benchmark ratio is measured
//! against. Test code: it panics on set-up failure.
#![forbid(unsafe_code)]

pub mod baseline;
pub mod latency;
pub mod postgres;
pub mod push_providers;
pub mod relay;
pub mod unified_push;
