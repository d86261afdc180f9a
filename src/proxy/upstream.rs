//! Sending requests to endpoints over the worker's pooled connections, with safe retries: a
//! request whose connection could not be made never reached the backend, so it goes to another
//! endpoint once; a request that a reused connection turned away unsent (the endpoint had
//! closed it meanwhile) goes once more on a new connection.
//!
//! Passive health counts only what the endpoint did: a failure while the request body was
//! still on its way (the client broke it, reset, or stopped sending it) is the client's, and
//! never counts towards an ejection.

use std::sync::Arc;
use std::time::Duration;

use http::header::{CONNECTION, HeaderName};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};

use super::body::ProxyBody;
use super::error::ProxyError;
use super::pool::{CheckIn, Checkout, Pool, Sender, UpstreamBody};
use super::request_body::{self, Progress, Tracker};
use crate::balance::{RequestInfo, SelectError, Selection};
use crate::metrics::METRICS;
use crate::table::{Backend, UpstreamProtocol};

/// A worker's way to its endpoints.
#[derive(Clone)]
pub struct Upstream {
    pool: Arc<Pool>,
}

/// What is sent upstream.
pub struct RequestHead {
    pub method: Method,
    /// Origin-form: path and query.
    pub path_and_query: PathAndQuery,
    pub headers: HeaderMap,
}

/// How one attempt on one endpoint ended.
enum Attempt {
    Response(Response<UpstreamBody>),
    /// The connection could not be made; the request is handed back unsent.
    ConnectFailed(super::pool::ConnectError, Request<ProxyBody>),
    Failed(hyper::Error),
}

impl Upstream {
    /// A pool of its own; call within the worker's runtime.
    pub fn start(connect_timeout: Duration) -> Self {
        Self { pool: Pool::start(connect_timeout) }
    }

    /// Sends the request to an endpoint of `backend`. On a connect failure the request goes to
    /// another endpoint once, if there is one. `query` and `client_ip` are what a balancer may
    /// key on, with the head's headers.
    pub async fn send(
        &self,
        backend: &Backend,
        head: RequestHead,
        body: ProxyBody,
        query: Option<&str>,
        client_ip: std::net::IpAddr,
        attempt_timeout: Option<Duration>,
    ) -> Result<(Response<UpstreamBody>, Selection), ProxyError> {
        let info = RequestInfo { headers: &head.headers, query, client_ip };
        let mut selection = select(backend, &info, None)?;
        let (body, sent) = request_body::track(body);
        let mut request = build(backend.protocol, &selection, head, body)?;
        let mut retried = false;
        loop {
            let in_flight = backend.metrics.in_flight(&backend.id);
            in_flight.inc();
            let attempt = self.attempt(backend.protocol, &selection, request);
            let result = match attempt_timeout {
                Some(limit) => tokio::time::timeout(limit, attempt).await.map_err(|_| ProxyError::Timeout),
                None => Ok(attempt.await),
            };
            in_flight.dec();
            match result {
                Err(timeout) => {
                    return Err(match client_fault(&sent) {
                        Some(fault) => {
                            count(backend, &selection, "client_error");
                            fault
                        }
                        None => {
                            // A request still being sent may be the client's slowness: only
                            // a wait on a request sent whole is the endpoint's.
                            if sent.progress() == Progress::Complete {
                                failed(backend, &selection);
                            }
                            count(backend, &selection, "timeout");
                            timeout
                        }
                    });
                }
                Ok(Attempt::Response(response)) => {
                    selection.succeeded();
                    backend.metrics.response(&backend.id, selection.index(), selection.label());
                    return Ok((response, selection));
                }
                Ok(Attempt::ConnectFailed(error, unsent)) => {
                    METRICS.upstream_connect_errors.with_label_values(&[&backend.id]).inc();
                    count(backend, &selection, "connect_error");
                    failed(backend, &selection);
                    tracing::debug!(backend = %backend.id, endpoint = %selection.address(), %error, "connect failed");
                    if retried || backend.state.endpoints().len() < 2 {
                        return Err(ProxyError::Connect { backend: Arc::clone(&backend.id), source: error });
                    }
                    retried = true;
                    let info = RequestInfo { headers: unsent.headers(), query, client_ip };
                    let next = select(backend, &info, Some(selection.index()))?;
                    request = retarget(unsent, backend.protocol, &next)?;
                    selection = next;
                }
                Ok(Attempt::Failed(error)) => {
                    if let Some(fault) = client_fault(&sent) {
                        tracing::debug!(backend = %backend.id, %error, "request failed by the client's doing");
                        count(backend, &selection, "client_error");
                        return Err(fault);
                    }
                    // An endpoint that hangs up before reading the whole body may have had a
                    // reason (a limit, an early answer): only failures after it are counted.
                    if sent.progress() == Progress::Complete {
                        failed(backend, &selection);
                    }
                    count(backend, &selection, "error");
                    return Err(ProxyError::Upstream { backend: Arc::clone(&backend.id), source: error });
                }
            }
        }
    }

    /// One request on one endpoint: on a pooled connection, or on a new one if the pooled one
    /// turns out to be closed before the request was written.
    async fn attempt(&self, protocol: UpstreamProtocol, selection: &Selection, request: Request<ProxyBody>) -> Attempt {
        let address = selection.address();
        let checkout = match self.pool.checkout(address, protocol).await {
            Ok(checkout) => checkout,
            Err(error) => return Attempt::ConnectFailed(error, request),
        };
        match self.send_on(address, checkout, request).await {
            Ok(response) => Attempt::Response(response),
            Err((error, Some(unsent))) => match Box::pin(self.pool.connect(address, protocol)).await {
                Ok(sender) => {
                    tracing::debug!(%address, %error, "pooled connection was closed; sending on a new one");
                    let fresh = Checkout { sender, reused: false };
                    match self.send_on(address, fresh, unsent).await {
                        Ok(response) => Attempt::Response(response),
                        Err((error, _)) => Attempt::Failed(error),
                    }
                }
                Err(connect) => Attempt::ConnectFailed(connect, unsent),
            },
            Err((error, None)) => Attempt::Failed(error),
        }
    }

    /// Sends on the connection. A failure hands the request back only if the connection was a
    /// reused one and the request was never written to it: then it is safe to send again.
    async fn send_on(
        &self,
        address: std::net::SocketAddr,
        checkout: Checkout,
        request: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, (hyper::Error, Option<Request<ProxyBody>>)> {
        let Checkout { sender, reused } = checkout;
        match sender {
            Sender::Http1(mut sender) => match sender.try_send_request(request).await {
                Ok(response) => {
                    // After a 101 the connection belongs to the upgraded stream, never to the pool.
                    let check_in = (response.status() != StatusCode::SWITCHING_PROTOCOLS)
                        .then(|| CheckIn::new(Arc::clone(&self.pool), address, sender));
                    Ok(response.map(|body| UpstreamBody::new(body, check_in)))
                }
                Err(error) => Err(handed_back(error, reused)),
            },
            Sender::Http2(mut sender) => match sender.try_send_request(request).await {
                Ok(response) => Ok(response.map(|body| UpstreamBody::new(body, None))),
                Err(error) => Err(handed_back(error, reused)),
            },
        }
    }
}

/// The error of a send, and the request when it is safe to send again: only a reused
/// connection that turned it away unwritten hands it back.
fn handed_back(
    mut error: hyper::client::conn::TrySendError<Request<ProxyBody>>,
    reused: bool,
) -> (hyper::Error, Option<Request<ProxyBody>>) {
    let unsent = if reused { error.take_message() } else { None };
    (error.into_error(), unsent)
}

/// The client's fault, if the request body failed on its side.
fn client_fault(sent: &Tracker) -> Option<ProxyError> {
    match sent.progress() {
        Progress::Failed => Some(ProxyError::ClientBody),
        Progress::TimedOut => Some(ProxyError::ClientBodyTimeout),
        Progress::Sending | Progress::Complete => None,
    }
}

fn select(backend: &Backend, info: &RequestInfo<'_>, exclude: Option<usize>) -> Result<Selection, ProxyError> {
    backend.state.select(info, exclude).map_err(|e| {
        let (reason, error) = match e {
            SelectError::NoEndpoint => ("no_endpoint", ProxyError::NoEndpoint(Arc::clone(&backend.id))),
            SelectError::Overloaded(_) => ("overloaded", ProxyError::Overloaded(Arc::clone(&backend.id))),
        };
        METRICS.upstream_rejected.with_label_values(&[&backend.id, reason]).inc();
        error
    })
}

/// Counts a failure against the endpoint; logs the ejection it may cause.
fn failed(backend: &Backend, selection: &Selection) {
    if selection.failed() {
        METRICS.endpoint_ejections.with_label_values(&[&backend.id, selection.label()]).inc();
        tracing::warn!(backend = %backend.id, endpoint = selection.label(), "endpoint ejected after repeated failures");
    }
}

/// The request as the endpoint gets it: origin-form for HTTP/1.1; HTTP/2 carries the
/// endpoint as `:authority`.
fn build(
    protocol: UpstreamProtocol,
    selection: &Selection,
    head: RequestHead,
    body: ProxyBody,
) -> Result<Request<ProxyBody>, ProxyError> {
    let mut request = Request::new(body);
    *request.method_mut() = head.method;
    *request.headers_mut() = head.headers;
    *request.uri_mut() = Uri::from(head.path_and_query);
    retarget(request, protocol, selection)
}

/// Points a request at the selected endpoint.
fn retarget(
    mut request: Request<ProxyBody>,
    protocol: UpstreamProtocol,
    selection: &Selection,
) -> Result<Request<ProxyBody>, ProxyError> {
    match protocol {
        UpstreamProtocol::Http1 => *request.version_mut() = Version::HTTP_11,
        UpstreamProtocol::H2c => {
            *request.version_mut() = Version::HTTP_2;
            // The selection's label is the endpoint's address as text, made once per table.
            let authority = Authority::try_from(selection.label()).map_err(|e| ProxyError::Rewrite(e.to_string()))?;
            let mut parts = std::mem::take(request.uri_mut()).into_parts();
            parts.scheme = Some(Scheme::HTTP);
            parts.authority = Some(authority);
            *request.uri_mut() = Uri::from_parts(parts).map_err(|e| ProxyError::Rewrite(e.to_string()))?;
        }
    }
    Ok(request)
}

fn count(backend: &Backend, selection: &Selection, outcome: &str) {
    METRICS.upstream_requests.with_label_values(&[&backend.id, selection.label(), outcome]).inc();
}

/// Headers that describe one connection, never forwarded (RFC 9110 section 7.6.1), plus any
/// header the Connection header names (except `Host` and `Content-Length`, which a client
/// must not be able to take away from the request). `Upgrade` and `Connection: upgrade` are
/// kept when the request is a WebSocket upgrade, so that it can pass through.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names instead of a removal (a hash and a probe) per hop-by-hop name:
    // most messages carry none of them but `Connection`, and that usually only says
    // `keep-alive` or `close`.
    let (mut connection, mut others) = (false, false);
    for name in headers.keys() {
        if name == CONNECTION {
            connection = true;
        } else if name == http::header::UPGRADE || HOP_BY_HOP.contains(name) {
            others = true;
        }
    }
    if connection && names_other_headers(headers) {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .filter(|name| !(keep_upgrade && name == http::header::UPGRADE))
            .filter(|name| name != http::header::HOST && name != http::header::CONTENT_LENGTH)
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    if others {
        for name in HOP_BY_HOP {
            headers.remove(name);
        }
        if !keep_upgrade {
            headers.remove(http::header::UPGRADE);
        }
    }
    if keep_upgrade {
        headers.insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
    } else if connection {
        headers.remove(CONNECTION);
    }
}

/// Whether a Connection header lists anything but `close` and `keep-alive` (the Keep-Alive
/// header itself is among `HOP_BY_HOP` anyway).
fn names_other_headers(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|token| !token.eq_ignore_ascii_case(b"close") && !token.eq_ignore_ascii_case(b"keep-alive"))
}

/// The hop-by-hop headers of RFC 9110 section 7.6.1 and RFC 9113 section 8.2.2 (besides
/// `Connection` and `Upgrade`, handled apart), with the credentials meant for a proxy.
const HOP_BY_HOP: [HeaderName; 8] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("http2-settings"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
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
    fn a_plain_keep_alive_connection_header_is_removed_and_nothing_else() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "Keep-Alive".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        assert!(h.get(CONNECTION).is_none());
        assert_eq!(h.len(), 1);
        let mut h = HeaderMap::new();
        h.insert(http::header::UPGRADE, "h2c".parse().unwrap());
        h.insert(http::header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        assert!(h.is_empty(), "Upgrade and Transfer-Encoding go even without a Connection header: {h:?}");
    }

    #[test]
    fn proxy_credentials_and_http2_settings_are_never_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(http::header::PROXY_AUTHORIZATION, "Basic c2VjcmV0".parse().unwrap());
        h.insert("http2-settings", "AAMAAABkAAQAAP__".parse().unwrap());
        h.insert(http::header::UPGRADE, "h2c".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
    }

    #[test]
    fn connection_cannot_take_the_host_or_the_body_length_away() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "host, content-length, x-forwarded-for".parse().unwrap());
        h.insert(http::header::HOST, "a.example".parse().unwrap());
        h.insert(http::header::CONTENT_LENGTH, "5".parse().unwrap());
        h.insert("x-forwarded-for", "203.0.113.1".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h[http::header::HOST], "a.example");
        assert_eq!(h[http::header::CONTENT_LENGTH], "5");
        assert!(!h.contains_key("x-forwarded-for"), "the client's own is gone; Gantry sets it after");
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
