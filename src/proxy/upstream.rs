//! Sending requests to endpoints over pooled connections, with one safe retry: a request whose
//! connection could not be made never reached the backend, so it goes to another endpoint.

use std::sync::Arc;
use std::time::Duration;

use http::header::{CONNECTION, HeaderName};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::{self, BodySlot, ProxyBody};
use super::error::ProxyError;
use crate::balance::{RequestInfo, SelectError, Selection};
use crate::metrics::METRICS;
use crate::table::{Backend, UpstreamProtocol};

/// Pooled clients, one per upstream protocol.
#[derive(Clone)]
pub struct Upstream {
    http1: Client<HttpConnector, ProxyBody>,
    h2c: Client<HttpConnector, ProxyBody>,
}

/// What is sent upstream. The headers are copied for an attempt only while another attempt
/// may follow; the last possible attempt takes them.
pub struct RequestHead {
    pub method: Method,
    /// Origin-form: path and query.
    pub path_and_query: PathAndQuery,
    pub headers: HeaderMap,
}

impl Upstream {
    pub fn new(connect_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        connector.enforce_http(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder.timer(TokioTimer::new()).pool_timer(TokioTimer::new()).pool_idle_timeout(Duration::from_secs(60));
        let http1 = builder.build(connector.clone());
        let h2c = builder.http2_only(true).build(connector);
        Self { http1, h2c }
    }

    fn client(&self, protocol: UpstreamProtocol) -> (&Client<HttpConnector, ProxyBody>, Version) {
        match protocol {
            UpstreamProtocol::Http1 => (&self.http1, Version::HTTP_11),
            UpstreamProtocol::H2c => (&self.h2c, Version::HTTP_2),
        }
    }

    /// Sends the request to an endpoint of `backend`. On a connect failure the request goes to
    /// another endpoint once, if there is one and the body was not touched. `query` and
    /// `client_ip` are what a balancer may key on, with the head's headers.
    pub async fn send(
        &self,
        backend: &Backend,
        mut head: RequestHead,
        body: &BodySlot,
        query: Option<&str>,
        client_ip: std::net::IpAddr,
        attempt_timeout: Option<Duration>,
    ) -> Result<(Response<Incoming>, Selection), ProxyError> {
        let mut exclude = None;
        loop {
            let info = RequestInfo { headers: &head.headers, query, client_ip };
            let selection = backend.state.select(&info, exclude).map_err(|e| {
                let (reason, error) = match e {
                    SelectError::NoEndpoint => ("no_endpoint", ProxyError::NoEndpoint(Arc::clone(&backend.id))),
                    SelectError::Overloaded(_) => ("overloaded", ProxyError::Overloaded(Arc::clone(&backend.id))),
                };
                METRICS.upstream_rejected.with_label_values(&[&backend.id, reason]).inc();
                error
            })?;
            let Some(attempt_body) = body.attempt() else {
                return Err(ProxyError::NoEndpoint(Arc::clone(&backend.id)));
            };
            // Same condition as the retry below: only then are the headers needed again.
            let retry_possible = exclude.is_none() && backend.state.endpoints().len() > 1;
            let headers = if retry_possible { head.headers.clone() } else { std::mem::take(&mut head.headers) };
            let request = self.build(backend.protocol, &selection, &head, headers, body::boxed(attempt_body))?;
            let (client, _) = self.client(backend.protocol);
            let in_flight = METRICS.upstream_in_flight.with_label_values(&[&backend.id]);
            in_flight.inc();
            let result = match attempt_timeout {
                Some(limit) => {
                    tokio::time::timeout(limit, client.request(request)).await.map_err(|_| ProxyError::Timeout)
                }
                None => Ok(client.request(request).await),
            };
            in_flight.dec();
            let outcome = match result {
                Err(timeout) => {
                    selection.failed();
                    count(backend, &selection, "timeout");
                    return Err(timeout);
                }
                Ok(outcome) => outcome,
            };
            match outcome {
                Ok(response) => {
                    selection.succeeded();
                    count(backend, &selection, "response");
                    return Ok((response, selection));
                }
                Err(error) if error.is_connect() => {
                    METRICS.upstream_connect_errors.with_label_values(&[&backend.id]).inc();
                    count(backend, &selection, "connect_error");
                    if selection.failed() {
                        METRICS.endpoint_ejections.with_label_values(&[&backend.id, selection.label()]).inc();
                        tracing::warn!(backend = %backend.id, endpoint = selection.label(), "endpoint ejected after repeated failures");
                    }
                    tracing::debug!(backend = %backend.id, endpoint = %selection.address(), %error, "connect failed");
                    let retry = exclude.is_none() && backend.state.endpoints().len() > 1;
                    if !retry {
                        return Err(ProxyError::Connect { backend: Arc::clone(&backend.id), source: error });
                    }
                    exclude = Some(selection.index());
                }
                Err(error) => {
                    if selection.failed() {
                        METRICS.endpoint_ejections.with_label_values(&[&backend.id, selection.label()]).inc();
                    }
                    count(backend, &selection, "error");
                    return Err(ProxyError::Upstream { backend: Arc::clone(&backend.id), source: error });
                }
            }
        }
    }

    fn build(
        &self,
        protocol: UpstreamProtocol,
        selection: &Selection,
        head: &RequestHead,
        headers: HeaderMap,
        body: ProxyBody,
    ) -> Result<Request<ProxyBody>, ProxyError> {
        let (_, version) = self.client(protocol);
        // The selection's label is the endpoint's address as text, made once per table.
        let authority = Authority::try_from(selection.label()).map_err(|e| ProxyError::Rewrite(e.to_string()))?;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(authority);
        parts.path_and_query = Some(head.path_and_query.clone());
        let uri = Uri::from_parts(parts).map_err(|e| ProxyError::Rewrite(e.to_string()))?;
        let mut request = Request::new(body);
        *request.method_mut() = head.method.clone();
        *request.uri_mut() = uri;
        *request.version_mut() = version;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

fn count(backend: &Backend, selection: &Selection, outcome: &str) {
    METRICS.upstream_requests.with_label_values(&[&backend.id, selection.label(), outcome]).inc();
}

/// Headers that describe one connection, never forwarded (RFC 9110 section 7.6.1), plus any
/// header the Connection header names. `Upgrade` and `Connection: upgrade` are kept when the
/// request is an upgrade, so that it can pass through.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none of them: one pass over the names instead of a removal (a hash
    // and a probe) per name.
    let present =
        headers.keys().any(|name| name == CONNECTION || name == http::header::UPGRADE || HOP_BY_HOP.contains(name));
    if !present {
        if keep_upgrade {
            headers.insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
        }
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == http::header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(CONNECTION);
        headers.remove(http::header::UPGRADE);
    }
}

const HOP_BY_HOP: [HeaderName; 6] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::PROXY_AUTHENTICATE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "keep-alive, x-private".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("x-private").is_none() && h.get("keep-alive").is_none() && h.get("te").is_none());
        assert!(h.get(CONNECTION).is_none());
        assert_eq!(h["x-kept"], "1");
    }

    #[test]
    fn upgrade_headers_survive_for_an_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "Upgrade".parse().unwrap());
        h.insert(http::header::UPGRADE, "websocket".parse().unwrap());
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[http::header::UPGRADE], "websocket");
        assert_eq!(h[CONNECTION], "upgrade");
    }
}
