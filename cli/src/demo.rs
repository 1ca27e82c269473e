//! `alcove demo`: a relay on loopback, a therapist and a client (each its
//! own SQLCipher database), enrolment by invite, a conversation, then the
//! client goes offline, the therapist writes, the relay wakes the client
//! through a UnifiedPush endpoint, and the client syncs; then the
//! practice's reminder bot reminds the client, who confirms.
//!
//! Everything it writes stays under the data directory. It prints message
//! texts because it is a demo with made-up words; the library never logs
//! content.

use std::path::Path;
use std::time::{Duration, Instant};

use alcove_core::proto::relay::{push_registration, PushRegistration};
use alcove_core::{Client, NotificationPrivacy};
use tokio::sync::mpsc;

use crate::tools::{new_key_file, BoxError};

const THERAPIST: &str = "therapist";
const CLIENT: &str = "client";

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A local UnifiedPush endpoint: records each wake-up's body.
async fn push_endpoint() -> Result<
    (
        String,
        mpsc::UnboundedReceiver<Vec<u8>>,
        tokio::task::JoinHandle<()>,
    ),
    BoxError,
> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/push/{token}",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body.to_vec());
                axum::http::StatusCode::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/push/demo-client-device"), rx, task))
}

async fn say(
    from: &Client,
    from_name: &str,
    to: &Client,
    to_name: &str,
    text: &str,
) -> Result<Duration, BoxError> {
    println!("{from_name} -> {to_name}: {text}");
    let t = Instant::now();
    let report = from
        .send_text(from.conversation_with(to.account_id())?, text)
        .await?;
    if !report.sent {
        return Err("the relay did not accept the message".into());
    }
    Ok(t.elapsed())
}

pub async fn run(dir: &Path) -> Result<(), BoxError> {
    std::fs::create_dir_all(dir)?;
    for name in ["relay.db", "therapist.db", "client.db"] {
        for suffix in ["", "-wal", "-shm", ".keycheck"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}{suffix}")));
        }
    }
    println!("Alcove demo — data under {}", dir.display());
    println!("(relay on loopback over plain HTTP: demo only; production relays use TLS)\n");

    let t0 = Instant::now();
    let relay_db = dir.join("relay.db");
    let relay = alcove_relay::start(
        alcove_relay::RelayConfig::new("127.0.0.1:0".parse()?, relay_db.clone()),
        alcove_relay::default_push_sender()?,
    )
    .await?;
    let url = format!("http://{}", relay.local_addr());
    println!("relay      listening on {url} ({})", ms(t0.elapsed()));

    let invite_t =
        alcove_relay::create_role_invite(&relay_db, alcove_relay::Role::Therapist, None)?;
    println!("practice   admin issued a therapist invite");

    let t = Instant::now();
    let therapist = Client::enroll(
        &dir.join("therapist.db"),
        &new_key_file(&dir.join("therapist.key"))?,
        &url,
        &invite_t,
    )
    .await?;
    // The practice profile: office hours (here: open only on the weekday
    // three days from today, so the demo always writes out of hours), the
    // crisis resources and the texting policy a client accepts first.
    therapist.with_account(|a| a.publish_practice_profile(demo_profile()))?;
    // The therapist's phone mints a client invite at the relay and makes
    // its card: relay, one-time token, the therapist's id and identity key,
    // the relay's trust root, the expiry, behind a checksum. Printed here;
    // a QR code on the phone.
    let card = therapist.mint_invite_card(0).await?;
    println!("invite card (as text):\n  {}", card.encode());
    println!("invite card (as QR):\n{}", card.qr_text()?);
    // The client enrols from the card alone: no trust on first use (the
    // therapist's served identity must match the card), under a pseudonym.
    let client = Client::enroll_by_card(
        &dir.join("client.db"),
        &new_key_file(&dir.join("client.key"))?,
        &card.encode(),
        "J.",
        alcove_core::StorageLayout::Standard,
    )
    .await?;
    println!(
        "enrolment  therapist by admin invite, client by the therapist's card ({})",
        ms(t.elapsed())
    );
    let joined = therapist
        .sync(Instant::now() + Duration::from_secs(5))
        .await?;
    let names = therapist.with_account(|a| a.conversations())?;
    for e in &joined.events {
        if let alcove_core::SyncEvent::ClientJoined { conversation } = e {
            let name = names
                .iter()
                .find(|c| c.id == *conversation)
                .and_then(|c| c.display_name.clone())
                .unwrap_or_default();
            println!("therapist  sees a new client join, shown as \"{name}\"");
        }
    }
    let with_therapist = client.conversation_with(therapist.account_id())?;
    client.with_account(|a| a.set_display_name(with_therapist, "Dr. Rivera"))?;

    // The profile reached the client with the welcome; texting waits for
    // consent to the policy.
    client.sync(Instant::now() + Duration::from_secs(5)).await?;
    match client
        .send_text(with_therapist, "Hi, is it ok to text before Thursday?")
        .await
    {
        Err(alcove_core::Error::ConsentRequired { policy_version }) => {
            let policy = client
                .with_account(|a| a.consent_required(with_therapist))?
                .ok_or("no policy")?;
            println!("consent    texting policy v{policy_version} shown to the client:");
            println!("             \"{}\"", policy.text);
            client.with_account(|a| a.accept_policy(with_therapist, policy_version))?;
            println!("           accepted; the text written before it goes after the consent");
        }
        other => return Err(format!("expected ConsentRequired, got {other:?}").into()),
    }
    if let Some(notice) = client
        .with_account(|a| a.messages(with_therapist, None, 10))?
        .into_iter()
        .find(|m| m.kind == alcove_core::MessageKind::Notice)
    {
        println!("notice     written on the client's phone (out of hours):");
        println!("             {}", notice.body);
    }

    println!("\n-- both online --");
    println!(
        "{CLIENT} -> {THERAPIST}: Hi, is it ok to text before Thursday? (sent after the consent)"
    );
    let t_first = Instant::now();
    client.sync(Instant::now() + Duration::from_secs(5)).await?;
    let mut send_times = vec![t_first.elapsed()];
    let r = therapist
        .sync(Instant::now() + Duration::from_secs(5))
        .await?;
    println!("   (therapist synced: {} new)", r.received);
    send_times.push(
        say(
            &therapist,
            THERAPIST,
            &client,
            CLIENT,
            "Of course. I read messages during office hours.",
        )
        .await?,
    );
    let r = client.sync(Instant::now() + Duration::from_secs(5)).await?;
    println!("   (client synced: {} new)", r.received);

    println!("\n-- client's phone goes to sleep --");
    let (endpoint, mut pushes, push_task) = push_endpoint().await?;
    client
        .register_push(PushRegistration {
            kind: push_registration::Kind::UnifiedPush as i32,
            endpoint,
        })
        .await?;
    client.with_account(|a| a.set_notification_privacy(NotificationPrivacy::Hidden))?;

    let texts = [
        "Thinking of you after today's session.",
        "Worksheet for the week is the breathing one we tried.",
        "See you Thursday at 4.",
    ];
    let first_send = Instant::now();
    for text in texts {
        send_times.push(say(&therapist, THERAPIST, &client, CLIENT, text).await?);
    }
    let push = tokio::time::timeout(Duration::from_secs(5), pushes.recv())
        .await
        .map_err(|_| "no wake-up push arrived within 5 s")?
        .ok_or("push endpoint closed")?;
    let wake_latency = first_send.elapsed();
    println!(
        "\npush       wake-up arrived at the client's endpoint: {} bytes, content-free ({})",
        push.len(),
        ms(wake_latency)
    );
    // Let any coalesced extra wake-ups arrive before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = 0;
    while pushes.try_recv().is_ok() {
        extra += 1;
    }

    let t = Instant::now();
    let report = client.sync(Instant::now() + Duration::from_secs(5)).await?;
    let sync_time = t.elapsed();
    println!(
        "sync       client woke and synced {} messages in {} pages ({})",
        report.received,
        report.pages,
        ms(sync_time)
    );
    println!("\nnotifications shown (privacy: hidden):");
    for n in &report.notifications {
        println!("  [{}] {}", n.title, n.body);
    }

    println!("\nclient's conversation with the therapist, from its encrypted database:");
    let mut messages = client.with_account(|a| a.messages(with_therapist, None, 50))?;
    messages.reverse();
    for m in &messages {
        let who = match (m.kind, m.outgoing) {
            (alcove_core::MessageKind::Notice, _) => "notice",
            (_, true) => CLIENT,
            (_, false) => THERAPIST,
        };
        println!("  {who:>9}: {}", m.body);
    }

    let mean_send = send_times.iter().sum::<Duration>() / send_times.len() as u32;
    println!(
        "\ntimings: mean send {}, wake-up {}, sync {}, whole demo {}",
        ms(mean_send),
        ms(wake_latency),
        ms(sync_time),
        ms(t0.elapsed())
    );
    println!("pushes received: {} (bursts are coalesced)", 1 + extra);
    // The client's introduction went with credentials (it had no delivery
    // key for the therapist yet); everything after the first message each
    // way is sealed (texts, the profile, the consent).
    println!(
        "sealed sender: {} sends named no sender to the relay",
        therapist.sealed_sends() + client.sealed_sends(),
    );
    if report.received as usize != texts.len() {
        return Err(format!(
            "expected {} messages after wake-up, got {}",
            texts.len(),
            report.received
        )
        .into());
    }
    crate::demo_bot::run(dir, &relay_db, &url, &therapist, &client).await?;
    push_task.abort();
    relay.shutdown().await;
    println!("\ndone. Files: {}", dir.display());
    Ok(())
}

/// The demo practice: open only on the weekday three days from today (in
/// New York), so the client's first text is always out of hours.
fn demo_profile() -> alcove_core::practice::PracticeProfile {
    use alcove_core::practice::{OfficeHours, PracticeProfile, TextingPolicy};
    use chrono::Datelike;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .weekday()
        .number_from_monday();
    PracticeProfile {
        revision: 0,
        display_name: "Dr. Rivera".into(),
        practice_name: "Harbor Counseling".into(),
        time_zone: "America/New_York".into(),
        hours: vec![OfficeHours {
            weekday: (today + 2) % 7 + 1,
            start_minute: 9 * 60,
            end_minute: 17 * 60,
        }],
        away: vec![],
        response_time_hours: 24,
        crisis_resources: "Call or text 988".into(),
        policy: Some(TextingPolicy {
            version: 1,
            text: "Texting is for scheduling and short check-ins. It is not for emergencies."
                .into(),
        }),
        notification_label: "HC".into(),
        retention_days: 0,
    }
}
