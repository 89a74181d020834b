//! Test databases for the executor: the fixtures of `synapsor-testdb` (a fresh database per test
//! with the shared seed, a SELECT-only read role, a least-privilege writer and, when asked, the
//! receipts table), with the runner's engine type and this crate's receipts table.
#![allow(dead_code, clippy::unwrap_used)]

use synapsor_core::config::Engine;
pub use synapsor_testdb::unique;
use synapsor_testdb::{Runner, TestDb};

pub type Db = TestDb<Engine>;

/// The executor's receipts table, for the test databases.
pub const RUNNER: Runner<Engine> = Runner {
    receipts_ddl: |e, schema| synapsor_executor::receipts_ddl(e, schema).unwrap(),
    receipts_grants: |e, schema, writer| synapsor_executor::receipts_grants(e, writer, schema, &[]).unwrap(),
};
