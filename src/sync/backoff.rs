//! Exponential back-off with jitter between failed attempts.
//!
//! Owns: the delay sequence (pure; the caller brings the randomness).
//! Must not: sleep or read a clock.

use std::time::Duration;

/// Doubling delays from `initial` up to `max`, each drawn uniformly from
/// its upper half so that many lines restarting together spread out.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and answers how long to wait; `unit` in `[0, 1)`.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let shift = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let ceiling = self
            .initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max);
        let unit = unit.clamp(0.0, 1.0);
        ceiling.mul_f64(0.5 + 0.5 * unit)
    }

    /// A success: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A uniform number in `[0, 1)` from the operating system.
pub fn jitter() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let top: Vec<_> = (0..6).map(|_| b.next_delay(1.0).as_millis()).collect();
        assert_eq!(top, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.failures(), 6);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
        for _ in 0..100 {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
            let d = b.next_delay(jitter());
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100));
        }
    }

    #[test]
    fn a_success_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        b.next_delay(1.0);
        b.next_delay(1.0);
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
    }

    #[test]
    fn many_failures_never_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        for _ in 0..100 {
            assert!(b.next_delay(1.0) <= Duration::from_secs(300));
        }
    }
}
