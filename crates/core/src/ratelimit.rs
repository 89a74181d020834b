//! Token buckets: the arithmetic of `rate_limits` and a capability's `rate_limit`.
//!
//! Pure: the caller passes the time (milliseconds on a monotonic clock) and keeps the buckets
//! (one per tenant, one per tenant and capability). A bucket starts full; a call takes one token;
//! tokens come back continuously at the refill rate, up to the capacity.

use crate::config::TokenBucket;

/// The state of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    tokens: f64,
    updated_ms: u64,
}

impl Bucket {
    /// A full bucket.
    pub fn full(limit: &TokenBucket, now_ms: u64) -> Bucket {
        Bucket {
            tokens: f64::from(limit.capacity),
            updated_ms: now_ms,
        }
    }

    fn refill(&mut self, limit: &TokenBucket, now_ms: u64) {
        let elapsed_s = now_ms.saturating_sub(self.updated_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed_s * limit.refill_per_second).min(f64::from(limit.capacity));
        self.updated_ms = self.updated_ms.max(now_ms);
    }

    /// Milliseconds until one token is there; 0 when one is there now.
    pub fn wait_ms(&mut self, limit: &TokenBucket, now_ms: u64) -> u64 {
        self.refill(limit, now_ms);
        if self.tokens >= 1.0 {
            0
        } else {
            (((1.0 - self.tokens) / limit.refill_per_second) * 1000.0)
                .ceil()
                .max(1.0) as u64
        }
    }

    /// Takes one token (call only after [`Bucket::wait_ms`] said 0 at the same time).
    pub fn take(&mut self) {
        self.tokens -= 1.0;
    }

    /// True when the bucket is full again at `now_ms`: forgetting it changes nothing.
    pub fn is_full(&mut self, limit: &TokenBucket, now_ms: u64) -> bool {
        self.refill(limit, now_ms);
        self.tokens >= f64::from(limit.capacity)
    }
}

/// Takes one token from every bucket, or from none: when any is empty, the longest wait.
pub fn take_all(buckets: &mut [(&mut Bucket, &TokenBucket)], now_ms: u64) -> Result<(), u64> {
    let wait = buckets
        .iter_mut()
        .map(|(b, limit)| b.wait_ms(limit, now_ms))
        .max()
        .unwrap_or(0);
    if wait > 0 {
        return Err(wait);
    }
    for (b, _) in buckets.iter_mut() {
        b.take();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: TokenBucket = TokenBucket {
        capacity: 3,
        refill_per_second: 2.0,
    };

    #[test]
    fn a_burst_up_to_capacity_then_the_refill_rate() {
        let mut b = Bucket::full(&LIMIT, 1_000);
        for _ in 0..3 {
            assert_eq!(b.wait_ms(&LIMIT, 1_000), 0);
            b.take();
        }
        assert_eq!(b.wait_ms(&LIMIT, 1_000), 500);
        assert_eq!(b.wait_ms(&LIMIT, 1_200), 300);
        assert_eq!(b.wait_ms(&LIMIT, 1_500), 0);
        b.take();
        assert!(!b.is_full(&LIMIT, 1_500));
        // Never above capacity, however long it waits.
        assert!(b.is_full(&LIMIT, 100_000));
        for _ in 0..3 {
            assert_eq!(b.wait_ms(&LIMIT, 100_000), 0);
            b.take();
        }
        assert!(b.wait_ms(&LIMIT, 100_000) > 0);
    }

    #[test]
    fn all_or_none() {
        let slow = TokenBucket {
            capacity: 1,
            refill_per_second: 0.5,
        };
        let mut tenant = Bucket::full(&LIMIT, 0);
        let mut cap = Bucket::full(&slow, 0);
        assert!(take_all(&mut [(&mut tenant, &LIMIT), (&mut cap, &slow)], 0).is_ok());
        // The capability's bucket is empty: the tenant's keeps its tokens.
        assert_eq!(take_all(&mut [(&mut tenant, &LIMIT), (&mut cap, &slow)], 0), Err(2000));
        assert_eq!(tenant.wait_ms(&LIMIT, 0), 0);
        tenant.take();
        tenant.take();
        assert_eq!(tenant.wait_ms(&LIMIT, 0), 500);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut b = Bucket::full(&LIMIT, 5_000);
        b.take();
        b.take();
        b.take();
        assert_eq!(b.wait_ms(&LIMIT, 4_000), 500);
    }
}
