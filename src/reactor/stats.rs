//! How long loop turns take: a log-linear histogram (about 6% resolution) of the work done per
//! turn, from the poll returning to the last write of the turn. A stall of the loop shows up
//! here as a large maximum or p99.9, whatever caused it.

use std::fmt;
use std::time::Duration;

/// Durations below this many microseconds get a bucket each.
const LINEAR: u64 = 32;
/// Sub-buckets per power of two above that (4 bits of precision).
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for any `u64` of microseconds.
const BUCKETS: usize = LINEAR as usize + (64 - 5) * SUB as usize;

/// Loop-turn durations of one reactor.
#[derive(Clone)]
pub struct TurnStats {
    buckets: Box<[u64; BUCKETS]>,
    count: u64,
    total: Duration,
    max: Duration,
}

impl Default for TurnStats {
    fn default() -> Self {
        TurnStats {
            buckets: Box::new([0; BUCKETS]),
            count: 0,
            total: Duration::ZERO,
            max: Duration::ZERO,
        }
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let e = 63 - micros.leading_zeros(); // >= 5
    let sub = (micros >> (e - SUB_BITS)) & (SUB - 1);
    LINEAR as usize + (e as usize - 5) * SUB as usize + sub as usize
}

/// The largest duration (in microseconds, exclusive) that falls into bucket `i`.
fn upper_of(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64 + 1;
    }
    let j = i - LINEAR as usize;
    let e = (j / SUB as usize) as u32 + 5;
    let sub = (j % SUB as usize) as u64;
    (SUB + sub + 1).saturating_mul(1u64 << (e - SUB_BITS))
}

impl TurnStats {
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(micros)] += 1;
        self.count += 1;
        self.total += d;
        self.max = self.max.max(d);
    }

    /// Turns recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The longest turn.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Mean turn duration.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            self.total.div_f64(self.count as f64)
        }
    }

    /// The duration that `q` (0..=1) of the turns did not exceed, to the histogram's resolution
    /// (the upper end of the bucket, never above the maximum).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(upper_of(i)).min(self.max);
            }
        }
        self.max
    }

    /// Forgets everything recorded.
    pub fn reset(&mut self) {
        *self = TurnStats::default();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl fmt::Display for TurnStats {
    /// `turns=N p50_ms=.. p99_ms=.. p999_ms=.. max_ms=..` (the form the bench tool parses).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "turns={} mean_ms={:.3} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
            self.count,
            ms(self.mean()),
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.quantile(0.999)),
            ms(self.max)
        )
    }
}

impl fmt::Debug for TurnStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v} -> {b}");
            assert!(b >= last, "buckets must not decrease: {v}");
            assert!(
                v < upper_of(b) || upper_of(b) == u64::MAX,
                "{v} above bucket {b}"
            );
            last = b;
        }
    }

    #[test]
    fn quantiles_within_resolution() {
        let mut s = TurnStats::default();
        for i in 1..=1000u64 {
            s.record(Duration::from_micros(i * 10)); // 10 us .. 10 ms
        }
        s.record(Duration::from_secs(3)); // one stall
        assert_eq!(s.count(), 1001);
        assert_eq!(s.max(), Duration::from_secs(3));
        let p50 = s.quantile(0.5).as_micros() as f64;
        assert!((5000.0..=5000.0 * 1.07).contains(&p50), "p50 {p50}");
        let p99 = s.quantile(0.99).as_micros() as f64;
        assert!((9900.0..=9900.0 * 1.07).contains(&p99), "p99 {p99}");
        // The stall is the top 0.1%: p99.9 is still a normal turn, the max shows it.
        assert!(s.quantile(0.999) < Duration::from_millis(11));
        assert_eq!(s.quantile(1.0), Duration::from_secs(3));
        let line = s.to_string();
        assert!(line.starts_with("turns=1001 "), "{line}");
        assert!(line.ends_with("max_ms=3000.000"), "{line}");
        s.reset();
        assert_eq!(s.quantile(0.5), Duration::ZERO);
    }
}
