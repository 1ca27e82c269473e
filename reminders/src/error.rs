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
    /// The core's error, shown without the account ids some of its
    /// messages carry (a client's id must not reach the bot's logs).
    #[error("{}", core_text(.0))]
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

fn core_text(e: &alcove_core::Error) -> String {
    use alcove_core::Error as E;
    match e {
        E::IdentityChanged { .. } => "a client's identity key changed".into(),
        E::NoSession { .. } => "no session with a client".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_name_no_account() {
        let id = "0123456789abcdef0123456789abcdef";
        for e in [
            alcove_core::Error::IdentityChanged {
                account_id: id.into(),
            },
            alcove_core::Error::NoSession {
                account_id: id.into(),
                device_id: 1,
            },
        ] {
            assert!(!BotError::from(e).to_string().contains(id));
        }
    }
}
