//! `kubectl synapsor`: a kubectl plugin to list, review, approve, reject and wait for Synapsor
//! `Proposal` resources.
//!
//! What it is: a client of the Kubernetes API with the user's own kubeconfig. `review` shows a
//! proposal through the shared review model (`synapsor_core::review`): the diff, the guards the
//! controller re-checks, evidence, decisions, receipt and timeline. `approve` and `reject` make
//! the same request as `kubectl annotate proposal/<name> runner.synapsor.ai/approve=true` (or
//! `reject=<reason>`), bound to the uid and digest that were shown, after a confirmation on a
//! terminal; `wait` watches a proposal until it is applied or ends otherwise.
//!
//! What it is not: not a privileged component. It holds no service account, no approval key and
//! no database credentials; who may approve is decided by RBAC and the admission webhook of
//! `synapsor-controller`, whose refusals it prints verbatim, and the controller applies.

pub mod cli;
pub mod commands;
pub mod connect;
pub mod error;
pub mod view;
