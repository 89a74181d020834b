//! The runner's injected dependencies: environment, clock and id generator.
//!
//! They are traits so tests and the demo can pin them: the demo supplies its own database URL
//! through an environment overlay (the config only names variables), and tests fix time and ids.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Looks up environment variables.
pub trait Env: Send + Sync + std::fmt::Debug {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Fixed values in front of another environment.
#[derive(Debug)]
pub struct OverlayEnv<E> {
    pub values: HashMap<String, String>,
    pub fallback: E,
}

impl<E: Env> Env for OverlayEnv<E> {
    fn var(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned().or_else(|| self.fallback.var(name))
    }
}

/// Wall-clock time in Unix milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;

    fn now_rfc3339(&self) -> String {
        synapsor_core::time::format_rfc3339_ms(self.now_ms())
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Unique ids with a readable prefix (`ev_…`).
pub trait IdGen: Send + Sync + std::fmt::Debug {
    fn new_id(&self, prefix: &str) -> String;
}

/// Random ids: 80 bits from a per-process random seed, the time and a counter, hashed.
#[derive(Debug)]
pub struct RandomIds {
    seed: u64,
    counter: AtomicU64,
}

impl Default for RandomIds {
    fn default() -> Self {
        // RandomState is seeded from the OS's random source once per process.
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        RandomIds {
            seed,
            counter: AtomicU64::new(0),
        }
    }
}

impl IdGen for RandomIds {
    fn new_id(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let material = format!("{}:{}:{}:{}", self.seed, std::process::id(), nanos, n);
        format!(
            "{prefix}{}",
            &synapsor_core::digest::sha256_hex(material.as_bytes())[..20]
        )
    }
}

/// Sequential ids for tests and the demo: `ev_000001`, ...
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGen for SequentialIds {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}{:06}", self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}
