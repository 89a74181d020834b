//! Guarded writeback executors (being written).
