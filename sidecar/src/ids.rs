//! The runner's id generator, injected like the clock and the environment
//! ([`synapsor_core::context`]) so that tests and the demo can pin ids.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use synapsor_core::context::{Clock, SystemClock};

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
        let material = format!("{}:{}:{}:{}", self.seed, std::process::id(), SystemClock.now_ms(), n);
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
