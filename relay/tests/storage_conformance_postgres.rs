//! The storage conformance suite on the PostgreSQL backend, each case on
//! a database of its own on the cluster `ALCOVE_TEST_POSTGRES` names
//! (`scripts/test.sh` starts one; skipped with a note without it, unless
//! `CI` or `ALCOVE_REQUIRE_POSTGRES=1` requires it).

use std::sync::Arc;

use alcove_relay::{PostgresStorage, PostgresUrl, Storage};

async fn fresh(test: &str) -> Option<(Arc<dyn Storage>, ())> {
    let db = alcove_testkit::postgres::database(test).await?;
    let storage = PostgresStorage::connect(&PostgresUrl::new(db.url), 8)
        .await
        .unwrap();
    Some((Arc::new(storage) as Arc<dyn Storage>, ()))
}

alcove_relay::storage_conformance!(optional: fresh);
