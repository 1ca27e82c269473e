//! What may reach an app's logs.
//!
//! Alcove's own log lines carry opaque numbers only (device ids, counts).
//! Its dependencies are another matter: libsignal names both parties'
//! protocol addresses (`account.device`) at every level, from `info`
//! ("processing PreKey message from …") to `error` ("missing identity key
//! for …"), and HTTP clients may print URLs whose paths hold account ids.
//! Any app that forwarded those lines would tie clients to their therapist
//! in its logs, sealed sender or not.
//!
//! [`PrivacyFilter`] is the one place that decides: Alcove's targets pass
//! at every level, libsignal's never, and other dependencies' only at
//! `warn` and above. Install it on whatever `tracing` subscriber the app
//! or binary sets up, and route the `log` crate through `tracing` (the
//! default of `tracing-subscriber`'s `try_init`), never to a `log` logger
//! of its own: see [`install_for_process`] for the one-call version.

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Filter};

/// Log targets whose lines name protocol addresses; dropped at every level.
pub const SILENCED_TARGETS: &[&str] = &["libsignal", "spqr"];

/// Targets that are Alcove's own; they pass at every level the app asks for.
pub const ALCOVE_TARGET_PREFIX: &str = "alcove";

/// A per-layer filter that keeps account ids out of the logs (see the
/// module documentation). Combine it with the app's own level filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrivacyFilter;

impl PrivacyFilter {
    /// Whether a line from `target` at `level` may be logged.
    pub fn allows(target: &str, level: &Level) -> bool {
        if SILENCED_TARGETS.iter().any(|t| {
            target == *t
                || target.starts_with(&format!("{t}_"))
                || target.starts_with(&format!("{t}::"))
        }) {
            return false;
        }
        if target.starts_with(ALCOVE_TARGET_PREFIX) {
            return true;
        }
        // Lower verbosity = more severe: WARN and ERROR pass.
        *level <= Level::WARN
    }
}

/// `log` records bridged into `tracing` arrive under the target `log`; the
/// real target is known only per event.
fn is_bridged_log(meta: &Metadata<'_>) -> bool {
    meta.target() == "log"
}

impl<S: Subscriber> Filter<S> for PrivacyFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        is_bridged_log(meta) || Self::allows(meta.target(), meta.level())
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        match event.normalized_metadata() {
            Some(meta) => Self::allows(meta.target(), meta.level()),
            None => Self::allows(event.metadata().target(), event.metadata().level()),
        }
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if is_bridged_log(meta) {
            // Decided per record, from its real target.
            tracing::subscriber::Interest::sometimes()
        } else if Self::allows(meta.target(), meta.level()) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
}

/// For a process that has no subscriber yet (the `alcove` command, the
/// reminder bot, a test): formatted lines on stderr at the level named by
/// the environment variable `env_var` (an `EnvFilter` directive, `warn`
/// when unset), behind [`PrivacyFilter`], with `log` records bridged in.
/// Returns false when a global subscriber was already set (then nothing
/// changed: that subscriber must add the filter itself).
pub fn install_for_process(env_var: &str) -> bool {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let level = tracing_subscriber::EnvFilter::try_from_env(env_var)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::registry()
        .with(level)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(PrivacyFilter),
        )
        .try_init()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libsignal_is_silenced_at_every_level_alcove_passes_others_warn_up() {
        for level in [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ] {
            assert!(!PrivacyFilter::allows(
                "libsignal_protocol::session",
                &level
            ));
            assert!(!PrivacyFilter::allows("libsignal_core", &level));
            assert!(!PrivacyFilter::allows("spqr::chain", &level));
            assert!(PrivacyFilter::allows("alcove_core::client", &level));
        }
        assert!(PrivacyFilter::allows("hyper_util::client", &Level::WARN));
        assert!(!PrivacyFilter::allows("reqwest::connect", &Level::DEBUG));
        // A crate merely starting with the same letters is not silenced.
        assert!(PrivacyFilter::allows("spqrx", &Level::WARN));
    }
}
