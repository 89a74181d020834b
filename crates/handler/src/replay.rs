//! Rejecting a second use of an idempotency key.
//!
//! **Production handlers must persist idempotency in their own database, in the same
//! transaction as the write**: insert the idempotency key into a receipts table with a unique
//! constraint, do the guarded update, commit both or neither. Then a retry after a crash, a
//! duplicate delivery or a replayed request finds the key and answers `already_applied`
//! without writing twice, and a rolled-back write leaves no key behind. [`SeenKeys`] is an
//! in-memory stand-in for tests, demos and single-process handlers whose writes live in the
//! same memory; it forgets everything on restart.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::error::VerifyError;

/// Claims idempotency keys. A claim is atomic: of two concurrent claims of one key, exactly one
/// succeeds.
pub trait ReplayGuard {
    /// Records `idempotency_key` as used, or returns [`VerifyError::Replayed`] when it already
    /// was (answer [`crate::HandlerReceipt::already_applied`]). Claim before the version check:
    /// after an applied write the version has moved, and a repeat must still read as
    /// `already_applied`, not as a conflict.
    fn claim(&self, idempotency_key: &str) -> Result<(), VerifyError>;

    /// Forgets a claim whose write did not commit (a guard refused it, it failed or was rolled
    /// back, or it was a dry run), so a later attempt is judged afresh. Only an applied write
    /// keeps its key.
    fn release(&self, idempotency_key: &str);
}

/// An in-memory [`ReplayGuard`]: not durable, not shared between processes.
#[derive(Debug, Default)]
pub struct SeenKeys {
    keys: Mutex<HashSet<String>>,
}

impl SeenKeys {
    pub fn new() -> Self {
        SeenKeys::default()
    }

    pub fn contains(&self, idempotency_key: &str) -> bool {
        self.lock().contains(idempotency_key)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding the lock cannot leave the set half-updated (single insert or
        // remove), so a poisoned lock is still consistent.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ReplayGuard for SeenKeys {
    fn claim(&self, idempotency_key: &str) -> Result<(), VerifyError> {
        if self.lock().insert(idempotency_key.to_owned()) {
            Ok(())
        } else {
            Err(VerifyError::Replayed(idempotency_key.to_owned()))
        }
    }

    fn release(&self, idempotency_key: &str) {
        self.lock().remove(idempotency_key);
    }
}

impl<G: ReplayGuard + ?Sized> ReplayGuard for &G {
    fn claim(&self, idempotency_key: &str) -> Result<(), VerifyError> {
        (**self).claim(idempotency_key)
    }

    fn release(&self, idempotency_key: &str) {
        (**self).release(idempotency_key)
    }
}

impl<G: ReplayGuard + ?Sized> ReplayGuard for std::sync::Arc<G> {
    fn claim(&self, idempotency_key: &str) -> Result<(), VerifyError> {
        (**self).claim(idempotency_key)
    }

    fn release(&self, idempotency_key: &str) {
        (**self).release(idempotency_key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn second_claim_is_a_replay_until_released() {
        let seen = SeenKeys::new();
        seen.claim("p1:1").unwrap();
        assert_eq!(seen.claim("p1:1").unwrap_err().code(), "REPLAYED");
        seen.claim("p2:1").unwrap();
        seen.release("p1:1");
        seen.claim("p1:1").unwrap();
        assert_eq!(seen.len(), 2);
    }
}
