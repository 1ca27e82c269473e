//! The one error of the bot's engine and its command. Messages say what
//! kind of failure it was, never whose appointment or what it said.

use crate::{ConfigError, IcsError, MappingError};

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    #[error("feed: {0}")]
    Feed(#[from] IcsError),
    #[error("client mapping: {0}")]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Core(#[from] alcove_core::Error),
    #[error("bot database: {0}")]
    Database(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A command's argument is wrong (an unknown appointment, a bad time).
    #[error("{0}")]
    Invalid(String),
    /// The database was written by a newer bot.
    #[error("bot schema version {0} is newer than this build")]
    SchemaTooNew(u32),
}

impl From<rusqlite::Error> for BotError {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite's messages name SQL, never row values.
        BotError::Database(e.to_string())
    }
}
