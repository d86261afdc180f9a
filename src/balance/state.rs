//! Per-backend runtime state: the endpoint set, in-flight counts, failures and ejections.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::{
    Algorithm, Balancer, BalancerConfig, ConsistentHash, Endpoint, LeastRequest, Random, RequestInfo, RoundRobin,
};

/// Counters of one endpoint, shared by every request that picks it.
#[derive(Debug, Default)]
pub struct EndpointStats {
    pub in_flight: AtomicU32,
    consecutive_failures: AtomicU32,
    /// Milliseconds since `EPOCH` until which the endpoint is ejected; 0 when it is not.
    ejected_until: AtomicU64,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_millis() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

impl EndpointStats {
    fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }
}

/// The endpoints that get traffic, sorted and without duplicates: the ready ones, or all of
/// them (serving but terminating) when none is ready.
pub(super) fn active_endpoints(endpoints: &[Endpoint]) -> Vec<Endpoint> {
    let mut active: Vec<Endpoint> = endpoints.iter().copied().filter(|e| e.ready).collect();
    if active.is_empty() {
        active = endpoints.to_vec();
    }
    active.sort();
    active.dedup_by_key(|e| e.address);
    active
}

/// One endpoint as `/config` and the metrics see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointSnapshot {
    pub address: std::net::SocketAddr,
    pub in_flight: u32,
    pub ejected: bool,
}

/// A backend's endpoints and balancer. Built by the `Registry`, shared by every table that
/// has the same backend with the same endpoints and policy.
#[derive(Debug, Serialize)]
pub struct BackendState {
    /// The endpoints that get traffic: the ready ones, or the serving-but-terminating ones
    /// when none is ready.
    endpoints: Box<[Endpoint]>,
    /// Each endpoint's address as text, made once: the metrics' `endpoint` label.
    #[serde(skip)]
    labels: Box<[Box<str>]>,
    #[serde(skip)]
    stats: Box<[EndpointStats]>,
    #[serde(skip)]
    balancer: Box<dyn Balancer>,
    config: BalancerConfig,
    /// Requests between `select` and the drop of their `Selection`, over all endpoints: what
    /// `ConnectionLimits` caps. Kept apart from the per-endpoint counts so that the check and
    /// the increment are one compare-and-swap.
    #[serde(skip)]
    in_flight: AtomicU32,
    /// Taken only when a failure reaches the ejection threshold (never to pick): makes "count
    /// the ejected endpoints, then eject one more" atomic, so that concurrent failures cannot
    /// eject more than `max_ejected_percent` between them. Ejections expire by time alone, so
    /// there is no counter that a compare-and-swap could keep exact instead.
    #[serde(skip)]
    ejection: Mutex<()>,
}

/// Why no endpoint could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("the backend has no endpoint to send to")]
    NoEndpoint,
    /// `maxConnections + maxPendingRequests` requests are already in flight to the backend.
    #[error("the backend has {0} requests in flight, its limit")]
    Overloaded(u32),
}

/// An endpoint chosen for one request; counts as in flight until dropped.
#[derive(Debug)]
pub struct Selection {
    state: Arc<BackendState>,
    index: usize,
    set_cookie: Option<Box<str>>,
}

impl Selection {
    pub fn address(&self) -> std::net::SocketAddr {
        self.state.endpoints[self.index].address
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// The endpoint's address as text, for metric labels (no allocation per request).
    pub fn label(&self) -> &str {
        &self.state.labels[self.index]
    }

    /// A `Set-Cookie` header value for the response, when the backend hashes on a cookie that
    /// the request did not carry: it sends the client's next requests to this endpoint.
    pub fn set_cookie(&self) -> Option<&str> {
        self.set_cookie.as_deref()
    }

    /// The request reached the endpoint and got an answer.
    pub fn succeeded(&self) {
        self.state.stats[self.index].consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// The endpoint refused or broke the connection. Returns true when this failure ejected it.
    pub fn failed(&self) -> bool {
        self.state.record_failure(self.index)
    }
}

impl Drop for Selection {
    fn drop(&mut self) {
        self.state.stats[self.index].in_flight.fetch_sub(1, Ordering::Relaxed);
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl BackendState {
    pub fn new(endpoints: &[Endpoint], config: BalancerConfig) -> Self {
        Self::from_active(active_endpoints(endpoints), config)
    }

    /// Builds the state for endpoints already passed through `active_endpoints`. The balancer
    /// is built here, once: a Maglev table costs a millisecond, so the registry compares the
    /// active set before calling this.
    pub(super) fn from_active(active: Vec<Endpoint>, config: BalancerConfig) -> Self {
        let stats = active.iter().map(|_| EndpointStats::default()).collect();
        let balancer: Box<dyn Balancer> = match &config.algorithm {
            Algorithm::RoundRobin => Box::new(RoundRobin::default()),
            Algorithm::Random => Box::new(Random),
            Algorithm::LeastRequest => Box::new(LeastRequest),
            Algorithm::ConsistentHash(hash) => Box::new(ConsistentHash::new(&active, hash)),
        };
        let labels = active.iter().map(|e| e.address.to_string().into_boxed_str()).collect();
        Self {
            endpoints: active.into_boxed_slice(),
            labels,
            stats,
            balancer,
            config,
            in_flight: AtomicU32::new(0),
            ejection: Mutex::new(()),
        }
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    pub fn config(&self) -> &BalancerConfig {
        &self.config
    }

    /// Requests in flight to the whole backend (what the connection limits count).
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests in flight to endpoint `index`; None when there is no such endpoint.
    pub fn endpoint_in_flight(&self, index: usize) -> Option<u32> {
        Some(self.stats.get(index)?.in_flight.load(Ordering::Relaxed))
    }

    /// Whether endpoint `index` is ejected now; None when there is no such endpoint.
    pub fn endpoint_ejected(&self, index: usize) -> Option<bool> {
        Some(self.stats.get(index)?.is_ejected(now_millis()))
    }

    /// Every endpoint with its in-flight count and ejection, for `/config` and the metrics.
    pub fn snapshot(&self) -> Vec<EndpointSnapshot> {
        let now = now_millis();
        self.endpoints
            .iter()
            .zip(self.stats.iter())
            .map(|(e, s)| EndpointSnapshot {
                address: e.address,
                in_flight: s.in_flight.load(Ordering::Relaxed),
                ejected: s.is_ejected(now),
            })
            .collect()
    }

    /// Picks an endpoint for a request, avoiding ejected ones and `exclude` (the endpoint a
    /// failed first attempt went to). When every endpoint is ejected, picks among all of them:
    /// the least bad answer beats none. Fails at once with `Overloaded` when the backend
    /// already has as many requests in flight as its connection limits allow; the proxy should
    /// drop a failed attempt's `Selection` before selecting for its retry, or the retry counts
    /// twice.
    pub fn select(
        self: &Arc<Self>,
        request: &RequestInfo<'_>,
        exclude: Option<usize>,
    ) -> Result<Selection, SelectError> {
        self.reserve()?;
        let now = now_millis();
        let healthy = |i: usize| Some(i) != exclude && !self.stats[i].is_ejected(now);
        let picked = self
            .balancer
            .pick(&self.stats, request, &healthy)
            .or_else(|| self.balancer.pick(&self.stats, request, &|i| Some(i) != exclude));
        let Some(index) = picked.filter(|&i| i < self.stats.len()) else {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(SelectError::NoEndpoint);
        };
        self.stats[index].in_flight.fetch_add(1, Ordering::Relaxed);
        let set_cookie = self.balancer.affinity_cookie(request, index).map(String::into_boxed_str);
        Ok(Selection { state: Arc::clone(self), index, set_cookie })
    }

    /// Counts one more request in flight, unless that would pass the limit.
    fn reserve(&self) -> Result<(), SelectError> {
        let Some(limit) = self.config.limits.max_in_flight() else {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        self.in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < limit).then_some(n + 1))
            .map(drop)
            .map_err(SelectError::Overloaded)
    }

    /// Counts a failure of endpoint `index`; ejects it at the threshold unless that would
    /// pass `max_ejected_percent` (at least one endpoint may always be ejected). Failures of an
    /// endpoint that is already ejected (picked because nothing better was left) do not count:
    /// it comes back with a clean slate, not one failure away from the next ejection.
    fn record_failure(&self, index: usize) -> bool {
        let health = &self.config.health;
        let Some(stats) = self.stats.get(index) else { return false };
        if stats.is_ejected(now_millis()) {
            return false;
        }
        let failures = stats.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < health.consecutive_failures {
            return false;
        }
        let _guard = self.ejection.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_millis();
        if stats.is_ejected(now) {
            return false; // a concurrent failure ejected it first
        }
        let ejected = self.stats.iter().filter(|s| s.is_ejected(now)).count();
        let allowed = (self.stats.len() * health.max_ejected_percent as usize / 100).max(1);
        if ejected >= allowed {
            return false;
        }
        let until = now.saturating_add(u64::try_from(health.ejection_time.as_millis()).unwrap_or(u64::MAX));
        stats.ejected_until.store(until, Ordering::Relaxed);
        stats.consecutive_failures.store(0, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::Duration;

    use super::*;
    use crate::balance::{ConnectionLimits, ConsistentHashConfig, HashKey, PassiveHealth};

    pub(crate) fn stats(n: usize) -> Vec<EndpointStats> {
        (0..n).map(|_| EndpointStats::default()).collect()
    }

    pub(crate) fn info(headers: &http::HeaderMap) -> RequestInfo<'_> {
        RequestInfo { headers, query: None, client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST) }
    }

    pub(crate) fn endpoints(n: u16) -> Vec<Endpoint> {
        (0..n).map(|i| Endpoint { address: SocketAddr::from(([10, 0, 0, 1], 8000 + i)), ready: true }).collect()
    }

    #[test]
    fn terminating_endpoints_serve_only_when_none_is_ready() {
        let mut eps = endpoints(3);
        eps[0].ready = false;
        let state = BackendState::new(&eps, BalancerConfig::default());
        assert_eq!(state.endpoints().len(), 2);
        for e in eps.iter_mut() {
            e.ready = false;
        }
        let state = BackendState::new(&eps, BalancerConfig::default());
        assert_eq!(state.endpoints().len(), 3);
    }

    #[test]
    fn repeated_failures_eject_an_endpoint_but_never_all() {
        let state = Arc::new(BackendState::new(&endpoints(2), BalancerConfig::default()));
        let headers = http::HeaderMap::new();
        let limit = state.config.health.consecutive_failures;
        let first = state.select(&info(&headers), Some(1)).unwrap();
        assert_eq!(first.index(), 0);
        for _ in 1..limit {
            assert!(!first.failed());
        }
        assert!(first.failed(), "the fifth failure ejects");
        for _ in 0..6 {
            assert_eq!(state.select(&info(&headers), None).unwrap().index(), 1);
        }
        // 50% of two endpoints is one: the second cannot be ejected as well.
        let second = state.select(&info(&headers), None).unwrap();
        for _ in 0..limit {
            assert!(!second.failed());
        }
        assert!(state.select(&info(&headers), None).is_ok());
    }

    #[test]
    fn in_flight_counts_follow_selections() {
        let state = Arc::new(BackendState::new(&endpoints(1), BalancerConfig::default()));
        let headers = http::HeaderMap::new();
        let a = state.select(&info(&headers), None).unwrap();
        let b = state.select(&info(&headers), None).unwrap();
        assert_eq!(state.stats[0].in_flight.load(Ordering::Relaxed), 2);
        drop((a, b));
        assert_eq!(state.stats[0].in_flight.load(Ordering::Relaxed), 0);
    }

    fn config_with(health: PassiveHealth, limits: ConnectionLimits) -> BalancerConfig {
        BalancerConfig { health, limits, ..BalancerConfig::default() }
    }

    #[test]
    fn an_ejected_endpoint_returns_after_its_ejection_time() {
        let health = PassiveHealth {
            consecutive_failures: 1,
            ejection_time: Duration::from_millis(250),
            max_ejected_percent: 50,
        };
        let state = Arc::new(BackendState::new(&endpoints(3), config_with(health, ConnectionLimits::default())));
        let headers = http::HeaderMap::new();
        let first = state.select(&info(&headers), None).unwrap();
        let ejected = first.index();
        assert!(first.failed(), "one failure ejects at threshold 1");
        drop(first);
        assert_eq!(state.endpoint_ejected(ejected), Some(true));
        for _ in 0..30 {
            assert_ne!(state.select(&info(&headers), None).unwrap().index(), ejected);
        }
        // Bounded wait: the ejection lasts 250ms (long enough that the loop above cannot outlive
        // it on a loaded machine); give it up to 2s.
        let deadline = Instant::now() + Duration::from_secs(2);
        while state.endpoint_ejected(ejected) == Some(true) {
            assert!(Instant::now() < deadline, "still ejected after 2s");
            std::thread::sleep(Duration::from_millis(5));
        }
        let back = (0..6).filter(|_| state.select(&info(&headers), None).unwrap().index() == ejected).count();
        assert_eq!(back, 2, "round-robin gives it its share again");
    }

    #[test]
    fn failures_while_ejected_do_not_count_toward_the_next_ejection() {
        let state = Arc::new(BackendState::new(&endpoints(1), BalancerConfig::default()));
        let headers = http::HeaderMap::new();
        let only = state.select(&info(&headers), None).unwrap();
        let limit = state.config.health.consecutive_failures;
        let ejections = (0..limit * 3).filter(|_| only.failed()).count();
        assert_eq!(ejections, 1);
        assert_eq!(state.stats[0].consecutive_failures.load(Ordering::Relaxed), 0);
        // The only endpoint, ejected, still serves: the least bad answer beats none.
        assert_eq!(state.select(&info(&headers), None).unwrap().index(), 0);
        assert_eq!(state.select(&info(&headers), Some(0)).unwrap_err(), SelectError::NoEndpoint);
    }

    #[test]
    fn concurrent_failures_never_eject_past_the_cap() {
        let health =
            PassiveHealth { consecutive_failures: 1, ejection_time: Duration::from_secs(60), max_ejected_percent: 30 };
        let state = Arc::new(BackendState::new(&endpoints(10), config_with(health, ConnectionLimits::default())));
        let headers = http::HeaderMap::new();
        let selections: Vec<Selection> = (0..10).map(|_| state.select(&info(&headers), None).unwrap()).collect();
        let ejected = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for chunk in selections.chunks(3) {
                let ejected = &ejected;
                scope.spawn(move || {
                    for s in chunk {
                        if s.failed() {
                            ejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(ejected.load(Ordering::Relaxed), 3);
        assert_eq!(state.snapshot().iter().filter(|e| e.ejected).count(), 3);
    }

    #[test]
    fn connection_limits_answer_overloaded_at_once() {
        let limits = ConnectionLimits { max_connections: Some(2), max_pending_requests: Some(1) };
        let state = Arc::new(BackendState::new(&endpoints(2), config_with(PassiveHealth::default(), limits)));
        let headers = http::HeaderMap::new();
        let held: Vec<Selection> = (0..3).map(|_| state.select(&info(&headers), None).unwrap()).collect();
        assert_eq!(state.in_flight(), 3);
        assert_eq!(state.select(&info(&headers), None).unwrap_err(), SelectError::Overloaded(3));
        assert_eq!(state.in_flight(), 3, "a refused request is not counted");
        drop(held);
        assert_eq!(state.in_flight(), 0);
        assert!(state.select(&info(&headers), None).is_ok());
    }

    #[test]
    fn pending_requests_without_a_connection_limit_do_not_limit() {
        let limits = ConnectionLimits { max_connections: None, max_pending_requests: Some(0) };
        let state = Arc::new(BackendState::new(&endpoints(1), config_with(PassiveHealth::default(), limits)));
        let headers = http::HeaderMap::new();
        let held: Vec<Selection> = (0..100).map(|_| state.select(&info(&headers), None).unwrap()).collect();
        assert_eq!(state.endpoint_in_flight(0), Some(100));
        assert_eq!(state.endpoint_in_flight(1), None);
        drop(held);
    }

    #[test]
    fn a_backend_without_endpoints_does_not_leak_a_count() {
        let limits = ConnectionLimits { max_connections: Some(1), max_pending_requests: None };
        let state = Arc::new(BackendState::new(&[], config_with(PassiveHealth::default(), limits)));
        let headers = http::HeaderMap::new();
        for _ in 0..3 {
            assert_eq!(state.select(&info(&headers), None).unwrap_err(), SelectError::NoEndpoint);
        }
        assert_eq!(state.in_flight(), 0);
    }

    #[test]
    fn each_algorithm_is_built_from_its_config() {
        let hash =
            ConsistentHashConfig { key: HashKey::Cookie { name: "s".into(), ttl: None }, bounded_load_permille: None };
        for algorithm in [Algorithm::Random, Algorithm::LeastRequest, Algorithm::ConsistentHash(hash)] {
            let config = BalancerConfig { algorithm: algorithm.clone(), ..BalancerConfig::default() };
            let state = Arc::new(BackendState::new(&endpoints(3), config));
            let headers = http::HeaderMap::new();
            let selection = state.select(&info(&headers), None).unwrap();
            let cookie = matches!(algorithm, Algorithm::ConsistentHash(_));
            assert_eq!(selection.set_cookie().is_some(), cookie, "{algorithm:?}");
        }
    }
}
