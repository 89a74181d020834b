//! Guarded writeback executors of Synapsor Runner.
//!
//! What it is: the privileged half of the product. Given an approved change set and the
//! *current* reviewed capability, an [`Executor`] applies exactly that change or refuses, and
//! always returns a [`Receipt`]. The built-in [`SqlUpdateExecutor`] writes one row of PostgreSQL,
//! MySQL/MariaDB or SQLite in one transaction: it claims an idempotency receipt row in the
//! source's `synapsor_writeback_receipts` table, locks the row by primary key AND tenant,
//! compares the expected version (or row hash), re-checks allowed columns, bounds and transition
//! guards against the current config and the locked row, updates exactly one row and marks the
//! receipt `applied`, or rolls everything back. [`receipts_ddl`], [`receipts_grants`],
//! [`init_receipts`] and [`check_receipts`] set up and verify the receipts table.
//!
//! What it is not: it does not read or write the ledger or move proposal states (the caller
//! does, around [`Executor::apply`]), never creates tables during an apply, and never returns
//! driver text: failures carry a stable [`WritebackCode`], details go to the log, redacted.
//!
//! [`plan_apply`] is the one decision, for local `apply` and the controller alike, of whether an
//! approved change set may be applied now and through which executor.
//!
//! App-owned handler executors plug in through the same [`Executor`] trait
//! ([`app_handler`]): [`HttpHandlerExecutor`] sends one signed [`synapsor_handler::HandlerRequest`]
//! (retrying transient failures with the same idempotency key), [`CommandHandlerExecutor`] runs
//! a local command with the signed bytes on stdin. Both turn the handler's
//! [`synapsor_handler::HandlerReceipt`] into a [`Receipt`]; the handler owns the write.

pub mod app_handler;
pub mod apply_plan;
pub mod error;
pub mod guards;
pub mod receipt;
pub mod receipts_table;
pub mod sql;
pub mod url;

use synapsor_core::config::{self, RunnerConfig, Source};
pub use synapsor_core::context::{BoxFuture, Env};
use synapsor_core::{Capability, ChangeSet};

pub use app_handler::{CommandHandlerExecutor, HttpHandlerExecutor, RetryPolicy};
pub use apply_plan::{ApplyPlan, ApplyRefusal, Quorum, check_writeback_enabled, plan_apply};
pub use error::ExecutorError;
pub use receipt::{Check, HandlerCode, Receipt, ReceiptStatus, WritebackCode, idempotency_key};
pub use receipts_table::{
    InitReport, ReceiptsCheck, Schemas, SetupGap, check_receipts, init_receipts, receipts_ddl, receipts_grants,
    receipts_table_name, write_targets, writer_setup_gaps,
};
pub use sql::{RECEIPTS_TABLE, SqlUpdateExecutor, WriterSettings};
/// Who approved, and when: sent to app-owned handlers in the request's `approvals`.
pub use synapsor_handler::Approval;

/// One apply (or dry run) of one approved change set.
pub struct ApplyRequest<'a> {
    pub change_set: &'a ChangeSet,
    /// The capability compiled from the *current* reviewed config; guards are re-checked
    /// against it, not only against what the change set recorded.
    pub capability: &'a Capability,
    pub source_name: &'a str,
    pub source: &'a Source,
    /// Where credentials come from: the writer URL is `env(source.write_url_env)`.
    pub env: &'a dyn Env,
    /// RFC 3339 UTC timestamp of this attempt (the caller's clock).
    pub executed_at: String,
    /// Run every check and the guarded UPDATE, then roll back and report `would_apply`.
    /// Handlers get `dry_run: true` and answer what they would do; nothing is recorded.
    pub dry_run: bool,
    /// The approvals bound to the change set's digest (verified approver, RFC 3339 time), for
    /// handler requests. `sql_update` does not use them (the caller counted them).
    pub approvals: Vec<Approval>,
}

impl std::fmt::Debug for ApplyRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyRequest")
            .field("proposal_id", &self.change_set.proposal_id)
            .field("capability", &self.capability.name)
            .field("source", &self.source_name)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// Applies approved change sets. Implementations never panic on bad input and never return
/// driver text: every outcome, including setup failures, is a [`Receipt`].
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// `sql_update` or the configured executor name.
    fn name(&self) -> &str;

    fn apply<'a>(&'a self, req: ApplyRequest<'a>) -> BoxFuture<'a, Receipt>;
}

/// The executor of a capability: `sql_update` (also a named `type: sql_update` executor), a
/// signed [`HttpHandlerExecutor`] or a [`CommandHandlerExecutor`]; an error for a name the config
/// does not define. Nothing is read from the environment here: a missing URL, secret or token
/// is the executor's `failed` receipt, so the proposal stays retryable.
pub fn select_executor(config: &RunnerConfig, capability: &Capability) -> Result<Box<dyn Executor>, ExecutorError> {
    if capability.executor == "sql_update" {
        return Ok(Box::new(SqlUpdateExecutor));
    }
    let name = capability.executor.as_str();
    match config.executors.get(name) {
        Some(config::Executor::SqlUpdate {}) => Ok(Box::new(SqlUpdateExecutor)),
        Some(ex @ config::Executor::HttpHandler { .. }) => HttpHandlerExecutor::from_config(name, ex)
            .map(|e| Box::new(e) as Box<dyn Executor>)
            .ok_or_else(|| ExecutorError::UnknownExecutor { name: name.to_owned() }),
        Some(ex @ config::Executor::CommandHandler { .. }) => CommandHandlerExecutor::from_config(name, ex)
            .map(|e| Box::new(e) as Box<dyn Executor>)
            .ok_or_else(|| ExecutorError::UnknownExecutor { name: name.to_owned() }),
        None => Err(ExecutorError::UnknownExecutor { name: name.to_owned() }),
    }
}
