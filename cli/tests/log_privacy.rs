//! Every log line of a whole conversation, captured at `trace` in one
//! process (relay, therapist and client, with libsignal's `log` records
//! bridged into `tracing`), holds no account id once it has passed the
//! core's privacy filter. The same lines captured beside it without the
//! filter do name the accounts: the filter is what keeps them out.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use alcove_core::logging::PrivacyFilter;
use common::*;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_conversation_at_trace_logs_no_account_id() {
    let filtered = Capture::default();
    let unfiltered = Capture::default();
    let (f, u) = (filtered.clone(), unfiltered.clone());
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || f.clone())
                .with_filter(PrivacyFilter),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || u.clone()),
        )
        .try_init()
        .expect("the only subscriber of this test binary");

    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let therapist = enroll(dir.path(), "therapist", &relay).await;
    let client = enroll(dir.path(), "client", &relay).await;
    let (t_id, c_id) = (
        therapist.client.account_id().to_owned(),
        client.client.account_id().to_owned(),
    );

    // Both directions, several times: the first message of each side is a
    // signed PreKey message, the rest go sealed.
    for round in 0..3 {
        therapist
            .client
            .send_text(
                therapist.client.conversation_with(&c_id).unwrap(),
                &format!("t{round}"),
            )
            .await
            .unwrap();
        client.client.sync(soon(10)).await.unwrap();
        client
            .client
            .send_text(
                client.client.conversation_with(&t_id).unwrap(),
                &format!("c{round}"),
            )
            .await
            .unwrap();
        therapist.client.sync(soon(10)).await.unwrap();
    }
    assert_eq!(texts(&client, &t_id).len(), 3);
    assert_eq!(texts(&therapist, &c_id).len(), 3);
    assert!(client.client.sealed_sends() > 0 && therapist.client.sealed_sends() > 0);

    let seen = unfiltered.bytes();
    let kept = filtered.bytes();
    // The control: unfiltered, libsignal names the accounts.
    assert!(
        contains(&seen, t_id.as_bytes()) || contains(&seen, c_id.as_bytes()),
        "libsignal's own lines name the accounts without the filter"
    );
    assert!(kept.len() > 1_000, "the filtered log is not empty");
    for id in [&t_id, &c_id] {
        assert!(!contains(&kept, id.as_bytes()), "an account id was logged");
    }
    for text in ["t0", "c2"] {
        let needle = format!("\"{text}\"");
        assert!(!contains(&kept, needle.as_bytes()));
    }
}
