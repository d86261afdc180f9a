//! The sockets of the data plane. Compile decides which (address, port) pairs exist; this
//! module binds and unbinds them to match each new table, and serves HTTP/1.1 and h2c (prior
//! knowledge) on every one of them.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::admission::{self, Admission};
use super::connection::Timeouts;
use super::forwarding::TrustedProxies;
use super::normalize::EscapedSlashes;
use super::workers::{Accepted, WorkerConfig, Workers};
use crate::metrics::METRICS;
use crate::table::RouteTable;

/// Limits on what a client may send and how long it may take. The defaults are at least as
/// strict as nginx's and Envoy's (README, "Security").
#[derive(Clone, Debug)]
pub struct Limits {
    /// Total size of the request line and headers (HTTP/1.1) or header list (HTTP/2).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Path and query of the request target (414 beyond).
    pub max_uri_bytes: usize,
    /// Time a client has to send its request headers: the first request's from accept, a
    /// later HTTP/1.1 request's from its first byte.
    pub header_read_timeout: Duration,
    /// Time a connection may wait between requests.
    pub idle_timeout: Duration,
    /// Longest wait for the next piece of a request body.
    pub request_body_timeout: Duration,
    /// Longest wait for a client to read what is written to it.
    pub send_timeout: Duration,
    /// Time an upgraded connection (WebSocket) may pass no byte either way.
    pub tunnel_idle_timeout: Duration,
    /// Client connections open at once; `None`: half the open files limit.
    pub max_connections: Option<usize>,
    /// Client connections open at once from one IP address.
    pub max_connections_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 60 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_body_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            tunnel_idle_timeout: Duration::from_secs(300),
            max_connections: None,
            max_connections_per_client: 1024,
        }
    }
}

impl Limits {
    pub fn connection_timeouts(&self) -> Timeouts {
        Timeouts {
            header: self.header_read_timeout,
            idle: self.idle_timeout,
            send: self.send_timeout,
            tunnel_idle: self.tunnel_idle_timeout,
        }
    }
}

/// How requests are read before routing.
#[derive(Clone, Debug, Default)]
pub struct RequestPolicy {
    pub escaped_slashes: EscapedSlashes,
    /// Peers whose forwarding headers (`X-Forwarded-*`, `X-Request-Id`) are believed.
    pub trusted_proxies: TrustedProxies,
}

/// How the data plane serves, fixed at start.
#[derive(Clone, Debug)]
pub struct DataPlaneOptions {
    pub limits: Limits,
    pub policy: RequestPolicy,
    /// How long a connection to an endpoint may take before the endpoint counts as down.
    pub connect_timeout: Duration,
    /// Worker threads, each with its own runtime and upstream pools.
    pub workers: usize,
}

/// Binds the table's sockets and serves them.
pub struct DataPlane {
    tables: Arc<ArcSwap<RouteTable>>,
    workers: Arc<Workers>,
    admission: Arc<Admission>,
    trusted_proxies: Arc<TrustedProxies>,
    sockets: Mutex<HashMap<SocketAddr, watch::Sender<bool>>>,
    bind_errors: Mutex<BTreeMap<SocketAddr, String>>,
}

impl DataPlane {
    /// Starts the worker threads; no socket is bound until a table lists one.
    pub fn new(options: DataPlaneOptions) -> std::io::Result<Self> {
        let limits = &options.limits;
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            // The connection's supervisor keeps the header deadline (hyper's starts only once
            // HTTP/1.1 is chosen, and is also its only deadline between requests).
            .header_read_timeout(None)
            // Room for the request line beyond the header limit; the exact check is per request.
            .max_buf_size(limits.max_header_bytes + limits.max_uri_bytes)
            .max_headers(limits.max_headers);
        http.http2().timer(TokioTimer::new()).max_header_list_size((limits.max_header_bytes + 8192) as u32);
        let open_files = admission::raise_open_files_limit();
        let max_connections = limits.max_connections.unwrap_or_else(|| admission::default_max_connections(open_files));
        let admission = Arc::new(Admission::new(max_connections, limits.max_connections_per_client));
        let tables = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
        let config = WorkerConfig {
            tables: Arc::clone(&tables),
            limits: options.limits.clone(),
            escaped_slashes: options.policy.escaped_slashes,
            connect_timeout: options.connect_timeout,
            http,
        };
        let workers = Arc::new(Workers::start(options.workers, &config)?);
        tracing::info!(
            workers = workers.count(),
            max_connections,
            max_connections_per_client = limits.max_connections_per_client,
            open_files,
            "data plane started"
        );
        Ok(Self {
            tables,
            workers,
            admission,
            trusted_proxies: Arc::new(options.policy.trusted_proxies.clone()),
            sockets: Mutex::default(),
            bind_errors: Mutex::default(),
        })
    }

    /// The table requests are served from now.
    pub fn table(&self) -> Arc<RouteTable> {
        self.tables.load_full()
    }

    /// Swaps in a new table, then binds the sockets it adds and stops accepting on the ones it
    /// removes. Requests already running finish on the table they started with.
    pub async fn publish(&self, table: RouteTable) {
        let wanted: Vec<SocketAddr> = table.sockets.iter().map(|s| s.address).collect();
        self.tables.store(Arc::new(table));
        METRICS.table_generation.inc();
        let mut to_bind = Vec::new();
        {
            let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
            sockets.retain(|address, stop| {
                let keep = wanted.contains(address);
                if !keep {
                    tracing::info!(%address, "socket no longer in the table; closing it");
                    let _ = stop.send(true);
                }
                keep
            });
            to_bind.extend(wanted.iter().filter(|a| !sockets.contains_key(a)).copied());
        }
        let mut errors = BTreeMap::new();
        for address in to_bind {
            match TcpListener::bind(address).await {
                Ok(listener) => {
                    tracing::info!(%address, "listening");
                    let (stop, stopped) = watch::channel(false);
                    self.sockets.lock().unwrap_or_else(|e| e.into_inner()).insert(address, stop);
                    tokio::spawn(accept_loop(self.accept_context(address), listener, stopped));
                }
                Err(error) => {
                    tracing::error!(%address, %error, "cannot bind a listener's socket; the other sockets still serve");
                    errors.insert(address, error.to_string());
                }
            }
        }
        *self.bind_errors.lock().unwrap_or_else(|e| e.into_inner()) = errors;
    }

    /// Sockets that the current table lists but that could not be bound, with the reason.
    pub fn bind_errors(&self) -> BTreeMap<SocketAddr, String> {
        self.bind_errors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn accept_context(&self, socket: SocketAddr) -> AcceptContext {
        AcceptContext {
            socket,
            workers: Arc::clone(&self.workers),
            admission: Arc::clone(&self.admission),
            trusted_proxies: Arc::clone(&self.trusted_proxies),
        }
    }

    /// Stops accepting, lets open connections finish their requests (and tunnels their
    /// conversations) for at most `drain`.
    pub async fn shutdown(&self, drain: Duration) {
        for (_, stop) in self.sockets.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = stop.send(true);
        }
        tracing::info!(open_connections = METRICS.active_connections.get(), "draining");
        if tokio::time::timeout(drain, self.workers.drain()).await.is_err() {
            tracing::warn!(?drain, "drain timeout reached; closing the remaining connections");
        }
    }
}

struct AcceptContext {
    socket: SocketAddr,
    workers: Arc<Workers>,
    admission: Arc<Admission>,
    trusted_proxies: Arc<TrustedProxies>,
}

/// Accepts on one table socket and hands each connection to a worker; a connection over the
/// limits is closed at once.
async fn accept_loop(ctx: AcceptContext, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(socket = %ctx.socket, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let permit = match ctx.admission.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                METRICS.connections_refused.with_label_values(&[refusal.label()]).inc();
                tracing::debug!(%peer, reason = refusal.label(), "connection refused");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let trusted = ctx.trusted_proxies.contains(peer.ip());
        match stream.into_std() {
            Ok(stream) => ctx.workers.dispatch(Accepted { stream, peer, socket: ctx.socket, permit, trusted }),
            Err(error) => tracing::warn!(%peer, %error, "cannot hand an accepted connection to a worker"),
        }
    }
}
