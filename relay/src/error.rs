//! The relay's one error type.

/// Everything that can go wrong starting or running the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("refusing plain HTTP on non-loopback address {0}: configure TLS")]
    PlainHttpOffLoopback(std::net::SocketAddr),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database schema version {0} is newer than this relay")]
    SchemaTooNew(u32),
    #[error("internal: {0}")]
    Internal(String),
}
