//! The wake seam: what the API calls when mail lands in a device's
//! mailbox, or when a reader leaves mail behind. In one relay process the
//! push dispatcher ([`crate::push`]) implements it, coalescing bursts into
//! at most one content-free push per device per window. Several relay
//! processes on one shared database need a cross-instance implementation
//! (PostgreSQL LISTEN/NOTIFY, so one coalescing point sees every send);
//! it plugs in here without the API changing.

/// Sees that a device with waiting mail is woken.
pub trait Wake: Send + Sync + 'static {
    /// Mail is waiting for `device_id` of `account_id`. Returns at once:
    /// the push (if any) happens in the background, coalesced with others
    /// for the same device, and never reports back to the sender.
    fn wake(&self, account_id: &str, device_id: u32);
}
