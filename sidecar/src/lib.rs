//! Synapsor Runner: the `synapsor-runner` CLI, its tool-call runtime and MCP server.
//!
//! What it is: config loading, the runtime that serves reviewed capabilities (scoped reads and
//! proposals, with evidence in the ledger), the MCP server over stdio and Streamable HTTP, the
//! local approval commands, `apply` through the executors of `synapsor-executor`, ledger
//! inspection and maintenance, and the quick demo.
//!
//! In Kubernetes mode ([`kube_store`]) proposals are published as `Proposal` resources and
//! approved and applied by `synapsor-controller`; the ledger keeps their mirror.
//!
//! What it is not: a tool call never writes the source database and never sees writer
//! credentials (only `apply`, a CLI command outside MCP, uses them); approval is a human act
//! outside the tool surface.

/// `println!` that ends the process quietly when stdout is closed (e.g. piped into `head`),
/// instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// `print!` with the same broken-pipe behaviour as `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

pub mod cli;
pub mod client_config;
pub mod demo;
pub mod ids;
pub mod kube_store;
pub mod local_apply;
pub mod mcp;
pub mod rate_limit;
pub mod recipes;
pub mod runtime;
pub mod ui;
