//! Export for the clinical record over a real relay and real SQLCipher
//! files: a fresh unlock (the key again; a wrong one writes nothing), the
//! HTML transcript with every text escaped, a FHIR R4 Bundle of
//! Communication resources, the audit log, a manifest signed by the
//! device's identity key; `verify_dir` finds a changed file, a forged
//! manifest, an unlisted file; export is an audit event.

use std::time::{Duration, Instant};

use alcove_core::export::{verify_dir, ExportCheck, MANIFEST};
use alcove_core::{Client, DbKey, Error};
use alcove_testkit::relay::Relay;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_readable_importable_signed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let t_key = DbKey::random();
    let t = Client::enroll(&dir.path().join("t.db"), &t_key, &r.url(), &r.invite())
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
    c.send_text(
        to_t,
        "I had a hard week <script>alert(1)</script>\nsecond line",
    )
    .await
    .unwrap();
    t.sync(soon()).await.unwrap();
    let to_c = t.conversation_with(c.account_id()).unwrap();
    t.with_account(|a| a.set_display_name(to_c, "J. & Co"))
        .unwrap();
    t.send_text(to_c, "Thank you for telling me.")
        .await
        .unwrap();

    // A wrong key: nothing is written.
    let out = dir.path().join("export");
    let e = t
        .export_conversation(to_c, None, &out, &DbKey::random())
        .unwrap_err();
    assert!(matches!(e, Error::WrongKey), "{e:?}");
    assert!(!out.exists());

    let report = t.export_conversation(to_c, None, &out, &t_key).unwrap();
    assert_eq!(report.messages, 2);
    let html = std::fs::read_to_string(out.join("transcript.html")).unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;<br>second line"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("J. &amp; Co"));

    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bundle.fhir.json")).unwrap()).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["resource"]["resourceType"], "Communication");
    assert_eq!(entries[0]["resource"]["sender"]["display"], "J. & Co");
    assert_eq!(
        entries[1]["resource"]["payload"][0]["contentString"],
        "Thank you for telling me."
    );

    let valid = verify_dir(&out).unwrap();
    assert!(
        matches!(valid, ExportCheck::Valid { files: 3, .. }),
        "{valid:?}"
    );
    let audit = t.with_account(|a| a.audit_entries(0, 100)).unwrap();
    assert_eq!(audit.last().unwrap().kind, "exported");
    assert_eq!(audit.last().unwrap().subject, Some(to_c.get()));

    // Exporting over an existing directory is refused.
    assert!(matches!(
        t.export_conversation(to_c, None, &out, &t_key),
        Err(Error::InvalidArgument(_))
    ));

    // A date range that holds nothing.
    let empty = dir.path().join("empty");
    let r0 = t
        .export_conversation(to_c, Some((0, 1)), &empty, &t_key)
        .unwrap();
    assert_eq!(r0.messages, 0);

    // Tampering, each caught and named.
    let copy = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        for e in std::fs::read_dir(&out).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
        d
    };
    let d = copy("edited");
    let p = d.join("transcript.html");
    let edited = std::fs::read_to_string(&p)
        .unwrap()
        .replace("hard week", "good week");
    std::fs::write(&p, edited).unwrap();
    assert_eq!(
        verify_dir(&d).unwrap(),
        ExportCheck::FileMismatch {
            name: "transcript.html".into()
        }
    );
    let d = copy("forged");
    let p = d.join(MANIFEST);
    let forged = std::fs::read_to_string(&p)
        .unwrap()
        .replace("\"files\"", "\"files\" ");
    std::fs::write(&p, forged).unwrap();
    assert_eq!(verify_dir(&d).unwrap(), ExportCheck::BadSignature);
    let d = copy("extra");
    std::fs::write(d.join("notes.txt"), "added later").unwrap();
    assert_eq!(
        verify_dir(&d).unwrap(),
        ExportCheck::Unlisted {
            name: "notes.txt".into()
        }
    );
    let d = copy("missing");
    std::fs::remove_file(d.join("audit.json")).unwrap();
    assert_eq!(
        verify_dir(&d).unwrap(),
        ExportCheck::FileMismatch {
            name: "audit.json".into()
        }
    );
    assert_eq!(
        verify_dir(&dir.path().join("nowhere")).unwrap(),
        ExportCheck::BadSignature
    );
}
