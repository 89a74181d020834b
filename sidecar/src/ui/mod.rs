//! `synapsor-runner ui`: the local review web UI, a few server-rendered pages where a person reads
//! a proposal (the before/after diff, the guards apply re-checks, the evidence it was built from,
//! the decisions, the receipt and the timeline) and approves, rejects or applies it.
//!
//! What it is: an axum server on loopback ([`serve`]) that renders pages from a [`ReviewSource`]:
//! list, get, approve, reject (and, optionally, apply). The local ledger is one source
//! ([`local::LocalLedger`]); `Proposal` resources with the reviewer's own kubeconfig are another
//! ([`kubernetes::ClusterProposals`], `ui --kubernetes`), which also pushes changes to the open
//! pages (server-sent events on `/changes`). Every decision goes through the source's existing rules (the ledger's digest-bound
//! approve and reject, the CLI's operator resolution, `apply`'s guarded path): the UI adds a
//! confirmation step and a staleness check, never a rule of its own that could be looser.
//!
//! What it is not: it shows no SQL, no URLs and no secrets, and it has no control that widens a
//! capability. It is not a multi-user server: one per-run token lets one person's browser in
//! ([`security`] lists the defences: token, cookie, CSRF, `Host`, `Origin`, headers).

pub mod kubernetes;
mod live;
pub mod local;
mod routes;
pub mod security;
mod view;

use std::future::Future;
use std::net::SocketAddr;

use serde::Serialize;
use synapsor_core::review::Review;

pub use routes::{UiOptions, router, serve};

/// Sent on a [`ReviewSource::changes`] channel when anything may have changed (a watch
/// restarted, or a page fell behind): every open page reloads.
pub const ALL_CHANGED: &str = "*";

/// Filters of the proposal list (all optional, AND-ed), from the page's query string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// A phase as the source names it (`pending_review`, `approved`, ...).
    pub phase: Option<String>,
    pub capability: Option<String>,
    pub tenant: Option<String>,
    pub limit: u32,
}

/// One row of the proposal list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListItem {
    pub id: String,
    pub phase: String,
    pub capability: String,
    pub tenant: String,
    pub proposer: String,
    /// `business_object:object_id`.
    pub object: String,
    /// The columns the change sets (`late_fee_cents: 500 -> 0`); empty when the stored change
    /// set could not be read (its digest check failed).
    pub change: String,
    pub created_at: String,
    /// Waiting for a person: a decision, or an apply.
    pub needs_attention: bool,
}

/// What the page may offer for one proposal: the source's verdict, re-checked on submit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Actions {
    pub approve: bool,
    /// An approval can carry a note (the ledger records it; a `Proposal` annotation cannot).
    pub approve_note: bool,
    pub reject: bool,
    pub apply: bool,
}

/// Everything the proposal page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewPage {
    /// The shared review model, with phase, decisions, evidence, receipt and timeline filled.
    pub review: Review,
    /// Changes whenever anything about the proposal changes (a decision, a state change, new
    /// evidence, a receipt). Decisions carry the revision the page showed; a different one now
    /// means the person decided on something they did not see.
    pub revision: String,
    /// False when the stored change set no longer matches its digest: never decide on it.
    pub digest_verified: bool,
    /// Set when another store of record decides this proposal; how to decide it there.
    pub managed_elsewhere: Option<String>,
    pub actions: Actions,
    /// Who a decision is recorded as, or why this person cannot decide (the refusal the submit
    /// would give, such as an operator token the capability requires).
    pub acting_as: Result<String, UiError>,
    /// The command that applies it, when the page does not offer apply itself.
    pub apply_command: Option<String>,
    /// Who applies it when no person does (a controller), shown instead of a command.
    pub apply_note: Option<String>,
}

/// A decision submitted from the page: bound to the digest and the revision it showed.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRequest {
    pub id: String,
    pub digest: String,
    pub revision: String,
    /// Required for a rejection.
    pub reason: Option<String>,
}

/// The outcome of a decision, for the notice on the proposal page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Approved,
    /// The approval was recorded; more approvers are needed.
    ApprovalRecorded,
    Rejected,
    /// Apply ran; the receipt on the page says how it ended.
    ApplyRan,
}

impl Done {
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Approved => "approved",
            Done::ApprovalRecorded => "approval_recorded",
            Done::Rejected => "rejected",
            Done::ApplyRan => "apply_ran",
        }
    }

    pub fn parse(s: &str) -> Option<Done> {
        [Done::Approved, Done::ApprovalRecorded, Done::Rejected, Done::ApplyRan]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// Where the pages read proposals and send decisions. The local ledger is one implementation;
/// each keeps its store's rules (digest binding, who may decide) and the UI never bypasses them.
pub trait ReviewSource: Send + Sync + 'static {
    /// What the pages are looking at, for the header (`local ledger .synapsor/local.db`).
    fn describe(&self) -> String;

    /// The phases the list can be filtered by, as this source names them.
    fn phases(&self) -> Vec<String>;

    /// Ids of proposals as they change ([`ALL_CHANGED`]: anything may have), for live pages.
    /// `None` when the source cannot watch; its pages then update on reload only.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// Proposals matching `filter`, newest first.
    fn list(&self, filter: ListFilter) -> impl Future<Output = Result<Vec<ListItem>, UiError>> + Send;

    /// One proposal with everything the page shows.
    fn get(&self, id: String) -> impl Future<Output = Result<ReviewPage, UiError>> + Send;

    /// Approves, bound to the digest and revision shown.
    fn approve(&self, req: DecisionRequest) -> impl Future<Output = Result<Done, UiError>> + Send;

    /// Rejects with the request's reason, bound to the digest and revision shown.
    fn reject(&self, req: DecisionRequest) -> impl Future<Output = Result<Done, UiError>> + Send;

    /// Applies an approved proposal. Sources that leave applying to someone else (the page then
    /// shows the command) keep this default.
    fn apply(&self, req: DecisionRequest) -> impl Future<Output = Result<Done, UiError>> + Send {
        async move {
            Err(UiError::Unsupported {
                what: format!("applying {} from this page", req.id),
            })
        }
    }
}

/// Why a page or a decision failed. Each variant has a stable [`code`](UiError::code) and an
/// HTTP status; messages never carry secrets or driver text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UiError {
    /// A refusal of the store or of the decision path (the ledger's, the operator check's,
    /// apply's), with its own code.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The proposal changed since the page was loaded.
    #[error(
        "{id} changed since this page was loaded (it is now {phase}); nothing was decided. Reload it and review the change again"
    )]
    Stale { id: String, phase: String },
    /// Missing or bad form input (the confirmation, a reason).
    #[error("{message}")]
    Input { code: &'static str, message: String },
    #[error("{what} is not available")]
    Unsupported { what: String },
    /// A page could not be rendered (a bug, never the user's input).
    #[error("the page could not be rendered")]
    Render,
    /// The proposal does not exist.
    #[error("{message}")]
    NotFound { message: String },
    /// The store could not be read (missing, busy, newer schema).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
}

impl UiError {
    pub fn code(&self) -> &'static str {
        match self {
            UiError::Refused { code, .. } | UiError::Input { code, .. } | UiError::Unavailable { code, .. } => code,
            UiError::Stale { .. } => "UI_PROPOSAL_CHANGED",
            UiError::Unsupported { .. } => "UI_UNSUPPORTED",
            UiError::Render => "UI_RENDER_FAILED",
            UiError::NotFound { .. } => "PROPOSAL_NOT_FOUND",
        }
    }

    /// The HTTP status the page answers with.
    pub fn status(&self) -> u16 {
        match self {
            UiError::Refused { .. } | UiError::Stale { .. } => 409,
            UiError::Input { .. } => 400,
            UiError::Unsupported { .. } | UiError::NotFound { .. } => 404,
            UiError::Render => 500,
            UiError::Unavailable { .. } => 503,
        }
    }
}

/// The URL to print: the bound address with the per-run token.
pub fn start_url(addr: SocketAddr, token: &str) -> String {
    format!("http://{addr}/?token={token}")
}
