//! What the gateway counts per handle, version and 10 seconds: requests, errors, a latency
//! histogram (for p50/p95/p99) and rewards. Counted in memory on the request path, added to the
//! store every few seconds (which also sums them per minute).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kiln_api::Millis;

use crate::store::{TrafficDelta, now_millis};

/// Counted in buckets this long: the store's finest.
pub const BUCKET_MS: Millis = crate::store::FINE_MS;

/// Histogram bucket `i` holds latencies up to `FIRST_US · 2^i` µs (50 µs … ~105 s), the last
/// one everything above.
const FIRST_US: u64 = 50;
pub const LATENCY_BUCKETS: usize = crate::store::LATENCY_SLOTS;

fn upper_us(i: usize) -> u64 {
    FIRST_US << i
}

pub fn latency_bucket(latency: Duration) -> usize {
    let us = latency.as_micros() as u64;
    (0..LATENCY_BUCKETS - 1).find(|&i| us <= upper_us(i)).unwrap_or(LATENCY_BUCKETS - 1)
}

/// The `q` quantile in milliseconds, interpolated within its bucket.
pub fn percentile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let lower = if i == 0 { 0 } else { upper_us(i - 1) } as f64;
            let upper = upper_us(i) as f64;
            let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
            return (lower + within * (upper - lower)) / 1000.0;
        }
        below += count;
    }
    upper_us(LATENCY_BUCKETS - 1) as f64 / 1000.0
}

/// Counts not yet in the store: (handle, version, bucket start) → counts.
#[derive(Default)]
pub struct Counter {
    pending: Mutex<HashMap<(String, i64, Millis), TrafficDelta>>,
}

impl Counter {
    fn with(&self, handle: &str, version: i64, f: impl FnOnce(&mut TrafficDelta)) {
        let bucket = now_millis() / BUCKET_MS * BUCKET_MS;
        let mut pending = self.pending.lock().expect("traffic lock");
        let delta = pending.entry((handle.to_owned(), version, bucket)).or_default();
        if delta.latency.is_empty() {
            delta.latency = vec![0; LATENCY_BUCKETS];
        }
        f(delta);
    }

    pub fn request(&self, handle: &str, version: i64, latency: Duration, error: bool) {
        self.with(handle, version, |d| {
            d.requests += 1;
            d.errors += u64::from(error);
            d.latency[latency_bucket(latency)] += 1;
        });
    }

    pub fn reward(&self, handle: &str, version: i64, reward: f64) {
        self.with(handle, version, |d| {
            d.reward_sum += reward;
            d.reward_count += 1;
        });
    }

    /// Everything counted since the last call, by handle.
    pub fn take(&self) -> HashMap<String, Vec<(i64, Millis, TrafficDelta)>> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("traffic lock"));
        let mut by_handle: HashMap<String, Vec<(i64, Millis, TrafficDelta)>> = HashMap::new();
        for ((handle, version, bucket), delta) in pending {
            by_handle.entry(handle).or_default().push((version, bucket, delta));
        }
        by_handle
    }

    /// Counts [`Counter::take`] gave out that could not be stored: back, to go with the next.
    pub fn put_back(&self, handle: &str, deltas: Vec<(i64, Millis, TrafficDelta)>) {
        let mut pending = self.pending.lock().expect("traffic lock");
        for (version, bucket, delta) in deltas {
            let into = pending.entry((handle.to_owned(), version, bucket)).or_default();
            into.requests += delta.requests;
            into.errors += delta.errors;
            into.reward_sum += delta.reward_sum;
            into.reward_count += delta.reward_count;
            if into.latency.len() < delta.latency.len() {
                into.latency.resize(delta.latency.len(), 0);
            }
            for (slot, count) in into.latency.iter_mut().zip(delta.latency) {
                *slot += count;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_put_back_join_the_next_ones() {
        let counter = Counter::default();
        counter.request("iris", 1, Duration::from_millis(2), false);
        counter.reward("iris", 1, 1.0);
        let taken = counter.take().remove("iris").unwrap();
        counter.request("iris", 1, Duration::from_millis(2), true);
        counter.put_back("iris", taken);
        let (version, _, delta) = counter.take().remove("iris").unwrap().remove(0);
        assert_eq!((version, delta.requests, delta.errors, delta.reward_count, delta.reward_sum), (1, 2, 1, 1, 1.0));
        assert_eq!(delta.latency.iter().sum::<u64>(), 2);
        assert!(counter.take().is_empty());
    }

    #[test]
    fn histogram_percentiles() {
        let mut counts = vec![0u64; LATENCY_BUCKETS];
        for ms in [1u64, 1, 1, 2, 2, 3, 4, 5, 8, 40] {
            counts[latency_bucket(Duration::from_millis(ms))] += 1;
        }
        let p50 = percentile(&counts, 0.5);
        let p99 = percentile(&counts, 0.99);
        assert!((1.6..=3.2).contains(&p50), "{p50}");
        assert!((25.6..=51.2).contains(&p99), "{p99}");
        assert_eq!(percentile(&[0; LATENCY_BUCKETS], 0.5), 0.0);
        assert_eq!(latency_bucket(Duration::from_micros(40)), 0);
        assert_eq!(latency_bucket(Duration::from_secs(1000)), LATENCY_BUCKETS - 1);
    }
}
