//! `bot.toml`: the reminder bot's configuration.
//!
//! ```toml
//! relay = "https://relay.example.org"
//! database = "bot.db"          # relative paths: against the config file's directory
//! key_file = "bot.key"         # 64 hex chars, not readable by group/others
//! practice_name = "Harbor Counseling"
//! feed = "appointments.ics"
//! clients = "clients.csv"
//! status_file = "status.json"
//! offsets = ["2d", "2h"]
//! quiet_hours = { start = "21:00", end = "08:00" }
//! default_time_zone = "America/New_York"
//! horizon_days = 60
//! poll_seconds = 60
//! ```
//!
//! The database key: the `ALCOVE_BOT_KEY` environment variable (64 hex
//! chars) wins when set and not empty, so a service manager's secret can
//! replace the file without editing the config; otherwise `key_file`.
//! Errors name a line or a field, never a value.

use std::path::{Path, PathBuf};

use alcove_core::DbKey;
use chrono_tz::Tz;
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::schedule::{Offset, QuietHours, MAX_PRACTICE_NAME_CHARS};

/// Config files larger than this are refused.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Offsets per appointment.
pub const MAX_OFFSETS: usize = 10;
/// The environment variable holding the database key (64 hex chars).
pub const KEY_ENV: &str = "ALCOVE_BOT_KEY";
/// A key file is 64 hex chars and maybe a newline; anything much larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 256;

/// Why the configuration or the key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("config file could not be read")]
    Read(#[source] std::io::Error),
    #[error("config file is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge,
    /// TOML syntax, an unknown key, a missing one or a wrong type. The line
    /// only: the parser's message can quote the value.
    #[error("config file is invalid at line {}", line.map_or("?".to_owned(), |l| l.to_string()))]
    Invalid { line: Option<usize> },
    #[error("config: relay must be an http or https URL with a host")]
    BadRelay,
    #[error("config: {field} must not be empty")]
    EmptyPath { field: &'static str },
    #[error("config: offsets[{index}] is not an offset like \"2d\", \"48h\" or \"90m\"")]
    BadOffset { index: usize },
    #[error("config: offsets must hold 1 to {MAX_OFFSETS} distinct entries")]
    OffsetCount,
    #[error("config: quiet_hours must be two different HH:MM times")]
    BadQuietHours,
    #[error("config: {field} is not an IANA time zone")]
    BadTimeZone { field: &'static str },
    #[error("config: horizon_days must be 1 to 366")]
    BadHorizon,
    #[error("config: poll_seconds must be 1 to 3600")]
    BadPoll,
    #[error("config: practice_name must be 1 to {MAX_PRACTICE_NAME_CHARS} characters without control characters")]
    BadPracticeName,
    #[error("no database key: set key_file or {KEY_ENV}")]
    NoKey,
    #[error("key file could not be read")]
    KeyRead(#[source] std::io::Error),
    #[error("key file is readable by group or others (chmod 600 it)")]
    KeyFileTooOpen,
    #[error("database key must be 64 hex characters")]
    KeyFormat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    relay: String,
    database: PathBuf,
    key_file: Option<PathBuf>,
    practice_name: Option<String>,
    feed: Option<PathBuf>,
    clients: Option<PathBuf>,
    status_file: Option<PathBuf>,
    offsets: Vec<String>,
    quiet_hours: Option<RawQuiet>,
    default_time_zone: String,
    #[serde(default = "default_horizon")]
    horizon_days: u32,
    #[serde(default = "default_poll")]
    poll_seconds: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuiet {
    start: String,
    end: String,
}

fn default_horizon() -> u32 {
    60
}

fn default_poll() -> u32 {
    60
}

/// The validated configuration; paths are absolute or relative to the
/// working directory (resolved against the config file's directory).
#[derive(Debug, Clone, PartialEq)]
pub struct BotConfig {
    pub relay: String,
    pub database: PathBuf,
    pub key_file: Option<PathBuf>,
    pub practice_name: Option<String>,
    pub feed: Option<PathBuf>,
    pub clients: Option<PathBuf>,
    pub status_file: Option<PathBuf>,
    pub offsets: Vec<Offset>,
    pub quiet_hours: Option<QuietHours>,
    pub default_time_zone: Tz,
    pub horizon_days: u32,
    pub poll_seconds: u32,
}

impl BotConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let len = std::fs::metadata(path).map_err(ConfigError::Read)?.len();
        if len > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge);
        }
        let text = std::fs::read_to_string(path).map_err(ConfigError::Read)?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        Self::parse(&text, base)
    }

    /// Validates config text; relative paths are joined to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge);
        }
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            line: e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        })?;

        let relay = raw.relay.trim().to_owned();
        match url::Url::parse(&relay) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(ConfigError::BadRelay),
        }

        let path =
            |p: Option<PathBuf>, field: &'static str| -> Result<Option<PathBuf>, ConfigError> {
                match p {
                    None => Ok(None),
                    Some(p) if p.as_os_str().is_empty() => Err(ConfigError::EmptyPath { field }),
                    Some(p) => Ok(Some(base.join(p))),
                }
            };
        let database = path(Some(raw.database), "database")?
            .ok_or(ConfigError::EmptyPath { field: "database" })?;

        let practice_name = match raw.practice_name {
            None => None,
            Some(n) => {
                let n = n.trim().to_owned();
                if n.is_empty()
                    || n.chars().count() > MAX_PRACTICE_NAME_CHARS
                    || n.chars().any(char::is_control)
                {
                    return Err(ConfigError::BadPracticeName);
                }
                Some(n)
            }
        };

        if raw.offsets.is_empty() || raw.offsets.len() > MAX_OFFSETS {
            return Err(ConfigError::OffsetCount);
        }
        let mut offsets = Vec::with_capacity(raw.offsets.len());
        for (index, o) in raw.offsets.iter().enumerate() {
            let o: Offset = o.parse().map_err(|_| ConfigError::BadOffset { index })?;
            if offsets.contains(&o) {
                return Err(ConfigError::OffsetCount);
            }
            offsets.push(o);
        }

        let quiet_hours = match raw.quiet_hours {
            None => None,
            Some(q) => {
                Some(QuietHours::parse(&q.start, &q.end).map_err(|_| ConfigError::BadQuietHours)?)
            }
        };
        let default_time_zone =
            raw.default_time_zone
                .trim()
                .parse::<Tz>()
                .map_err(|_| ConfigError::BadTimeZone {
                    field: "default_time_zone",
                })?;
        if !(1..=366).contains(&raw.horizon_days) {
            return Err(ConfigError::BadHorizon);
        }
        if !(1..=3600).contains(&raw.poll_seconds) {
            return Err(ConfigError::BadPoll);
        }

        Ok(Self {
            relay,
            database,
            key_file: path(raw.key_file, "key_file")?,
            practice_name,
            feed: path(raw.feed, "feed")?,
            clients: path(raw.clients, "clients")?,
            status_file: path(raw.status_file, "status_file")?,
            offsets,
            quiet_hours,
            default_time_zone,
            horizon_days: raw.horizon_days,
            poll_seconds: raw.poll_seconds,
        })
    }

    /// The database key: `ALCOVE_BOT_KEY` when set and not empty, else
    /// `key_file`.
    pub fn db_key(&self) -> Result<DbKey, ConfigError> {
        let env = std::env::var(KEY_ENV).ok().map(Zeroizing::new);
        self.db_key_with_env(env.as_deref().map(String::as_str))
    }

    /// [`Self::db_key`] with the environment value given (for callers that
    /// read the environment themselves, and tests).
    pub fn db_key_with_env(&self, env: Option<&str>) -> Result<DbKey, ConfigError> {
        if let Some(v) = env.filter(|v| !v.trim().is_empty()) {
            return key_from_hex(v);
        }
        let path = self.key_file.as_deref().ok_or(ConfigError::NoKey)?;
        read_key_file(path)
    }
}

fn read_key_file(path: &Path) -> Result<DbKey, ConfigError> {
    let meta = std::fs::metadata(path).map_err(ConfigError::KeyRead)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(ConfigError::KeyFileTooOpen);
        }
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(ConfigError::KeyFormat);
    }
    let text = Zeroizing::new(std::fs::read(path).map_err(ConfigError::KeyRead)?);
    let text = std::str::from_utf8(&text).map_err(|_| ConfigError::KeyFormat)?;
    key_from_hex(text)
}

fn key_from_hex(text: &str) -> Result<DbKey, ConfigError> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(ConfigError::KeyFormat);
    }
    let mut bytes = [0u8; 32];
    let result = hex::decode_to_slice(text, &mut bytes)
        .map_err(|_| ConfigError::KeyFormat)
        .and_then(|()| DbKey::from_slice(&bytes).map_err(|_| ConfigError::KeyFormat));
    bytes.zeroize();
    result
}
