//! The cross-instance [`Wake`]: several relay processes on one database
//! share one queue of wake-ups, so a send through any process wakes a
//! device once, whichever process handled its push registration, and
//! bursts coalesce across processes as they do in one.
//!
//! A wake sets the device's row in `wakes` pending and pokes every
//! process with `NOTIFY alcove_wake`. Each process listens (and polls, in
//! case a notification was missed while its listener reconnected) and
//! claims due rows with `UPDATE ... FOR UPDATE SKIP LOCKED RETURNING`: a
//! row is claimed by exactly one process, which sends the push through
//! its [`Dispatcher`]. A row is due when pending and its last push is at
//! least one coalescing window old; mail that lands inside the window
//! leaves the row pending, and the trailing push goes out when the window
//! ends. A process that dies between its claim and its push loses that
//! one wake (the device still fetches its mail on its next sync).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_postgres::{AsyncMessage, NoTls};

use super::{big, pg_error, PostgresStorage};
use crate::clock::Clock;
use crate::push::Dispatcher;
use crate::storage::Result;
use crate::wake::Wake;

const CHANNEL: &str = "alcove_wake";
/// Most rows one claim takes.
const CLAIM_BATCH: i64 = 100;

pub(crate) struct SharedWake {
    /// Itself, for the tasks a wake spawns.
    this: std::sync::Weak<SharedWake>,
    storage: Arc<PostgresStorage>,
    dispatcher: Arc<Dispatcher>,
    window: Duration,
    clock: Clock,
    /// Pokes this process's claimer without a round trip.
    poke: Arc<Notify>,
}

impl SharedWake {
    /// The wake, and its claimer running until `stop` turns true.
    pub(crate) fn start(
        storage: Arc<PostgresStorage>,
        dispatcher: Arc<Dispatcher>,
        window: Duration,
        clock: Clock,
        stop: watch::Receiver<bool>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let this = Arc::new_cyclic(|this| Self {
            this: this.clone(),
            storage,
            dispatcher,
            window,
            clock,
            poke: Arc::new(Notify::new()),
        });
        let task = tokio::spawn(Arc::clone(&this).claim_loop(stop));
        (this, task)
    }

    async fn mark(&self, account_id: &str, device_id: u32) -> Result<()> {
        let c = self.storage.client().await?;
        c.execute(
            "INSERT INTO wakes (mailbox_id, pending)
             SELECT mailbox_id, true FROM devices WHERE account_id = $1 AND device_id = $2
             ON CONFLICT (mailbox_id) DO UPDATE SET pending = true",
            &[&account_id, &(device_id as i32)],
        )
        .await
        .map_err(pg_error)?;
        c.execute("SELECT pg_notify($1, '')", &[&CHANNEL])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// Claims the due wakes: each row by one process only.
    async fn claim(&self) -> Result<Vec<(String, u32)>> {
        let now = (self.clock)();
        let window = self.window.as_millis() as u64;
        let c = self.storage.client().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE wakes w SET pending = false, last_sent = $1
                 FROM (SELECT mailbox_id FROM wakes
                       WHERE pending AND (last_sent IS NULL OR last_sent <= $2)
                       ORDER BY mailbox_id LIMIT $3 FOR UPDATE SKIP LOCKED) due,
                      devices d
                 WHERE w.mailbox_id = due.mailbox_id AND d.mailbox_id = w.mailbox_id
                 RETURNING d.account_id, d.device_id",
            )
            .await
            .map_err(pg_error)?;
        let rows = c
            .query(
                &stmt,
                &[&big(now), &big(now.saturating_sub(window)), &CLAIM_BATCH],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1) as u32))
            .collect())
    }

    async fn claim_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let listener = tokio::spawn(listen(
            Arc::clone(&self.storage),
            Arc::clone(&self.poke),
            stop.clone(),
        ));
        // Polling covers trailing wakes (due when a window ends) and
        // notifications missed while the listener was down.
        let tick = self
            .window
            .clamp(Duration::from_millis(50), Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = self.poke.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
            loop {
                match self.claim().await {
                    Ok(claimed) => {
                        let full = claimed.len() as i64 >= CLAIM_BATCH;
                        for (account, device) in claimed {
                            let d = Arc::clone(&self.dispatcher);
                            tokio::spawn(async move { d.send(&account, device).await });
                        }
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "claiming wake-ups failed");
                        break;
                    }
                }
            }
        }
        listener.abort();
    }
}

/// `LISTEN alcove_wake` on a connection of its own (a pooled one would be
/// handed to requests); every notification pokes the claimer. Reconnects
/// after a lost connection, once a second.
async fn listen(storage: Arc<PostgresStorage>, poke: Arc<Notify>, stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Ok(config) = storage.url().expose().parse::<tokio_postgres::Config>() {
            if let Ok((client, mut connection)) = config.connect(NoTls).await {
                let poke_conn = Arc::clone(&poke);
                let pump = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => poke_conn.notify_one(),
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    // Anything pending from before we listened.
                    poke.notify_one();
                }
                let _ = pump.await;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Wake for SharedWake {
    /// Marks the wake pending in the database (the claimers of every
    /// process see it); returns at once.
    fn wake(&self, account_id: &str, device_id: u32) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let account = account_id.to_owned();
        tokio::spawn(async move {
            match this.mark(&account, device_id).await {
                Ok(()) => this.poke.notify_one(),
                Err(e) => {
                    tracing::warn!(device = device_id, error = %e, "queueing a wake-up failed")
                }
            }
        });
    }
}
