//! The local SQLite ledger of Synapsor Runner.
//!
//! What it is: the record of everything the runner did for an agent, in one SQLite file
//! (default `./.synapsor/local.db`): evidence of each scoped read, a query audit row per query,
//! proposals (immutable change sets with their digest and a mutable state), an append-only event
//! log, approvals and rejections bound to a digest, and writeback receipts. It enforces the
//! ledger-side rules of the proposal lifecycle: dedup of identical open proposals, digest
//! re-checks on read (tamper detection), digest-bound approvals with a quorum and no
//! self-approval, compare-and-set state transitions, refusal of secret-looking material, and
//! retention (`prune`). [`StoreLease`] tells maintenance commands whether a server is using the
//! store.
//!
//! What it is not: it never touches the source database and never applies anything; applying is
//! the executor's job, which reports back through [`LedgerStore::transition`] and
//! [`LedgerStore::record_receipt`]. It does not authenticate approvers (the CLI and the
//! Kubernetes admission webhook do) and does not read the clock: callers pass RFC 3339
//! timestamps (`synapsor_core::time::format_rfc3339_ms`), which the ledger stores, orders and
//! compares as strings. That is correct because only the fixed-width UTC form
//! `YYYY-MM-DDTHH:MM:SS.mmmZ` is accepted (`INVALID_INPUT` otherwise).
//!
//! [`LedgerStore`] is synchronous and owns one connection. [`Ledger`] is the cloneable async
//! handle: a dedicated thread owns the store and runs the calls sent to it, so that SQLite never
//! blocks a tokio worker, and commits concurrent record writes (reads, query audits, proposals)
//! together, one transaction and one savepoint per write (group commit). A caller is answered
//! only after the transaction holding its rows committed. WAL checkpoints run on a thread of
//! their own. See `docs/ledger.md` for tables, states, events, retention, the lease and
//! durability.

mod async_ledger;
mod checkpoint;
mod error;
pub mod lease;
pub mod records;
pub mod schema;
mod store;

pub use async_ledger::{Ledger, MAX_BATCH, RecordStats};
pub use checkpoint::{AUTOCHECKPOINT_BACKSTOP, CHECKPOINT_EVERY};
pub use error::{LedgerError, Result};
pub use lease::{LeaseInfo, StoreLease, lease_path, reset};
pub use records::*;
pub use store::{BUSY_TIMEOUT, DEFAULT_LIST_LIMIT, LedgerStore, MAX_LIST_LIMIT, RECEIPT_STATUSES};
