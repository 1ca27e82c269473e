//! What the practice's bot builds on. In bot mode the core keeps every
//! reply and typed message from a client in a durable inbox (written in
//! the sync's transaction, so a crash before the engine runs loses
//! nothing); the engine takes items from it and, in one transaction with
//! its own bookkeeping, queues reminders and statuses and marks items
//! done. The outbox then delivers them exactly once (the relay drops a
//! retried GUID).

use alcove_proto::content::{content::Body, AppointmentStatus, Reminder, ReminderReply};
use rusqlite::Connection;

use super::validate;
use crate::account::{validate_account_id, Account};
use crate::error::{Error, Result};
use crate::inbound::{Dispatched, Received};
use crate::store::{self, reminders::InboxItem};

const BOT_MODE: &str = "bot_mode";

pub(crate) fn bot_mode(conn: &Connection) -> Result<bool> {
    Ok(store::settings::get(conn, BOT_MODE)?.is_some_and(|v| v == [1]))
}

/// A client answered a reminder: into the inbox, on a bot only.
pub(crate) fn on_reply(
    tx: &Connection,
    from: &str,
    reply: ReminderReply,
    now: u64,
) -> Result<Dispatched> {
    if !bot_mode(tx)? {
        return Err(Error::Malformed(
            "reminder reply to an account that is no bot",
        ));
    }
    validate::appointment_ref(&reply.appointment_ref)?;
    let choice = super::ReminderChoice::from_i32(reply.choice)
        .ok_or(Error::Malformed("reminder reply choice"))?;
    store::reminders::inbox_push(
        tx,
        from,
        Some((&reply.appointment_ref, choice.as_i32())),
        None,
        now,
    )?;
    Ok(Dispatched {
        events: Vec::new(),
        notice: None,
        received: Received::Control,
    })
}

/// A typed message to a bot: into the inbox too (the engine reads "C",
/// "yes", "cancel"). The caller knows the account is a bot (it reads
/// that once per page).
pub(crate) fn on_text(tx: &Connection, from: &str, body: &str, now: u64) -> Result<()> {
    store::reminders::inbox_push(tx, from, None, Some(body), now)
}

/// The engine's side of one transaction: its own tables through `conn`,
/// and what it queues for clients and therapists.
pub struct BotTx<'a> {
    conn: &'a Connection,
    now: u64,
}

impl BotTx<'_> {
    /// The account's database inside the transaction, for the engine's
    /// own tables.
    pub fn conn(&self) -> &Connection {
        self.conn
    }

    /// Queues `reminder` for `client` (checked as a receiver would check
    /// it: a bot cannot send what clients would refuse).
    pub fn queue_reminder(&self, client: &str, reminder: Reminder) -> Result<()> {
        validate::reminder(&reminder).map_err(|_| Error::InvalidArgument("reminder".into()))?;
        self.queue(client, Body::Reminder(reminder))
    }

    /// Queues a reply's outcome for `to` (the client, or the therapist
    /// with `client_account` set).
    pub fn queue_status(&self, to: &str, status: AppointmentStatus) -> Result<()> {
        validate::status(&status).map_err(|_| Error::InvalidArgument("status".into()))?;
        self.queue(to, Body::AppointmentStatus(status))
    }

    /// Queues an ordinary text (the answer to a typed message the engine
    /// could not read).
    pub fn queue_text(&self, to: &str, text: &str) -> Result<()> {
        crate::outgoing::check_text(text)?;
        self.queue(
            to,
            Body::Text(alcove_proto::content::Text { body: text.into() }),
        )
    }

    /// Inbox item `id` is handled: gone when this transaction commits.
    pub fn inbox_done(&self, id: i64) -> Result<()> {
        store::reminders::inbox_done(self.conn, id)
    }

    fn queue(&self, to: &str, body: Body) -> Result<()> {
        validate_account_id(to)?;
        let conversation = store::conversations::direct(self.conn, to, self.now)?.id;
        let (_, sent_at, plaintext) = crate::outgoing::new_content_in(self.conn, body, self.now)?;
        store::outbox::push(self.conn, conversation, to, &plaintext, None, sent_at)
    }
}

impl Account {
    /// Makes this account a reminder bot: replies and texts from clients
    /// go to `bot_inbox` for its engine.
    pub fn set_bot_mode(&mut self, on: bool) -> Result<()> {
        store::settings::set(&self.conn, BOT_MODE, &[u8::from(on)])
    }

    pub fn is_bot(&self) -> Result<bool> {
        bot_mode(&self.conn)
    }

    /// The oldest `limit` inbox items, oldest first.
    pub fn bot_inbox(&self, limit: u32) -> Result<Vec<InboxItem>> {
        store::reminders::inbox(&self.conn, limit)
    }

    /// Runs `f` in one transaction: the engine's bookkeeping and what it
    /// queues commit together or not at all.
    pub fn bot_transaction<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&BotTx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let now = self.now();
        let tx = self.write_tx()?;
        let out = f(&BotTx { conn: &tx, now })?;
        tx.commit().map_err(Error::from)?;
        Ok(out)
    }
}
