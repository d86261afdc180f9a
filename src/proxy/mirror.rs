//! RequestMirror: a copy of the request goes to another backend, fire and forget. The mirror
//! runs in its own task, its answer is dropped, and its failures are only logged.

use http::{HeaderMap, Method};
use http_body_util::BodyExt;

use super::body::ProxyBody;
use super::filters::Target;
use super::upstream::{RequestHead, Upstream, strip_hop_by_hop};
use crate::table::Mirror;

/// Whether this request is one of the mirrored fraction.
pub fn sampled(mirror: &Mirror) -> bool {
    mirror.numerator >= mirror.denominator || rand::random_range(0..mirror.denominator) < mirror.numerator
}

pub fn send(
    upstream: Upstream,
    mirror: &Mirror,
    method: &Method,
    target: &Target,
    headers: &HeaderMap,
    body: ProxyBody,
) {
    let backend = std::sync::Arc::clone(&mirror.backend);
    let mut headers = headers.clone();
    strip_hop_by_hop(&mut headers, false);
    let mut path_and_query = target.path.clone();
    if let Some(q) = &target.query {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    let method = method.clone();
    tokio::spawn(async move {
        let path_and_query = match http::uri::PathAndQuery::try_from(path_and_query) {
            Ok(pq) => pq,
            Err(error) => {
                tracing::debug!(backend = %backend.id, %error, "mirror request failed");
                return;
            }
        };
        let head = RequestHead { method, path_and_query, headers };
        let client_ip = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        match upstream.send(&backend, head, body, None, client_ip, None).await {
            Ok((response, _selection)) => {
                // Drain so that the pooled connection can be reused.
                let _ = response.into_body().collect().await;
            }
            Err(error) => tracing::debug!(backend = %backend.id, %error, "mirror request failed"),
        }
    });
}
