//! A worker's upstream connections, kept open between requests. An HTTP/1.1 connection carries
//! one request at a time: it goes back to its endpoint's idle list once the response body has
//! been read to the end, and is closed instead when it was not. An h2c connection carries every
//! request to its endpoint at once. Each worker has its own pool, so the locks here are never
//! contended: they only make the pool `Sync` for the tasks of one thread.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::body::ProxyBody;
use crate::metrics::METRICS;
use crate::table::UpstreamProtocol;

/// An idle connection is closed after this long without a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle HTTP/1.1 connections kept per endpoint (per worker); more are closed when they finish.
const MAX_IDLE_PER_ENDPOINT: usize = 256;
/// How often closed and expired idle connections are dropped when no request comes by.
const SWEEP_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("HTTP handshake failed: {0}")]
    Handshake(#[from] hyper::Error),
}

/// A connection ready for one request.
pub enum Sender {
    Http1(http1::SendRequest<ProxyBody>),
    Http2(http2::SendRequest<ProxyBody>),
}

/// What `checkout` hands out: the connection, and whether it served a request before (a
/// reused connection may have been closed by the endpoint meanwhile).
pub struct Checkout {
    pub sender: Sender,
    pub reused: bool,
}

/// Keyed by endpoint address, with a fast hash: the keys come from the route table, never from
/// a client, so SipHash's protection against chosen keys buys nothing on this per-request path.
type ByEndpoint<V> = HashMap<SocketAddr, V, foldhash::fast::RandomState>;

struct Idle {
    sender: http1::SendRequest<ProxyBody>,
    since: Instant,
}

pub struct Pool {
    idle: Mutex<ByEndpoint<Vec<Idle>>>,
    multiplexed: Mutex<ByEndpoint<http2::SendRequest<ProxyBody>>>,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool and the task that sweeps it; call within the worker's runtime.
    pub fn start(connect_timeout: Duration) -> Arc<Self> {
        let pool = Arc::new(Self { idle: Mutex::default(), multiplexed: Mutex::default(), connect_timeout });
        tokio::spawn(sweep_while_alive(Arc::downgrade(&pool)));
        pool
    }

    /// An open connection to `address`: an idle one if there is one, else a new one.
    pub async fn checkout(&self, address: SocketAddr, protocol: UpstreamProtocol) -> Result<Checkout, ConnectError> {
        let reused = match protocol {
            UpstreamProtocol::Http1 => self.take_idle(address).map(Sender::Http1),
            UpstreamProtocol::H2c => self.shared_h2(address).map(Sender::Http2),
        };
        match reused {
            Some(sender) => Ok(Checkout { sender, reused: true }),
            // Boxed: connecting is rare, and its future is large; inline, it would make every
            // request's future larger, and futures are moved as they are started.
            None => Ok(Checkout { sender: Box::pin(self.connect(address, protocol)).await?, reused: false }),
        }
    }

    /// A new connection to `address`.
    pub async fn connect(&self, address: SocketAddr, protocol: UpstreamProtocol) -> Result<Sender, ConnectError> {
        let stream = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| ConnectError::Timeout(self.connect_timeout))??;
        stream.set_nodelay(true)?;
        let io = TokioIo::new(stream);
        METRICS.upstream_connections.inc();
        match protocol {
            UpstreamProtocol::Http1 => {
                let (sender, connection) = http1::handshake(io).await?;
                tokio::spawn(async move {
                    if let Err(error) = connection.with_upgrades().await {
                        tracing::debug!(%address, %error, "upstream connection ended with an error");
                    }
                });
                Ok(Sender::Http1(sender))
            }
            UpstreamProtocol::H2c => {
                let (sender, connection) =
                    http2::Builder::new(TokioExecutor::new()).timer(TokioTimer::new()).handshake(io).await?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%address, %error, "upstream connection ended with an error");
                    }
                });
                lock(&self.multiplexed).insert(address, sender.clone());
                Ok(Sender::Http2(sender))
            }
        }
    }

    /// The most recently used idle connection that can take a request now. Closed and expired
    /// ones met on the way are dropped.
    fn take_idle(&self, address: SocketAddr) -> Option<http1::SendRequest<ProxyBody>> {
        let mut idle = lock(&self.idle);
        let list = idle.get_mut(&address)?;
        while let Some(Idle { sender, since }) = list.pop() {
            if sender.is_ready() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    }

    fn shared_h2(&self, address: SocketAddr) -> Option<http2::SendRequest<ProxyBody>> {
        let mut multiplexed = lock(&self.multiplexed);
        match multiplexed.get(&address) {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                multiplexed.remove(&address);
                None
            }
            None => None,
        }
    }

    /// Puts a connection whose response was read to the end back for the next request.
    fn check_in(&self, address: SocketAddr, sender: http1::SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        let list = idle.entry(address).or_default();
        if list.len() < MAX_IDLE_PER_ENDPOINT {
            list.push(Idle { sender, since: Instant::now() });
        }
    }

    /// Drops idle connections that the endpoint closed or that waited too long, and the
    /// entries of endpoints that have none left.
    fn sweep(&self) {
        lock(&self.idle).retain(|_, list| {
            list.retain(|idle| !idle.sender.is_closed() && idle.since.elapsed() < IDLE_TIMEOUT);
            !list.is_empty()
        });
        lock(&self.multiplexed).retain(|_, sender| !sender.is_closed());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn sweep_while_alive(pool: Weak<Pool>) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match pool.upgrade() {
            Some(pool) => pool.sweep(),
            None => return,
        }
    }
}

/// Returns an HTTP/1.1 connection to its pool when the response body it carries has been
/// read to the end; dropped earlier, it closes the connection (the rest of the body is unread).
pub struct CheckIn {
    pool: Arc<Pool>,
    address: SocketAddr,
    sender: http1::SendRequest<ProxyBody>,
}

impl CheckIn {
    pub fn new(pool: Arc<Pool>, address: SocketAddr, sender: http1::SendRequest<ProxyBody>) -> Self {
        Self { pool, address, sender }
    }

    fn finish(self) {
        self.pool.check_in(self.address, self.sender);
    }
}

/// A response body from an endpoint; hands its connection back once it is complete.
pub struct UpstreamBody {
    inner: Incoming,
    check_in: Option<CheckIn>,
}

impl UpstreamBody {
    pub fn new(inner: Incoming, check_in: Option<CheckIn>) -> Self {
        let mut body = Self { inner, check_in };
        body.finish_if_complete();
        body
    }

    fn finish_if_complete(&mut self) {
        if self.inner.is_end_stream()
            && let Some(check_in) = self.check_in.take()
        {
            check_in.finish();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            // The server stops polling once `is_end_stream` says so: check after every frame.
            Poll::Ready(Some(Ok(_))) => self.finish_if_complete(),
            Poll::Ready(None) => {
                if let Some(check_in) = self.check_in.take() {
                    check_in.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => self.check_in = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
