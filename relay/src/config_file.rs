//! The relay's TOML configuration file (`alcove relay --config FILE`):
//! `[relay]`, `[storage]`, `[sealed_sender]`, `[limits]`, `[rate_limits]`,
//! `[invites]` and `[push]` with `[push.retry]`,
//! `[push.budget]`,
//! `[push.apns]`, `[push.fcm]` and `[push.unified_push]`. Every key is
//! documented in relay/CONFIG.md. Unknown keys are refused, so a typo never
//! silently leaves a provider unconfigured. Relative paths are taken from
//! the file's own directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{system_clock, Clock, Limits, RelayConfig, SealedSenderConfig, TlsConfig};
use crate::push::{
    ApnsOptions, ApnsSender, BudgetPolicy, FcmOptions, FcmSender, PushGateway, PushSender,
    RetryPolicy, ServiceAccount, UnifiedPushOptions, UnifiedPushSender, APNS_PRODUCTION,
    APNS_SANDBOX, FCM_PRODUCTION,
};
use crate::storage::StorageConfig;

pub use crate::config_error::ConfigError;

/// The whole file. Every section is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub relay: RelaySection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub sealed_sender: SealedSenderSection,
    #[serde(default)]
    pub push: PushConfig,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub rate_limits: RateLimitsSection,
    #[serde(default)]
    pub invites: InvitesSection,
}

/// `[invites]`: client invites minted by therapists' devices
/// (`POST /v1/invites`). Absent keys keep their defaults
/// ([`crate::config::InviteConfig::default`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitesSection {
    pub max_open_per_account: Option<u32>,
    pub default_expiry_hours: Option<u32>,
    pub max_expiry_hours: Option<u32>,
}

impl InvitesSection {
    /// The settings this section makes; a zero, or a default beyond the
    /// maximum, is refused.
    pub fn invites(&self) -> Result<crate::config::InviteConfig, ConfigError> {
        let mut c = crate::config::InviteConfig::default();
        let hours = |h: u32| Duration::from_secs(u64::from(h) * 3600);
        if let Some(n) = self.max_open_per_account {
            c.max_open_per_account = n;
        }
        if let Some(h) = self.default_expiry_hours {
            c.default_ttl = hours(h);
        }
        if let Some(h) = self.max_expiry_hours {
            c.max_ttl = hours(h);
        }
        if c.max_open_per_account == 0
            || self.default_expiry_hours == Some(0)
            || self.max_expiry_hours == Some(0)
        {
            return Err(ConfigError::Invalid(
                "[invites] max_open_per_account and the expiry hours must be above 0".into(),
            ));
        }
        if c.default_ttl > c.max_ttl {
            return Err(ConfigError::Invalid(
                "[invites] default_expiry_hours must not exceed max_expiry_hours".into(),
            ));
        }
        Ok(c)
    }
}

/// One rate: `{ count = 120, window_secs = 60 }`; a count of 0 turns the
/// limit off.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub count: u32,
    pub window_secs: u64,
}

/// `[rate_limits]`: per-account and per-address request rates. Absent keys
/// keep their defaults ([`crate::rate_limits::RateLimitConfig::default`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsSection {
    pub sends_per_account: Option<RateSpec>,
    pub signed_sends_per_pair: Option<RateSpec>,
    pub bundle_fetches_per_requester: Option<RateSpec>,
    pub bundle_fetches_per_target: Option<RateSpec>,
    pub registrations_per_address: Option<RateSpec>,
    pub failed_auth_per_address: Option<RateSpec>,
    pub invite_mints_per_account: Option<RateSpec>,
}

impl RateLimitsSection {
    pub fn rate_limits(&self) -> Result<crate::rate_limits::RateLimitConfig, ConfigError> {
        use crate::rate_limits::Rate;
        let mut c = crate::rate_limits::RateLimitConfig::default();
        for (key, spec, slot) in [
            (
                "sends_per_account",
                self.sends_per_account,
                &mut c.sends_per_account,
            ),
            (
                "signed_sends_per_pair",
                self.signed_sends_per_pair,
                &mut c.signed_sends_per_pair,
            ),
            (
                "bundle_fetches_per_requester",
                self.bundle_fetches_per_requester,
                &mut c.bundle_fetches_per_requester,
            ),
            (
                "bundle_fetches_per_target",
                self.bundle_fetches_per_target,
                &mut c.bundle_fetches_per_target,
            ),
            (
                "registrations_per_address",
                self.registrations_per_address,
                &mut c.registrations_per_address,
            ),
            (
                "failed_auth_per_address",
                self.failed_auth_per_address,
                &mut c.failed_auth_per_address,
            ),
            (
                "invite_mints_per_account",
                self.invite_mints_per_account,
                &mut c.invite_mints_per_account,
            ),
        ] {
            if let Some(spec) = spec {
                if spec.window_secs == 0 {
                    return Err(ConfigError::Invalid(format!(
                        "[rate_limits] {key}: window_secs must be above 0"
                    )));
                }
                *slot = Rate {
                    count: spec.count,
                    window: Duration::from_secs(spec.window_secs),
                };
            }
        }
        Ok(c)
    }
}

/// `[limits]`: connection limits. Absent keys keep their defaults
/// ([`Limits::default`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub header_timeout_ms: Option<u64>,
    pub body_window_ms: Option<u64>,
    pub body_min_bytes: Option<usize>,
    pub idle_timeout_ms: Option<u64>,
    pub h2_max_concurrent_streams: Option<u32>,
    pub h2_max_pending_accept_reset_streams: Option<usize>,
    pub h2_max_local_error_reset_streams: Option<usize>,
}

impl LimitsSection {
    /// The limits this section sets; zero durations are refused (they would
    /// close every connection at once).
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let mut l = Limits::default();
        let ms = |key: &str, v: Option<u64>, d: &mut Duration| match v {
            Some(0) => Err(ConfigError::Invalid(format!(
                "[limits] {key} must be above 0"
            ))),
            Some(v) => {
                *d = Duration::from_millis(v);
                Ok(())
            }
            None => Ok(()),
        };
        ms(
            "header_timeout_ms",
            self.header_timeout_ms,
            &mut l.header_timeout,
        )?;
        ms("body_window_ms", self.body_window_ms, &mut l.body_window)?;
        ms("idle_timeout_ms", self.idle_timeout_ms, &mut l.idle_timeout)?;
        if self.max_connections == Some(0) || self.h2_max_concurrent_streams == Some(0) {
            return Err(ConfigError::Invalid(
                "[limits] max_connections and h2_max_concurrent_streams must be above 0".into(),
            ));
        }
        l.max_connections = self.max_connections.or(l.max_connections);
        if let Some(v) = self.max_connections_per_ip {
            l.max_connections_per_ip = v;
        }
        if let Some(v) = self.body_min_bytes {
            l.body_min_bytes = v;
        }
        if let Some(v) = self.h2_max_concurrent_streams {
            l.h2_max_concurrent_streams = v;
        }
        if let Some(v) = self.h2_max_pending_accept_reset_streams {
            l.h2_max_pending_accept_reset_streams = v;
        }
        if let Some(v) = self.h2_max_local_error_reset_streams {
            l.h2_max_local_error_reset_streams = v;
        }
        Ok(l)
    }
}

/// `[relay]`: where and how the relay serves. Command-line flags win.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySection {
    pub bind: Option<SocketAddr>,
    pub db: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub message_ttl_days: Option<u64>,
    pub max_queue: Option<u32>,
    pub max_queue_bytes: Option<u64>,
    pub max_devices: Option<u32>,
    pub max_body_bytes: Option<usize>,
    pub reader_lease_secs: Option<u64>,
    pub push_coalesce_ms: Option<u64>,
    pub loopback_push_endpoints: Option<bool>,
}

/// `[storage]`: where the relay keeps its state, one backend: `sqlite =
/// "relay.db"`, or PostgreSQL by `postgres = "postgres://..."`, by
/// `postgres_file` (a file holding the URL, so the password stays out of
/// the configuration) or by the environment variable
/// [`POSTGRES_URL_ENV`]. Naming two is refused. `[relay] db` (and
/// `alcove relay --db`) still name the SQLite file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    pub sqlite: Option<PathBuf>,
    pub postgres: Option<String>,
    pub postgres_file: Option<PathBuf>,
    /// Pool size of this relay process (PostgreSQL only).
    pub max_connections: Option<usize>,
    /// SQLite only: longest wait, in milliseconds, before deleted mail is
    /// scrubbed from the WAL.
    pub wal_scrub_ms: Option<u64>,
    /// SQLite only: longest wait, in milliseconds, before acknowledged
    /// mail is deleted (0: in the ack's own transaction).
    pub ack_delete_ms: Option<u64>,
}

/// The PostgreSQL URL from the environment, when the file names none.
pub const POSTGRES_URL_ENV: &str = "ALCOVE_RELAY_POSTGRES_URL";

/// Never shows a URL: it may hold a password.
impl std::fmt::Debug for StorageSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSection")
            .field("sqlite", &self.sqlite)
            .field(
                "postgres",
                &self
                    .postgres
                    .as_ref()
                    .map(|u| crate::storage::PostgresUrl::new(u.clone())),
            )
            .field("postgres_file", &self.postgres_file)
            .field("max_connections", &self.max_connections)
            .field("wal_scrub_ms", &self.wal_scrub_ms)
            .field("ack_delete_ms", &self.ack_delete_ms)
            .finish()
    }
}

/// `[sealed_sender]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealedSenderSection {
    pub enabled: bool,
    pub key_dir: Option<PathBuf>,
    pub cert_ttl_hours: u64,
}

impl Default for SealedSenderSection {
    fn default() -> Self {
        Self {
            enabled: true,
            key_dir: None,
            cert_ttl_hours: 24,
        }
    }
}

/// `[push]`: the providers. UnifiedPush is always on; APNs and FCM only
/// when their section is present.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// How long a provider keeps an undelivered wake (APNs
    /// `apns-expiration`, FCM `android.ttl`, UnifiedPush `TTL`).
    pub ttl_secs: u64,
    pub retry: RetryPolicy,
    /// `[push.budget]`: bounds on attempts and retries (UnifiedPush).
    pub budget: BudgetPolicy,
    pub apns: Option<ApnsSettings>,
    pub fcm: Option<FcmSettings>,
    pub unified_push: UnifiedPushSettings,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 86_400,
            retry: RetryPolicy::default(),
            budget: BudgetPolicy::default(),
            apns: None,
            fcm: None,
            unified_push: UnifiedPushSettings::default(),
        }
    }
}

/// `[push.apns]`: token-based (`.p8`) authentication.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsSettings {
    pub key_file: PathBuf,
    pub key_id: String,
    pub team_id: String,
    pub topic: String,
    /// `production` (default), `sandbox`, or a base URL.
    #[serde(default = "production")]
    pub endpoint: String,
    /// Extra trusted root CA (PEM): for test servers only.
    pub ca_file: Option<PathBuf>,
    /// Re-mint the provider JWT after this many minutes (20–55).
    #[serde(default = "forty")]
    pub token_refresh_minutes: u64,
}

fn production() -> String {
    "production".into()
}

fn forty() -> u64 {
    40
}

/// `[push.fcm]`: FCM HTTP v1 with a service account.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmSettings {
    pub service_account_file: PathBuf,
    /// Base URL of the send API (default the production one).
    pub endpoint: Option<String>,
    /// Overrides the service account's `token_uri`.
    pub token_uri: Option<String>,
    /// Extra trusted root CA (PEM): for test servers only.
    pub ca_file: Option<PathBuf>,
}

/// `[push.unified_push]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnifiedPushSettings {
    /// Per-request timeout.
    pub timeout_secs: u64,
    /// Not a file key: set (from [`RelayConfig::loopback_test_mode`]) by
    /// whoever starts a relay on loopback, so its sender may dial
    /// `localhost` test endpoints.
    #[serde(skip)]
    pub loopback: bool,
}

impl Default for UnifiedPushSettings {
    fn default() -> Self {
        Self {
            timeout_secs: 10,
            loopback: false,
        }
    }
}

/// Reads and checks a configuration file.
pub fn load_config(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut cfg = parse_config(&text).map_err(|message| ConfigError::Parse {
        path: path.to_owned(),
        message,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    cfg.resolve_paths(base);
    Ok(cfg)
}

/// Parses configuration text (paths as written).
pub fn parse_config(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

impl FileConfig {
    fn resolve_paths(&mut self, base: &Path) {
        let r = &mut self.relay;
        for p in [
            &mut r.db,
            &mut self.storage.sqlite,
            &mut self.storage.postgres_file,
            &mut r.tls_cert,
            &mut r.tls_key,
            &mut self.sealed_sender.key_dir,
        ]
        .into_iter()
        .flatten()
        {
            resolve(base, p);
        }
        if let Some(a) = &mut self.push.apns {
            resolve(base, &mut a.key_file);
            if let Some(ca) = &mut a.ca_file {
                resolve(base, ca);
            }
        }
        if let Some(f) = &mut self.push.fcm {
            resolve(base, &mut f.service_account_file);
            if let Some(ca) = &mut f.ca_file {
                resolve(base, ca);
            }
        }
    }

    /// The storage: the `--db` flag's SQLite file when given, else
    /// `[storage]`, else `[relay] db`, else `alcove-relay.db`. Naming the
    /// database in both `[storage]` and `[relay] db` is refused rather
    /// than guessed at.
    ///
    /// PostgreSQL comes from `[storage] postgres`, `postgres_file` or the
    /// [`POSTGRES_URL_ENV`] variable; at most one storage may be named.
    pub fn storage_config(&self, db_flag: Option<PathBuf>) -> Result<StorageConfig, ConfigError> {
        self.storage_config_from(db_flag, std::env::var(POSTGRES_URL_ENV).ok())
    }

    /// [`Self::storage_config`] with the environment's URL given.
    pub fn storage_config_from(
        &self,
        db_flag: Option<PathBuf>,
        env_url: Option<String>,
    ) -> Result<StorageConfig, ConfigError> {
        if let Some(path) = db_flag {
            return Ok(StorageConfig::sqlite(path));
        }
        let st = &self.storage;
        let from_file = match &st.postgres_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(text.trim().to_owned())
            }
            None => None,
        };
        let env_url = env_url.filter(|u| !u.is_empty());
        let named = [
            st.sqlite.is_some() || self.relay.db.is_some(),
            st.postgres.is_some(),
            from_file.is_some(),
            env_url.is_some(),
        ];
        if named.iter().filter(|n| **n).count() > 1
            || (st.sqlite.is_some() && self.relay.db.is_some())
        {
            return Err(ConfigError::Invalid(format!(
                "the database is named twice: name one of [storage] sqlite, [relay] db, \
                 [storage] postgres, [storage] postgres_file, {POSTGRES_URL_ENV}"
            )));
        }
        if let Some(url) = st.postgres.clone().or(from_file).or(env_url) {
            if url.is_empty() {
                return Err(ConfigError::Invalid("the PostgreSQL URL is empty".into()));
            }
            let max_connections = st
                .max_connections
                .unwrap_or(crate::storage::DEFAULT_POSTGRES_CONNECTIONS);
            if max_connections == 0 {
                return Err(ConfigError::Invalid(
                    "[storage] max_connections must be at least 1".into(),
                ));
            }
            return Ok(StorageConfig::Postgres {
                url: crate::storage::PostgresUrl::new(url),
                max_connections,
            });
        }
        if st.max_connections.is_some() {
            return Err(ConfigError::Invalid(
                "[storage] max_connections is for PostgreSQL only".into(),
            ));
        }
        match (&st.sqlite, &self.relay.db) {
            (Some(path), _) | (None, Some(path)) => Ok(StorageConfig::sqlite(path.clone())),
            (None, None) => Ok(StorageConfig::sqlite("alcove-relay.db")),
        }
    }

    /// The relay's settings: `bind`, `db` and TLS from the command line
    /// when given there, else from the file, else the defaults.
    pub fn relay_config(
        &self,
        bind: Option<SocketAddr>,
        db: Option<PathBuf>,
        tls: Option<TlsConfig>,
    ) -> Result<RelayConfig, ConfigError> {
        let r = &self.relay;
        let bind = bind
            .or(r.bind)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8787)));
        let mut c = RelayConfig::new(bind, self.storage_config(db)?);
        c.tls = match (tls, &r.tls_cert, &r.tls_key) {
            (Some(t), _, _) => Some(t),
            (None, Some(cert), Some(key)) => Some(TlsConfig {
                cert_path: cert.clone(),
                key_path: key.clone(),
            }),
            (None, None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "[relay] tls_cert and tls_key go together".into(),
                ))
            }
        };
        if let Some(d) = r.message_ttl_days {
            c.message_ttl = Duration::from_secs(d * 24 * 3600);
        }
        if let Some(q) = r.max_queue {
            c.max_queue = q;
        }
        if let Some(b) = r.max_queue_bytes {
            c.max_queue_bytes = b;
        }
        if let Some(d) = r.max_devices {
            if !(1..=127).contains(&d) {
                return Err(ConfigError::Invalid(
                    "[relay] max_devices must be 1..=127".into(),
                ));
            }
            c.max_devices = d;
        }
        if let Some(b) = r.max_body_bytes {
            c.max_body = b;
        }
        if let Some(s) = r.reader_lease_secs {
            c.reader_lease = Duration::from_secs(s);
        }
        if let Some(ms) = r.push_coalesce_ms {
            c.push_coalesce = Duration::from_millis(ms);
        }
        if let Some(ms) = self.storage.wal_scrub_ms {
            if c.storage.sqlite_path().is_none() {
                return Err(ConfigError::Invalid(
                    "[storage] wal_scrub_ms is for SQLite only".into(),
                ));
            }
            // The longest delivered mail may stay on disk: kept short.
            if ms > 60_000 {
                return Err(ConfigError::Invalid(
                    "[storage] wal_scrub_ms must be at most 60000".into(),
                ));
            }
            c.wal_scrub_interval = Duration::from_millis(ms);
        }
        if let Some(ms) = self.storage.ack_delete_ms {
            if c.storage.sqlite_path().is_none() {
                // Several relay processes read a PostgreSQL database's
                // mailboxes: acks deferred in one's memory would be
                // invisible to the others.
                return Err(ConfigError::Invalid(
                    "[storage] ack_delete_ms is for SQLite only".into(),
                ));
            }
            // Acknowledged ciphertext stays in the database this long.
            if ms > crate::config::MAX_ACK_DELETE_INTERVAL.as_millis() as u64 {
                return Err(ConfigError::Invalid(format!(
                    "[storage] ack_delete_ms must be at most {}",
                    crate::config::MAX_ACK_DELETE_INTERVAL.as_millis()
                )));
            }
            c.ack_delete_interval = Duration::from_millis(ms);
        }
        c.limits = self.limits.limits()?;
        c.rate_limits = self.rate_limits.rate_limits()?;
        c.invites = self.invites.invites()?;
        if let Some(b) = r.loopback_push_endpoints {
            c.loopback_push_endpoints = b;
        }
        let s = &self.sealed_sender;
        c.sealed_sender = s.enabled.then(|| SealedSenderConfig {
            key_dir: s.key_dir.clone(),
            cert_ttl: Duration::from_secs(s.cert_ttl_hours * 3600),
        });
        Ok(c)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The push sender for a configuration: UnifiedPush always, APNs and FCM
/// when configured. Key files are read (and checked) here, at start-up.
pub fn push_sender_from_config(cfg: &PushConfig) -> Result<Arc<dyn PushSender>, ConfigError> {
    push_gateway_from_config(cfg, system_clock()).map(|g| Arc::new(g) as Arc<dyn PushSender>)
}

/// [`push_sender_from_config`] with an injected clock (tests).
pub fn push_gateway_from_config(
    cfg: &PushConfig,
    clock: Clock,
) -> Result<PushGateway, ConfigError> {
    let ttl = Duration::from_secs(cfg.ttl_secs);
    if cfg.retry.max_attempts == 0 {
        return Err(ConfigError::Invalid(
            "[push.retry] max_attempts must be at least 1".into(),
        ));
    }
    let unified_push = UnifiedPushSender::with_options(UnifiedPushOptions {
        ttl,
        timeout: Duration::from_secs(cfg.unified_push.timeout_secs.max(1)),
        retry: cfg.retry.clone(),
        budget: cfg.budget.clone(),
        loopback: cfg.unified_push.loopback,
        resolver: None,
    })?;
    let apns = match &cfg.apns {
        None => None,
        Some(a) => {
            if !(20..=55).contains(&a.token_refresh_minutes) {
                return Err(ConfigError::Invalid(
                    "[push.apns] token_refresh_minutes must be 20..=55 (Apple's window)".into(),
                ));
            }
            let endpoint = match a.endpoint.as_str() {
                "production" => APNS_PRODUCTION.to_owned(),
                "sandbox" => APNS_SANDBOX.to_owned(),
                url => checked_url("[push.apns] endpoint", url)?,
            };
            Some(ApnsSender::new(ApnsOptions {
                key_pem: read(&a.key_file)?,
                key_id: a.key_id.clone(),
                team_id: a.team_id.clone(),
                topic: a.topic.clone(),
                endpoint,
                ca_pem: a.ca_file.as_deref().map(read).transpose()?,
                ttl,
                jwt_refresh: Duration::from_secs(a.token_refresh_minutes * 60),
                retry: cfg.retry.clone(),
                clock: clock.clone(),
            })?)
        }
    };
    let fcm = match &cfg.fcm {
        None => None,
        Some(f) => {
            let raw = read(&f.service_account_file)?;
            let account: ServiceAccount = serde_json::from_slice(&raw).map_err(|e| {
                ConfigError::Invalid(format!(
                    "{}: not a service account file: {e}",
                    f.service_account_file.display()
                ))
            })?;
            let endpoint = match &f.endpoint {
                Some(u) => checked_url("[push.fcm] endpoint", u)?,
                None => FCM_PRODUCTION.to_owned(),
            };
            let token_uri = f
                .token_uri
                .as_deref()
                .map(|u| checked_url("[push.fcm] token_uri", u))
                .transpose()?;
            Some(FcmSender::new(FcmOptions {
                account,
                endpoint,
                token_uri,
                ca_pem: f.ca_file.as_deref().map(read).transpose()?,
                ttl,
                retry: cfg.retry.clone(),
                clock,
            })?)
        }
    };
    Ok(PushGateway::new(unified_push, apns, fcm))
}

/// An https URL, or http to loopback (test servers).
fn checked_url(key: &str, url: &str) -> Result<String, ConfigError> {
    let u = reqwest::Url::parse(url)
        .map_err(|_| ConfigError::Invalid(format!("{key} is not a URL")))?;
    let loopback = matches!(
        u.host_str(),
        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
    );
    if u.scheme() == "https" || (u.scheme() == "http" && loopback) {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError::Invalid(format!("{key} must be https")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_budget_sections_parse_and_refuse_nonsense() {
        let cfg = parse_config(
            "[relay]\nloopback_push_endpoints = false\n\n[limits]\nmax_connections = 64\n\
             max_connections_per_ip = 0\nheader_timeout_ms = 500\nbody_window_ms = 700\n\
             body_min_bytes = 10\nidle_timeout_ms = 900\nh2_max_concurrent_streams = 4\n\
             h2_max_pending_accept_reset_streams = 5\nh2_max_local_error_reset_streams = 6\n\n\
             [push.budget]\nper_target_burst = 3\n",
        )
        .unwrap();
        let c = cfg.relay_config(None, None, None).unwrap();
        assert_eq!(
            c.limits,
            Limits {
                max_connections: Some(64),
                max_connections_per_ip: 0,
                header_timeout: Duration::from_millis(500),
                body_window: Duration::from_millis(700),
                body_min_bytes: 10,
                idle_timeout: Duration::from_millis(900),
                h2_max_concurrent_streams: 4,
                h2_max_pending_accept_reset_streams: 5,
                h2_max_local_error_reset_streams: 6,
            }
        );
        assert!(!c.loopback_test_mode());
        assert_eq!(cfg.push.budget.per_target_burst, 3);
        assert_eq!(
            cfg.push.budget.global_retry_burst,
            BudgetPolicy::default().global_retry_burst
        );
        let defaults = parse_config("").unwrap();
        let c = defaults.relay_config(None, None, None).unwrap();
        assert_eq!(c.limits, Limits::default());
        assert!(c.loopback_test_mode());

        for bad in [
            "[limits]\nheader_timeout_ms = 0\n",
            "[limits]\nidle_timeout_ms = 0\n",
            "[limits]\nbody_window_ms = 0\n",
            "[limits]\nmax_connections = 0\n",
            "[limits]\nh2_max_concurrent_streams = 0\n",
        ] {
            let cfg = parse_config(bad).unwrap();
            assert!(cfg.relay_config(None, None, None).is_err(), "{bad}");
        }
        assert!(parse_config("[limits]\nmax_conections = 5\n").is_err());
        assert!(parse_config("[rate_limits]\nsends = { count = 1, window_secs = 1 }\n").is_err());
        assert!(parse_config(
            "[rate_limits]\nsends_per_account = { count = 1, window_secs = 0 }\n"
        )
        .unwrap()
        .relay_config(None, None, None)
        .is_err());
        let c = parse_config(
            "[rate_limits]\nbundle_fetches_per_target = { count = 3, window_secs = 60 }\n",
        )
        .unwrap()
        .relay_config(None, None, None)
        .unwrap();
        assert_eq!(
            c.rate_limits.bundle_fetches_per_target,
            crate::rate_limits::Rate::per_minute(3)
        );
        assert!(parse_config("[limits]\nmax_connections = -1\n").is_err());
        let c = parse_config(
            "[invites]\nmax_open_per_account = 3\ndefault_expiry_hours = 2\n\
             max_expiry_hours = 5\n[rate_limits]\n\
             invite_mints_per_account = { count = 4, window_secs = 60 }\n",
        )
        .unwrap()
        .relay_config(None, None, None)
        .unwrap();
        assert_eq!(
            c.invites,
            crate::config::InviteConfig {
                max_open_per_account: 3,
                default_ttl: Duration::from_secs(2 * 3600),
                max_ttl: Duration::from_secs(5 * 3600),
            }
        );
        assert_eq!(
            c.rate_limits.invite_mints_per_account,
            crate::rate_limits::Rate::per_minute(4)
        );
        for bad in [
            "[invites]\nmax_open_per_account = 0\n",
            "[invites]\ndefault_expiry_hours = 0\n",
            "[invites]\nmax_expiry_hours = 0\n",
            "[invites]\ndefault_expiry_hours = 800\n",
            "[invites]\ndefault_expiry_hours = 10\nmax_expiry_hours = 9\n",
        ] {
            let cfg = parse_config(bad).unwrap();
            assert!(cfg.relay_config(None, None, None).is_err(), "{bad}");
        }
        assert!(parse_config("[invites]\nquota = 5\n").is_err());
        assert!(parse_config("[invites]\nmax_open_per_account = -1\n").is_err());
        assert!(parse_config("[push.budget]\nper_target = 1\n").is_err());
        // The loopback exception is never a file key.
        assert!(parse_config("[push.unified_push]\nloopback = true\n").is_err());
    }

    #[test]
    fn storage_section_names_the_database_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        let sqlite = |c: &RelayConfig| c.storage.sqlite_path().map(Path::to_path_buf);

        // [storage] sqlite, relative to the file's directory.
        std::fs::write(&file, "[storage]\nsqlite = \"data/relay.db\"\n").unwrap();
        let cfg = load_config(&file).unwrap();
        let c = cfg.relay_config(None, None, None).unwrap();
        assert_eq!(sqlite(&c), Some(dir.path().join("data/relay.db")));
        // The --db flag wins.
        let c = cfg
            .relay_config(None, Some(PathBuf::from("/elsewhere.db")), None)
            .unwrap();
        assert_eq!(sqlite(&c), Some(PathBuf::from("/elsewhere.db")));

        // Today's [relay] db key keeps working.
        std::fs::write(&file, "[relay]\ndb = \"old.db\"\n").unwrap();
        let c = load_config(&file)
            .unwrap()
            .relay_config(None, None, None)
            .unwrap();
        assert_eq!(sqlite(&c), Some(dir.path().join("old.db")));

        // Both: refused, not guessed.
        std::fs::write(
            &file,
            "[relay]\ndb = \"a.db\"\n[storage]\nsqlite = \"b.db\"\n",
        )
        .unwrap();
        let err = load_config(&file)
            .unwrap()
            .relay_config(None, None, None)
            .unwrap_err();
        assert!(err.to_string().contains("named twice"), "{err}");

        // Neither: the default file.
        let c = parse_config("")
            .unwrap()
            .relay_config(None, None, None)
            .unwrap();
        assert_eq!(sqlite(&c), Some(PathBuf::from("alcove-relay.db")));

        // A typo is refused.
        assert!(parse_config("[storage]\npostgre = \"postgres://x\"\n").is_err());
        assert!(parse_config("[storage]\nsqlit = \"x.db\"\n").is_err());
        assert!(parse_config("[storage]\nsqlite = 5\n").is_err());
    }

    #[test]
    fn ack_delete_ms_is_bounded_and_for_sqlite_only() {
        let cfg = |toml: &str| parse_config(toml).unwrap().relay_config(None, None, None);
        let c = cfg("").unwrap();
        assert_eq!(
            c.ack_delete_interval,
            crate::config::DEFAULT_ACK_DELETE_INTERVAL
        );
        let c = cfg("[storage]
ack_delete_ms = 0
")
        .unwrap();
        assert_eq!(c.ack_delete_interval, Duration::ZERO);
        let c = cfg("[storage]
ack_delete_ms = 10000
")
        .unwrap();
        assert_eq!(c.ack_delete_interval, Duration::from_secs(10));
        for absurd in ["10001", "9223372036854775807"] {
            let err = cfg(&format!(
                "[storage]
ack_delete_ms = {absurd}
"
            ))
            .unwrap_err();
            assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
            assert!(err.to_string().contains("ack_delete_ms"), "{err}");
        }
        for wrong in ["-1", "\"soon\"", "1.5"] {
            assert!(parse_config(&format!(
                "[storage]
ack_delete_ms = {wrong}
"
            ))
            .is_err());
        }
        let err = cfg("[storage]
postgres = \"postgres://x@localhost/a\"
ack_delete_ms = 5
")
        .unwrap_err();
        assert!(err.to_string().contains("SQLite only"), "{err}");
    }

    #[test]
    fn postgres_is_named_once_by_the_file_a_secret_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "postgres://relay:s3cret-pw@db.internal:5432/alcove";
        let pg = |c: &StorageConfig| match c {
            StorageConfig::Postgres {
                url,
                max_connections,
            } => Some((url.expose().to_owned(), *max_connections)),
            _ => None,
        };
        // In the file, with a pool size.
        let cfg = parse_config(&format!(
            "[storage]\npostgres = \"{secret}\"\nmax_connections = 4\n"
        ))
        .unwrap();
        let c = cfg.storage_config_from(None, None).unwrap();
        assert_eq!(pg(&c), Some((secret.to_owned(), 4)));
        // Shown and debugged without the password, in every form.
        for shown in [
            c.to_string(),
            format!("{c:?}"),
            format!("{cfg:?}"),
            format!("{:?}", cfg.relay_config(None, None, None).unwrap()),
        ] {
            assert!(!shown.contains("s3cret-pw"), "{shown}");
        }
        assert!(c.to_string().contains("db.internal"), "{c}");
        // From a file (relative to the configuration), trimmed.
        std::fs::write(dir.path().join("pg-url"), format!("{secret}\n")).unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(&file, "[storage]\npostgres_file = \"pg-url\"\n").unwrap();
        let c = load_config(&file)
            .unwrap()
            .storage_config_from(None, None)
            .unwrap();
        assert_eq!(pg(&c), Some((secret.to_owned(), 16)));
        // A missing secret file is an error naming the file.
        std::fs::write(&file, "[storage]\npostgres_file = \"nowhere\"\n").unwrap();
        let err = load_config(&file)
            .unwrap()
            .storage_config_from(None, None)
            .unwrap_err();
        assert!(err.to_string().contains("nowhere"), "{err}");
        // From the environment.
        let c = parse_config("")
            .unwrap()
            .storage_config_from(None, Some(secret.into()))
            .unwrap();
        assert_eq!(pg(&c), Some((secret.to_owned(), 16)));
        // The --db flag still wins (an SQLite file for one run).
        let c = parse_config("")
            .unwrap()
            .storage_config_from(Some("x.db".into()), Some(secret.into()))
            .unwrap();
        assert_eq!(c.sqlite_path(), Some(Path::new("x.db")));
        // Two storages named: refused.
        for (text, env) in [
            (
                format!("[storage]\nsqlite = \"a.db\"\npostgres = \"{secret}\"\n"),
                None,
            ),
            (
                format!("[relay]\ndb = \"a.db\"\n[storage]\npostgres = \"{secret}\"\n"),
                None,
            ),
            (
                "[storage]\nsqlite = \"a.db\"\n".to_owned(),
                Some(secret.to_owned()),
            ),
            (
                format!("[storage]\npostgres = \"{secret}\"\n"),
                Some(secret.to_owned()),
            ),
        ] {
            let err = parse_config(&text)
                .unwrap()
                .storage_config_from(None, env)
                .unwrap_err();
            assert!(err.to_string().contains("named twice"), "{err}");
            assert!(!err.to_string().contains("s3cret-pw"), "{err}");
        }
        // Pool size zero, or a pool size for SQLite: refused.
        assert!(parse_config(&format!(
            "[storage]\npostgres = \"{secret}\"\nmax_connections = 0\n"
        ))
        .unwrap()
        .storage_config_from(None, None)
        .is_err());
        assert!(parse_config("[storage]\nmax_connections = 3\n")
            .unwrap()
            .storage_config_from(None, None)
            .is_err());
    }
}
