//! Nanoseconds per pick of each balancer, through the public API the proxy uses:
//! `BackendState::select` (which also reserves and releases the in-flight counts) and
//! `WeightedSplit::pick`. `cargo bench --bench balancers`; `-- --quick` for a short run.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gantry::balance::{
    Algorithm, BackendState, BalancerConfig, ConsistentHashConfig, Endpoint, HashKey, RequestInfo, WeightedSplit,
};
use http::{HeaderMap, HeaderValue};

const SIZES: [usize; 2] = [10, 1_000];

fn endpoints(n: usize) -> Vec<Endpoint> {
    (0..n)
        .map(|i| Endpoint { address: SocketAddr::from(([10, (i / 250) as u8, (i % 250) as u8, 1], 8080)), ready: true })
        .collect()
}

fn algorithms() -> Vec<(&'static str, Algorithm)> {
    vec![
        ("RoundRobin", Algorithm::RoundRobin),
        ("Random", Algorithm::Random),
        ("LeastRequest", Algorithm::LeastRequest),
        (
            "ConsistentHash(header)",
            Algorithm::ConsistentHash(ConsistentHashConfig {
                key: HashKey::Header("x-user".to_string()),
                bounded_load_permille: None,
            }),
        ),
    ]
}

fn select(c: &mut Criterion) {
    // Requests from 256 different users, so that the hash key changes from pick to pick.
    let requests: Vec<HeaderMap> = (0..256)
        .map(|i| {
            let mut headers = HeaderMap::new();
            headers.insert("x-user", HeaderValue::from_str(&format!("user-{i:05}")).unwrap());
            headers
        })
        .collect();
    let client_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut group = c.benchmark_group("select");
    for (name, algorithm) in algorithms() {
        for n in SIZES {
            let config = BalancerConfig { algorithm: algorithm.clone(), ..BalancerConfig::default() };
            let state = Arc::new(BackendState::new(&endpoints(n), config));
            let mut i = 0usize;
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    let info = RequestInfo { headers: &requests[i % requests.len()], query: None, client_ip };
                    // The Selection is dropped at once, as a finished request's would be.
                    black_box(state.select(black_box(&info), None).map(|s| s.index()))
                })
            });
        }
    }
    group.finish();
}

fn weighted_split(c: &mut Criterion) {
    let mut group = c.benchmark_group("select");
    for n in SIZES {
        // Uneven weights, 1..=10, as a canary rollout across many backendRefs would have.
        let weights: Vec<u32> = (0..n).map(|i| (i % 10) as u32 + 1).collect();
        let split = WeightedSplit::new(&weights).unwrap();
        group.bench_with_input(BenchmarkId::new("WeightedSplit", n), &n, |b, _| b.iter(|| black_box(split.pick())));
    }
    group.finish();
}

criterion_group!(benches, select, weighted_split);
criterion_main!(benches);
