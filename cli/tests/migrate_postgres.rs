//! `alcove relay migrate-to-postgres`: a relay seeded on SQLite through
//! its real API (enrolled clients, a queued message, prekeys, an unused
//! invite, a push registration) is copied into PostgreSQL by the real
//! binary; a relay on PostgreSQL at the same address then serves it: the
//! device fetches its mail and decrypts it, its prekeys are all there, the
//! invite still registers once. A target that holds data is refused.

mod common;

use std::time::Duration;

use alcove_relay::{PostgresStorage, PostgresUrl, RelayConfig, Storage, StorageConfig};
use common::*;

fn migrate(from: &std::path::Path, to: &str) -> std::process::Output {
    std::process::Command::new(ALCOVE_BIN)
        .args(["relay", "migrate-to-postgres", "--from"])
        .arg(from)
        .env("ALCOVE_RELAY_POSTGRES_URL", to)
        .env_remove("ALCOVE_LOG")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_relay_moves_to_postgres_with_its_mail_prekeys_and_invites() {
    let Some(db) = alcove_testkit::postgres::database("migrate_to_pg").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path()).await;
    let alice = enroll(dir.path(), "alice", &relay).await;
    let bob = enroll(dir.path(), "bob", &relay).await;
    let unused_invite = relay.invite();
    let bob_id = bob.client.account_id().to_owned();
    let conversation = alice.client.conversation_with(&bob_id).unwrap();
    alice
        .client
        .send_text(conversation, "see you thursday")
        .await
        .unwrap();
    let sqlite = alcove_relay::SqliteStorage::open(&relay.db).unwrap();
    let prekeys_before = sqlite.prekey_count(&bob_id, 1).await.unwrap();
    assert!(prekeys_before.one_time_prekeys > 0);
    drop(sqlite);
    relay.stop().await;

    let out = migrate(&relay.db, &db.url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("2 accounts"), "{stderr}");
    assert!(stderr.contains("1 queued envelopes"), "{stderr}");

    // Migrating again into the now-full database: refused, nothing changed.
    let again = migrate(&relay.db, &db.url);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds relay data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The relay on PostgreSQL, same address, same sealed-sender keys.
    let mut config = RelayConfig::new(relay.addr, StorageConfig::postgres(db.url.clone()));
    config.sealed_sender.as_mut().unwrap().key_dir = Some(
        alcove_relay::StorageConfig::sqlite(relay.db.clone())
            .default_dir_for(".sealed-sender")
            .unwrap(),
    );
    config.rate_limits = alcove_relay::rate_limits::RateLimitConfig::off();
    let mut handle = None;
    for _ in 0..50 {
        match alcove_relay::start(config.clone(), alcove_relay::default_push_sender().unwrap())
            .await
        {
            Ok(h) => {
                handle = Some(h);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let handle = handle.expect("relay on PostgreSQL at the old address");
    let pg = PostgresStorage::connect(&PostgresUrl::new(db.url.clone()), 2)
        .await
        .unwrap();
    assert_eq!(pg.prekey_count(&bob_id, 1).await.unwrap(), prekeys_before);

    let report = bob.client.sync(soon(20)).await.unwrap();
    assert_eq!(report.notifications.len(), 1, "{report:?}");
    assert_eq!(
        texts(&bob, alice.client.account_id()),
        vec!["see you thursday"]
    );
    // Acked on PostgreSQL: the mailbox is empty.
    assert_eq!(pg.mailbox_usage(&bob_id, 1).await.unwrap().count, 0);
    // The invite issued on SQLite registers, once.
    let carol = enroll_at(
        dir.path(),
        "carol",
        &format!("http://{}", relay.addr),
        &unused_invite,
    )
    .await;
    let carol_id = carol.client.account_id().to_owned();
    assert!(pg.account_role(&carol_id).await.unwrap().is_some());
    handle.shutdown().await;
}
