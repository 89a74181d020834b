//! Test-only helpers shared by the test suites of several crates.
//!
//! What it is: unique database names, the admin URLs that `scripts/dev-db.sh` exports (a test is
//! skipped without one, or fails under `SYNAPSOR_REQUIRE_DBS=1`), URL rewriting to another
//! database or login, and the staleness check of generated files committed to the repository
//! (schemas, the CRD). With the `db` feature, the fixtures of the writeback tests: one seed of
//! invoices and orders for PostgreSQL, MariaDB and SQLite ([`Engine::seed`]), and a fresh
//! [`TestDb`] per test with a SELECT-only read role, a least-privilege writer and, when asked, the
//! runner's receipts table, whose DDL and GRANTs the suites supply ([`Runner`]); [`Server`] runs
//! statements as a server's admin.
//!
//! What it is not: it starts no server (see `scripts/dev-db.sh`) and does not depend on the
//! runner's crates, which have it as a dev-dependency. Seeds that only one suite reads (the MCP
//! and runtime tests, the handler flows) stay in that suite and come through
//! [`TestDb::with_seed`].
//!
//! With the `browser` feature, [`browser::Browser`]: a headless Chromium through chromedriver for
//! the review UI's tests (skipped when not installed, unless `SYNAPSOR_REQUIRE_BROWSER=1`).

#[cfg(feature = "browser")]
pub mod browser;
#[cfg(feature = "db")]
mod database;
#[cfg(feature = "db")]
mod db;
#[cfg(feature = "db")]
mod seed;

#[cfg(feature = "db")]
pub use database::{RECEIPTS_TABLE, Runner, TestDb};
#[cfg(feature = "db")]
pub use db::Server;
#[cfg(feature = "db")]
pub use seed::{Engine, SEEDED_TABLES};

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `<prefix>_<pid>_<nanos>_<n>`: unique across parallel tests and processes.
// This test-only crate cannot take synapsor-core's clock (synapsor-core's tests depend on it);
// the time here is only a source of uniqueness, never a timestamp.
#[allow(clippy::disallowed_methods)]
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{}_{n}", std::process::id(), t % 1_000_000_000)
}

/// The admin URL in `var`; `None` (the test is skipped, with a message) unless
/// `SYNAPSOR_REQUIRE_DBS=1`, where a missing URL fails the test.
///
/// # Panics
/// When `var` is unset and `SYNAPSOR_REQUIRE_DBS=1`.
pub fn admin_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("SYNAPSOR_REQUIRE_DBS").as_deref() == Ok("1") {
                panic!("{var} is not set but SYNAPSOR_REQUIRE_DBS=1: run through scripts/test.sh");
            }
            eprintln!("skipping: {var} is not set (run scripts/test.sh, or eval \"$(scripts/dev-db.sh start)\")");
            None
        }
    }
}

/// `url` with its database (the last path segment) replaced by `db`.
///
/// # Panics
/// When `url` has no `/`.
pub fn replace_db(url: &str, db: &str) -> String {
    let Some((base, _)) = url.rsplit_once('/') else {
        panic!("not a database URL: no path")
    };
    format!("{base}/{db}")
}

/// `url` with its login replaced by `user:password`.
///
/// # Panics
/// When `url` has no `scheme://` or no `@`.
pub fn with_user(url: &str, user: &str, password: &str) -> String {
    let (Some((scheme, rest)), true) = (url.split_once("://"), url.contains('@')) else {
        panic!("not a database URL with credentials")
    };
    let (_, host) = rest.rsplit_once('@').unwrap_or(("", rest));
    format!("{scheme}://{user}:{password}@{host}")
}

/// Checks that the committed file `path` (relative to the repository root `root`) equals
/// `generated`; with `SYNAPSOR_UPDATE_SCHEMAS=1` it writes `generated` there instead.
/// `regenerate` is the command that does that, for the failure message.
///
/// # Panics
/// When the file is stale or missing (or cannot be written when regenerating).
pub fn check_generated(root: &std::path::Path, path: &str, generated: &str, regenerate: &str) {
    let file = root.join(path);
    if std::env::var("SYNAPSOR_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        if let Err(e) = std::fs::write(&file, generated) {
            panic!("cannot write {}: {e}", file.display());
        }
        return;
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is stale or missing; regenerate it with\n  SYNAPSOR_UPDATE_SCHEMAS=1 {regenerate}\nand commit the result"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_urls() {
        let url = "postgres://admin:pw@127.0.0.1:5432/postgres";
        assert_eq!(replace_db(url, "t1"), "postgres://admin:pw@127.0.0.1:5432/t1");
        assert_eq!(with_user(url, "r", "x"), "postgres://r:x@127.0.0.1:5432/postgres");
        assert_ne!(unique("a"), unique("a"));
    }
}
