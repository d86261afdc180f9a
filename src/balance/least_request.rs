//! Least request by the power of two random choices: draw two distinct endpoints, send to the
//! one with fewer requests in flight. Nearly as good as scanning for the global minimum, but
//! O(1), and it does not stampede every proxy thread onto the same idle endpoint.

use std::sync::atomic::Ordering;

use rand::Rng;

use super::random::random_eligible;
use super::{Balancer, EndpointStats, RequestInfo};

#[derive(Debug, Default)]
pub struct LeastRequest;

impl Balancer for LeastRequest {
    fn pick(&self, stats: &[EndpointStats], _: &RequestInfo<'_>, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = stats.len();
        let mut rng = rand::rng();
        if n < 2 {
            return random_eligible(n, eligible, &mut rng);
        }
        let a = rng.random_range(0..n);
        // A second index different from the first: draw among n - 1 and skip over `a`.
        let b = (a + 1 + rng.random_range(0..n - 1)) % n;
        let load = |i: usize| stats[i].in_flight.load(Ordering::Relaxed);
        match (eligible(a), eligible(b)) {
            (true, true) => Some(if load(b) < load(a) { b } else { a }),
            (true, false) => Some(a),
            (false, true) => Some(b),
            (false, false) => random_eligible(n, eligible, &mut rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::state::tests::{info, stats};

    #[test]
    fn least_request_starves_a_busy_endpoint() {
        let stats = stats(4);
        stats[0].in_flight.store(50, Ordering::Relaxed);
        stats[1].in_flight.store(1, Ordering::Relaxed);
        let headers = http::HeaderMap::new();
        let mut counts = [0usize; 4];
        for _ in 0..10_000 {
            counts[LeastRequest.pick(&stats, &info(&headers), &|_| true).unwrap()] += 1;
        }
        // Two distinct draws never both land on the busy endpoint, so it gets nothing while the
        // others are idle; the slightly busy one wins only against the busy one.
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[1] < counts[2] / 2 && counts[1] < counts[3] / 2, "{counts:?}");
    }

    #[test]
    fn least_request_balances_a_live_load() {
        // Requests that stay in flight: P2C keeps the spread within one or two of even.
        let stats = stats(5);
        let headers = http::HeaderMap::new();
        for _ in 0..1000 {
            let i = LeastRequest.pick(&stats, &info(&headers), &|_| true).unwrap();
            stats[i].in_flight.fetch_add(1, Ordering::Relaxed);
        }
        let loads: Vec<u32> = stats.iter().map(|s| s.in_flight.load(Ordering::Relaxed)).collect();
        let (min, max) = (loads.iter().min().copied(), loads.iter().max().copied());
        assert!(max.unwrap_or(0) - min.unwrap_or(0) <= 10, "{loads:?}");
    }

    #[test]
    fn least_request_skips_ineligible_endpoints() {
        let stats = stats(3);
        stats[2].in_flight.store(9, Ordering::Relaxed);
        let headers = http::HeaderMap::new();
        for _ in 0..200 {
            assert_eq!(LeastRequest.pick(&stats, &info(&headers), &|i| i == 2), Some(2));
            assert_ne!(LeastRequest.pick(&stats, &info(&headers), &|i| i != 0), Some(0));
        }
        assert_eq!(LeastRequest.pick(&stats, &info(&headers), &|_| false), None);
        assert_eq!(LeastRequest.pick(&stats[..1], &info(&headers), &|_| true), Some(0));
    }
}
