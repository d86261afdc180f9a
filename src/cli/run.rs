//! `gantry run`: file mode.

use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::RunArgs;
use crate::proxy::{DataPlane, Limits, Shared, Upstream};
use crate::runtime::Runtime;
use crate::source::file::{DEBOUNCE, FileSource, Load};
use crate::table::RouteTable;

/// How long a connection to an endpoint may take before the endpoint counts as down.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    serve(&args, crate::signals::shutdown()).await
}

/// Serves the files of `args` until `shutdown` resolves, then drains.
pub async fn serve(args: &RunArgs, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let admin = crate::admin::bind(args.admin_address)
        .await
        .with_context(|| format!("cannot bind the admin address {}", args.admin_address))?;
    let runtime = Arc::new(start_runtime(args));
    tokio::spawn(crate::admin::serve(admin, Arc::clone(&runtime)));
    tracing::info!(admin = %args.admin_address, "admin endpoint serving /metrics /healthz /readyz /config");

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
    runtime.data_plane.shutdown(args.drain_timeout).await;
    tracing::info!("stopped");
    Ok(())
}

fn start_runtime(args: &RunArgs) -> Runtime {
    let shared = Arc::new(Shared {
        tables: Arc::new(ArcSwap::from_pointee(RouteTable::default())),
        upstream: Upstream::new(CONNECT_TIMEOUT),
        limits: Limits { header_read_timeout: args.header_read_timeout, ..Limits::default() },
    });
    let data_plane = DataPlane::new(shared);
    Runtime::new(data_plane, args.controller.compile_options())
}

async fn apply(runtime: &Runtime, load: Load) {
    runtime.apply(load.index, load.errors, load.warnings).await;
}
