//! A local UnifiedPush endpoint on 127.0.0.1 that records every wake-up.

use std::time::Duration;

use alcove_proto::relay::{push_registration, PushRegistration};
use tokio::sync::mpsc;

/// A local UnifiedPush endpoint: the relay POSTs its wake-ups here and every
/// body is kept, in order. The server stops on drop.
pub struct PushEndpoint {
    pub url: String,
    pub rx: mpsc::UnboundedReceiver<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
}

impl PushEndpoint {
    pub async fn start() -> PushEndpoint {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/up/{token}",
            axum::routing::post(move |body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(body.to_vec());
                    axum::http::StatusCode::CREATED
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
        }
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
