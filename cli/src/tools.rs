//! Relay, invite, enrol and sync subcommands.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey};
use rand::RngCore;

use crate::RelayArgs;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads a 32-byte key stored as hex (demo and test tooling only: apps keep
/// the key in the Android Keystore / iOS Keychain).
pub fn read_key(path: &Path) -> Result<DbKey, BoxError> {
    let text = std::fs::read_to_string(path)?;
    let bytes = hex::decode(text.trim())?;
    Ok(DbKey::from_slice(&bytes)?)
}

/// Creates a random key file readable by its owner only.
pub fn new_key_file(path: &Path) -> Result<DbKey, BoxError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    write_private(path, hex::encode(bytes).as_bytes())?;
    Ok(DbKey::new(bytes))
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(data)
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, data)
    }
}

pub async fn relay(args: RelayArgs) -> Result<(), BoxError> {
    // Before the configuration: the environment's URL names the target
    // here, not the relay's storage.
    if let Some(crate::RelayAction::MigrateToPostgres { from, to }) = &args.action {
        let url = alcove_relay::PostgresUrl::new(to.clone());
        let copied =
            alcove_relay::storage::postgres::import::migrate_sqlite_to_postgres(from, &url).await?;
        // Counts and the URL without its password.
        eprintln!("copied into {url}: {copied}");
        return Ok(());
    }
    let mut file = match &args.config {
        Some(path) => alcove_relay::load_config(path)?,
        None => alcove_relay::FileConfig::default(),
    };
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(alcove_relay::TlsConfig {
            cert_path: cert,
            key_path: key,
        }),
        _ => None,
    };
    let config = file.relay_config(args.bind, args.db, tls)?;
    if let Some(crate::RelayAction::Invite {
        count,
        role,
        ttl_days,
        expires_in_hours,
    }) = args.action
    {
        let (ttl_ms, lifetime) = match expires_in_hours {
            Some(h) => (u64::from(h) * 3600 * 1000, format!("{h} hours")),
            None => (
                u64::from(ttl_days) * 24 * 3600 * 1000,
                format!("{ttl_days} days"),
            ),
        };
        for _ in 0..count.max(1) {
            println!(
                "{}",
                alcove_relay::create_role_invite(&config.storage, role, Some(ttl_ms))?
            );
        }
        // Tokens alone on stdout (scripts read them); the rest for people.
        let expires = std::time::SystemTime::now() + std::time::Duration::from_millis(ttl_ms);
        eprintln!(
            "{role} invites; expires {} ({lifetime})",
            httpdate::fmt_http_date(expires)
        );
        return Ok(());
    }
    if let Some(crate::RelayAction::SetRole { account, role }) = &args.action {
        alcove_relay::set_account_role(&config.storage, account, *role)?;
        // The account id is the admin's own input; echo only the role.
        eprintln!("role set to {role}");
        return Ok(());
    }
    if let Some(crate::RelayAction::Revoke { account, device }) = &args.action {
        alcove_relay::revoke_device(&config.storage, account, *device)?;
        // The account id is the admin's own input; echo only the device.
        eprintln!("device {device} revoked");
        return Ok(());
    }
    if let Some(crate::RelayAction::Keys) = args.action {
        let Some(sealed) = &config.sealed_sender else {
            return Err("sealed sender is turned off in the configuration".into());
        };
        let root = alcove_relay::trust_root_public_key(sealed, &config.storage)?;
        println!("{}", hex::encode(root));
        eprintln!(
            "key files in {}",
            alcove_relay::sealed_sender_key_dir(sealed, &config.storage)?.display()
        );
        return Ok(());
    }
    // A relay on loopback (tests, the demo) may wake `localhost` endpoints.
    file.push.unified_push.loopback = config.loopback_test_mode();
    // Key files are read and checked now, not at the first wake-up.
    let push = alcove_relay::push_sender_from_config(&file.push)?;
    let storage = config.storage.clone();
    let handle = alcove_relay::start(config, push).await?;
    eprintln!(
        "alcove relay listening on {} (storage: {storage})",
        handle.local_addr()
    );
    tokio::signal::ctrl_c().await?;
    eprintln!("shutting down");
    handle.shutdown().await;
    Ok(())
}

#[derive(clap::Args)]
pub struct EnrollArgs {
    #[arg(long)]
    db: PathBuf,
    /// Hex key file; created if absent.
    #[arg(long)]
    key_file: PathBuf,
    #[arg(long)]
    relay: String,
    /// Invites are base64url and may begin with '-'.
    #[arg(long, allow_hyphen_values = true)]
    invite: String,
}

pub async fn enroll(args: EnrollArgs) -> Result<(), BoxError> {
    let key = if args.key_file.exists() {
        read_key(&args.key_file)?
    } else {
        new_key_file(&args.key_file)?
    };
    let client = Client::enroll(&args.db, &key, &args.relay, &args.invite).await?;
    println!("{}", client.account_id());
    Ok(())
}

#[derive(clap::Args)]
pub struct SyncArgs {
    #[arg(long)]
    db: PathBuf,
    #[arg(long)]
    key_file: PathBuf,
    #[arg(long)]
    relay: String,
    #[arg(long, default_value_t = 10_000)]
    deadline_ms: u64,
    /// Envelopes per page.
    #[arg(long, default_value_t = alcove_core::PAGE_SIZE)]
    page_size: u32,
    /// Print this process's peak resident memory (VmHWM) after the sync.
    #[arg(long)]
    report_rss: bool,
}

/// Peak resident set size of this process, in KiB (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub async fn sync(args: SyncArgs) -> Result<(), BoxError> {
    let key = read_key(&args.key_file)?;
    let mut client = Client::open(&args.db, &key, &args.relay)?;
    client.set_page_size(args.page_size);
    let deadline = Instant::now() + Duration::from_millis(args.deadline_ms);
    let started = Instant::now();
    let report = client.sync(deadline).await?;
    println!(
        "received={} failed={} more={} sent={} pages={} relay_calls={} elapsed_ms={}",
        report.received,
        report.failed,
        report.more,
        report.sent,
        report.pages,
        report.stages.relay_calls,
        started.elapsed().as_millis()
    );
    if args.report_rss {
        println!("peak_rss_kib={}", peak_rss_kib().unwrap_or(0));
    }
    Ok(())
}

/// `alcove export verify DIR`: prints what it checked; fails naming the
/// first thing that does not match.
pub fn verify_export(dir: &Path) -> Result<(), BoxError> {
    use alcove_core::export::{verify_dir, ExportCheck};
    match verify_dir(dir)? {
        ExportCheck::Valid {
            identity_key,
            files,
        } => {
            println!("valid: {files} files, signed by identity key {identity_key}");
            Ok(())
        }
        ExportCheck::BadSignature => Err("the manifest or its signature is not valid".into()),
        ExportCheck::FileMismatch { name } => {
            Err(format!("{name}: missing or changed since export").into())
        }
        ExportCheck::Unlisted { name } => Err(format!("{name}: not in the manifest").into()),
    }
}
