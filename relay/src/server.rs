//! Starting and stopping the relay: plain HTTP on loopback only, TLS
//! (rustls) everywhere else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::config::{RelayConfig, TlsConfig};
use crate::error::RelayError;
use crate::push::{Dispatcher, PushSender};
use crate::sealed_sender::SealedSender;
use crate::storage::{SqliteStorage, Storage};

/// A running relay.
pub struct RelayHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RelayHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, stops the sweeper.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

fn tls_acceptor(tls: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, RelayError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert_path)
        .map_err(|e| RelayError::Tls(format!("certificate: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RelayError::Tls(format!("certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_path)
        .map_err(|e| RelayError::Tls(format!("key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RelayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| RelayError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Starts the relay on `config.bind` with its SQLite database.
pub async fn start(
    config: RelayConfig,
    push: Arc<dyn PushSender>,
) -> Result<RelayHandle, RelayError> {
    let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&config.db_path)?);
    start_with_storage(config, storage, push).await
}

/// Starts the relay over any `Storage`.
pub async fn start_with_storage(
    config: RelayConfig,
    storage: Arc<dyn Storage>,
    push: Arc<dyn PushSender>,
) -> Result<RelayHandle, RelayError> {
    let acceptor = match &config.tls {
        Some(tls) => Some(tls_acceptor(tls)?),
        None if config.bind.ip().is_loopback() => {
            tracing::warn!(
                "serving plain HTTP on loopback: for tests and the demo only, never in production"
            );
            None
        }
        None => return Err(RelayError::PlainHttpOffLoopback(config.bind)),
    };
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let dispatcher = Dispatcher::new(
        push,
        Arc::clone(&storage),
        config.push_coalesce,
        config.clock.clone(),
    );
    let sealed = match &config.sealed_sender {
        Some(ss) => Some(Arc::new(SealedSender::load_or_create(ss, &config.db_path)?)),
        None => None,
    };
    let cfg = Arc::new(config);
    let state = AppState {
        storage: Arc::clone(&storage),
        push: dispatcher,
        cfg: Arc::clone(&cfg),
        sealed,
    };
    let app = api::router(state);
    let (stop, stop_rx) = watch::channel(false);

    let mut rx = stop_rx.clone();
    let server = match acceptor {
        None => tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "relay server stopped");
            }
        }),
        Some(acceptor) => tokio::spawn(serve_tls(listener, acceptor, app, rx)),
    };

    // Sweeper: purge expired mail every minute.
    let mut rx = stop_rx;
    let sweeper = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = rx.changed() => break,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {
                    let not_before = (cfg.clock)().saturating_sub(cfg.message_ttl.as_millis() as u64);
                    let s = Arc::clone(&storage);
                    if let Ok(Ok(n)) = tokio::task::spawn_blocking(move || s.purge_expired(not_before)).await {
                        if n > 0 { tracing::info!(purged = n, "expired envelopes purged"); }
                    }
                }
            }
        }
    });
    tracing::info!(%addr, "relay started");
    Ok(RelayHandle {
        addr,
        stop,
        tasks: vec![server, sweeper],
    })
}

async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    loop {
        let (tcp, _) = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
