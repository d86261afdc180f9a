//! Per-backend runtime state: the endpoint set, in-flight counts, failures and ejections.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::{Algorithm, Balancer, BalancerConfig, Endpoint, RequestInfo, RoundRobin};

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

/// A backend's endpoints and balancer. Built by the `Registry`, shared by every table that
/// has the same backend with the same endpoints and policy.
#[derive(Debug, Serialize)]
pub struct BackendState {
    /// The endpoints that get traffic: the ready ones, or the serving-but-terminating ones
    /// when none is ready.
    endpoints: Box<[Endpoint]>,
    #[serde(skip)]
    stats: Box<[EndpointStats]>,
    #[serde(skip)]
    balancer: Box<dyn Balancer>,
    config: BalancerConfig,
}

/// Why no endpoint could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("the backend has no endpoint to send to")]
    NoEndpoint,
}

/// An endpoint chosen for one request; counts as in flight until dropped.
#[derive(Debug)]
pub struct Selection {
    state: Arc<BackendState>,
    index: usize,
}

impl Selection {
    pub fn address(&self) -> std::net::SocketAddr {
        self.state.endpoints[self.index].address
    }

    pub fn index(&self) -> usize {
        self.index
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
    }
}

impl BackendState {
    pub fn new(endpoints: &[Endpoint], config: BalancerConfig) -> Self {
        let mut active: Vec<Endpoint> = endpoints.iter().copied().filter(|e| e.ready).collect();
        if active.is_empty() {
            active = endpoints.to_vec();
        }
        active.sort();
        active.dedup_by_key(|e| e.address);
        let stats = active.iter().map(|_| EndpointStats::default()).collect();
        let balancer: Box<dyn Balancer> = match config.algorithm {
            Algorithm::RoundRobin => Box::new(RoundRobin::default()),
        };
        Self { endpoints: active.into_boxed_slice(), stats, balancer, config }
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    pub fn config(&self) -> &BalancerConfig {
        &self.config
    }

    /// Picks an endpoint for a request, avoiding ejected ones and `exclude` (the endpoint a
    /// failed first attempt went to). When every endpoint is ejected, picks among all of them:
    /// the least bad answer beats none.
    pub fn select(
        self: &Arc<Self>,
        request: &RequestInfo<'_>,
        exclude: Option<usize>,
    ) -> Result<Selection, SelectError> {
        let now = now_millis();
        let healthy = |i: usize| Some(i) != exclude && !self.stats[i].is_ejected(now);
        let index = self
            .balancer
            .pick(&self.stats, request, &healthy)
            .or_else(|| self.balancer.pick(&self.stats, request, &|i| Some(i) != exclude))
            .ok_or(SelectError::NoEndpoint)?;
        self.stats[index].in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Selection { state: Arc::clone(self), index })
    }

    fn record_failure(&self, index: usize) -> bool {
        let health = &self.config.health;
        let stats = &self.stats[index];
        let failures = stats.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < health.consecutive_failures {
            return false;
        }
        let now = now_millis();
        let ejected = self.stats.iter().filter(|s| s.is_ejected(now)).count();
        let allowed = (self.stats.len() * health.max_ejected_percent as usize / 100).max(1);
        if ejected >= allowed || stats.is_ejected(now) {
            return false;
        }
        stats.ejected_until.store(now + health.ejection_time.as_millis() as u64, Ordering::Relaxed);
        stats.consecutive_failures.store(0, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::*;

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
}
