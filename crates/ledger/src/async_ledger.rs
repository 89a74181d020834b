//! [`Ledger`]: the handle async code (the MCP server, watchers) uses.
//!
//! SQLite calls are synchronous and a write can wait up to the busy timeout for the lock, so
//! calling [`LedgerStore`] directly from a tokio task would stall a runtime worker thread (and
//! with it every other MCP session scheduled there). A [`Ledger`] therefore owns a dedicated
//! thread, `synapsor-ledger`, which owns the store's one connection: callers send it jobs over a
//! channel and await the answer on a oneshot. One connection is enough, since SQLite has one
//! writer at a time anyway, and WAL lets CLI processes (`proposals list`, `replay`, `approve`)
//! read and write beside a running server through their own connections. A thread of its own
//! rather than a `spawn_blocking` per call over a mutex: one owner that sees every queued job is
//! what lets concurrent writes share a commit (below), and callers wait on a channel instead of
//! parking pool threads on a lock.
//!
//! Group commit: when the thread wakes it takes every job already queued. Consecutive record
//! jobs ([`Ledger::record_read`], [`Ledger::record_query_audit`], [`Ledger::record_proposal`],
//! up to [`MAX_BATCH`]) share one `BEGIN IMMEDIATE` transaction, each in a savepoint of its own,
//! so that one that fails is rolled back alone and gets its own error. Under load, one commit
//! then carries the rows of many tool calls. Each caller is answered only after that
//! transaction's COMMIT returned: the evidence of a read is committed before the MCP reply that
//! shows the read. A record job is validated, scanned for secrets and encoded on the caller's
//! task before it is queued, so the thread spends its time in SQLite, and a refused record never
//! reaches it. [`Ledger::with_store`] closures run alone, in queue order, between batches.
//! After each batch or closure the thread pokes the checkpoint thread (`checkpoint`), so WAL
//! checkpoints stay off the path to a reply.
//!
//! A panic inside a job answers its caller(s) `STORE_UNAVAILABLE` ("a ledger operation
//! panicked"); the thread then closes the store and answers every later call
//! `STORE_UNAVAILABLE` ("an earlier ledger operation panicked; restart the runner") rather than
//! guess at the connection's state. Dropping the last handle lets the thread finish what is
//! queued, close the store and exit, and waits for that, so the file is closed when the drop
//! returns (the CLI and tests reopen a store right after a server stops).
//!
//! [`Ledger::new_inline`] is the exception: a stdio MCP server serves one client, one request at
//! a time, on a single-threaded runtime. There is nothing else to stall, and handing each small
//! write to another thread and waking back costs more than the write, so it calls the store on
//! the current thread, one transaction per call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::checkpoint::{AUTOCHECKPOINT_BACKSTOP, Checkpointer};
use crate::error::{LedgerError, Result};
use crate::records::{EvidenceBundle, EvidenceRecord, ProposalInsert, ProposalRecord, QueryAuditRecord, Replay};
use crate::store::{LedgerStore, RecordJob, Recorded};
use synapsor_core::ChangeSet;

/// Most record jobs one transaction carries, so that a long queue is committed (and answered)
/// in steps rather than all at the end.
pub const MAX_BATCH: usize = 64;

const PANICKED: &str = "a ledger operation panicked";
const POISONED: &str = "an earlier ledger operation panicked; restart the runner";
const STOPPED: &str = "the ledger thread has stopped; restart the runner";

/// A cloneable, async handle over one [`LedgerStore`].
#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
    calls: Calls,
    counters: Arc<Counters>,
}

/// Where calls run.
#[derive(Debug, Clone)]
enum Calls {
    /// On the ledger thread; the last clone of the `Arc` stops it.
    Thread(Arc<LedgerThread>),
    /// On the calling thread ([`Ledger::new_inline`]).
    Inline {
        store: Arc<Mutex<LedgerStore>>,
        /// Background WAL checkpoints (see `checkpoint`); `None` when they could not be set up.
        checkpoints: Option<Arc<Checkpointer>>,
    },
}

/// How record writes were committed since the handle was made: `records` record jobs in
/// `transactions` transactions. Fewer transactions than records means group commit batched.
/// Record jobs refused before reaching the ledger thread (validation, secrets) are not counted;
/// an inline handle counts every record call as one transaction of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordStats {
    pub transactions: u64,
    pub records: u64,
}

#[derive(Debug, Default)]
struct Counters {
    transactions: AtomicU64,
    records: AtomicU64,
}

impl Counters {
    fn batch(&self, records: usize) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.records
            .fetch_add(u64::try_from(records).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Ledger {
    /// A handle over `store`, served by a dedicated thread, with WAL checkpoints moved to a
    /// background thread of their own.
    pub fn new(store: LedgerStore) -> Self {
        let path = store.path().to_path_buf();
        let checkpoints = start_checkpoints(&store);
        let counters = Arc::new(Counters::default());
        let calls = match LedgerThread::start(store, checkpoints, Arc::clone(&counters)) {
            Ok(thread) => Calls::Thread(Arc::new(thread)),
            Err(unstarted) => {
                let (store, checkpoints, e) = *unstarted;
                // Out of threads: serve anyway, on the callers' threads, as the stdio server does.
                tracing::warn!(error = %e, "ledger: could not start its thread; running ledger calls inline");
                Calls::Inline {
                    store: Arc::new(Mutex::new(store)),
                    checkpoints: checkpoints.map(Arc::new),
                }
            }
        };
        Ledger { path, calls, counters }
    }

    /// A handle that runs each call on the calling thread: only for a single-client server on a
    /// single-threaded runtime (the stdio MCP server), where no other work waits on that thread.
    pub fn new_inline(store: LedgerStore) -> Self {
        let checkpoints = start_checkpoints(&store).map(Arc::new);
        Ledger {
            path: store.path().to_path_buf(),
            calls: Calls::Inline {
                store: Arc::new(Mutex::new(store)),
                checkpoints,
            },
            counters: Arc::new(Counters::default()),
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

    /// How many transactions the record writes of this handle (and its clones) took.
    pub fn record_stats(&self) -> RecordStats {
        RecordStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            records: self.counters.records.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` with the store, alone, on the ledger thread (on the calling thread for an
    /// inline handle). For operations without a dedicated method (approve, transition, receipts,
    /// events ...).
    pub async fn with_store<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut LedgerStore) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.calls {
            Calls::Thread(thread) => {
                let (reply, answer) = oneshot::channel();
                let call: Call = Box::new(move |store| {
                    let (result, panicked) = match store {
                        None => (Err(LedgerError::unavailable(POISONED)), false),
                        Some(store) => match catch_unwind(AssertUnwindSafe(|| f(store))) {
                            Ok(result) => (result, false),
                            Err(_) => (Err(LedgerError::unavailable(PANICKED)), true),
                        },
                    };
                    // A caller that stopped waiting has nothing to hear.
                    let _ = reply.send(result);
                    panicked
                });
                thread.send(Job::Call(call))?;
                answer.await.map_err(|_| LedgerError::unavailable(STOPPED))?
            }
            Calls::Inline { store, checkpoints } => {
                let result = {
                    // A poisoned mutex means an earlier call panicked mid-operation: refuse
                    // rather than guess at the connection's state.
                    let mut store = store.lock().map_err(|_| LedgerError::unavailable(POISONED))?;
                    f(&mut store)
                };
                if let Some(checkpoints) = checkpoints {
                    checkpoints.poke();
                }
                result
            }
        }
    }

    pub async fn record_read(&self, evidence: EvidenceRecord, audit: QueryAuditRecord) -> Result<()> {
        if let Calls::Thread(thread) = &self.calls {
            return thread.record(RecordJob::read(evidence, &audit)?).await.map(drop);
        }
        let counters = Arc::clone(&self.counters);
        self.with_store(move |s| {
            counters.batch(1);
            s.record_read(&evidence, &audit)
        })
        .await
    }

    pub async fn record_query_audit(&self, audit: QueryAuditRecord) -> Result<()> {
        if let Calls::Thread(thread) = &self.calls {
            return thread.record(RecordJob::query_audit(audit)?).await.map(drop);
        }
        let counters = Arc::clone(&self.counters);
        self.with_store(move |s| {
            counters.batch(1);
            s.record_query_audit(&audit)
        })
        .await
    }

    pub async fn record_proposal(
        &self,
        evidence: EvidenceRecord,
        audit: QueryAuditRecord,
        change_set: ChangeSet,
    ) -> Result<ProposalInsert> {
        if let Calls::Thread(thread) = &self.calls {
            return match thread
                .record(RecordJob::proposal(evidence, &audit, change_set)?)
                .await?
            {
                Recorded::Proposal(insert) => Ok(insert),
                Recorded::Read | Recorded::QueryAudit => Err(LedgerError::unavailable(
                    "the ledger answered a proposal with another record",
                )),
            };
        }
        let counters = Arc::clone(&self.counters);
        self.with_store(move |s| {
            counters.batch(1);
            s.record_proposal(&evidence, &audit, &change_set)
        })
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

/// Starts background checkpoints for `store` and raises its own threshold to the backstop;
/// `None` (SQLite's own checkpoints stay) when either fails.
fn start_checkpoints(store: &LedgerStore) -> Option<Checkpointer> {
    Checkpointer::start(store.path()).filter(|_| {
        store
            .set_wal_autocheckpoint(AUTOCHECKPOINT_BACKSTOP)
            .map_err(|e| tracing::warn!(error = %e, "ledger: keeping SQLite's own checkpoints"))
            .is_ok()
    })
}

// ------------------------------------------------------------------------ the ledger thread

/// A `with_store` call, boxed: it gets the store (`None` once poisoned), answers its caller
/// itself, and returns whether it panicked.
type Call = Box<dyn FnOnce(Option<&mut LedgerStore>) -> bool + Send>;

// Unboxed on purpose: record jobs are the common message, and boxing them would add an
// allocation per tool call to save slot space in a channel that is usually near empty.
#[allow(clippy::large_enum_variant)]
enum Job {
    Record(RecordJob, oneshot::Sender<Result<Recorded>>),
    Call(Call),
}

/// The sending side of the ledger thread. Dropping it (with the last [`Ledger`] clone) closes
/// the channel and waits for the thread to finish.
#[derive(Debug)]
struct LedgerThread {
    jobs: Option<Sender<Job>>,
    handle: Option<JoinHandle<()>>,
}

impl LedgerThread {
    /// Spawns the thread, then hands it the store: should the spawn fail, the store (and its
    /// checkpoints) come back to the caller instead of being lost with the thread's closure.
    fn start(
        store: LedgerStore,
        checkpoints: Option<Checkpointer>,
        counters: Arc<Counters>,
    ) -> std::result::Result<Self, Box<(LedgerStore, Option<Checkpointer>, std::io::Error)>> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let (give, take) = std::sync::mpsc::sync_channel::<(LedgerStore, Option<Checkpointer>)>(1);
        let spawned = std::thread::Builder::new()
            .name("synapsor-ledger".into())
            .spawn(move || {
                if let Ok((store, checkpoints)) = take.recv() {
                    serve(store, checkpoints.as_ref(), &queue, &counters);
                }
            });
        match spawned {
            Ok(handle) => {
                // The thread waits on `take` until this arrives; it cannot be gone.
                let _ = give.send((store, checkpoints));
                Ok(LedgerThread {
                    jobs: Some(jobs),
                    handle: Some(handle),
                })
            }
            Err(e) => Err(Box::new((store, checkpoints, e))),
        }
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .as_ref()
            .ok_or_else(|| LedgerError::unavailable(STOPPED))?
            .send(job)
            .map_err(|_| LedgerError::unavailable(STOPPED))
    }

    /// Queues a prepared record job and waits for its transaction to commit.
    async fn record(&self, job: RecordJob) -> Result<Recorded> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Record(job, reply))?;
        answer.await.map_err(|_| LedgerError::unavailable(STOPPED))?
    }
}

impl Drop for LedgerThread {
    fn drop(&mut self) {
        // The only sender: dropping it ends the thread's loop once the queue is empty.
        drop(self.jobs.take());
        let Some(handle) = self.handle.take() else {
            return;
        };
        if handle.thread().id() == std::thread::current().id() {
            // The last handle was owned by a job running on the ledger thread itself (a
            // `with_store` closure that captured one): joining would wait forever. The thread
            // exits when that job returns.
            return;
        }
        if handle.join().is_err() {
            tracing::warn!("ledger: the ledger thread panicked");
        }
    }
}

/// The ledger thread's loop: jobs in queue order, consecutive record jobs batched, until every
/// handle is gone and the queue is empty.
fn serve(store: LedgerStore, checkpoints: Option<&Checkpointer>, queue: &Receiver<Job>, counters: &Counters) {
    // `None` once a job panicked: later jobs are refused, and the connection is already closed.
    let mut store = Some(store);
    // A job taken from the queue while filling a batch that does not belong in it.
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        match job {
            Job::Call(call) => {
                if call(store.as_mut()) {
                    poison(&mut store);
                }
            }
            Job::Record(job, reply) => {
                let mut jobs = vec![job];
                let mut replies = vec![reply];
                while jobs.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(Job::Record(job, reply)) => {
                            jobs.push(job);
                            replies.push(reply);
                        }
                        Ok(call) => {
                            next = Some(call);
                            break;
                        }
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                commit_batch(&mut store, jobs, replies, counters);
            }
        }
        if let Some(checkpoints) = checkpoints {
            checkpoints.poke();
        }
    }
    // Explicit: the connection closes here, before the thread ends and the joining drop returns.
    drop(store);
}

/// Runs one batch and answers each caller, after the batch's COMMIT.
fn commit_batch(
    store: &mut Option<LedgerStore>,
    jobs: Vec<RecordJob>,
    replies: Vec<oneshot::Sender<Result<Recorded>>>,
    counters: &Counters,
) {
    let Some(s) = store.as_mut() else {
        for reply in replies {
            let _ = reply.send(Err(LedgerError::unavailable(POISONED)));
        }
        return;
    };
    counters.batch(jobs.len());
    match catch_unwind(AssertUnwindSafe(|| s.record_batch(jobs))) {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(_) => {
            poison(store);
            for reply in replies {
                let _ = reply.send(Err(LedgerError::unavailable(PANICKED)));
            }
        }
    }
}

/// After a panic: close the connection (SQLite rolls back whatever the panic left open) and
/// refuse everything from now on.
fn poison(store: &mut Option<LedgerStore>) {
    if store.take().is_some() {
        tracing::error!("ledger: an operation panicked; refusing further ledger calls until restart");
    }
}
