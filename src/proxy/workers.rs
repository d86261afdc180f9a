//! Thread-per-core serving. Each worker is an OS thread running its own single-threaded Tokio
//! runtime with its own upstream connection pools. An accepted connection is handed to one
//! worker and stays there: its requests, the upstream connections they use and every wake-up
//! between them happen on one thread, with no work stealing, no cross-thread wake-ups and no
//! shared pool lock on the request path (nginx's worker model, inside one process).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::{mpsc, oneshot};

use super::Limits;
use super::admission::Permit;
use super::body::Guarded;
use super::connection::{ConnState, Connection, Registry, Timeouts};
use super::handler::{self, Shared};
use super::normalize::EscapedSlashes;
use super::supervise::{Ended, Graceful, Supervised, Watched};
use super::tls;
use super::upstream::Upstream;
use crate::table::RouteTable;

/// A connection accepted on a table socket, on its way to a worker.
pub struct Accepted {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    /// The table's socket address it was accepted on.
    pub socket: SocketAddr,
    /// Its place under the connection limits.
    pub permit: Permit,
    /// The peer is a trusted proxy.
    pub trusted: bool,
}

/// What a worker is told.
enum Message {
    Serve(Accepted),
    /// Stop taking connections, finish the open ones, then say so.
    Drain(oneshot::Sender<()>),
}

/// What each worker builds its own copy of.
#[derive(Clone)]
pub struct WorkerConfig {
    pub tables: Arc<ArcSwap<RouteTable>>,
    pub limits: Limits,
    pub escaped_slashes: EscapedSlashes,
    pub connect_timeout: std::time::Duration,
    pub http: auto::Builder<TokioExecutor>,
}

/// The worker threads, fed round-robin.
pub struct Workers {
    inboxes: Vec<mpsc::UnboundedSender<Message>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `count` worker threads (at least one).
    pub fn start(count: usize, config: &WorkerConfig) -> std::io::Result<Self> {
        let mut inboxes = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            let (inbox, inbox_rx) = mpsc::unbounded_channel();
            let config = config.clone();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::Builder::new()
                .name(format!("gantry-worker-{index}"))
                .spawn(move || runtime.block_on(serve_accepted(config, inbox_rx)))?;
            inboxes.push(inbox);
        }
        Ok(Self { inboxes, next: AtomicUsize::new(0) })
    }

    pub fn count(&self) -> usize {
        self.inboxes.len()
    }

    /// Hands a connection to the next worker.
    pub fn dispatch(&self, accepted: Accepted) {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.inboxes.len();
        if self.inboxes[index].send(Message::Serve(accepted)).is_err() {
            // Only if the worker's thread is gone; the connection is dropped (closed).
            tracing::error!(worker = index, "data-plane worker stopped; connection closed");
        }
    }

    /// Has every worker stop taking connections and finish its open ones; returns once all
    /// have. Connections handed over later are closed.
    pub async fn drain(&self) {
        let mut drained = Vec::with_capacity(self.inboxes.len());
        for inbox in &self.inboxes {
            let (done, finished) = oneshot::channel();
            if inbox.send(Message::Drain(done)).is_ok() {
                drained.push(finished);
            }
        }
        for finished in drained {
            // An error only means that the worker is gone, and its connections with it.
            let _ = finished.await;
        }
    }
}

impl<I, S, E, B> Graceful for auto::UpgradeableConnection<'static, I, S, E>
where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: auto::HttpServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        auto::UpgradeableConnection::graceful_shutdown(self);
    }
}

/// A worker's loop: serves every connection it is handed until the data plane is dropped.
/// Draining is per worker: every connection's supervisor checks its own flag, and a shared
/// signal would put a lock taken by every thread on the path of every request.
async fn serve_accepted(config: WorkerConfig, mut inbox: mpsc::UnboundedReceiver<Message>) {
    let timeouts = config.limits.connection_timeouts();
    let shared = Arc::new(Shared {
        tables: config.tables,
        upstream: Upstream::start(config.connect_timeout),
        limits: config.limits,
        escaped_slashes: config.escaped_slashes,
        timeouts,
    });
    let registry = Arc::new(Registry::default());
    let mut draining = false;
    while let Some(message) = inbox.recv().await {
        let accepted = match message {
            Message::Serve(accepted) => accepted,
            Message::Drain(done) => {
                if !draining {
                    draining = true;
                    let registry = Arc::clone(&registry);
                    tokio::spawn(async move {
                        registry.drain().await;
                        let _ = done.send(());
                    });
                }
                continue;
            }
        };
        // Once draining, a connection handed over late is dropped, which closes it.
        if draining {
            continue;
        }
        let Accepted { stream, peer, socket, permit, trusted } = accepted;
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%peer, %error, "cannot register an accepted connection");
                continue;
            }
        };
        let state = registry.open(permit);
        let connection = Connection::new(socket, peer, trusted, Arc::clone(&state));
        let tls = shared.tables.load().socket(socket).and_then(|s| s.tls.clone());
        let serving = Serving { shared: Arc::clone(&shared), http: config.http.clone(), state, timeouts };
        tokio::spawn(async move {
            match tls {
                None => serving.serve(stream, connection).await,
                // The handshake has the time a client has for its request headers; the watch
                // (deadlines, the first-line check) is on the decrypted stream.
                Some(tls) => match tls::handshake(stream, &tls, serving.shared.limits.header_read_timeout).await {
                    Ok((stream, sni)) => serving.serve(stream, connection.with_tls(sni)).await,
                    Err(error) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                },
            }
        });
    }
}

/// What a connection's task needs to serve HTTP on it, plain or over TLS.
struct Serving {
    shared: Arc<Shared>,
    http: auto::Builder<TokioExecutor>,
    state: Arc<ConnState>,
    timeouts: Timeouts,
}

impl Serving {
    async fn serve<I>(self, io: I, connection: Connection)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let peer = connection.peer;
        let shared = self.shared;
        let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
            // Busy until the response body is sent (or dropped).
            let guard = connection.state.request_started(request.version() == http::Version::HTTP_2);
            let shared = Arc::clone(&shared);
            let connection = connection.clone();
            async move {
                let response = handler::handle(shared, connection, request).await;
                Ok::<_, std::convert::Infallible>(response.map(|body| Guarded::new(body, guard)))
            }
        });
        let io = TokioIo::new(Watched::new(io, Arc::clone(&self.state)));
        let served = self.http.serve_connection_with_upgrades(io, service).into_owned();
        match Supervised::new(served, self.state, self.timeouts).await {
            Ended::Finished(Ok(())) => {}
            Ended::Finished(Err(error)) => tracing::debug!(%peer, %error, "connection ended with an error"),
            Ended::Closed(reason) => tracing::debug!(%peer, reason = reason.label(), "connection closed"),
        }
    }
}
