//! The two doors to the outside world that every part of the workspace needs: the wall clock
//! ([`Clock`]) and the process environment ([`Env`]).
//!
//! Code takes them as trait objects in its context, so tests and the demo can pin time and
//! supply variables. [`SystemClock`] and [`ProcessEnv`] are the only places in the workspace that
//! read the real ones (`clippy.toml` disallows `SystemTime::now` elsewhere). Nothing else in this
//! crate calls them: the core itself stays pure.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: what the workspace's async IO traits (`SourceDb`, `Executor`,
/// the proposal publisher) return, so that they stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Wall-clock time in Unix milliseconds.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;

    /// The time as the ledger and envelopes write it (RFC 3339 UTC with milliseconds).
    fn now_rfc3339(&self) -> String {
        crate::time::format_rfc3339_ms(self.now_ms())
    }

    /// Whole Unix seconds, as JWT claims count time (0 before the epoch).
    fn now_secs(&self) -> u64 {
        u64::try_from(self.now_ms() / 1000).unwrap_or(0)
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one reading of the wall clock
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that says what it is told: for tests.
#[derive(Debug, Default)]
pub struct FixedClock(pub std::sync::atomic::AtomicI64);

impl FixedClock {
    pub fn at(unix_ms: i64) -> Self {
        FixedClock(std::sync::atomic::AtomicI64::new(unix_ms))
    }

    pub fn set(&self, unix_ms: i64) {
        self.0.store(unix_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Looks up environment variables (database URLs, secrets, the trusted context).
///
/// A variable that is set but blank counts as unset everywhere: `X=` in a manifest or a shell
/// must not become an empty tenant, URL or secret.
pub trait Env: Send + Sync + fmt::Debug {
    /// The raw value, blank or not.
    fn raw(&self, name: &str) -> Option<String>;

    /// The value, `None` when unset or blank.
    fn var(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|v| !v.trim().is_empty())
    }
}

/// The environment variable both binaries read the config file's path from.
pub const CONFIG_ENV: &str = "SYNAPSOR_CONFIG";
/// The original's name for [`CONFIG_ENV`], still accepted when [`CONFIG_ENV`] is not set.
pub const CONFIG_ENV_ALIAS: &str = "SYNAPSOR_MCP_CONFIG";

/// The config path given by [`CONFIG_ENV_ALIAS`] when [`CONFIG_ENV`] is not set. Binaries call
/// this when their `--config` came from neither the command line nor [`CONFIG_ENV`].
pub fn config_path_from_alias(env: &dyn Env) -> Option<String> {
    match env.var(CONFIG_ENV) {
        Some(_) => None,
        None => env.var(CONFIG_ENV_ALIAS),
    }
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn raw(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Fixed values in front of another environment (the demo's database URL, a test's overlay).
#[derive(Debug, Default)]
pub struct OverlayEnv<E> {
    pub values: HashMap<String, String>,
    pub fallback: E,
}

impl<E: Env> Env for OverlayEnv<E> {
    fn raw(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned().or_else(|| self.fallback.raw(name))
    }
}

/// Only the given values: for tests that must not see the process environment.
impl Env for HashMap<String, String> {
    fn raw(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_are_unset() {
        let env: HashMap<String, String> = [("A", "x"), ("B", ""), ("C", "  ")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(env.var("A").as_deref(), Some("x"));
        assert_eq!(env.var("B"), None);
        assert_eq!(env.var("C"), None);
        assert_eq!(env.raw("C").as_deref(), Some("  "));
        let overlay = OverlayEnv {
            values: [("B".to_owned(), "y".to_owned())].into(),
            fallback: env,
        };
        assert_eq!(overlay.var("B").as_deref(), Some("y"));
        assert_eq!(overlay.var("A").as_deref(), Some("x"));
    }

    #[test]
    fn the_config_alias_only_counts_without_the_new_name() {
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(
            config_path_from_alias(&env(&[("SYNAPSOR_MCP_CONFIG", "a.json")])).as_deref(),
            Some("a.json")
        );
        assert_eq!(
            config_path_from_alias(&env(&[
                ("SYNAPSOR_MCP_CONFIG", "a.json"),
                ("SYNAPSOR_CONFIG", "b.json")
            ])),
            None
        );
        assert_eq!(config_path_from_alias(&env(&[])), None);
    }

    #[test]
    fn clocks() {
        let c = FixedClock::at(1_782_205_200_000);
        assert_eq!(c.now_rfc3339(), "2026-06-23T09:00:00.000Z");
        c.set(0);
        assert_eq!(c.now_ms(), 0);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
