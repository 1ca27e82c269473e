//! The pure, independently testable parts of the practice reminder bot:
//! reading the practice's appointment feed ([`ics`]), knowing whom an
//! appointment is for ([`mapping`]), deciding when a reminder goes and what it
//! says ([`schedule`]), and the bot's configuration file ([`config`]).
//!
//! Nothing here logs or prints names, addresses, account ids or event text;
//! errors say what kind of failure and where (a line number), never the
//! content.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod appointments;
pub mod bot;
pub mod config;
mod error;
pub mod ics;
pub mod mapping;
pub mod replies;
pub mod schedule;
pub mod sending;
pub mod status;
pub mod store;

pub use bot::Bot;
pub use error::BotError;

pub use ics::{parse_feed, FeedAppointment, IcsError, ParsedFeed, SkipReason, Skipped};

pub use config::{BotConfig, ConfigError};
pub use mapping::{Mapping, MappingError, Resolved};
pub use schedule::{
    cancelled_text, due_at, in_quiet, late_action, moved_text, quiet_ends_after, reminder_text,
    LateAction, Offset, QuietHours, ScheduleError,
};
