//! The practice's side of a conversation: the therapist's published
//! profile (names, office hours, away periods, crisis resources, the
//! texting policy, the label a client's phone shows) and the client's
//! consent to that policy, both carried end to end as content and kept on
//! both sides.

mod consent;
pub mod hours;
mod notice;
pub(crate) mod profile;

pub use crate::store::practice::Consent;
pub use alcove_proto::content::{AwayPeriod, OfficeHours, PracticeProfile, TextingPolicy};
pub(crate) use consent::on_consent;
pub(crate) use notice::after_send;
pub use notice::notice_text;
pub(crate) use profile::on_profile;
