//! Helpers for app-owned Synapsor writeback handlers (being written).

pub mod wire;
pub use wire::*;
