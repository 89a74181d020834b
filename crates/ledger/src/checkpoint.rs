//! WAL checkpoints on a thread of their own, for the long-lived [`crate::Ledger`] handle.
//!
//! SQLite copies the write-ahead log back into the database file (a checkpoint, with an fsync
//! under `synchronous=NORMAL`) on the connection whose commit takes the WAL past
//! `wal_autocheckpoint` pages. With the default of 1000 pages, about one tool call in 80 paid
//! a few milliseconds for it before its reply. A [`crate::Ledger`] instead runs PASSIVE
//! checkpoints (they never wait for, or block, readers and writers) on a background thread with
//! its own connection, at most once per [`CHECKPOINT_EVERY`] while writes come in, and raises the
//! writer's own threshold to [`AUTOCHECKPOINT_BACKSTOP`] pages, so that the WAL stays bounded
//! should the thread fall behind.
//!
//! Not for one-shot CLI connections ([`crate::LedgerStore`] alone keeps SQLite's default).

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Least time between two background checkpoints.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The writer connection's own `wal_autocheckpoint` while a background thread checkpoints
/// (pages of 4 KiB: 40 MiB).
pub const AUTOCHECKPOINT_BACKSTOP: u32 = 10_000;

/// Wakes the checkpoint thread. The thread ends when this is dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    wake: SyncSender<()>,
}

impl Checkpointer {
    /// Opens a second connection to the store at `path` and starts the thread. `None` (after a
    /// log line) when either fails: the writer then keeps checkpointing by itself.
    pub fn start(path: &Path) -> Option<Self> {
        let conn = match Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.busy_timeout(crate::BUSY_TIMEOUT).map(|()| c))
        {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "ledger: no background checkpoints, the writer checkpoints itself");
                return None;
            }
        };
        let (wake, woken) = sync_channel(1);
        std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || run(&conn, &woken))
            .map_err(|e| tracing::warn!(error = %e, "ledger: no background checkpoints, the writer checkpoints itself"))
            .ok()?;
        Some(Checkpointer { wake })
    }

    /// Called after each ledger call: asks for a checkpoint soon. Never blocks.
    pub fn poke(&self) {
        // Full: a checkpoint is already due. Disconnected: the thread is gone, and the writer's
        // backstop threshold keeps the WAL bounded.
        let _ = self.wake.try_send(());
    }
}

fn run(conn: &Connection, woken: &Receiver<()>) {
    while woken.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "ledger: background checkpoint failed; the next one retries");
        }
        // Pokes that arrive meanwhile collapse into the one slot of the channel.
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}
