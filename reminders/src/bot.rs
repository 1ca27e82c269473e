//! The long-lived bot: a headless Alcove client on its own SQLCipher
//! account, enrolled with a practice invite. Each round it re-imports the
//! feed when the file changed, syncs (replies arrive in the core's
//! inbox), handles replies, sends what is due, flushes the outbox and
//! writes the status file; then it sleeps until the next due reminder or
//! the poll interval, waking early for shutdown.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alcove_core::{Client, Error as CoreError};
use sha2::{Digest, Sha256};

use crate::appointments::{self, ImportReport};
use crate::error::BotError;
use crate::replies::{self, RepliesReport};
use crate::sending::{self, TickReport};
use crate::{BotConfig, Mapping};

/// The wall clock in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    pub import: Option<ImportReport>,
    pub replies: RepliesReport,
    pub tick: TickReport,
    /// Items the outbox handed the relay.
    pub flushed: u32,
    /// False when the relay could not be reached (what is queued waits).
    pub relay_reached: bool,
}

pub struct Bot {
    client: Client,
    config: BotConfig,
    mapping: Mapping,
    feed_hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot").finish_non_exhaustive()
    }
}

fn load_mapping(config: &BotConfig) -> Result<Mapping, BotError> {
    match &config.clients {
        Some(path) => Ok(Mapping::parse(&read_bounded(path, 4 << 20)?)?),
        None => Ok(Mapping::empty()),
    }
}

fn read_bounded(path: &Path, max: u64) -> Result<String, BotError> {
    let len = std::fs::metadata(path)?.len();
    if len > max {
        return Err(BotError::Invalid("file too large".into()));
    }
    Ok(std::fs::read_to_string(path)?)
}

impl Bot {
    /// Enrols the bot's account with a practice invite (`alcove relay
    /// invite --role bot`) and makes it a bot.
    pub async fn enroll(config: BotConfig, invite: &str) -> Result<Bot, BotError> {
        let key = config.db_key()?;
        let client = Client::enroll(&config.database, &key, &config.relay, invite).await?;
        client.with_account(|a| a.set_bot_mode(true))?;
        Self::with_client(client, config)
    }

    /// Opens the enrolled bot.
    pub fn open(config: BotConfig) -> Result<Bot, BotError> {
        let key = config.db_key()?;
        let client = Client::open(&config.database, &key, &config.relay)?;
        Self::with_client(client, config)
    }

    fn with_client(client: Client, config: BotConfig) -> Result<Bot, BotError> {
        client
            .with_account(|a| Ok(crate::store::migrate(a.connection())))?
            .map_err(|e| BotError::Database(e.to_string()))?;
        let mapping = load_mapping(&config)?;
        Ok(Bot {
            client,
            config,
            mapping,
            feed_hash: None,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn config(&self) -> &BotConfig {
        &self.config
    }

    /// The bot's account id and identity key: what the therapist's app
    /// takes to introduce it to clients.
    pub fn identity(&self) -> Result<(String, Vec<u8>), BotError> {
        let key = self.client.with_account(|a| Ok(a.identity_key()))?;
        Ok((self.client.account_id().to_owned(), key))
    }

    /// Runs `f` on the account with the engine's error.
    pub fn engine<T>(
        &self,
        f: impl FnOnce(&mut alcove_core::Account) -> Result<T, BotError>,
    ) -> Result<T, BotError> {
        self.client.with_account(|a| Ok(f(a)))?
    }

    /// Imports the feed file if its content changed since the last import
    /// (or `force`).
    pub fn import_feed(&mut self, now: i64, force: bool) -> Result<Option<ImportReport>, BotError> {
        let Some(path) = self.config.feed.clone() else {
            return Ok(None);
        };
        let text = read_bounded(&path, 8 << 20)?;
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if !force && self.feed_hash == Some(hash) {
            return Ok(None);
        }
        let (config, mapping) = (&self.config, &self.mapping);
        let report = self.engine(|a| appointments::import_feed(a, config, mapping, &text, now))?;
        self.feed_hash = Some(hash);
        Ok(Some(report))
    }

    /// One round at `now` (the wall clock in production; tests inject it).
    pub async fn round(&mut self, now: i64) -> Result<RoundReport, BotError> {
        let mut report = RoundReport {
            import: self.import_feed(now, false)?,
            relay_reached: true,
            ..Default::default()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        match self.client.sync(deadline).await {
            Ok(_) => {}
            Err(CoreError::Network(_)) => report.relay_reached = false,
            Err(e) => return Err(e.into()),
        }
        report.replies = self.engine(|a| replies::handle_inbox(a, now))?;
        let config = &self.config;
        report.tick = self.engine(|a| sending::tick(a, config, now))?;
        if report.relay_reached {
            match self.client.flush_outbox(Some(deadline)).await {
                Ok(n) => report.flushed = n,
                Err(CoreError::Network(_)) => report.relay_reached = false,
                Err(e) => return Err(e.into()),
            }
        }
        let _ = self.client.with_account(|a| a.release_lease());
        if let Some(path) = &self.config.status_file {
            self.engine(|a| crate::status::write_status_file(a, path))?;
        }
        Ok(report)
    }

    /// Rounds until `shutdown` resolves; a round in progress finishes
    /// first (its transactions are whole either way).
    pub async fn run(
        &mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), BotError> {
        tokio::pin!(shutdown);
        loop {
            let now = now_ms();
            match self.round(now).await {
                Ok(r) if !r.relay_reached => {
                    tracing::warn!("relay unreachable; queued reminders wait")
                }
                Ok(_) => {}
                // A bad feed or mapping is the practice's to fix; the bot
                // keeps sending what it has.
                Err(e @ (BotError::Feed(_) | BotError::Mapping(_) | BotError::Io(_))) => {
                    tracing::error!(error = %e, "round incomplete")
                }
                Err(e) => return Err(e),
            }
            let poll = i64::from(self.config.poll_seconds) * 1000;
            let next = self
                .engine(|a| sending::next_due(a))?
                .map_or(poll, |due| (due - now_ms()).clamp(200, poll));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(Duration::from_millis(next as u64)) => {}
            }
        }
        tracing::info!("bot stopped");
        Ok(())
    }
}
