//! The practice's side of a conversation: the therapist's published
//! profile (names, office hours, away periods, crisis resources, the
//! texting policy) and the client's consent to that policy.

pub mod hours;
