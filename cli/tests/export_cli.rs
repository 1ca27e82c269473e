//! `alcove export verify DIR` on a real export: valid, then a changed
//! file, a forged manifest and a missing directory, each refused with a
//! clear message.

use std::process::Command;
use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey};
use alcove_testkit::relay::Relay;

const ALCOVE: &str = env!("CARGO_BIN_EXE_alcove");

fn verify(dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(ALCOVE)
        .args(["export", "verify"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_verify_checks_signature_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let key = DbKey::random();
    let t = Client::enroll(&dir.path().join("t.db"), &key, &r.url(), &r.invite())
        .await
        .unwrap();
    let c = Client::enroll(
        &dir.path().join("c.db"),
        &DbKey::random(),
        &r.url(),
        &r.invite(),
    )
    .await
    .unwrap();
    let to_t = c.conversation_with(t.account_id()).unwrap();
    c.send_text(to_t, "hello").await.unwrap();
    t.sync(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    let to_c = t.conversation_with(c.account_id()).unwrap();
    let out = dir.path().join("export");
    t.export_conversation(to_c, None, &out, &key).unwrap();

    let (ok, stdout, _) = verify(&out);
    assert!(ok);
    assert!(
        stdout.starts_with("valid: 3 files, signed by identity key "),
        "{stdout}"
    );

    std::fs::write(out.join("audit.json"), "{}").unwrap();
    let (ok, _, stderr) = verify(&out);
    assert!(!ok);
    assert!(
        stderr.contains("audit.json: missing or changed"),
        "{stderr}"
    );

    std::fs::write(out.join("manifest.sig"), "00").unwrap();
    let (ok, _, stderr) = verify(&out);
    assert!(!ok);
    assert!(stderr.contains("signature is not valid"), "{stderr}");

    let (ok, _, stderr) = verify(&dir.path().join("nowhere"));
    assert!(!ok);
    assert!(stderr.contains("alcove: "), "{stderr}");
}
