//! PostgreSQL for the relay's tests: `scripts/test.sh` starts a throwaway
//! cluster (`scripts/postgres.sh`) and names it in `ALCOVE_TEST_POSTGRES`;
//! each test makes a database of its own on it, so tests run in parallel.
//!
//! Without the variable a PostgreSQL test is skipped with a note — unless
//! `CI` or `ALCOVE_REQUIRE_POSTGRES=1` is set, when it fails: CI never
//! passes by skipping them.

use std::sync::atomic::{AtomicU32, Ordering};

/// The cluster's URL (a superuser on a throwaway cluster).
pub const ENV: &str = "ALCOVE_TEST_POSTGRES";

/// A database made for one test.
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
    /// The cluster's URL (its `postgres` database).
    pub admin_url: String,
}

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
        || std::env::var("ALCOVE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// The cluster's URL; `None` (with a note) when none is configured and
/// none is required. Panics when one is required and missing.
pub fn cluster(test: &str) -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if required() => panic!(
            "{test}: PostgreSQL tests are required here (CI or ALCOVE_REQUIRE_POSTGRES=1) \
             but {ENV} is not set; run scripts/test.sh, or start one with \
             `scripts/postgres.sh start DIR` and export {ENV}"
        ),
        _ => {
            eprintln!("note: {test} skipped: {ENV} is not set (scripts/test.sh sets it)");
            None
        }
    }
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let mut u = url::Url::parse(url).expect("ALCOVE_TEST_POSTGRES is a postgres:// URL");
    u.set_path(&format!("/{name}"));
    u.to_string()
}

/// A new, empty database for `test` on the cluster; `None` as
/// [`cluster`] says.
pub async fn database(test: &str) -> Option<TestDatabase> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let admin_url = cluster(test)?;
    let name = format!(
        "t_{}_{}_{}_{}",
        test.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect::<String>()
            .to_lowercase(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot reach {ENV}: {e}"));
    let conn = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("{test}: CREATE DATABASE: {e}"));
    drop(client);
    let _ = conn.await;
    Some(TestDatabase {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
    })
}
