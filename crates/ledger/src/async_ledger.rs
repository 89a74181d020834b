//! [`Ledger`]: the handle async code (the MCP server, watchers) uses.
//!
//! SQLite calls are synchronous and a write can wait up to the busy timeout for the lock, so
//! calling [`LedgerStore`] directly from a tokio task would stall a runtime worker thread (and
//! with it every other MCP session scheduled there). Each call therefore runs on tokio's blocking
//! pool via `spawn_blocking`. One connection behind a mutex is enough: SQLite has one writer at a
//! time anyway, ledger writes are small single transactions, and WAL lets CLI processes
//! (`proposals list`, `replay`, `approve`) read and write beside a running server through their
//! own connections.
//!
//! [`Ledger::new_inline`] is the exception: a stdio MCP server serves one client, one request at
//! a time, on a single-threaded runtime. There is nothing else to stall, and handing each small
//! write to another thread and waking back costs more than the write, so it calls the store on
//! the current thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::checkpoint::{AUTOCHECKPOINT_BACKSTOP, Checkpointer};
use crate::error::{LedgerError, Result};
use crate::records::{EvidenceBundle, EvidenceRecord, ProposalInsert, ProposalRecord, QueryAuditRecord, Replay};
use crate::store::LedgerStore;
use synapsor_core::ChangeSet;

/// A cloneable, async handle over one [`LedgerStore`].
#[derive(Debug, Clone)]
pub struct Ledger {
    inner: Arc<Mutex<LedgerStore>>,
    path: PathBuf,
    /// Run calls on the caller's thread instead of the blocking pool.
    inline: bool,
    /// Background WAL checkpoints (see `checkpoint`); `None` when they could not be set up.
    checkpoints: Option<Arc<Checkpointer>>,
}

impl Ledger {
    /// A handle over `store`, with WAL checkpoints moved to a background thread.
    pub fn new(store: LedgerStore) -> Self {
        let path = store.path().to_path_buf();
        let checkpoints = Checkpointer::start(&path)
            .filter(|_| {
                store
                    .set_wal_autocheckpoint(AUTOCHECKPOINT_BACKSTOP)
                    .map_err(|e| tracing::warn!(error = %e, "ledger: keeping SQLite's own checkpoints"))
                    .is_ok()
            })
            .map(Arc::new);
        Ledger {
            inner: Arc::new(Mutex::new(store)),
            path,
            inline: false,
            checkpoints,
        }
    }

    /// A handle that runs each call on the calling thread: only for a single-client server on a
    /// single-threaded runtime (the stdio MCP server), where no other work waits on that thread.
    pub fn new_inline(store: LedgerStore) -> Self {
        Ledger {
            inline: true,
            ..Ledger::new(store)
        }
    }

    /// Opens (creating if needed) the store at `path`. Synchronous: call it at startup, before
    /// serving.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::new(LedgerStore::open(path)?))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the store on the blocking pool. For operations without a dedicated
    /// method (approve, transition, receipts, events ...).
    pub async fn with_store<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut LedgerStore) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let call = move || {
            // A poisoned mutex means an earlier call panicked mid-operation: refuse rather than
            // guess at the connection's state.
            let mut store = inner
                .lock()
                .map_err(|_| LedgerError::unavailable("an earlier ledger operation panicked; restart the runner"))?;
            f(&mut store)
        };
        let result = if self.inline {
            call()
        } else {
            tokio::task::spawn_blocking(call).await.map_err(|e| {
                LedgerError::unavailable(if e.is_panic() {
                    "a ledger operation panicked"
                } else {
                    "a ledger operation was cancelled"
                })
            })?
        };
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.poke();
        }
        result
    }

    pub async fn record_read(&self, evidence: EvidenceRecord, audit: QueryAuditRecord) -> Result<()> {
        self.with_store(move |s| s.record_read(&evidence, &audit)).await
    }

    pub async fn record_query_audit(&self, audit: QueryAuditRecord) -> Result<()> {
        self.with_store(move |s| s.record_query_audit(&audit)).await
    }

    pub async fn record_proposal(
        &self,
        evidence: EvidenceRecord,
        audit: QueryAuditRecord,
        change_set: ChangeSet,
    ) -> Result<ProposalInsert> {
        self.with_store(move |s| s.record_proposal(&evidence, &audit, &change_set))
            .await
    }

    pub async fn get_proposal(&self, id_or_latest: impl Into<String>) -> Result<ProposalRecord> {
        let id = id_or_latest.into();
        self.with_store(move |s| s.get_proposal(&id)).await
    }

    pub async fn evidence(&self, evidence_bundle_id: impl Into<String>) -> Result<EvidenceBundle> {
        let id = evidence_bundle_id.into();
        self.with_store(move |s| s.evidence(&id)).await
    }

    pub async fn replay(&self, id_or_latest: impl Into<String>) -> Result<Replay> {
        let id = id_or_latest.into();
        self.with_store(move |s| s.replay(&id)).await
    }
}
