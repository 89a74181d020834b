//! Pure core of Synapsor Runner.
//!
//! What it is: the config model and its validator, identifier rules, compiled capabilities
//! (argument checking, read plans, patch building, guards), change sets and their canonical
//! digests, result envelopes, stable error codes, the proposal state machine, secret checks and
//! token-bucket arithmetic.
//!
//! What it is not: it does no IO. No tokio, no database drivers, no files, no random ids; time
//! and ids are passed in, so everything here is deterministic and unit-testable. [`context`]
//! defines the clock and environment traits the rest of the workspace reads the outside world
//! through, with their system implementations; nothing in the core calls them.

pub mod approval;
pub mod capability;
pub mod catalog;
pub mod changeset;
pub mod config;
pub mod context;
pub mod digest;
pub mod envelope;
pub mod error;
pub mod ident;
pub mod ratelimit;
pub mod review;
pub mod secrets;
pub mod state;
pub mod time;
pub mod tools;

pub use capability::{Capability, TrustedContext};
pub use changeset::ChangeSet;
pub use error::{SafeCode, ToolCode, ToolError};
pub use state::ProposalState;
