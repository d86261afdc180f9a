//! Uniform random choice. Stateless, so it needs no coordination between threads at all: each
//! thread draws from its own `rand::rng()`.

use rand::Rng;

use super::{Balancer, EndpointStats, RequestInfo};

/// Any eligible endpoint, each with the same chance.
#[derive(Debug, Default)]
pub struct Random;

impl Balancer for Random {
    fn pick(&self, stats: &[EndpointStats], _: &RequestInfo<'_>, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        random_eligible(stats.len(), eligible, &mut rand::rng())
    }
}

/// Draws a few times, which almost always lands on an eligible endpoint; then counts the
/// eligible ones and takes one of them uniformly. Scanning forward from an ineligible draw
/// instead would hand the ejected endpoint's share to its right-hand neighbour.
pub(super) fn random_eligible(n: usize, eligible: &dyn Fn(usize) -> bool, rng: &mut impl Rng) -> Option<usize> {
    if n == 0 {
        return None;
    }
    for _ in 0..3 {
        let i = rng.random_range(0..n);
        if eligible(i) {
            return Some(i);
        }
    }
    let count = (0..n).filter(|&i| eligible(i)).count();
    if count == 0 {
        return None;
    }
    let nth = rng.random_range(0..count);
    (0..n).filter(|&i| eligible(i)).nth(nth)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::balance::state::tests::{info, stats};

    /// Pearson's chi-square statistic of `counts` against a uniform spread.
    pub(crate) fn chi_square(counts: &[usize]) -> f64 {
        let total: usize = counts.iter().sum();
        let expected = total as f64 / counts.len() as f64;
        counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum()
    }

    #[test]
    fn random_spreads_uniformly() {
        let stats = stats(10);
        let headers = http::HeaderMap::new();
        let mut counts = [0usize; 10];
        for _ in 0..100_000 {
            counts[Random.pick(&stats, &info(&headers), &|_| true).unwrap()] += 1;
        }
        // 9 degrees of freedom: the 99.99th percentile is about 33.7; a broken spread (one
        // endpoint favoured by even 5%) scores in the hundreds.
        let chi = chi_square(&counts);
        assert!(chi < 33.7, "chi-square {chi} for {counts:?}");
    }

    #[test]
    fn random_skips_ineligible_and_keeps_the_rest_uniform() {
        let stats = stats(5);
        let headers = http::HeaderMap::new();
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[Random.pick(&stats, &info(&headers), &|i| i != 1 && i != 2).unwrap()] += 1;
        }
        assert_eq!((counts[1], counts[2]), (0, 0));
        let chi = chi_square(&[counts[0], counts[3], counts[4]]);
        assert!(chi < 18.5, "chi-square {chi} for {counts:?}");
        assert_eq!(Random.pick(&stats, &info(&headers), &|_| false), None);
        assert_eq!(Random.pick(&[], &info(&headers), &|_| true), None);
    }

    #[test]
    fn random_finds_the_one_eligible_endpoint_among_many() {
        let stats = stats(100);
        let headers = http::HeaderMap::new();
        for _ in 0..100 {
            assert_eq!(Random.pick(&stats, &info(&headers), &|i| i == 42), Some(42));
        }
    }
}
