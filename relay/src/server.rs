//! Starting and stopping the relay: plain HTTP on loopback only, TLS
//! (rustls) everywhere else, both through one accept loop that enforces
//! the connection limits (see limits.rs and connections.rs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::acks::{self, PendingAcks};
use crate::api::{self, AppState};
use crate::config::{RelayConfig, TlsConfig};
use crate::connections::{BusyBody, ProgressBody, Registry, Ticket};
use crate::error::RelayError;
use crate::limits::{self, Limits};
use crate::mailbox::Mailboxes;
use crate::push::{Dispatcher, PushSender};
use crate::rate_limits::RateCheck;
use crate::sealed_sender::SealedSender;
use crate::storage::postgres::wakes::SharedWake;
use crate::storage::{Opened, PostgresStorage, Storage};
use crate::wake::Wake;

/// A running relay.
pub struct RelayHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    storage: Arc<dyn Storage>,
    /// Acks answered but not yet deleted (SQLite).
    pending: Option<Arc<PendingAcks>>,
}

impl RelayHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, stops the sweeper,
    /// the deleter and the scrubber, then deletes the acknowledged mail
    /// still pending and scrubs what the last requests deleted.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        if let Some(pending) = &self.pending {
            // Not deleted (the database is gone, say): delivered again
            // after the restart, and dropped by the device as a duplicate.
            if let Err(e) = pending.flush(self.storage.as_ref()).await {
                tracing::warn!(error = %e, "deleting acknowledged mail at shutdown failed");
            }
        }
        if let Err(e) = self.storage.scrub_deleted().await {
            tracing::warn!(error = %e, "scrubbing deleted mail at shutdown failed");
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

/// Starts the relay on `config.bind` over the storage `config.storage`
/// names (opened and migrated first).
pub async fn start(
    config: RelayConfig,
    push: Arc<dyn PushSender>,
) -> Result<RelayHandle, RelayError> {
    match config.storage.open_backend().await? {
        Opened::Local(storage) => start_with_storage(config, storage, push).await,
        Opened::Postgres(pg) => start_on_postgres(config, pg, push).await,
    }
}

/// Starts a relay process on a PostgreSQL database that other relay
/// processes may share: wake-ups go through the database's shared queue
/// (claimed by exactly one process) and rate limits count in the
/// database, so the processes act as one relay.
pub async fn start_on_postgres(
    config: RelayConfig,
    storage: Arc<PostgresStorage>,
    push: Arc<dyn PushSender>,
) -> Result<RelayHandle, RelayError> {
    let rate = Arc::new(RateCheck::shared(
        &config.rate_limits,
        Arc::clone(&storage),
        config.clock.clone(),
    ));
    let shared: Arc<dyn Storage> = storage.clone();
    start_inner(
        config,
        shared,
        push,
        rate,
        // Other relay processes read these mailboxes: acks are deleted
        // in the request's transaction, where every process sees them.
        AckDeletes::Inline,
        Box::new(move |dispatcher, cfg, stop| {
            let (wake, task) = SharedWake::start(
                storage,
                dispatcher,
                cfg.push_coalesce,
                cfg.clock.clone(),
                stop,
            );
            (wake as Arc<dyn Wake>, Some(task))
        }),
    )
    .await
}

/// Starts the relay over an opened `Storage`, waking devices through the
/// in-process push dispatcher.
pub async fn start_with_storage(
    config: RelayConfig,
    storage: Arc<dyn Storage>,
    push: Arc<dyn PushSender>,
) -> Result<RelayHandle, RelayError> {
    let rate = Arc::new(RateCheck::local(&config.rate_limits));
    // This process is the only one that reads these mailboxes.
    let deletes = if config.ack_delete_interval.is_zero() {
        AckDeletes::Inline
    } else {
        AckDeletes::Deferred
    };
    start_inner(
        config,
        storage,
        push,
        rate,
        deletes,
        Box::new(|dispatcher, _, _| (dispatcher as Arc<dyn Wake>, None)),
    )
    .await
}

/// Makes the relay's [`Wake`] from its push dispatcher (and maybe a task
/// that runs until the stop signal).
type WakeFactory = Box<
    dyn FnOnce(
            Arc<Dispatcher>,
            &RelayConfig,
            watch::Receiver<bool>,
        ) -> (Arc<dyn Wake>, Option<JoinHandle<()>>)
        + Send,
>;

/// Where acknowledged mail is deleted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AckDeletes {
    /// In the ack's own transaction.
    Inline,
    /// By the deleter, off the request path (`acks.rs`).
    Deferred,
}

async fn start_inner(
    config: RelayConfig,
    storage: Arc<dyn Storage>,
    push: Arc<dyn PushSender>,
    rate: Arc<RateCheck>,
    deletes: AckDeletes,
    make_wake: WakeFactory,
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
        config.loopback_test_mode(),
    );
    let (stop, stop_rx) = watch::channel(false);
    let (wake, wake_task) = make_wake(dispatcher, &config, stop_rx.clone());
    let sealed = match &config.sealed_sender {
        Some(ss) => Some(Arc::new(SealedSender::load_or_create(ss, &config.storage)?)),
        None => None,
    };
    let cfg = Arc::new(config);
    let pending = (deletes == AckDeletes::Deferred).then(|| Arc::new(PendingAcks::default()));
    let state = AppState {
        storage: Arc::clone(&storage),
        mailboxes: Arc::new(Mailboxes::new(
            Arc::clone(&storage),
            wake,
            Arc::clone(&cfg),
            pending.clone(),
        )),
        cfg: Arc::clone(&cfg),
        sealed,
        rate: Arc::clone(&rate),
    };
    let app = api::router(state);

    let nofile = limits::raise_fd_limit();
    let cap = limits::connection_cap(&cfg.limits, nofile);
    let registry = Registry::new(cap, cfg.limits.max_connections_per_ip);
    tracing::info!(
        max_connections = cap,
        per_ip = cfg.limits.max_connections_per_ip,
        open_file_limit = nofile,
        "connection limits"
    );
    let server = tokio::spawn(serve(
        listener,
        acceptor,
        app,
        registry,
        cfg.limits.clone(),
        stop_rx.clone(),
    ));

    let deleter = pending.as_ref().map(|p| {
        tokio::spawn(acks::delete_acked_mail(
            Arc::clone(&storage),
            Arc::clone(p),
            cfg.ack_delete_interval,
            stop_rx.clone(),
        ))
    });
    let scrubber = tokio::spawn(scrub_deleted_mail(
        Arc::clone(&storage),
        cfg.wal_scrub_interval,
        stop_rx.clone(),
    ));

    // Sweeper: purge expired mail every minute.
    let mut rx = stop_rx;
    let sweeper_storage = Arc::clone(&storage);
    let sweeper = tokio::spawn(async move {
        let storage = sweeper_storage;
        loop {
            tokio::select! {
                _ = rx.changed() => break,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {
                    rate.sweep().await;
                    let not_before = (cfg.clock)().saturating_sub(cfg.message_ttl.as_millis() as u64);
                    match storage.purge_expired(not_before).await {
                        Ok(n) if n > 0 => tracing::info!(purged = n, "expired envelopes purged"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "purging expired envelopes failed"),
                    }
                }
            }
        }
    });
    tracing::info!(%addr, "relay started");
    Ok(RelayHandle {
        addr,
        stop,
        tasks: [server, sweeper, scrubber]
            .into_iter()
            .chain(wake_task)
            .chain(deleter)
            .collect(),
        storage,
        pending,
    })
}

/// The scrubber: once mail was deleted, scrubs what the deletes left in
/// the database's files (SQLite's WAL), then rests `interval`, so acks
/// return after their commit and a burst of them costs one checkpoint.
/// Delivered ciphertext stays on disk at most `interval` plus one
/// checkpoint after its delete. A backend that defers nothing never wakes
/// it. The last scrub, after the final requests, is
/// [`RelayHandle::shutdown`]'s.
async fn scrub_deleted_mail(
    storage: Arc<dyn Storage>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            _ = storage.deleted_mail() => {}
        }
        if let Err(e) = storage.scrub_deleted().await {
            tracing::warn!(error = %e, "scrubbing deleted mail failed");
        }
        tokio::select! {
            _ = stopped(&mut stop) => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// One accept loop for plain HTTP and TLS: every connection is admitted
/// under the cap (or refused at once), and served by hyper with the
/// header, idle and HTTP/2 limits; request bodies must keep making
/// progress.
async fn serve(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    registry: Arc<Registry>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let builder = Arc::new(http_builder(&limits));
    let limits = Arc::new(limits);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stopped(&mut stop) => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or a transient network error:
                    // back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let ticket = match registry.admit(peer.ip()) {
            Ok(t) => t,
            Err(why) => {
                // Closed at once: a refused socket costs nothing to hold.
                tracing::debug!(reason = ?why, "connection refused");
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(
            tcp,
            peer,
            acceptor.clone(),
            app.clone(),
            Arc::clone(&builder),
            ticket,
            Arc::clone(&limits),
            stop.clone(),
        ));
    }
    drop(listener);
    // Let connections finish their graceful shutdown.
    while registry.len() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn http_builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams)
        .max_header_list_size(64 * 1024);
    b
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    builder: Arc<Builder<TokioExecutor>>,
    ticket: Ticket,
    limits: Arc<Limits>,
    stop: watch::Receiver<bool>,
) {
    match acceptor {
        None => serve_io(tcp, peer, app, &builder, ticket, &limits, stop).await,
        Some(acceptor) => {
            let handshake = tokio::select! {
                _ = ticket.evicted() => return,
                r = tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)) => r,
            };
            if let Ok(Ok(tls)) = handshake {
                serve_io(tls, peer, app, &builder, ticket, &limits, stop).await
            }
        }
    }
}

async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    app: axum::Router,
    builder: &Builder<TokioExecutor>,
    ticket: Ticket,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::clone(&ticket.activity);
    let (window, min_bytes) = (limits.body_window, limits.body_min_bytes);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let in_flight = activity.begin();
        let (mut parts, body) = req.into_parts();
        // The peer address, for handlers and layers that need it.
        parts.extensions.insert(ConnectInfo(peer));
        let req = Request::from_parts(parts, ProgressBody::new(body, window, min_bytes));
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await?;
            Ok::<_, Infallible>(resp.map(|b| Body::new(BusyBody::new(b, in_flight))))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let tick = (limits.header_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut watchdog = tokio::time::interval(tick);
    let ending = loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = ticket.evicted() => return,
            _ = stopped(&mut stop) => break Duration::from_secs(5),
            _ = watchdog.tick() => {
                if ticket.activity.expired(limits.header_timeout, limits.idle_timeout) {
                    break Duration::from_secs(1);
                }
            }
        }
    };
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(ending, conn).await;
}
