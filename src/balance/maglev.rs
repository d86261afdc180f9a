//! Consistent hashing with a Maglev lookup table (Eisenbud et al., NSDI 2016), with optional
//! bounded loads (Mirrokni et al., 2018).
//!
//! Each endpoint walks its own permutation of the table's slots (an offset and a skip derived
//! from its address) and the endpoints take turns claiming their next free slot until the table
//! is full. Every endpoint ends up with M/n slots give or take one, and removing an endpoint
//! frees its slots while the others mostly keep theirs: only about 1/n of the keys move. A
//! lookup is one hash and one index. The table is built once, in the constructor, because a
//! `BackendState` (and so its balancer) is rebuilt only when the endpoint set changes.

use std::fmt;
use std::sync::atomic::Ordering;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::hash_key::{cookie, key_hash, minted_cookie};
use super::{Balancer, ConsistentHashConfig, Endpoint, EndpointStats, HashKey, RequestInfo, RoundRobin};

/// Table size: prime, and at least 100 slots per endpoint up to 655 endpoints, which keeps
/// the imbalance and the extra movement small (the paper's advice). One size for every backend:
/// a size picked by endpoint count (2039 for a few, 65537 for many) remaps nearly every key
/// when a removal crosses the threshold (measured: 95% moved going from 21 to 20 endpoints),
/// and a smaller table moves more keys than needed (2039 slots, 20 endpoints: 7.4% moved
/// instead of 5%). 128 KiB of `u16` per consistent-hash backend, built in about a millisecond.
const TABLE_SIZE: usize = 65537;

/// A slot no endpoint claimed (only when there are more endpoints than this, or none).
const UNCLAIMED: u16 = u16::MAX;

const NO_SLOT: u32 = u32::MAX;

/// Picks the endpoint that owns the request key's slot, or walks on along the table when that
/// endpoint is ejected or over its bounded load. Requests without the key are spread round-robin.
pub struct ConsistentHash {
    /// Slot -> endpoint index. Endpoints past index 65534 get no slot.
    table: Box<[u16]>,
    /// One slot each endpoint owns (or `NO_SLOT`), to mint affinity cookies that land on it.
    owned_slot: Box<[u32]>,
    key: HashKey,
    bounded_load_permille: Option<u32>,
    /// For requests without a key.
    fallback: RoundRobin,
}

impl fmt::Debug for ConsistentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsistentHash")
            .field("table_size", &self.table.len())
            .field("key", &self.key)
            .field("bounded_load_permille", &self.bounded_load_permille)
            .finish()
    }
}

impl ConsistentHash {
    pub fn new(endpoints: &[Endpoint], config: &ConsistentHashConfig) -> Self {
        let table = populate(endpoints, TABLE_SIZE);
        let mut owned_slot = vec![NO_SLOT; endpoints.len()];
        for (slot, &owner) in table.iter().enumerate().rev() {
            if let Some(first) = owned_slot.get_mut(usize::from(owner)) {
                *first = slot as u32;
            }
        }
        Self {
            table,
            owned_slot: owned_slot.into_boxed_slice(),
            key: config.key.clone(),
            bounded_load_permille: config.bounded_load_permille,
            fallback: RoundRobin::default(),
        }
    }

    /// The slot a key hash lands on.
    fn slot(&self, hash: u64) -> usize {
        (hash % self.table.len() as u64) as usize
    }

    /// The endpoint for a key hash: the owner of its slot, or the next owner along the table
    /// that is eligible and under the load bound. When every eligible endpoint is over the
    /// bound (only possible while counts change under us), the first eligible one found.
    fn pick_hash(&self, stats: &[EndpointStats], hash: u64, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let bound = match self.bounded_load_permille {
            Some(permille) => Some(load_bound(stats, permille, eligible)?),
            None => None,
        };
        let fits = |i: usize| match bound {
            Some(bound) => stats[i].in_flight.load(Ordering::Relaxed) < bound,
            None => true,
        };
        let start = self.slot(hash);
        let mut first_eligible = None;
        for step in 0..self.table.len() {
            let i = usize::from(self.table[(start + step) % self.table.len()]);
            if i >= stats.len() || !eligible(i) {
                // Without a bound nothing was counted yet: do not walk a whole table for a
                // backend whose endpoints are all out.
                if step == 0 && bound.is_none() && !(0..stats.len()).any(eligible) {
                    return None;
                }
                continue;
            }
            if fits(i) {
                return Some(i);
            }
            first_eligible.get_or_insert(i);
        }
        first_eligible
    }
}

/// The most requests in flight an endpoint may have before this one:
/// ceil(factor × (eligible in flight + 1) / eligible endpoints). None when none is eligible.
/// The least loaded endpoint is always under it, so the walk along the table ends.
fn load_bound(stats: &[EndpointStats], permille: u32, eligible: &dyn Fn(usize) -> bool) -> Option<u32> {
    let (mut count, mut total) = (0u64, 0u64);
    for (i, s) in stats.iter().enumerate() {
        if eligible(i) {
            count += 1;
            total += u64::from(s.in_flight.load(Ordering::Relaxed));
        }
    }
    if count == 0 {
        return None;
    }
    let bound = (u64::from(permille) * (total + 1)).div_ceil(1000 * count);
    Some(u32::try_from(bound).unwrap_or(u32::MAX))
}

/// Fills a table of `size` (prime) slots with endpoint indices, Maglev's way.
fn populate(endpoints: &[Endpoint], size: usize) -> Box<[u16]> {
    let mut table = vec![UNCLAIMED; size];
    let endpoints = &endpoints[..endpoints.len().min(usize::from(UNCLAIMED))];
    if endpoints.is_empty() {
        return table.into_boxed_slice();
    }
    let m = size as u64;
    // Each endpoint's next position in its permutation, and its skip. The skip is in 1..m and
    // m is prime, so each permutation visits every slot.
    let mut walkers: Vec<(u64, u64)> = endpoints
        .iter()
        .map(|e| {
            let name = e.address.to_string();
            let offset = xxh3_64_with_seed(name.as_bytes(), 0) % m;
            let skip = xxh3_64_with_seed(name.as_bytes(), 1) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut filled = 0;
    while filled < size {
        for (index, (position, skip)) in walkers.iter_mut().enumerate() {
            while table[*position as usize] != UNCLAIMED {
                *position = (*position + *skip) % m;
            }
            table[*position as usize] = index as u16;
            *position = (*position + *skip) % m;
            filled += 1;
            if filled == size {
                break;
            }
        }
    }
    table.into_boxed_slice()
}

impl Balancer for ConsistentHash {
    fn pick(
        &self,
        stats: &[EndpointStats],
        request: &RequestInfo<'_>,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        match key_hash(&self.key, request) {
            Some(hash) => self.pick_hash(stats, hash, eligible),
            None => self.fallback.pick(stats, request, eligible),
        }
    }

    /// For a request without the affinity cookie: a cookie whose value is a hash landing on a
    /// slot that `index` owns, so the next request goes where this one went.
    fn affinity_cookie(&self, request: &RequestInfo<'_>, index: usize) -> Option<String> {
        let HashKey::Cookie { name, ttl } = &self.key else { return None };
        if cookie(request, name).is_some() {
            return None;
        }
        let slot = *self.owned_slot.get(index).filter(|&&s| s != NO_SLOT)?;
        let m = self.table.len() as u64;
        // A random multiple of m plus the slot; halved first so that adding cannot overflow.
        let hash = (rand::random::<u64>() >> 1) / m * m + u64::from(slot);
        let max_age = ttl.map(|t| format!("; Max-Age={}", t.as_secs().max(1))).unwrap_or_default();
        Some(format!("{name}={}; Path=/; HttpOnly{max_age}", minted_cookie(hash)))
    }
}

#[cfg(test)]
#[path = "maglev_tests.rs"]
mod tests;
