//! The one error a configuration can give: its own module, so the parts
//! that check their options (the push senders) need not depend on the file
//! format that feeds them.

use std::path::PathBuf;

/// A configuration that cannot be used; the message names the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}
