//! Every way a request can fail in the proxy, and the one place that maps them to statuses.

use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the request has no host")]
    MissingHost,
    #[error("invalid request path: {0}")]
    InvalidPath(#[from] super::normalize::InvalidPath),
    #[error("the request headers are larger than allowed")]
    HeadersTooLarge,
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
    #[error("the request timed out")]
    Timeout,
    #[error("the request could not be rewritten: {0}")]
    Rewrite(String),
}

impl ProxyError {
    /// The status the client gets. All decisions between 4xx and 5xx live here.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::MissingHost | ProxyError::InvalidPath(_) => StatusCode::BAD_REQUEST,
            ProxyError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            // The Gateway API asks for 500 when a rule's backend cannot be resolved.
            ProxyError::NoBackend | ProxyError::UnresolvedBackend(_) | ProxyError::Rewrite(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ProxyError::NoEndpoint(_) | ProxyError::Overloaded(_) | ProxyError::Connect { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}
