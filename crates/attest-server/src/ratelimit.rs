//! A token bucket per key, in memory: the inbound trigger URL is limited per
//! template, so a sender in a loop (or someone guessing secrets) cannot start
//! runs or spend the server faster than the configured rate.
//!
//! The map is bounded: when it is full, buckets that have refilled (the same
//! as new ones) are dropped; if none has, the request is refused like an
//! empty bucket, so memory never grows with the number of keys tried.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// How fast a key may be used: `burst` at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Rate { per_minute: 60, burst: 30 }
    }
}

/// Most keys the limiter tracks at once.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Limiter {
        Limiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    fn refill_per_sec(&self) -> f64 {
        f64::from(self.rate.per_minute.max(1)) / 60.0
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let burst = f64::from(self.rate.burst.max(1));
        (b.tokens + now.duration_since(b.at).as_secs_f64() * self.refill_per_sec()).min(burst)
    }

    /// Takes one token for `key`: `Ok` if there was one, else the seconds to
    /// wait until there is (for `Retry-After`).
    pub fn take(&self, key: &str) -> Result<(), u64> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let burst = f64::from(self.rate.burst.max(1));
        // The epsilon keeps float noise from adding a second to an exact wait.
        let wait_for = |tokens: f64| ((1.0 - tokens) / self.refill_per_sec() - 1e-9).ceil().max(1.0) as u64;
        let Ok(mut map) = self.buckets.lock() else { return Err(1) };
        if !map.contains_key(key) && map.len() >= MAX_KEYS {
            map.retain(|_, b| self.refilled(*b, now) < burst);
            if map.len() >= MAX_KEYS {
                return Err(wait_for(0.0));
            }
        }
        let bucket = map.entry(key.to_string()).or_insert(Bucket { tokens: burst, at: now });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket { tokens: tokens - 1.0, at: now };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(wait_for(tokens))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_applies_per_key() {
        let limiter = Limiter::new(Rate { per_minute: 60, burst: 3 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take_at("a", t0), Ok(()));
        }
        assert_eq!(limiter.take_at("a", t0), Err(1), "one token a second");
        assert_eq!(limiter.take_at("b", t0), Ok(()), "another key has its own bucket");
        assert_eq!(limiter.take_at("a", t0 + Duration::from_millis(1_000)), Ok(()));
        assert_eq!(limiter.take_at("a", t0 + Duration::from_millis(1_000)), Err(1));
    }

    #[test]
    fn a_slow_rate_says_how_long_to_wait() {
        let limiter = Limiter::new(Rate { per_minute: 2, burst: 1 });
        let t0 = Instant::now();
        assert_eq!(limiter.take_at("a", t0), Ok(()));
        assert_eq!(limiter.take_at("a", t0), Err(30));
        assert_eq!(limiter.take_at("a", t0 + Duration::from_secs(20)), Err(10));
    }

    #[test]
    fn the_map_stays_bounded_and_drops_only_idle_buckets() {
        let limiter = Limiter::new(Rate { per_minute: 60, burst: 1 });
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            assert_eq!(limiter.take_at(&format!("k{i}"), t0), Ok(()));
        }
        assert!(limiter.take_at("one-more", t0).is_err(), "no room while every bucket is in use");
        let later = t0 + Duration::from_secs(2);
        assert_eq!(limiter.take_at("one-more", later), Ok(()), "refilled buckets make room");
        assert!(limiter.buckets.lock().expect("not poisoned").len() <= MAX_KEYS);
    }
}
