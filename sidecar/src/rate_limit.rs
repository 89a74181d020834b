//! The token buckets of `rate_limits.per_tenant` and each capability's `rate_limit`, kept per
//! tenant (and per tenant and capability) for the life of the process.
//!
//! A call takes a token from every bucket that applies, or from none; an empty bucket refuses the
//! call with `RATE_LIMITED` and how long to wait. Buckets that have filled up again are forgotten
//! when the map grows, so memory follows the number of recently active tenants.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use synapsor_core::config::TokenBucket;
use synapsor_core::ratelimit::{Bucket, take_all};
use synapsor_core::{Capability, ToolError};

/// Past this many buckets, full ones are dropped.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    /// `None`: the tenant's bucket; `Some`: the tenant's bucket for this capability.
    capability: Option<String>,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_tenant: Option<TokenBucket>,
    per_capability: HashMap<String, TokenBucket>,
    epoch: Instant,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

impl RateLimiter {
    pub fn new<'a>(per_tenant: Option<TokenBucket>, capabilities: impl IntoIterator<Item = &'a Capability>) -> Self {
        RateLimiter {
            per_tenant,
            per_capability: capabilities
                .into_iter()
                .filter_map(|c| c.rate_limit.map(|l| (c.name.clone(), l)))
                .collect(),
            epoch: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn limit_of(&self, key: &Key) -> Option<TokenBucket> {
        match &key.capability {
            None => self.per_tenant,
            Some(name) => self.per_capability.get(name).copied(),
        }
    }

    /// Takes a token for one call of `capability` by `tenant`, or says how long to wait.
    pub fn admit(&self, tenant: &str, capability: &str) -> Result<(), ToolError> {
        let keys: Vec<(Key, TokenBucket)> = [None, Some(capability.to_owned())]
            .into_iter()
            .map(|capability| Key {
                tenant: tenant.to_owned(),
                capability,
            })
            .filter_map(|k| self.limit_of(&k).map(|l| (k, l)))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        // A poisoned lock only means another call panicked mid-update; the counts are still sane.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|k, b| self.limit_of(k).is_some_and(|l| !b.is_full(&l, now_ms)));
        }
        let mut current: Vec<Bucket> = keys
            .iter()
            .map(|(k, l)| *buckets.entry(k.clone()).or_insert_with(|| Bucket::full(l, now_ms)))
            .collect();
        let mut pairs: Vec<(&mut Bucket, &TokenBucket)> = current.iter_mut().zip(keys.iter().map(|(_, l)| l)).collect();
        let result = take_all(&mut pairs, now_ms);
        for ((k, _), b) in keys.iter().zip(current) {
            buckets.insert(k.clone(), b);
        }
        result.map_err(|wait_ms| {
            ToolError::rate_limited(
                if keys.len() == 2 {
                    "tenant or capability"
                } else if keys[0].0.capability.is_some() {
                    "capability"
                } else {
                    "tenant"
                },
                wait_ms,
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use synapsor_core::ToolCode;

    fn limiter(tenant: Option<TokenBucket>, cap: Option<TokenBucket>) -> RateLimiter {
        RateLimiter {
            per_tenant: tenant,
            per_capability: cap.map(|l| ("billing.read".to_owned(), l)).into_iter().collect(),
            epoch: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    const SLOW: f64 = 0.001;

    #[test]
    fn tenants_have_their_own_buckets() {
        let l = limiter(
            Some(TokenBucket {
                capacity: 2,
                refill_per_second: SLOW,
            }),
            None,
        );
        assert!(l.admit("acme", "billing.read").is_ok());
        assert!(l.admit("acme", "billing.other").is_ok());
        let e = l.admit("acme", "billing.read").unwrap_err();
        assert_eq!(e.code, ToolCode::RateLimited);
        assert!(e.retry_after_ms.is_some_and(|ms| ms > 900_000));
        assert!(l.admit("globex", "billing.read").is_ok());
    }

    #[test]
    fn a_capability_bucket_limits_only_that_capability() {
        let l = limiter(
            Some(TokenBucket {
                capacity: 10,
                refill_per_second: SLOW,
            }),
            Some(TokenBucket {
                capacity: 1,
                refill_per_second: SLOW,
            }),
        );
        assert!(l.admit("acme", "billing.read").is_ok());
        assert_eq!(l.admit("acme", "billing.read").unwrap_err().code, ToolCode::RateLimited);
        // The refused call took nothing from the tenant's bucket: 9 more calls of another tool.
        for _ in 0..9 {
            assert!(l.admit("acme", "billing.other").is_ok());
        }
        assert!(l.admit("acme", "billing.other").is_err());
    }

    #[test]
    fn no_limits_admit_everything() {
        let l = limiter(None, None);
        for _ in 0..1000 {
            assert!(l.admit("acme", "billing.read").is_ok());
        }
        assert!(l.buckets.lock().unwrap_or_else(|p| p.into_inner()).is_empty());
    }
}
