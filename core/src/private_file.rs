//! Files the core writes outside its database (exports, backups): created
//! new, readable by the owner only, synced before they count as written.

use std::path::Path;

use crate::error::{Error, Result};

/// Writes `data` to the new file `path` (0600 on Unix) and syncs it.
/// `what` names the file in the error ("export directory", "backup file").
pub(crate) fn write_new(path: &Path, data: &[u8], what: &'static str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let err = |e| io_error(e, what);
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)
}

/// An I/O failure as the core reports it: a full disk is `StorageFull`;
/// anything else names the kind of failure, never the path.
pub(crate) fn io_error(e: std::io::Error, what: &'static str) -> Error {
    if e.raw_os_error() == Some(28) {
        Error::StorageFull
    } else {
        Error::InvalidArgument(format!("{what}: {}", e.kind()))
    }
}
