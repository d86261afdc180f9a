//! Load balancing: which endpoint of a backend gets the next request, and which backendRef of
//! a rule gets it.
//!
//! One small trait, `Balancer`, with one implementation per algorithm in its own file. The
//! state that must survive a table swap (cursors, hash tables, in-flight counts, ejections) is
//! kept in a `BackendState`, handed out by the `Registry` keyed by the backend's identity, its
//! endpoint set and its policy: a swap that leaves a backend alone leaves its state alone.

mod registry;
mod round_robin;
mod state;
mod weighted;

use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use serde::Serialize;

pub use registry::Registry;
pub use round_robin::RoundRobin;
pub use state::{BackendState, EndpointStats, SelectError, Selection};
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
}

/// How a backend balances, from its BackendPolicy (RoundRobin when it has none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct BalancerConfig {
    pub algorithm: Algorithm,
    pub health: PassiveHealth,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum Algorithm {
    #[default]
    RoundRobin,
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
