//! Deleting an account's files for good (remote wipe), crash-safe.
//!
//! The order makes every moment of the wipe one of two states: the whole
//! account (it opens with its key) or nothing readable.
//!
//! 1. `<db>.wiping` is written and fsynced (with its directory). From here
//!    on, [`crate::Account::open`] never opens the database: it finishes
//!    the wipe and answers `NoAccount`. Before this step nothing changed.
//! 2. The key-check sidecar and the first 16 bytes of the database (the
//!    SQLCipher salt in the standard layout; the sidecar holds it in the
//!    shared-container one) are overwritten with zeros and fsynced: even
//!    with its key the file no longer passes SQLCipher's page checks.
//! 3. The WAL, shared-memory and journal files, then the database, then the
//!    sidecar are overwritten with zeros, fsynced and unlinked.
//! 4. The marker goes last, and the directory is fsynced.
//!
//! Overwriting is best effort against someone who later reads the raw
//! flash: a journaling filesystem or the flash translation layer may keep
//! older copies of a block. What makes the data unreadable there is that
//! it was only ever written encrypted, and the shell deletes the key from
//! the Keystore / Keychain on the `DeviceRevoked` event.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The files beside a database that hold its data or key check, in the
/// order they are destroyed (the database's salt and sidecar are zeroed
/// first, in step 2).
const DATA_SUFFIXES: [&str; 5] = ["-wal", "-shm", "-journal", "", ".keycheck"];
const MARKER_SUFFIX: &str = ".wiping";

/// The steps of a wipe, named for the fault-injection hook of tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WipeStep {
    /// Before anything was written.
    Start,
    /// The marker is durable; nothing destroyed yet.
    Marked,
    /// The salt and key check are zeroed.
    Unkeyed,
    /// Some of the files are deleted (after the WAL and shm).
    Partial,
    /// Every data file is gone; the marker remains.
    Deleted,
}

impl WipeStep {
    /// Every step, in order.
    pub const ALL: [WipeStep; 5] = [
        WipeStep::Start,
        WipeStep::Marked,
        WipeStep::Unkeyed,
        WipeStep::Partial,
        WipeStep::Deleted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WipeStep::Start => "start",
            WipeStep::Marked => "marked",
            WipeStep::Unkeyed => "unkeyed",
            WipeStep::Partial => "partial",
            WipeStep::Deleted => "deleted",
        }
    }
}

/// Test builds only: `ALCOVE_WIPE_ABORT_AT=<step>` aborts the process at
/// that step, so tests can kill a wipe at every point. Release builds never
/// read the variable.
fn checkpoint(step: WipeStep) {
    #[cfg(debug_assertions)]
    if std::env::var("ALCOVE_WIPE_ABORT_AT").as_deref() == Ok(step.name()) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Whether a wipe of `db` began and has not finished.
pub fn in_progress(db: &Path) -> bool {
    with_suffix(db, MARKER_SUFFIX).exists()
}

/// Whether anything of the account at `db` is left on disk (its data
/// files or an unfinished wipe's marker).
pub fn any_files_left(db: &Path) -> bool {
    DATA_SUFFIXES
        .iter()
        .chain(std::iter::once(&MARKER_SUFFIX))
        .any(|s| with_suffix(db, s).exists())
}

/// Wipes the account at `db` (crash-safe; see the module). The database
/// must be closed. Finishing an interrupted wipe is the same call.
pub fn wipe(db: &Path) -> Result<()> {
    checkpoint(WipeStep::Start);
    let marker = with_suffix(db, MARKER_SUFFIX);
    if !marker.exists() {
        let mut f = fs::File::create(&marker).map_err(io)?;
        f.write_all(b"alcove wipe in progress\n").map_err(io)?;
        f.sync_all().map_err(io)?;
        sync_dir(db);
    }
    checkpoint(WipeStep::Marked);
    zero_prefix(db, 16)?;
    zero_prefix(&with_suffix(db, ".keycheck"), u64::MAX)?;
    checkpoint(WipeStep::Unkeyed);
    for (i, suffix) in DATA_SUFFIXES.iter().enumerate() {
        if i == 2 {
            checkpoint(WipeStep::Partial);
        }
        destroy(&with_suffix(db, suffix))?;
    }
    sync_dir(db);
    checkpoint(WipeStep::Deleted);
    match fs::remove_file(&marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    sync_dir(db);
    tracing::info!("account files wiped");
    Ok(())
}

/// Overwrites the first `len` bytes of `path` (all of it for `u64::MAX`)
/// with zeros and fsyncs; a missing file is fine.
fn zero_prefix(path: &Path, len: u64) -> Result<()> {
    let mut f = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let size = f.metadata().map_err(io)?.len();
    let mut left = size.min(len);
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    let zeros = [0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n]).map_err(io)?;
        left -= n as u64;
    }
    f.sync_all().map_err(io)
}

fn destroy(path: &Path) -> Result<()> {
    zero_prefix(path, u64::MAX)?;
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Makes the directory's entries durable (a created marker, unlinked
/// files). Not every platform can open a directory; the file syncs
/// already happened, so a failure here is only logged.
fn sync_dir(db: &Path) {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(error = %e, "directory fsync");
    }
}

fn io(e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(28) {
        return Error::StorageFull;
    }
    Error::Storage(format!("wipe: {}", e.kind()))
}
