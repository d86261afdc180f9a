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
        (0..n).map(|i| (start + i) % n).find(|&i| eligible(i))
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
