//! `gantry controller`: Kubernetes mode. The cluster's objects feed the same index, compile
//! and data plane as files do; the Lease holder writes status back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::run::{start, stop};
use super::{ControllerArgs, ServeArgs, parse_duration};
use crate::compile::placement::{ServicePlacement, ServiceType};
use crate::compile::{CompileOptions, Placement};
use crate::index::ObjectKey;
use crate::runtime::Runtime;
use crate::source::k8s::{self, Changes, Stores};
use crate::status::leader::{self, LeaseSettings};
use crate::status::{AddressSource, StatusWriter};

#[derive(Args, Debug)]
pub struct ControllerCmd {
    /// Kubeconfig to use; without it, the in-cluster configuration (or $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch namespaced objects in this namespace only (GatewayClasses and Namespaces are
    /// cluster-wide). Default: all namespaces.
    #[arg(long, env = "GANTRY_NAMESPACE")]
    pub namespace: Option<String>,
    /// Address(es) where the data plane answers, published in Gateways' `status.addresses`.
    #[arg(long = "gateway-address", env = "GANTRY_GATEWAY_ADDRESS", value_delimiter = ',')]
    pub gateway_addresses: Vec<String>,
    /// The data plane's Service (NAMESPACE/NAME): its load-balancer ingress, else its ready
    /// endpoints (the data-plane Pods' IPs), become the Gateways' `status.addresses`.
    #[arg(long, env = "GANTRY_GATEWAY_ADDRESS_SERVICE", conflicts_with = "gateway_addresses", value_parser = AddressSource::service)]
    pub gateway_address_service: Option<AddressSource>,
    /// The Service that selects the data-plane Pods (NAMESPACE/NAME). When set, every Gateway
    /// gets a Service of its own in its namespace, whose endpoints are those Pods and whose
    /// ports map the listener ports onto data-plane ports unique per Gateway; without it,
    /// listeners bind their own ports.
    #[arg(long, env = "GANTRY_DATA_PLANE_SERVICE", value_parser = parse_key)]
    pub data_plane_service: Option<ObjectKey>,
    /// The type of the Services made per Gateway: LoadBalancer, ClusterIP or NodePort.
    #[arg(long, env = "GANTRY_GATEWAY_SERVICE_TYPE", default_value = "LoadBalancer")]
    pub gateway_service_type: ServiceType,
    /// Namespace of the status-writer Lease (in a Pod: its own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    #[arg(long, default_value = "gantry-status-writer")]
    pub lease_name: String,
    /// This replica's name in the Lease. Default: the Pod name, else host name and process id.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long the Lease holds without renewal: the longest a failover takes.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// How long to let a burst of watch events settle before compiling.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// How often the leader re-checks every status, so that a failed write is retried.
const RESYNC: Duration = Duration::from_secs(30);

pub async fn controller(args: ControllerCmd) -> anyhow::Result<()> {
    let client = client(args.kubeconfig.as_deref()).await?;
    let runtime = start(&args.serve, compile_options(&args)).await?;
    let changes = Arc::new(Changes::default());
    let stores = k8s::start(client.clone(), args.namespace.as_deref(), Arc::clone(&changes));

    let shutdown = crate::signals::shutdown();
    tokio::pin!(shutdown);
    tokio::select! {
        _ = stores.ready() => tracing::info!("every watched kind is listed; serving"),
        _ = &mut shutdown => {
            stop(&runtime, &args.serve).await;
            return Ok(());
        }
    }
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let (mut leading, lease) = leader::campaign(
        client.clone(),
        LeaseSettings {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            holder: identity.clone(),
            duration: args.lease_duration,
        },
    );
    let writer = StatusWriter::new(
        client,
        stores.clone(),
        args.controller.controller_name.clone(),
        address_source(&args),
        args.data_plane_service.is_some(),
        identity,
    );
    let (reports, report_updates) = tokio::sync::watch::channel(());
    let writing = tokio::spawn(write_status(writer, Arc::clone(&runtime), leading.clone(), report_updates));
    apply(&runtime, &stores, &changes).await;
    let _ = reports.send(());
    loop {
        tokio::select! {
            _ = changes.notify.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                apply(&runtime, &stores, &changes).await;
                let _ = reports.send(());
            }
            _ = &mut shutdown => break,
        }
    }
    writing.abort();
    if *leading.borrow_and_update()
        && let Err(error) = lease.step_down().await
    {
        tracing::warn!(%error, "cannot release the leader Lease; another replica takes over when it expires");
    }
    stop(&runtime, &args.serve).await;
    Ok(())
}

/// Writes status in a task of its own, so that a slow API server or a thousand patches never
/// hold back the next table. It writes the newest report when a new one arrives, when this
/// replica becomes the leader, and every `RESYNC` (which retries failed writes).
async fn write_status(
    mut writer: StatusWriter,
    runtime: Arc<Runtime>,
    mut leading: tokio::sync::watch::Receiver<bool>,
    mut reports: tokio::sync::watch::Receiver<()>,
) {
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            changed = reports.changed() => if changed.is_err() { return },
            changed = leading.changed() => if changed.is_err() { return },
            _ = resync.tick() => {}
        }
        if *leading.borrow_and_update() {
            writer.write(&runtime.report()).await;
        }
    }
}

fn compile_options(args: &ControllerCmd) -> CompileOptions {
    let mut options = args.controller.compile_options();
    if let Some(data_plane) = &args.data_plane_service {
        options.placement = Placement::Services(ServicePlacement {
            service_type: args.gateway_service_type,
            data_plane: data_plane.clone(),
            pool: args.controller.gateway_address_pool,
        });
    }
    options
}

fn parse_key(text: &str) -> Result<ObjectKey, String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok(ObjectKey::new(ns, name)),
        _ => Err(format!("expected NAMESPACE/NAME, got {text:?}")),
    }
}

fn address_source(args: &ControllerCmd) -> AddressSource {
    match (&args.gateway_address_service, args.gateway_addresses.is_empty()) {
        (Some(service), _) => service.clone(),
        (None, false) => AddressSource::Static(args.gateway_addresses.clone()),
        (None, true) => AddressSource::None,
    }
}

/// Compiles what the stores hold now and serves it.
async fn apply(runtime: &Runtime, stores: &Stores, changes: &Changes) {
    let since = changes.take();
    let (index, errors) = stores.snapshot();
    runtime.apply(index, errors, Vec::new()).await;
    if let Some(since) = since {
        crate::metrics::METRICS.convergence.observe(since.elapsed().as_secs_f64());
    }
}

async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).with_context(|| format!("cannot read {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await.context("no in-cluster configuration and no usable kubeconfig")?,
    };
    Client::try_from(config).context("cannot build a Kubernetes client")
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}
