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
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("internal: {0}")]
    Internal(String),
}
