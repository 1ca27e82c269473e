//! A local UnifiedPush endpoint on 127.0.0.1 that records every wake-up.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alcove_proto::relay::{push_registration, PushRegistration};
use tokio::sync::mpsc;

/// A local UnifiedPush endpoint: the relay POSTs its wake-ups here and every
/// body is kept, in order. The server stops on drop.
pub struct PushEndpoint {
    pub url: String,
    pub rx: mpsc::UnboundedReceiver<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
    status: Arc<AtomicU16>,
}

impl PushEndpoint {
    pub async fn start() -> PushEndpoint {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(201));
        let answer = Arc::clone(&status);
        let app = axum::Router::new().route(
            "/up/{token}",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (tx, answer) = (tx.clone(), Arc::clone(&answer));
                async move {
                    let _ = tx.send(body.to_vec());
                    axum::http::StatusCode::from_u16(answer.load(Ordering::SeqCst))
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PushEndpoint {
            url: format!("http://{addr}/up/device-token"),
            rx,
            task,
            status,
        }
    }

    /// The status every later wake is answered with (201 until set): 404
    /// or 410 tell the relay the endpoint is gone, 5xx to retry.
    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Forgets the wakes received so far; returns how many there were.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    /// This endpoint as a relay push registration.
    pub fn registration(&self) -> PushRegistration {
        PushRegistration {
            kind: push_registration::Kind::UnifiedPush as i32,
            endpoint: self.url.clone(),
        }
    }

    /// The next wake-up body, or `None` if none arrives `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Vec<u8>> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for PushEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}
