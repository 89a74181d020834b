//! Synapsor Runner: the `synapsor-runner` CLI and its tool-call runtime.
//!
//! What it is: config loading, the runtime that serves reviewed capabilities (scoped reads and
//! proposals, with evidence in the ledger), the local approval commands, ledger inspection and
//! maintenance, and the quick demo.
//!
//! What it is not: it holds only read credentials and never writes the source database from a
//! tool call; approval is a human act outside the tool surface.

pub mod cli;
pub mod context;
pub mod demo;
pub mod runtime;
pub mod client_config;
pub mod mcp;
