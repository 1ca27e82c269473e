//! The audit log on real accounts and SQLCipher files: security events
//! recorded in the transaction of their change, hash-chained, the head
//! signed at every lock and every 64 entries; `verify_audit_log` finds an
//! edit, a deletion, a reordering, a cut-off tail and a forged signature,
//! each at the entry where it happens; the log holds no names or account
//! ids. And auto-lock: inactivity locks the client on its own (recorded),
//! activity keeps it open, syncs (a push's above all) are not activity.

use std::time::{Duration, Instant};

use alcove_core::audit::{AuditEvent, AuditProblem, SIGN_EVERY};
use alcove_core::practice::{PracticeProfile, TextingPolicy};
use alcove_core::{Account, Client, ConversationId, DbKey, Error, StorageLayout};
use alcove_testkit::relay::Relay;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn account(dir: &std::path::Path) -> Account {
    Account::create(
        &dir.join("a.db"),
        &DbKey::random(),
        "0123456789abcdef0123456789abcdef",
        1,
    )
    .unwrap()
}

fn kinds(a: &Account) -> Vec<String> {
    a.audit_entries(0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Runs raw SQL on the database as an attacker holding the key would,
/// with the append-only triggers dropped.
fn tamper(a: &Account, sql: &str) {
    a.connection()
        .execute_batch(&format!(
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete; {sql}"
        ))
        .unwrap();
}

fn filled(dir: &std::path::Path, n: usize) -> Account {
    let a = account(dir);
    for i in 0..n {
        a.audit(AuditEvent::Exported {
            conversation: ConversationId::new(i as i64 + 1),
        })
        .unwrap();
    }
    a
}

#[test]
fn an_intact_log_verifies_and_is_signed_every_64_entries_and_at_lock() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled(dir.path(), 130);
    let check = a.verify_audit_log().unwrap();
    assert!(check.intact(), "{check:?}");
    assert_eq!(check.entries, 130);
    assert_eq!(check.signed_through, Some(2 * SIGN_EVERY));
    a.sign_audit_head().unwrap();
    assert_eq!(a.verify_audit_log().unwrap().signed_through, Some(130));
    // Append-only: the database itself refuses changes.
    for sql in [
        "UPDATE audit_log SET kind = 'x' WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 3",
    ] {
        assert!(a.connection().execute_batch(sql).is_err(), "{sql}");
    }
}

#[test]
fn edits_deletions_reorderings_truncations_and_forged_signatures_are_found_where_they_are() {
    let cases: [(&str, i64, AuditProblem); 6] = [
        (
            "UPDATE audit_log SET detail = 7 WHERE seq = 10",
            10,
            AuditProblem::Altered,
        ),
        (
            "UPDATE audit_log SET kind = 'unlocked' WHERE seq = 20",
            20,
            AuditProblem::Altered,
        ),
        (
            "DELETE FROM audit_log WHERE seq = 30",
            30,
            AuditProblem::Missing,
        ),
        // Reordering: swap two entries' contents (each keeps its own
        // hash, so each names the wrong predecessor).
        (
            "UPDATE audit_log SET seq = -1 WHERE seq = 40;
             UPDATE audit_log SET seq = 40 WHERE seq = 41;
             UPDATE audit_log SET seq = 41 WHERE seq = -1;",
            40,
            AuditProblem::Unchained,
        ),
        // The tail after the last signature (at 64) is cut and a signature
        // covering 70 shows it.
        (
            "DELETE FROM audit_log WHERE seq > 66",
            67,
            AuditProblem::Truncated,
        ),
        (
            "UPDATE audit_signatures SET signature = zeroblob(64) WHERE seq = 64",
            64,
            AuditProblem::BadSignature,
        ),
    ];
    for (sql, at, problem) in cases {
        let dir = tempfile::tempdir().unwrap();
        let a = filled(dir.path(), 70);
        a.sign_audit_head().unwrap();
        assert!(a.verify_audit_log().unwrap().intact());
        tamper(&a, sql);
        let check = a.verify_audit_log().unwrap();
        assert_eq!(check.broken_at, Some((at, problem)), "{sql}: {check:?}");
    }
    // Recomputing the chain after an edit still fails the signature.
    let dir = tempfile::tempdir().unwrap();
    let a = filled(dir.path(), 70);
    a.sign_audit_head().unwrap();
    tamper(&a, "DELETE FROM audit_log WHERE seq = 5");
    let check = a.verify_audit_log().unwrap();
    assert_eq!(check.broken_at, Some((5, AuditProblem::Missing)));
}

fn profile() -> PracticeProfile {
    PracticeProfile {
        revision: 0,
        display_name: "Dr. Rivera".into(),
        practice_name: "Harbor Counseling".into(),
        time_zone: "America/New_York".into(),
        hours: vec![],
        away: vec![],
        response_time_hours: 24,
        crisis_resources: "Call or text 988".into(),
        policy: Some(TextingPolicy {
            version: 3,
            text: "Not for emergencies.".into(),
        }),
        notification_label: "HC".into(),
        retention_days: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_are_recorded_on_both_devices_without_names() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let t_key = DbKey::random();
    let t = Client::enroll(&dir.path().join("t.db"), &t_key, &r.url(), &r.invite())
        .await
        .unwrap();
    t.with_account(|a| a.publish_practice_profile(profile()))
        .unwrap();
    let card = t.invite_card(&r.invite(), None).unwrap().encode();
    let c = Client::enroll_by_card(
        &dir.path().join("c.db"),
        &DbKey::random(),
        &card,
        "Jane Q.",
        StorageLayout::Standard,
    )
    .await
    .unwrap();
    t.sync(soon()).await.unwrap();
    c.sync(soon()).await.unwrap();
    let to_t = c.conversation_with(t.account_id()).unwrap();
    c.with_account(|a| a.accept_policy(to_t, 3)).unwrap();
    c.sync(soon()).await.unwrap();
    t.sync(soon()).await.unwrap();
    t.lock().unwrap();
    t.unlock(&t_key).unwrap();

    let tk = t.with_account(|a| Ok(kinds(a))).unwrap();
    assert_eq!(
        tk,
        ["policy_published", "consent_given", "locked", "unlocked"]
    );
    let ck = c.with_account(|a| Ok(kinds(a))).unwrap();
    assert_eq!(ck, ["consent_given"]);
    let entries = t.with_account(|a| a.audit_entries(0, 100)).unwrap();
    assert_eq!(entries[0].detail, Some(3));
    let to_c = t.conversation_with(c.account_id()).unwrap();
    assert_eq!(entries[1].subject, Some(to_c.get()));
    let check = t.with_account(|a| a.verify_audit_log()).unwrap();
    assert!(check.intact());
    // Signed at the lock: everything up to it.
    assert_eq!(check.signed_through, Some(3));
    // Nothing in the log names anyone.
    let dump: String = t
        .with_account(|a| a.audit_entries(0, 100))
        .unwrap()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    for who in [c.account_id(), t.account_id(), "Jane", "Rivera"] {
        assert!(!dump.contains(who), "{who}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_locks_itself_after_inactivity_and_syncs_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let key = DbKey::random();
    let c = Client::enroll(&dir.path().join("c.db"), &key, &r.url(), &r.invite())
        .await
        .unwrap();
    c.set_auto_lock(Some(Duration::from_millis(400)));
    // The app's activity keeps it open well past the timeout.
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        c.with_account(|a| a.conversations()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!c.is_locked());
    // Syncs alone do not: it locks on its own, with no call from the app.
    let until = Instant::now() + Duration::from_secs(10);
    while !c.is_locked() && Instant::now() < until {
        let _ = c.sync(soon()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(c.is_locked(), "not auto-locked");
    assert!(matches!(
        c.with_account(|a| a.conversations()),
        Err(Error::ClientLocked)
    ));
    // A push's sync unlocks for its length only, and is not activity.
    c.sync_unlocking(&key, soon()).await.unwrap();
    assert!(c.is_locked());
    // Unlocking is activity; the log says the lock was automatic.
    c.unlock(&key).unwrap();
    let entries = c.with_account(|a| a.audit_entries(0, 100)).unwrap();
    let locked: Vec<_> = entries.iter().filter(|e| e.kind == "locked").collect();
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0].detail, Some(1), "automatic");
    assert_eq!(entries.last().unwrap().kind, "unlocked");
    // Off: it stays open well past the old timeout.
    c.set_auto_lock(None);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(!c.is_locked());
}
