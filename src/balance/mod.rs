//! Load balancing: which endpoint of a backend gets the next request, and which backendRef of
//! a rule gets it.
//!
//! One small trait, `Balancer`, with one implementation per algorithm in its own file. The
//! state that must survive a table swap (cursors, hash tables, in-flight counts, ejections) is
//! kept in a `BackendState`, handed out by the `Registry` keyed by the backend's identity, its
//! endpoint set and its policy: a swap that leaves a backend alone leaves its state alone.

mod hash_key;
mod least_request;
mod maglev;
mod random;
mod registry;
mod round_robin;
mod state;
mod weighted;

use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use serde::Serialize;

pub use least_request::LeastRequest;
pub use maglev::ConsistentHash;
pub use random::Random;
pub use registry::Registry;
pub use round_robin::RoundRobin;
pub use state::{BackendState, EndpointSnapshot, EndpointStats, SelectError, Selection};
pub use weighted::WeightedSplit;

/// One address of a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub address: SocketAddr,
    /// False for an endpoint that is still serving but terminating: used only when no ready
    /// endpoint is left.
    pub ready: bool,
}

/// What a balancer may look at in the request (consistent hashing keys on it).
pub struct RequestInfo<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub client_ip: IpAddr,
}

/// Picks one of the candidates. `eligible(i)` says whether endpoint `i` may be chosen now
/// (not ejected); a balancer skips ineligible ones where it can.
pub trait Balancer: Send + Sync + Debug {
    fn pick(
        &self,
        stats: &[EndpointStats],
        request: &RequestInfo<'_>,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize>;

    /// A `Set-Cookie` header value that sends the client's next requests to endpoint `index`,
    /// when this balancer hashes on a cookie that `request` did not carry. None otherwise.
    fn affinity_cookie(&self, _request: &RequestInfo<'_>, _index: usize) -> Option<String> {
        None
    }
}

/// How a backend balances, from its BackendPolicy (RoundRobin when it has none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct BalancerConfig {
    pub algorithm: Algorithm,
    pub health: PassiveHealth,
    pub limits: ConnectionLimits,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum Algorithm {
    /// Each endpoint in turn.
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// The less busy of two random endpoints (by requests in flight).
    LeastRequest,
    /// A Maglev table keyed on part of the request.
    ConsistentHash(ConsistentHashConfig),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ConsistentHashConfig {
    pub key: HashKey,
    /// Bounded load in thousandths (1250 for 1.25): an endpoint whose requests in flight would
    /// exceed this factor times the mean passes the request on along the table. Permille and
    /// not `f64` so that the config stays `Eq + Hash` (the registry compares configs).
    pub bounded_load_permille: Option<u32>,
}

/// Where a consistent-hash key comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum HashKey {
    /// The first value of this header (name in lower case).
    Header(String),
    /// This cookie; when the request has none, Gantry picks an endpoint and sets the cookie on
    /// the response (`Selection::set_cookie`), with `Max-Age` = `ttl` when given.
    Cookie { name: String, ttl: Option<std::time::Duration> },
    /// The client's IP address.
    SourceIp,
    /// The first value of this query parameter (the name is compared percent-decoded).
    QueryParam(String),
}

/// Caps on the requests a backend takes at once, from the policy's `connection` block.
///
/// Gantry counts requests, not TCP connections: a request counts from `BackendState::select`
/// until its `Selection` is dropped, whichever endpoint it went to. The pool may open fewer
/// connections (HTTP/2 multiplexes) but never serves more requests than this at once, so
/// `max_connections + max_pending_requests` is the most requests in flight to the backend; the
/// next one gets `SelectError::Overloaded` (503) at once instead of queueing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ConnectionLimits {
    pub max_connections: Option<u32>,
    pub max_pending_requests: Option<u32>,
}

impl ConnectionLimits {
    /// The most requests in flight to the backend, None for no limit. Pending requests only
    /// mean something on top of a connection limit.
    pub fn max_in_flight(&self) -> Option<u32> {
        let connections = self.max_connections?;
        Some(connections.saturating_add(self.max_pending_requests.unwrap_or(0)))
    }
}

/// Passive health: when an endpoint is taken out of rotation after failures.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PassiveHealth {
    pub consecutive_failures: u32,
    pub ejection_time: std::time::Duration,
    /// At most this share of the endpoints is ejected at once (percent).
    pub max_ejected_percent: u32,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        Self { consecutive_failures: 5, ejection_time: std::time::Duration::from_secs(30), max_ejected_percent: 50 }
    }
}
