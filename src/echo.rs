//! `gantry echo`: a backend for trying routes out and for tests. Every request is answered
//! with a JSON description of what arrived, so that what the gateway changed can be seen.
//! `?status=NNN` picks the status and `?delay_ms=N` delays the answer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::net::TcpListener;

#[derive(clap::Args, Debug)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Name put in every answer, to tell backends apart.
    #[arg(long, env = "ECHO_NAME", default_value = "echo")]
    pub name: String,
    /// Delay every answer by this many milliseconds (a slow backend).
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
}

#[derive(Serialize)]
struct Echo<'a> {
    backend: &'a str,
    method: &'a str,
    path: &'a str,
    host: Option<&'a str>,
    version: String,
    headers: BTreeMap<&'a str, Vec<&'a str>>,
    body_bytes: usize,
}

pub async fn run(args: EchoArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, name = %args.name, "echo backend serving");
    // Lives as long as the process: every connection task reads it.
    let name: &'static str = Box::leak(args.name.into_boxed_str());
    let delay = Duration::from_millis(args.delay_ms);
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1().timer(TokioTimer::new());
    let shutdown = crate::signals::shutdown();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            _ = &mut shutdown => return Ok(()),
        };
        let http = http.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(name, delay, request));
            let _ = http.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
        });
    }
}

async fn answer(
    name: &str,
    delay: Duration,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .map(|q| q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
        .unwrap_or_default();
    if let Some(ms) = query.get("delay_ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = query.get("status").and_then(|v| v.parse().ok()).and_then(|s| StatusCode::from_u16(s).ok());
    let (parts, body) = request.into_parts();
    let body_bytes = body.collect().await?.to_bytes().len();
    let mut headers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in &parts.headers {
        headers.entry(key.as_str()).or_default().push(value.to_str().unwrap_or("<binary>"));
    }
    let echo = Echo {
        backend: name,
        method: parts.method.as_str(),
        path: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        host: parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()),
        version: format!("{:?}", parts.version),
        headers,
        body_bytes,
    };
    let text = serde_json::to_vec(&echo).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status.unwrap_or(StatusCode::OK);
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert("x-backend", header::HeaderValue::from_str(name).unwrap_or(header::HeaderValue::from_static("echo")));
    Ok(response)
}
