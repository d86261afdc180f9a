//! The admin endpoint: `/metrics`, `/healthz`, `/readyz` and `/config`. Kept off the data
//! plane's sockets (loopback by default) since `/config` shows the whole configuration.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::metrics::METRICS;
use crate::runtime::Runtime;

/// Binds the admin address; the caller learns at once when it is taken.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

pub async fn serve(listener: TcpListener, runtime: Arc<Runtime>) {
    let http = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let runtime = Arc::clone(&runtime);
        let http = http.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let runtime = Arc::clone(&runtime);
                async move { Ok::<_, std::convert::Infallible>(route(&runtime, &request)) }
            });
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn route(runtime: &Runtime, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    match request.uri().path() {
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4", METRICS.render()),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if runtime.is_ready() => reply(StatusCode::OK, "text/plain", "ready\n".into()),
        "/readyz" => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "no route table loaded yet\n".into()),
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
