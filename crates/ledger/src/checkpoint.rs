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
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// Least time between two background checkpoints.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The writer connection's own `wal_autocheckpoint` while a background thread checkpoints
/// (pages of 4 KiB: 40 MiB).
pub const AUTOCHECKPOINT_BACKSTOP: u32 = 10_000;

/// Wakes the checkpoint thread. Dropping it stops the thread and waits for it, so that its
/// connection is closed when the ledger handle that owned it is gone.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
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
        let thread = std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || run(&conn, &woken))
            .map_err(|e| tracing::warn!(error = %e, "ledger: no background checkpoints, the writer checkpoints itself"))
            .ok()?;
        Some(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Called after ledger work: asks for a checkpoint soon. Never blocks.
    pub fn poke(&self) {
        // Full: a checkpoint is already due. Disconnected: the thread is gone, and the writer's
        // backstop threshold keeps the WAL bounded.
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread at once, even in its pause between checkpoints.
        drop(self.wake.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("ledger: the checkpoint thread panicked");
        }
    }
}

fn run(conn: &Connection, woken: &Receiver<()>) {
    let mut due = woken.recv().is_ok();
    while due {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "ledger: background checkpoint failed; the next one retries");
        }
        due = match pause(woken) {
            Pause::Poked => true,
            Pause::Quiet => woken.recv().is_ok(),
            Pause::Closed => false,
        };
    }
}

enum Pause {
    /// Pokes came during the pause: one checkpoint is due now.
    Poked,
    Quiet,
    /// The handle was dropped.
    Closed,
}

/// Waits [`CHECKPOINT_EVERY`], collapsing the pokes that arrive meanwhile into one.
fn pause(woken: &Receiver<()>) -> Pause {
    let until = Instant::now() + CHECKPOINT_EVERY;
    let mut poked = false;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match woken.recv_timeout(left) {
            Ok(()) => poked = true,
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => return Pause::Closed,
        }
    }
    if poked { Pause::Poked } else { Pause::Quiet }
}
