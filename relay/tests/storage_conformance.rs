//! The storage conformance suite (`alcove_relay::storage::conformance`) on
//! the embedded SQLite backend, each case on a real database file in a
//! fresh temporary directory. A new backend adds its own invocation.

use std::sync::Arc;

use alcove_relay::{SqliteStorage, Storage};

alcove_relay::storage_conformance!(async {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("relay.db")).unwrap();
    (Arc::new(storage) as Arc<dyn Storage>, dir)
});
