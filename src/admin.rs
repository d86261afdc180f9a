//! The admin endpoint: `/metrics`, `/healthz`, `/readyz` and `/config`. Kept off the data
//! plane's sockets (loopback by default). `/config` shows the whole configuration, so it
//! answers only peers on loopback (a shell in the Pod, `kubectl port-forward`) unless
//! `--expose-config` says otherwise, even when the admin address is open for Prometheus and
//! the kubelet's probes. The endpoint bounds what its clients can hold: header and connection
//! deadlines and a connection limit, and it backs off when accepting fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::METRICS;
use crate::runtime::Runtime;

/// Time a client has to send a request's headers (HTTP/1.1 only, so that hyper's header timer
/// runs from the first moment of a connection).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one admin connection (a scraper reconnects).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Admin connections open at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 64;
/// Pause after a failed accept (out of file descriptors, say) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds the admin address; the caller learns at once when it is taken.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

pub async fn serve(listener: TcpListener, runtime: Arc<Runtime>, expose_config: bool) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "admin endpoint: accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let show_config = config_allowed(peer, expose_config);
        let runtime = Arc::clone(&runtime);
        let http = http.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let runtime = Arc::clone(&runtime);
                async move { Ok::<_, std::convert::Infallible>(route(&runtime, &request, show_config)) }
            });
            let connection = http.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

/// Whether `/config` answers this peer.
fn config_allowed(peer: SocketAddr, expose_config: bool) -> bool {
    expose_config || peer.ip().to_canonical().is_loopback()
}

fn route(runtime: &Runtime, request: &Request<Incoming>, show_config: bool) -> Response<Full<Bytes>> {
    match request.uri().path() {
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4", METRICS.render()),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if runtime.is_ready() => reply(StatusCode::OK, "text/plain", "ready\n".into()),
        "/readyz" => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "no route table loaded yet\n".into()),
        "/config" if !show_config => reply(
            StatusCode::FORBIDDEN,
            "text/plain",
            "/config answers only on loopback (or with --expose-config)\n".into(),
        ),
        "/config" => {
            let table = runtime.data_plane.table();
            let report = runtime.report();
            let body = serde_json::json!({ "table": &*table, "report": &*report });
            match serde_json::to_string_pretty(&body) {
                Ok(text) => reply(StatusCode::OK, "application/json", text),
                Err(error) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", error.to_string()),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics, /healthz, /readyz, /config\n".into()),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_answers_loopback_peers_unless_exposed() {
        for peer in ["127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000"] {
            assert!(config_allowed(peer.parse().unwrap(), false), "{peer}");
        }
        for peer in ["10.244.0.7:5000", "[2001:db8::1]:5000", "[::ffff:10.0.0.1]:5000"] {
            assert!(!config_allowed(peer.parse().unwrap(), false), "{peer}");
            assert!(config_allowed(peer.parse().unwrap(), true), "{peer} with --expose-config");
        }
    }
}
