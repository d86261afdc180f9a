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

use super::workers::{Accepted, WorkerConfig, Workers};
use crate::metrics::METRICS;
use crate::table::RouteTable;

/// Limits on what a client may send, with Envoy's defaults.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Total size of the request line and headers (HTTP/1.1) or header list (HTTP/2).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Time a client has to send its request headers.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_header_bytes: 60 * 1024, max_headers: 100, header_read_timeout: Duration::from_secs(10) }
    }
}

/// How the data plane serves, fixed at start.
#[derive(Clone, Debug)]
pub struct DataPlaneOptions {
    pub limits: Limits,
    /// How long a connection to an endpoint may take before the endpoint counts as down.
    pub connect_timeout: Duration,
    /// Worker threads, each with its own runtime and upstream pools.
    pub workers: usize,
}

/// Binds the table's sockets and serves them.
pub struct DataPlane {
    tables: Arc<ArcSwap<RouteTable>>,
    workers: Arc<Workers>,
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
            .header_read_timeout(limits.header_read_timeout)
            // Room for the request line beyond the header limit; the exact check is per request.
            .max_buf_size(limits.max_header_bytes + 8192)
            .max_headers(limits.max_headers);
        http.http2().timer(TokioTimer::new()).max_header_list_size((limits.max_header_bytes + 8192) as u32);
        let tables = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
        let config = WorkerConfig {
            tables: Arc::clone(&tables),
            limits: options.limits.clone(),
            connect_timeout: options.connect_timeout,
            http,
        };
        let workers = Arc::new(Workers::start(options.workers, &config)?);
        tracing::info!(workers = workers.count(), "data plane started");
        Ok(Self { tables, workers, sockets: Mutex::default(), bind_errors: Mutex::default() })
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
        AcceptContext { socket, workers: Arc::clone(&self.workers) }
    }

    /// Stops accepting, lets open connections finish their requests for at most `drain`.
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
}

/// Accepts on one table socket and hands each connection to a worker.
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
        let _ = stream.set_nodelay(true);
        match stream.into_std() {
            Ok(stream) => ctx.workers.dispatch(Accepted { stream, peer, socket: ctx.socket }),
            Err(error) => tracing::warn!(%peer, %error, "cannot hand an accepted connection to a worker"),
        }
    }
}
