//! A TCP proxy on loopback that delays every byte by a set time in each
//! direction, so a benchmark sees what a phone on a mobile network sees
//! (100 ms round trip: 50 ms each way). Bandwidth is not limited: chunks
//! are forwarded in order, each once its delay has passed, so pipelined
//! requests overlap as they would on a real link.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub struct LatencyProxy {
    pub addr: SocketAddr,
    one_way_us: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

impl LatencyProxy {
    /// Listens on a free loopback port and forwards to `upstream`, with no
    /// delay until [`LatencyProxy::set_round_trip`].
    pub async fn start(upstream: SocketAddr) -> LatencyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let one_way_us = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (delay, count) = (one_way_us.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, delay.clone()));
                tokio::spawn(pipe(sr, cw, delay.clone()));
            }
        });
        LatencyProxy {
            addr,
            one_way_us,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Half of `rtt` is added in each direction, to connections old and new.
    pub fn set_round_trip(&self, rtt: Duration) {
        self.one_way_us
            .store(rtt.as_micros() as u64 / 2, Ordering::Relaxed);
    }

    /// TCP connections opened through the proxy so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

async fn pipe(
    mut from: impl AsyncReadExt + Unpin + Send + 'static,
    mut to: impl AsyncWriteExt + Unpin + Send + 'static,
    one_way_us: Arc<AtomicU64>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due =
                        Instant::now() + Duration::from_micros(one_way_us.load(Ordering::Relaxed));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    while let Some((due, chunk)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        if to.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
