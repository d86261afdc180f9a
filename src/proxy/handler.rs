//! One request through the gateway: normalise, look up the route, run its filters, pick a
//! backend, forward, and run the response filters on the way back.

use std::sync::Arc;
use std::time::Instant;

use http::header::{HOST, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;

use super::authority;
use super::body::{self, ProxyBody, Tee};
use super::connection::{Connection, Timeouts};
use super::error::ProxyError;
use super::filters::{self, Target};
use super::forwarding;
use super::mirror;
use super::normalize::{self, EscapedSlashes, Normalized};
use super::request_body::ClientBody;
use super::upgrade;
use super::upstream::{RequestHead, Upstream, strip_hop_by_hop};
use super::validate;
use crate::metrics::{METRICS, RouteMetrics};
use crate::table::{
    BackendTarget, Filter, RequestParts, RouteEntry, RouteTable, Rule, UpstreamProtocol, WeightedBackend,
};

/// What every request served by one worker shares (each worker has its own upstream pool).
pub struct Shared {
    pub tables: Arc<arc_swap::ArcSwap<RouteTable>>,
    pub upstream: Upstream,
    pub limits: super::Limits,
    pub escaped_slashes: EscapedSlashes,
    /// Connection deadlines, for the tunnels that upgraded requests become.
    pub timeouts: Timeouts,
}

const NO_ROUTE: &str = "none";
static NO_ROUTE_METRICS: std::sync::LazyLock<RouteMetrics> = std::sync::LazyLock::new(RouteMetrics::default);

/// Serves one request; never fails: errors become responses with the right status.
pub async fn handle(shared: Arc<Shared>, connection: Connection, request: Request<Incoming>) -> Response<ProxyBody> {
    let start = Instant::now();
    // One table per request: a swap in the middle does not affect it.
    let table = shared.tables.load_full();
    let mut rule: Option<&Rule> = None;
    let response = match serve(&shared, &table, connection, request, &mut rule).await {
        Ok(response) => response,
        Err(error) => error_response(&error, rule.map(|r| &*r.id.route)),
    };
    let (metrics, route) = match rule {
        Some(rule) => (&rule.metrics, &*rule.id.route),
        None => (&*NO_ROUTE_METRICS, NO_ROUTE),
    };
    metrics.record(route, response.status(), start.elapsed());
    response
}

fn error_response(error: &ProxyError, route: Option<&str>) -> Response<ProxyBody> {
    let status = error.status();
    if status.is_server_error() {
        tracing::warn!(%error, route = route.unwrap_or(NO_ROUTE), status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(%error, status = status.as_u16(), "request rejected");
    }
    if let Some(reason) = error.refusal() {
        METRICS.requests_refused.with_label_values(&[reason]).inc();
    }
    let mut response = Response::new(body::full(format!("{}\n", status.canonical_reason().unwrap_or("error"))));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// `UnescapeAndRedirect`: the client is sent to the path with its encoded slashes decoded
/// (307, so that the method and body are kept, as Envoy does).
fn redirect_to(path: String, query: Option<&str>) -> Result<Response<ProxyBody>, ProxyError> {
    let mut location = path;
    if let Some(query) = query {
        location.push('?');
        location.push_str(query);
    }
    let location = HeaderValue::try_from(location).map_err(|e| ProxyError::Rewrite(e.to_string()))?;
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

async fn serve<'t>(
    shared: &Shared,
    table: &'t RouteTable,
    connection: Connection,
    request: Request<Incoming>,
    matched: &mut Option<&'t Rule>,
) -> Result<Response<ProxyBody>, ProxyError> {
    // Framing is hyper's: conflicting Content-Lengths get 400, and with both Transfer-Encoding
    // and Content-Length the body is read by Transfer-Encoding alone, Content-Length dropped
    // and the connection closed after the answer (RFC 9112 section 6.1).
    validate::check(&request, &shared.limits)?;
    let host = authority::request_host(&request)?;
    let path = match normalize::normalize(request.uri().path(), shared.escaped_slashes)? {
        Normalized::Path(path) => path.into_owned(),
        Normalized::Redirect(path) => return redirect_to(path, request.uri().query()),
    };
    let query = request.uri().query().map(str::to_owned);

    let socket = table.socket(connection.socket).ok_or(ProxyError::NoRoute)?;
    // Over TLS, the listener the handshake chose (by SNI) must be the one the Host names: a
    // certificate for one listener never gives access to another listener's routes.
    if let (Some(tls), Some(sni)) = (&socket.tls, &connection.tls)
        && tls.listener_of(sni.as_deref().unwrap_or("")) != tls.listener_of(&host)
    {
        return Err(ProxyError::Misdirected);
    }
    let routes = socket.hosts.lookup(&host).ok_or(ProxyError::NoRoute)?;
    let parts =
        RequestParts { method: request.method(), path: &path, query: query.as_deref(), headers: request.headers() };
    let entry = routes.find(&parts).ok_or(ProxyError::NoRoute)?;
    *matched = Some(&entry.rule);

    let target = Target {
        host,
        path,
        query,
        listener_port: socket.listener_port,
        scheme: connection.scheme(),
        matched_prefix: entry.matches.path.matched_prefix_len(),
    };
    let rule = &entry.rule;
    let forward = forward_rule(shared, connection, request, entry, target);
    match rule.timeouts.request {
        Some(limit) => tokio::time::timeout(limit, forward).await.map_err(|_| ProxyError::Timeout)?,
        None => forward.await,
    }
}

/// Runs the rule's filters and forwards to the chosen backend.
async fn forward_rule(
    shared: &Shared,
    connection: Connection,
    mut request: Request<Incoming>,
    entry: &RouteEntry,
    mut target: Target,
) -> Result<Response<ProxyBody>, ProxyError> {
    let rule: &Rule = &entry.rule;
    let backend_ref = choose_backend(rule);
    let original_host = target.host.clone();
    // Absolute-form and HTTP/2 requests carry the host in the URI; it replaces any Host
    // header (RFC 9112 section 3.2.2), port included.
    let authority = request.uri().authority().and_then(|a| HeaderValue::try_from(a.as_str()).ok());
    // A WebSocket may pass to an HTTP/1.1 backend; every other upgrade is stripped below.
    let websocket = upgrade::is_websocket(&request)
        && matches!(backend_ref.map(|b| &b.target), Some(BackendTarget::Resolved(b)) if b.protocol == UpstreamProtocol::Http1);
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut request));
    let (parts, incoming) = request.into_parts();
    let mut headers = parts.headers;
    // First, so that the client's Connection header can name neither what the route's filters
    // add nor the forwarding headers.
    strip_hop_by_hop(&mut headers, websocket);
    let mut body = if incoming.is_end_stream() {
        body::boxed(incoming)
    } else {
        body::boxed(ClientBody::new(incoming, shared.limits.request_body_timeout))
    };
    let chain = rule.filters.iter().chain(backend_ref.map(|b| b.filters.iter()).into_iter().flatten());

    let mut response_filters = Vec::new();
    for filter in chain {
        match filter {
            Filter::RequestHeaders(m) => filters::modify_headers(&mut headers, m),
            Filter::ResponseHeaders(m) => response_filters.push(m),
            Filter::Redirect(r) => {
                let mut response = filters::redirect(&target, r)?;
                for m in response_filters.iter().rev() {
                    filters::modify_headers(response.headers_mut(), m);
                }
                return Ok(response);
            }
            Filter::Rewrite(r) => filters::rewrite(&mut target, r)?,
            Filter::Mirror(m) => {
                if mirror::sampled(m) {
                    let (main, copy) = Tee::split(body);
                    body = body::boxed(main);
                    mirror::send(shared.upstream.clone(), m, &parts.method, &target, &headers, copy);
                }
            }
        }
    }

    let backend = match backend_ref.map(|b| &b.target) {
        None => return Err(ProxyError::NoBackend),
        Some(BackendTarget::Unresolved(reason)) => return Err(ProxyError::UnresolvedBackend(reason.clone())),
        Some(BackendTarget::Resolved(backend)) => backend,
    };

    forwarding::set(&mut headers, &connection, &original_host);
    let host_changed = target.host != original_host;
    let mut uri = parts.uri;
    filters::apply_target(&mut uri, &mut headers, &target, host_changed)?;
    if !host_changed && let Some(authority) = authority {
        headers.insert(HOST, authority);
    }
    let head = RequestHead {
        method: parts.method,
        path_and_query: uri.path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
        headers,
    };
    let (mut response, selection) = shared
        .upstream
        .send(backend, head, body, target.query.as_deref(), connection.peer.ip(), rule.timeouts.backend_request)
        .await?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // Dropping the response closes the backend's connection: it is not the pool's any more.
        let Some(client_upgrade) = client_upgrade.filter(|_| upgrade::accepts_websocket(&response)) else {
            return Err(ProxyError::UnexpectedUpgrade(Arc::clone(&backend.id)));
        };
        let backend_upgrade = hyper::upgrade::on(&mut response);
        upgrade::splice(client_upgrade, backend_upgrade, selection, Arc::clone(&connection.state), shared.timeouts);
        let (mut parts, _) = response.into_parts();
        for m in response_filters.iter().rev() {
            filters::modify_headers(&mut parts.headers, m);
        }
        return Ok(Response::from_parts(parts, body::empty()));
    }

    let (mut parts, incoming) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    if let Some(cookie) = selection.set_cookie().and_then(|c| HeaderValue::try_from(c).ok()) {
        parts.headers.append(http::header::SET_COOKIE, cookie);
    }
    for m in response_filters.iter().rev() {
        filters::modify_headers(&mut parts.headers, m);
    }
    Ok(Response::from_parts(parts, body::boxed(body::Guarded::new(incoming, selection))))
}

/// The backendRef for this request: by smooth weighted round-robin when the rule has several.
fn choose_backend(rule: &Rule) -> Option<&WeightedBackend> {
    match (&rule.split, rule.backends.as_slice()) {
        (Some(split), backends) => backends.get(split.pick()),
        (None, [only]) if only.weight > 0 => Some(only),
        _ => None,
    }
}
