//! Smooth weighted round-robin, as nginx does it: each pick adds every weight to its current
//! value, takes the largest, and subtracts the total from it. 5,1,1 gives a,a,b,a,c,a,a instead
//! of a burst of five.
//!
//! The sequence repeats every `total` picks, so it is computed once and walked with an atomic
//! cursor: no lock on the request path.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Splits picks between choices in proportion to their weights; zero weights are never picked.
#[derive(Debug)]
pub struct WeightedSplit {
    sequence: Box<[u32]>,
    cursor: AtomicUsize,
}

/// Above this total the cycle is scaled down (weights keep their proportions to within 1/4096).
const MAX_CYCLE: u64 = 4096;

impl WeightedSplit {
    /// `None` when every weight is zero.
    pub fn new(weights: &[u32]) -> Option<Self> {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return None;
        }
        let weights: Vec<i64> = if total > MAX_CYCLE {
            // Keep every non-zero weight at least 1 so that no backend is starved.
            weights
                .iter()
                .map(|&w| if w == 0 { 0 } else { ((u64::from(w) * MAX_CYCLE / total).max(1)) as i64 })
                .collect()
        } else {
            weights.iter().map(|&w| i64::from(w)).collect()
        };
        let total: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut sequence = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for i in 0..weights.len() {
                current[i] += weights[i];
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            sequence.push(best as u32);
        }
        Some(Self { sequence: sequence.into_boxed_slice(), cursor: AtomicUsize::new(0) })
    }

    /// The index of the next choice.
    pub fn pick(&self) -> usize {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed) % self.sequence.len();
        self.sequence[i] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_weights_interleave_like_nginx() {
        let split = WeightedSplit::new(&[5, 1, 1]).unwrap();
        let picks: Vec<usize> = (0..7).map(|_| split.pick()).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        // The cycle repeats.
        let again: Vec<usize> = (0..7).map(|_| split.pick()).collect();
        assert_eq!(again, picks);
    }

    #[test]
    fn zero_weight_is_never_picked() {
        let split = WeightedSplit::new(&[0, 3, 0, 1]).unwrap();
        let mut counts = [0; 4];
        for _ in 0..400 {
            counts[split.pick()] += 1;
        }
        assert_eq!(counts, [0, 300, 0, 100]);
        assert!(WeightedSplit::new(&[0, 0]).is_none());
    }

    #[test]
    fn huge_weights_keep_their_proportions() {
        let split = WeightedSplit::new(&[1_000_000, 3_000_000, 1]).unwrap();
        let mut counts = [0usize; 3];
        for _ in 0..split.sequence.len() {
            counts[split.pick()] += 1;
        }
        let ratio = counts[1] as f64 / counts[0] as f64;
        assert!((ratio - 3.0).abs() < 0.01, "{counts:?}");
        assert!(counts[2] >= 1, "a tiny weight still gets traffic");
    }
}
