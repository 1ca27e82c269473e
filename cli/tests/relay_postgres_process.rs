//! `alcove relay` processes on PostgreSQL: two real processes on one
//! database serve one client conversation end to end, and neither their
//! logs (at debug level) nor the error of a relay that cannot reach its
//! database ever show the URL's password.

mod common;

use alcove_relay::{issue_invite, PostgresStorage, PostgresUrl, Role};
use common::*;

const PASSWORD: &str = "hunter2-secret";

fn config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("pg-url"), url).unwrap();
    let path = dir.join("relay.toml");
    std::fs::write(
        &path,
        "[relay]\nbind = \"127.0.0.1:0\"\n[storage]\npostgres_file = \"pg-url\"\n\
         [sealed_sender]\nkey_dir = \"ss\"\n",
    )
    .unwrap();
    path
}

fn spawn(config: &std::path::Path) -> RelayProcess {
    let mut cmd = std::process::Command::new(ALCOVE_BIN);
    cmd.arg("relay").arg("--config").arg(config);
    RelayProcess::spawn_command(cmd, config.with_file_name("none.db"), "debug")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relay_processes_on_one_database_serve_a_conversation_without_logging_the_password() {
    let Some(db) = alcove_testkit::postgres::database("two_processes").await else {
        return;
    };
    // The throwaway cluster trusts local users: any password is accepted,
    // so one can be put in the URL to look for it in the logs.
    let mut url = url_with_password(&db.url);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url);
    let (a, b) = (spawn(&cfg), spawn(&cfg));
    let storage = PostgresStorage::connect(&PostgresUrl::new(db.url.clone()), 2)
        .await
        .unwrap();
    let invite = || async {
        issue_invite(&storage, Role::Client, now(), None)
            .await
            .unwrap()
    };
    // The therapist enrols through A, the client through B; each sends
    // through its own process and syncs.
    let therapist = enroll_at(dir.path(), "therapist", &a.url, &invite().await).await;
    let client = enroll_at(dir.path(), "client", &b.url, &invite().await).await;
    let to_client = therapist
        .client
        .conversation_with(client.client.account_id())
        .unwrap();
    therapist
        .client
        .send_text(to_client, "our next session is at 10")
        .await
        .unwrap();
    client.client.sync(soon(20)).await.unwrap();
    assert_eq!(
        texts(&client, therapist.client.account_id()),
        vec!["our next session is at 10"]
    );
    let to_therapist = client
        .client
        .conversation_with(therapist.client.account_id())
        .unwrap();
    client
        .client
        .send_text(to_therapist, "thanks")
        .await
        .unwrap();
    therapist.client.sync(soon(20)).await.unwrap();
    assert_eq!(
        texts(&therapist, client.client.account_id()),
        vec!["thanks"]
    );
    for log in [a.log_text(), b.log_text()] {
        assert!(log.contains("PostgreSQL"), "{log}");
        assert!(!log.contains(PASSWORD), "the password was logged:\n{log}");
    }

    // A relay whose database is not there: a clear error, no password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    url = format!("postgres://alcove:{PASSWORD}@127.0.0.1:{port}/nothing");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url);
    let out = std::process::Command::new(ALCOVE_BIN)
        .arg("relay")
        .arg("--config")
        .arg(&cfg)
        .env("ALCOVE_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("storage unavailable"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

fn url_with_password(url: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_password(Some(PASSWORD)).unwrap();
    u.to_string()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
