//! Every way a request can fail in the proxy, and the one place that maps them to statuses.

use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid host: {0}")]
    InvalidHost(#[from] super::authority::InvalidHost),
    #[error("invalid request path: {0}")]
    InvalidPath(#[from] super::normalize::InvalidPath),
    #[error("the request headers are larger than allowed")]
    HeadersTooLarge,
    #[error("the request target is longer than allowed")]
    UriTooLong,
    #[error("the request method is longer than any known method")]
    MethodTooLong,
    #[error("the request method is not served by a gateway (CONNECT, TRACE)")]
    MethodNotAllowed,
    #[error("an HTTP/2 header value has leading or trailing whitespace")]
    MalformedHeader,
    #[error("the client's request body failed")]
    ClientBody,
    #[error("the client stopped sending its request body")]
    ClientBodyTimeout,
    #[error("no route matches the request")]
    NoRoute,
    #[error("the request's host belongs to another listener than the TLS server name (SNI) it connected with")]
    Misdirected,
    #[error("the matched rule has no backend to send to")]
    NoBackend,
    #[error("backend reference not resolved: {0}")]
    UnresolvedBackend(String),
    #[error("backend {0} has no endpoint to send to")]
    NoEndpoint(std::sync::Arc<str>),
    #[error("backend {0} is over its connection limits")]
    Overloaded(std::sync::Arc<str>),
    #[error("could not connect to backend {backend}: {source}")]
    Connect { backend: std::sync::Arc<str>, source: super::pool::ConnectError },
    #[error("backend {backend} failed: {source}")]
    Upstream { backend: std::sync::Arc<str>, source: hyper::Error },
    #[error("backend {0} switched protocols without being asked to (only WebSocket upgrades pass)")]
    UnexpectedUpgrade(std::sync::Arc<str>),
    #[error("the request timed out")]
    Timeout,
    #[error("the request could not be rewritten: {0}")]
    Rewrite(String),
}

impl ProxyError {
    /// The status the client gets. All decisions between 4xx and 5xx live here.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::InvalidHost(_)
            | ProxyError::InvalidPath(_)
            | ProxyError::MethodTooLong
            | ProxyError::MalformedHeader
            | ProxyError::ClientBody => StatusCode::BAD_REQUEST,
            ProxyError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            // The Gateway API asks for 500 when a rule's backend cannot be resolved.
            ProxyError::NoBackend | ProxyError::UnresolvedBackend(_) | ProxyError::Rewrite(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ProxyError::NoEndpoint(_) | ProxyError::Overloaded(_) | ProxyError::Connect { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Upstream { .. } | ProxyError::UnexpectedUpgrade(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// For a request refused because of what the client sent: why, as the bounded `reason`
    /// label of `gantry_requests_refused_total`.
    pub fn refusal(&self) -> Option<&'static str> {
        use super::normalize::InvalidPath;
        Some(match self {
            ProxyError::InvalidHost(_) => "invalid_host",
            ProxyError::InvalidPath(InvalidPath::EscapedSlash) => "escaped_slash",
            ProxyError::InvalidPath(InvalidPath::DotSegmentParameter) => "dot_segment_parameter",
            ProxyError::InvalidPath(_) => "invalid_path",
            ProxyError::HeadersTooLarge => "headers_too_large",
            ProxyError::UriTooLong => "uri_too_long",
            ProxyError::MethodTooLong | ProxyError::MethodNotAllowed => "method",
            ProxyError::MalformedHeader => "malformed_header",
            ProxyError::ClientBody => "client_body",
            ProxyError::ClientBodyTimeout => "client_body_timeout",
            _ => return None,
        })
    }
}
