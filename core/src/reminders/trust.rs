//! Which bot may send reminders: the one a therapist introduced. The
//! therapist's device sends each client the bot's account and identity
//! key; the client pins that key (no trust on first use) and from then on
//! takes reminders from that account only while it speaks under that key.

use alcove_proto::content::{content::Body, BotIntroduction};
use libsignal_protocol::IdentityKey;
use rusqlite::Connection;

use crate::account::{validate_account_id, Account};
use crate::conversations::ConversationId;
use crate::error::{Error, Result};
use crate::store::{self, reminders::TrustedBot};

impl Account {
    /// For a therapist: introduces the practice's reminder bot (its account
    /// and identity key, as `alcove bot identity` prints them) to every
    /// client, now and as they join. Reminders from any other account are
    /// shown to clients as ordinary messages.
    pub fn introduce_bot(&mut self, bot_account: &str, identity_key: &[u8]) -> Result<()> {
        validate_account_id(bot_account)?;
        if bot_account == self.account_id {
            return Err(Error::InvalidArgument("a bot cannot be ourselves".into()));
        }
        IdentityKey::decode(identity_key)
            .map_err(|_| Error::InvalidArgument("bot identity key".into()))?;
        let now = self.now();
        let tx = self.write_tx()?;
        store::reminders::trust_bot(
            &tx,
            &TrustedBot {
                account: bot_account.to_owned(),
                identity_key: identity_key.to_vec(),
                introduced_by: self.account_id.clone(),
                introduced_at: now,
            },
        )?;
        store::identities::pin(&tx, bot_account, identity_key, now)?;
        crate::audit::append(
            &tx,
            Some(&self.identity),
            crate::audit::AuditEvent::BotIntroduced,
            now,
        )?;
        let plaintext = introduction(&tx, bot_account, identity_key, now)?;
        for c in store::conversations::list(&tx)? {
            for member in c.members.iter().filter(|m| *m != bot_account) {
                store::outbox::push(&tx, c.id, member, &plaintext, None, now)?;
            }
        }
        tx.commit()?;
        tracing::info!("reminder bot introduced");
        Ok(())
    }

    /// The bots we take reminders from (on a therapist: the ones we
    /// introduced).
    pub fn trusted_bots(&self) -> Result<Vec<TrustedBot>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT account_id FROM trusted_bots ORDER BY account_id")?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        ids.iter()
            .filter_map(|id| store::reminders::trusted_bot(&self.conn, id).transpose())
            .collect()
    }
}

fn introduction(tx: &Connection, bot: &str, key: &[u8], now: u64) -> Result<Vec<u8>> {
    let body = Body::BotIntroduction(BotIntroduction {
        bot_account: bot.to_owned(),
        bot_identity_key: key.to_vec(),
    });
    Ok(crate::outgoing::new_content_in(tx, body, now)?.2)
}

/// Queues our bots' introductions for a client who just joined.
pub(crate) fn send_to_new_member(
    tx: &Connection,
    own_account: &str,
    conversation: ConversationId,
    member: &str,
    now: u64,
) -> Result<()> {
    for bot in store::reminders::bots_introduced_by(tx, own_account)? {
        let plaintext = introduction(tx, &bot.account, &bot.identity_key, now)?;
        store::outbox::push(tx, conversation, member, &plaintext, None, now)?;
    }
    Ok(())
}

/// A therapist introduced a bot. Taken only from a conversation member
/// whose identity we verified (pinned from the invite card or a scanned
/// safety number): a stranger cannot make us trust a bot.
pub(crate) fn on_bot_introduction(
    tx: &Connection,
    own_account: &str,
    from: &str,
    intro: BotIntroduction,
    now: u64,
) -> Result<()> {
    store::conversations::with_member(tx, from)?
        .ok_or(Error::Malformed("bot introduction from a stranger"))?;
    let verified = matches!(store::identities::status(tx, from)?, Some((false, true)));
    if !verified {
        return Err(Error::Malformed("bot introduction from an unverified peer"));
    }
    validate_account_id(&intro.bot_account)
        .map_err(|_| Error::Malformed("bot introduction account"))?;
    if intro.bot_account == own_account || intro.bot_account == from {
        return Err(Error::Malformed("bot introduction account"));
    }
    IdentityKey::decode(&intro.bot_identity_key)
        .map_err(|_| Error::Malformed("bot introduction identity key"))?;
    store::reminders::trust_bot(
        tx,
        &TrustedBot {
            account: intro.bot_account.clone(),
            identity_key: intro.bot_identity_key.clone(),
            introduced_by: from.to_owned(),
            introduced_at: now,
        },
    )?;
    store::identities::pin(tx, &intro.bot_account, &intro.bot_identity_key, now)
}

/// The bot `from` as introduced, when it speaks under the key it was
/// introduced with (a changed key, even one pending acceptance, is not
/// trusted for reminders).
pub(crate) fn trusted_sender(tx: &Connection, from: &str) -> Result<Option<TrustedBot>> {
    let Some(bot) = store::reminders::trusted_bot(tx, from)? else {
        return Ok(None);
    };
    let same_key = store::identities::keys(tx, from)?
        .is_some_and(|k| k.pending.is_none() && k.trusted == bot.identity_key);
    Ok(same_key.then_some(bot))
}
