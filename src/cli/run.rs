//! `gantry run`: file mode.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;

use super::{RunArgs, ServeArgs};
use crate::compile::CompileOptions;
use crate::proxy::{DataPlane, DataPlaneOptions};
use crate::runtime::Runtime;
use crate::source::file::{DEBOUNCE, FileSource, Load};

/// How long a connection to an endpoint may take before the endpoint counts as down.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    serve(&args, crate::signals::shutdown()).await
}

/// Serves the files of `args` until `shutdown` resolves, then drains.
pub async fn serve(args: &RunArgs, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let runtime = start(&args.serve, args.controller.compile_options()).await?;
    let mut source = FileSource::new(args.config.clone());
    let changed = Arc::new(Notify::new());
    let _watcher = source.watch(Arc::clone(&changed)).context("cannot watch the configuration files")?;
    apply(&runtime, tokio::task::block_in_place(|| source.load())).await;

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = changed.notified() => {
                // Let a burst of writes settle so that it compiles once.
                tokio::time::sleep(DEBOUNCE).await;
                apply(&runtime, tokio::task::block_in_place(|| source.load())).await;
            }
            _ = &mut shutdown => break,
        }
    }
    stop(&runtime, &args.serve).await;
    Ok(())
}

/// What every serving mode starts: the data plane (no sockets until a table lists them), the
/// runtime that compiles into it, and the admin endpoint.
pub(super) async fn start(serve: &ServeArgs, options: CompileOptions) -> anyhow::Result<Arc<Runtime>> {
    let admin = crate::admin::bind(serve.admin_address)
        .await
        .with_context(|| format!("cannot bind the admin address {}", serve.admin_address))?;
    let data_plane = DataPlane::new(DataPlaneOptions {
        limits: serve.edge.limits(serve.header_read_timeout),
        policy: serve.edge.policy(),
        connect_timeout: CONNECT_TIMEOUT,
        workers: serve.workers.map_or_else(default_workers, usize::from),
    })
    .context("cannot start the data plane's worker threads")?;
    let runtime = Arc::new(Runtime::new(data_plane, options));
    tokio::spawn(crate::admin::serve(admin, Arc::clone(&runtime), serve.edge.expose_config));
    tracing::info!(admin = %serve.admin_address, "admin endpoint serving /metrics /healthz /readyz /config");
    Ok(runtime)
}

/// One worker per CPU the process may use (cgroup quotas included).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Stops accepting and drains requests in flight.
pub(super) async fn stop(runtime: &Runtime, serve: &ServeArgs) {
    runtime.data_plane.shutdown(serve.drain_timeout).await;
    tracing::info!("stopped");
}

async fn apply(runtime: &Runtime, load: Load) {
    runtime.apply(load.index, load.errors, load.warnings).await;
}
