//! What every bookinfo service shares: the server loop with graceful shutdown, response
//! helpers, and the pooled upstream client that propagates tracing and routing headers.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub(crate) type Body = Full<Bytes>;

/// How long in-flight requests may take to finish once shutdown has begun.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The headers a bookinfo service copies from its incoming request onto its upstream calls:
/// the gateway routes on `end-user`, and the rest keep a trace together.
pub(crate) const PROPAGATED_HEADERS: [&str; 4] = ["end-user", "x-request-id", "traceparent", "tracestate"];

/// One bookinfo service: a path router and a responder for the routes it recognises.
///
/// Routing is separate from responding so that the server loop can answer 404 (no route)
/// and 405 (a route, but not `GET`/`HEAD`) without running any service code.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The service name used in logs.
    const NAME: &'static str;
    type Route: Send;

    fn route(&self, path: &str) -> Option<Self::Route>;

    fn respond(&self, route: Self::Route, request: &Parts) -> impl Future<Output = Response<Body>> + Send;
}

/// Serves `handler` on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (up to [`DRAIN_TIMEOUT`]) and returns.
pub(crate) async fn serve<H: Handler>(listener: TcpListener, handler: H, shutdown: impl Future<Output = ()>) {
    let handler = Arc::new(handler);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Usually running out of file descriptors; back off rather than spin.
                    warn!(%error, service = H::NAME, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(dispatch(&*handler, request).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        tokio::spawn(graceful.watch(connection));
    }

    drop(listener);
    info!(service = H::NAME, connections = graceful.count(), "shutting down, draining connections");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        warn!(service = H::NAME, "connections still open after the drain timeout");
    }
}

async fn dispatch<H: Handler>(handler: &H, request: Request<Incoming>) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    let path = parts.uri.path();
    let response = match handler.route(path) {
        None => error_json(StatusCode::NOT_FOUND, "not found"),
        Some(_) if parts.method != Method::GET && parts.method != Method::HEAD => {
            let mut response = error_json(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        Some(route) => handler.respond(route, &parts).await,
    };
    info!(service = H::NAME, method = %parts.method, path, status = response.status().as_u16(), "request");
    response
}

pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    // Serialising our own plain structs cannot fail.
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_type(status, "application/json", body.into())
}

pub(crate) fn error_json(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

pub(crate) fn html(status: StatusCode, body: String) -> Response<Body> {
    with_type(status, "text/html; charset=utf-8", body.into())
}

/// `{"status": "<name> is healthy"}`, the answer to `/health`.
pub(crate) fn health(name: &str) -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({ "status": format!("{name} is healthy") }))
}

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `/{prefix}/{id}` with a numeric id, the shape of every per-product path.
pub(crate) fn product_id(path: &str, prefix: &str) -> Option<u32> {
    path.strip_prefix(prefix)?.strip_prefix('/')?.parse().ok()
}

/// The subset of `headers` that is copied onto upstream calls.
pub(crate) fn propagated(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in PROPAGATED_HEADERS {
        for value in headers.get_all(name) {
            out.append(HeaderName::from_static(name), value.clone());
        }
    }
    out
}

/// The base URL of an upstream service, `http://host:port` with an optional path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    fn join(&self, path: &str) -> Result<Uri, UpstreamError> {
        let url = format!("{}{path}", self.0);
        url.parse().map_err(|_| UpstreamError::BadUrl(url))
    }
}

impl FromStr for BaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uri: Uri = s.parse().map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(format!("{s:?} must be an http:// URL with a host (TLS is not supported)"));
        }
        if uri.query().is_some() {
            return Err(format!("{s:?} must not have a query"));
        }
        Ok(BaseUrl(s.trim_end_matches('/').to_owned()))
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an upstream call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("invalid upstream URL {0:?}")]
    BadUrl(String),
    #[error("upstream request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("reading the upstream body failed: {0}")]
    Body(#[from] hyper::Error),
    #[error("upstream answered {0}")]
    Status(StatusCode),
    #[error("upstream sent invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
}

impl UpstreamError {
    /// The status a proxying API endpoint answers with when this error happens.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Status(status) if status.is_client_error() => *status,
            UpstreamError::Request(error) if error.is_connect() => StatusCode::SERVICE_UNAVAILABLE,
            UpstreamError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

/// A pooled HTTP/1.1 client for calls to other bookinfo services; cheap to clone, create once.
#[derive(Clone)]
pub(crate) struct Upstream {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl Upstream {
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// `timeout` bounds a whole call: connecting, the response head and the body.
    pub(crate) fn new(timeout: Duration) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        Upstream { client, timeout }
    }

    /// `GET base + path`, carrying `headers`; any status is returned as is.
    pub(crate) async fn get(
        &self,
        base: &BaseUrl,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(StatusCode, Bytes), UpstreamError> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = base.join(path)?;
        *request.headers_mut() = headers.clone();
        let call = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, call).await.map_err(|_| UpstreamError::Timeout(self.timeout))?
    }

    /// `GET base + path` expecting 200 with a JSON body of type `T`. Failures are logged here.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        base: &BaseUrl,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<T, UpstreamError> {
        let result = async {
            let (status, body) = self.get(base, path, headers).await?;
            if status != StatusCode::OK {
                return Err(UpstreamError::Status(status));
            }
            Ok(serde_json::from_slice(&body)?)
        }
        .await;
        if let Err(error) = &result {
            warn!(%error, upstream = %base, path, "upstream call failed");
        }
        result
    }
}
