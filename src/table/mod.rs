//! The routing table: an immutable, plain model of what the data plane serves.
//!
//! Only `compile` builds a `RouteTable`; the data plane reads it through an `ArcSwap` and never
//! sees a Kubernetes type. Everything a request needs is pre-computed here: sockets, host maps,
//! rules sorted by the Gateway API precedence, regexes compiled, backends resolved to endpoints.

mod hosts;
mod matching;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::Serialize;

use crate::balance::BackendState;

pub use hosts::{HostKey, HostMap, HostRouter};
pub use matching::{HeaderMatch, PathMatch, QueryMatch, RequestMatch, StringMatch};
pub use tls::TlsSocket;

/// Everything the data plane serves at one moment. Swapped whole; never mutated.
#[derive(Debug, Default, Serialize)]
pub struct RouteTable {
    /// The sockets to bind, each with the routes of the listeners it carries.
    pub sockets: Vec<Socket>,
}

impl RouteTable {
    pub fn socket(&self, address: SocketAddr) -> Option<&Socket> {
        self.sockets.iter().find(|s| s.address == address)
    }
}

/// One (address, port) the data plane listens on, and what it serves.
#[derive(Debug, Serialize)]
pub struct Socket {
    pub address: SocketAddr,
    /// The port clients connect to (the Gateway listeners' port): the socket's own port, or
    /// the listener port that a Gateway's Service maps onto it. Redirects keep it.
    pub listener_port: u16,
    /// Set when the socket's listeners are HTTPS: connections are TLS first.
    pub tls: Option<Arc<TlsSocket>>,
    /// `namespace/gateway/listener` of every listener this socket carries, for `/config`.
    pub listeners: Vec<String>,
    pub hosts: HostRouter,
}

/// The rules that may answer requests for one host key, sorted by the spec's precedence.
#[derive(Debug, Default, Serialize)]
pub struct RouteList {
    pub entries: Vec<RouteEntry>,
}

impl RouteList {
    /// The first entry, in precedence order, whose match accepts the request.
    pub fn find(&self, request: &RequestParts<'_>) -> Option<&RouteEntry> {
        self.entries.iter().find(|entry| entry.matches.matches(request))
    }
}

/// What a matcher looks at; the path is already normalised.
pub struct RequestParts<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
}

/// One match of one rule: a rule with three matches gives three entries, each placed by its
/// own precedence, all sharing the rule.
#[derive(Debug, Serialize)]
pub struct RouteEntry {
    pub matches: RequestMatch,
    pub rule: Arc<Rule>,
}

/// Identifies a rule for metrics, logs and `/config`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct RuleId {
    /// `namespace/name` of the HTTPRoute; the metrics' `route` label.
    pub route: Arc<str>,
    pub rule: usize,
}

/// A rule of an HTTPRoute, ready to serve.
#[derive(Debug, Serialize)]
pub struct Rule {
    pub id: RuleId,
    /// Filters in the order the route lists them; the data plane applies request filters in
    /// this order and response filters in reverse (onion order).
    pub filters: Vec<Filter>,
    pub backends: Vec<WeightedBackend>,
    /// Smooth weighted round-robin over `backends` by weight (present when more than one has
    /// a non-zero weight).
    #[serde(skip)]
    pub split: Option<crate::balance::WeightedSplit>,
    pub timeouts: Timeouts,
    #[serde(skip)]
    pub metrics: crate::metrics::RouteMetrics,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    /// From the start of the request to the end of the response headers (`timeouts.request`).
    pub request: Option<Duration>,
    /// For one attempt to the backend (`timeouts.backendRequest`).
    pub backend_request: Option<Duration>,
}

/// A backendRef of a rule with its weight. Unresolved ones keep their share of traffic and
/// answer it with 500, as the spec asks.
#[derive(Debug, Serialize)]
pub struct WeightedBackend {
    pub weight: u32,
    pub target: BackendTarget,
    /// Filters set on this backendRef; applied after the rule's.
    pub filters: Vec<Filter>,
}

#[derive(Debug, Serialize)]
pub enum BackendTarget {
    Resolved(Arc<Backend>),
    /// Why the reference could not be resolved (also reported in the route's status).
    Unresolved(String),
}

/// A Service port, resolved to its endpoints, with its balancer.
#[derive(Debug, Serialize)]
pub struct Backend {
    /// `namespace/service:port`; the metrics' `backend` label.
    pub id: Arc<str>,
    pub protocol: UpstreamProtocol,
    /// Endpoints, balancer and health. Shared with the previous table when nothing changed.
    pub state: Arc<BackendState>,
    #[serde(skip)]
    pub metrics: crate::metrics::BackendMetrics,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2 with prior knowledge, for Service ports with appProtocol `kubernetes.io/h2c`.
    H2c,
}

/// A compiled HTTPRoute filter.
#[derive(Debug, Serialize)]
pub enum Filter {
    RequestHeaders(HeaderModifier),
    ResponseHeaders(HeaderModifier),
    Redirect(Redirect),
    Rewrite(Rewrite),
    Mirror(Mirror),
}

/// Set replaces, add appends, remove deletes; names are validated at compile time.
#[derive(Debug, Default, Serialize)]
pub struct HeaderModifier {
    #[serde(serialize_with = "ser::header_pairs")]
    pub set: Vec<(HeaderName, HeaderValue)>,
    #[serde(serialize_with = "ser::header_pairs")]
    pub add: Vec<(HeaderName, HeaderValue)>,
    #[serde(serialize_with = "ser::header_names")]
    pub remove: Vec<HeaderName>,
}

#[derive(Debug, Serialize)]
pub enum PathModifier {
    ReplaceFullPath(String),
    /// Replaces the part of the path that the entry's PathPrefix matched.
    ReplacePrefixMatch(String),
}

#[derive(Debug, Serialize)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub path: Option<PathModifier>,
    #[serde(serialize_with = "ser::status")]
    pub status: StatusCode,
}

#[derive(Debug, Serialize)]
pub struct Rewrite {
    pub hostname: Option<String>,
    pub path: Option<PathModifier>,
}

/// Sends a copy of the request to another backend and ignores the answer.
#[derive(Debug, Serialize)]
pub struct Mirror {
    pub backend: Arc<Backend>,
    /// Share of requests mirrored, as numerator/denominator.
    pub numerator: u32,
    pub denominator: u32,
}

mod ser {
    use http::{HeaderName, HeaderValue, StatusCode};
    use serde::Serializer;
    use serde::ser::SerializeSeq;

    pub(super) fn header_pairs<S: Serializer>(pairs: &[(HeaderName, HeaderValue)], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(pairs.len()))?;
        for (name, value) in pairs {
            seq.serialize_element(&(name.as_str(), value.to_str().unwrap_or("<binary>")))?;
        }
        seq.end()
    }

    pub(super) fn header_names<S: Serializer>(names: &[HeaderName], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(names.iter().map(HeaderName::as_str))
    }

    pub(super) fn status<S: Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(status.as_u16())
    }
}
