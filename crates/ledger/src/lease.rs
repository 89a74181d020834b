//! The store lease: which server process is using a ledger store right now.
//!
//! A server takes the lease for as long as it serves; destructive maintenance (`store reset`,
//! `prune`, `vacuum` without `--force`) checks that nobody holds it. The lease is an exclusive
//! advisory lock (`File::try_lock`, i.e. `flock` on Unix, `LockFileEx` on Windows) on
//! `<db>.lease`. The operating system drops the lock when the process exits in any way, including
//! `kill -9`, so a lease can never be left stale and there is no pid liveness guessing (the
//! original used pid files, pitfall 13). The file's content, [`LeaseInfo`], is only there to tell
//! a person who holds the lock.
//!
//! The lease file is never deleted on release (only emptied): deleting a locked path lets a second
//! process lock a fresh file at the same path while a third still holds the unlinked one, so two
//! "exclusive" holders would exist. Only [`reset`], which removes the whole store, deletes it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{LedgerError, Result};

/// Who holds a lease; written as JSON into the lease file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub pid: u32,
    /// Runner mode, for example `local` or `kubernetes`.
    pub mode: String,
    /// MCP transport, for example `stdio` or `http`.
    pub transport: String,
    /// RFC 3339 UTC.
    pub started_at: String,
}

impl LeaseInfo {
    /// Lease info for the current process.
    pub fn for_current_process(
        mode: impl Into<String>,
        transport: impl Into<String>,
        started_at: impl Into<String>,
    ) -> Self {
        LeaseInfo {
            pid: std::process::id(),
            mode: mode.into(),
            transport: transport.into(),
            started_at: started_at.into(),
        }
    }
}

/// `<db_path>.lease`.
pub fn lease_path(db_path: &Path) -> PathBuf {
    sibling(db_path, ".lease")
}

fn sibling(db_path: &Path, suffix: &str) -> PathBuf {
    let mut s = db_path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A held lease; released (the lock dropped, the file emptied) on drop.
#[derive(Debug)]
pub struct StoreLease {
    file: File,
    path: PathBuf,
    info: LeaseInfo,
}

impl StoreLease {
    /// Takes the lease for `db_path`, or fails with `STORE_LEASED` naming the current holder.
    pub fn acquire(db_path: &Path, holder: &LeaseInfo) -> Result<StoreLease> {
        let path = lease_path(db_path);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::store::create_private_dir(parent)?;
        }
        let mut file = open_lease_file(&path, true)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LedgerError::StoreLeased {
                    holder: read_holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(LedgerError::io("could not lock", &path, &e)),
        }
        let json = serde_json::to_vec(holder)
            .map_err(|_| LedgerError::InvalidInput("lease info could not be encoded".into()))?;
        let write = (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&json)?;
            file.flush()
        })();
        write.map_err(|e| LedgerError::io("could not write", &path, &e))?;
        Ok(StoreLease {
            file,
            path,
            info: holder.clone(),
        })
    }

    /// Succeeds when no process holds the lease of `db_path` (for destructive operations).
    /// The check takes the lock and drops it at once; it does not keep anything.
    pub fn check_free(db_path: &Path) -> Result<()> {
        let path = lease_path(db_path);
        let mut file = match open_lease_file(&path, false) {
            Ok(f) => f,
            // No lease file: nobody ever leased this store (or it was reset).
            Err(LedgerError::StoreNotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                Ok(())
            }
            Err(TryLockError::WouldBlock) => Err(LedgerError::StoreLeased {
                holder: read_holder(&mut file),
            }),
            Err(TryLockError::Error(e)) => Err(LedgerError::io("could not lock", &path, &e)),
        }
    }

    pub fn info(&self) -> &LeaseInfo {
        &self.info
    }

    /// The lease file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the lease now (same as dropping it).
    pub fn release(self) {}
}

impl Drop for StoreLease {
    fn drop(&mut self) {
        // Empty the file while still holding the lock, so a reader never sees a stale holder.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Removes a store: the database, its `-wal` and `-shm` files and the lease file. Refuses with
/// `STORE_LEASED` while a server holds the lease; missing files are fine. The lease is held
/// while the files are removed so a server cannot start on a half-removed store.
pub fn reset(db_path: &Path) -> Result<()> {
    let lease_file = lease_path(db_path);
    let guard = if lease_file.exists() {
        let mut file = open_lease_file(&lease_file, false)?;
        match file.try_lock() {
            Ok(()) => Some(file),
            Err(TryLockError::WouldBlock) => {
                return Err(LedgerError::StoreLeased {
                    holder: read_holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(LedgerError::io("could not lock", &lease_file, &e)),
        }
    } else {
        None
    };
    for path in [
        db_path.to_path_buf(),
        sibling(db_path, "-wal"),
        sibling(db_path, "-shm"),
        lease_file,
    ] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LedgerError::io("could not remove", &path, &e)),
        }
    }
    drop(guard);
    Ok(())
}

fn open_lease_file(path: &Path, create: bool) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(create);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LedgerError::StoreNotFound {
                path: path.to_path_buf(),
            }
        } else {
            LedgerError::io("could not open", path, &e)
        }
    })
}

/// The holder's info, when the file holds a complete record (it may be empty for an instant
/// between the holder's lock and its write, and on Windows a locked file cannot be read).
fn read_holder(file: &mut File) -> Option<LeaseInfo> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64 * 1024).read_to_end(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}
