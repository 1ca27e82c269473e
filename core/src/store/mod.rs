//! All SQL over the open account database, one module per table group.
//! Functions take a `&Connection` (a `&Transaction` derefs to one), so a
//! caller groups a change and its record (later: an audit row) in one
//! transaction. libsignal's own stores (`signal_keys`) live here too.

pub(crate) mod audit;
pub(crate) mod conversations;
pub(crate) mod delivery_keys;
pub(crate) mod envelopes;
pub(crate) mod identities;
pub(crate) mod leases;
pub(crate) mod local_account;
pub(crate) mod messages;
pub(crate) mod outbox;
pub(crate) mod practice;
pub(crate) mod prekeys;
pub(crate) mod reminders;
pub(crate) mod retention;
pub(crate) mod settings;
pub(crate) mod signal_keys;
