//! `synapsor-controller`: the privileged half of Synapsor Runner's Kubernetes mode.
//!
//! What it is: a kube-rs controller that applies approved `Proposal` resources through the same
//! guarded executors as local mode (`synapsor-executor`), with status `Applying` written before
//! any side effect, receipts in status, Events and its ledger, and Lease-based leader election
//! so only one replica applies; plus the TLS admission webhook that authorizes approvers with a
//! SubjectAccessReview (verb `approve`) and records signed decisions ([`decisions`]); plus
//! `/metrics`, `/healthz` and `/readyz`. Its requests to the API server pass a client-side token
//! bucket ([`rate_limit`], `--kube-api-qps`/`--kube-api-burst`).
//!
//! What it is not: it never creates proposals (the sidecar does, with a read-only database
//! role) and never trusts an approval it did not sign. Local mode has no controller.

pub mod admission;
pub mod cli;
pub mod decide;
pub mod decisions;
pub mod error;
pub mod inject;
pub mod leader;
pub mod metrics;
pub mod rate_limit;
pub mod reconcile;
pub mod server;
