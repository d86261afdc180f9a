//! One request through the gateway: normalise, look up the route, run its filters, pick a
//! backend, forward, and run the response filters on the way back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::HOST;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::{self, ProxyBody, Tee};
use super::error::ProxyError;
use super::filters::{self, Target};
use super::mirror;
use super::normalize;
use super::upgrade;
use super::upstream::{RequestHead, Upstream, strip_hop_by_hop};
use crate::metrics::RouteMetrics;
use crate::table::{BackendTarget, Filter, RequestParts, RouteEntry, RouteTable, Rule, WeightedBackend};

/// What every request served by one worker shares (each worker has its own upstream pool).
pub struct Shared {
    pub tables: Arc<arc_swap::ArcSwap<RouteTable>>,
    pub upstream: Upstream,
    pub limits: super::Limits,
}

/// The connection a request came in on.
#[derive(Clone)]
pub struct Connection {
    /// The table's socket address this connection was accepted on.
    pub socket: SocketAddr,
    pub peer: SocketAddr,
    /// The peer's IP address as text, made once per connection: `X-Forwarded-For`.
    pub peer_ip: HeaderValue,
    /// Set when the connection came over TLS: the server name it asked for (SNI), if any.
    pub tls: Option<Option<Arc<str>>>,
}

impl Connection {
    pub fn new(socket: SocketAddr, peer: SocketAddr) -> Self {
        let peer_ip = HeaderValue::try_from(peer.ip().to_string()).expect("an IP address is a valid header value");
        Self { socket, peer, peer_ip, tls: None }
    }

    /// The connection came over TLS, asking for server name `sni`.
    pub fn with_tls(mut self, sni: Option<Box<str>>) -> Self {
        self.tls = Some(sni.map(Arc::from));
        self
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: http::HeaderName = http::HeaderName::from_static("x-forwarded-host");

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
    let mut response = Response::new(body::full(format!("{}\n", status.canonical_reason().unwrap_or("error"))));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The request's host without port: from the absolute-form URI or `:authority` when present
/// (RFC 9112 section 3.2.2), else from the Host header.
fn request_host<B>(request: &Request<B>) -> Result<String, ProxyError> {
    let raw = match request.uri().authority() {
        Some(authority) => authority.host(),
        None => {
            let host = request.headers().get(HOST).and_then(|h| h.to_str().ok()).ok_or(ProxyError::MissingHost)?;
            strip_port(host)
        }
    };
    if raw.is_empty() {
        return Err(ProxyError::MissingHost);
    }
    Ok(raw.to_ascii_lowercase())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host.split_once(']').map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

async fn serve<'t>(
    shared: &Shared,
    table: &'t RouteTable,
    connection: Connection,
    request: Request<Incoming>,
    matched: &mut Option<&'t Rule>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let headers = request.headers();
    // hyper bounds its read buffer but accepts a larger head that arrives in one read; the
    // limit is enforced exactly here, counting as HTTP/1.1 would carry each header.
    let header_bytes: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if header_bytes > shared.limits.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge);
    }
    // Framing is hyper's: conflicting Content-Lengths get 400, and with both Transfer-Encoding
    // and Content-Length the body is read by Transfer-Encoding alone, Content-Length dropped
    // and the connection closed after the answer (RFC 9112 section 6.1).
    let host = request_host(&request)?;
    let path = normalize::normalize(request.uri().path())?.into_owned();
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
    let upgrade = upgrade::is_upgrade(&request);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, incoming) = request.into_parts();
    let mut headers = parts.headers;
    let mut body = body::boxed(incoming);
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

    add_forwarding_headers(&mut headers, &connection, &original_host);
    strip_hop_by_hop(&mut headers, upgrade);
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

    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        upgrade::splice(client_upgrade, hyper::upgrade::on(&mut response), selection);
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

/// Adds `X-Forwarded-For` (appended to), `-Proto`, `-Host` and, when the client sent none,
/// `X-Request-Id`. One map lookup per header: this runs on every request.
fn add_forwarding_headers(headers: &mut http::HeaderMap, connection: &Connection, host: &str) {
    use http::header::Entry;
    // hyper sizes the map for the headers it parsed: one growth for the four added here.
    headers.reserve(4);
    // The Host header usually is the host already (lower case, no port): share its bytes.
    let forwarded_host = match headers.get(HOST) {
        Some(value) if value.as_bytes() == host.as_bytes() => Some(value.clone()),
        _ => HeaderValue::try_from(host).ok(),
    };
    match headers.entry(&X_FORWARDED_FOR) {
        Entry::Vacant(entry) => {
            entry.insert(connection.peer_ip.clone());
        }
        Entry::Occupied(mut entry) => {
            // Several X-Forwarded-For fields are one list (RFC 9110 section 5.3): keep them all.
            let mut chain: Vec<&[u8]> = entry.iter().map(HeaderValue::as_bytes).collect();
            chain.push(connection.peer_ip.as_bytes());
            if let Ok(value) = HeaderValue::from_bytes(&chain.join(&b", "[..])) {
                entry.insert(value);
            }
        }
    }
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(connection.scheme()));
    if let Some(value) = forwarded_host {
        headers.insert(&X_FORWARDED_HOST, value);
    }
    if let Entry::Vacant(entry) = headers.entry(&X_REQUEST_ID) {
        let mut buffer = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
        entry.insert(HeaderValue::from_str(id).expect("a UUID is a valid header value"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_comes_from_the_authority_before_the_host_header() {
        let request =
            Request::builder().uri("http://Absolute.Example:8080/x").header(HOST, "other.example").body(()).unwrap();
        assert_eq!(request_host(&request).unwrap(), "absolute.example");
        let request = Request::builder().uri("/x").header(HOST, "Site.Example:81").body(()).unwrap();
        assert_eq!(request_host(&request).unwrap(), "site.example");
        let request = Request::builder().uri("/x").body(()).unwrap();
        assert!(matches!(request_host(&request), Err(ProxyError::MissingHost)));
    }

    #[test]
    fn forwarding_headers_name_the_client_and_the_host_it_asked_for() {
        let connection = Connection::new("127.0.0.1:80".parse().unwrap(), "192.0.2.7:5000".parse().unwrap());
        let mut headers = http::HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("Site.Example:8080"));
        add_forwarding_headers(&mut headers, &connection, "site.example");
        assert_eq!(headers[&X_FORWARDED_HOST], "site.example");
        assert_eq!(headers[&X_FORWARDED_FOR], "192.0.2.7");
        assert_eq!(headers[&X_FORWARDED_PROTO], "http");
        assert_eq!(headers[&X_REQUEST_ID].len(), 36);

        let mut headers = http::HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("site.example"));
        headers.append(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.1"));
        headers.append(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.2"));
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("mine"));
        add_forwarding_headers(&mut headers, &connection, "site.example");
        assert_eq!(headers[&X_FORWARDED_HOST], "site.example");
        let forwarded_for: Vec<_> = headers.get_all(&X_FORWARDED_FOR).iter().collect();
        assert_eq!(
            forwarded_for,
            ["203.0.113.1, 203.0.113.2, 192.0.2.7"],
            "one list: every address sent, then the client"
        );
        assert_eq!(headers[&X_REQUEST_ID], "mine");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("a.test"), "a.test");
    }
}
