//! Round-robin over one atomic cursor: no lock on the request path.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, EndpointStats, RequestInfo};

/// Each endpoint in turn; skips ejected ones.
#[derive(Debug, Default)]
pub struct RoundRobin {
    cursor: AtomicUsize,
}

impl Balancer for RoundRobin {
    fn pick(&self, stats: &[EndpointStats], _: &RequestInfo<'_>, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = stats.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let skipped = (0..n).find(|&i| eligible((start + i) % n))?;
        // Move the cursor past the skipped endpoints too. Otherwise the endpoint after an
        // ejected one would also take the ejected one's turn and get twice the traffic.
        if skipped > 0 {
            self.cursor.fetch_add(skipped, Ordering::Relaxed);
        }
        Some((start + skipped) % n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::state::tests::{info, stats};

    #[test]
    fn round_robin_is_even_over_any_window() {
        let rr = RoundRobin::default();
        let stats = stats(4);
        let headers = http::HeaderMap::new();
        let mut counts = [0usize; 4];
        for _ in 0..4 * 3 {
            counts[rr.pick(&stats, &info(&headers), &|_| true).unwrap()] += 1;
        }
        assert_eq!(counts, [3, 3, 3, 3]);
    }

    #[test]
    fn round_robin_is_even_over_every_sliding_window() {
        let rr = RoundRobin::default();
        let stats = stats(5);
        let headers = http::HeaderMap::new();
        let picks: Vec<usize> = (0..200).map(|_| rr.pick(&stats, &info(&headers), &|_| true).unwrap()).collect();
        for window in picks.windows(15) {
            let mut counts = [0usize; 5];
            for &i in window {
                counts[i] += 1;
            }
            assert_eq!(counts, [3; 5]);
        }
    }

    #[test]
    fn round_robin_shares_a_skipped_turn_evenly() {
        let rr = RoundRobin::default();
        let stats = stats(4);
        let headers = http::HeaderMap::new();
        let mut counts = [0usize; 4];
        for _ in 0..3 * 30 {
            counts[rr.pick(&stats, &info(&headers), &|i| i != 1).unwrap()] += 1;
        }
        assert_eq!(counts, [30, 0, 30, 30]);
    }

    #[test]
    fn round_robin_skips_ineligible_endpoints() {
        let rr = RoundRobin::default();
        let stats = stats(3);
        let headers = http::HeaderMap::new();
        for _ in 0..9 {
            assert_ne!(rr.pick(&stats, &info(&headers), &|i| i != 1), Some(1));
        }
        assert_eq!(rr.pick(&stats, &info(&headers), &|_| false), None);
    }
}
