//! Kubernetes mode's source: one kube-runtime reflector per kind, feeding the same index as
//! the files do.
//!
//! Objects arrive wrapped in `DeserializeGuard`, so that one malformed object is reported and
//! skipped instead of ending its watch. Watches reconnect with kube-runtime's default backoff;
//! while the API server is away the stores keep their last state and nothing is recompiled.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::{DeserializeGuard, NamespaceResourceScope};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::SourceError;
use crate::index::{Index, Object};
use crate::metrics::METRICS;
use crate::policy::BackendPolicy;

type Guarded<K> = Store<DeserializeGuard<K>>;

/// The reflectors' stores: the cluster's current state as far as Gantry reads it.
#[derive(Clone)]
pub struct Stores {
    gateway_classes: Guarded<GatewayClass>,
    gateways: Guarded<Gateway>,
    http_routes: Guarded<HttpRoute>,
    reference_grants: Guarded<ReferenceGrant>,
    namespaces: Guarded<Namespace>,
    services: Guarded<Service>,
    endpoint_slices: Guarded<EndpointSlice>,
    backend_policies: Guarded<BackendPolicy>,
    /// Only `kubernetes.io/tls` Secrets: what HTTPS listeners can use, and nothing else of
    /// the cluster's credentials is held in memory.
    secrets: Guarded<Secret>,
}

/// Wakes the compile loop; `last_change` is when the newest change arrived (for the
/// convergence metric).
#[derive(Default)]
pub struct Changes {
    pub notify: Notify,
    pub last_change: std::sync::Mutex<Option<Instant>>,
}

impl Changes {
    fn record(&self) {
        *self.last_change.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.notify.notify_one();
    }

    /// When the oldest change not yet applied arrived, and forget it.
    pub fn take(&self) -> Option<Instant> {
        self.last_change.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Which namespaces to watch for namespaced kinds; `None` is all of them.
pub fn start(client: Client, namespace: Option<&str>, changes: Arc<Changes>) -> Stores {
    Stores {
        gateway_classes: watch(Api::all(client.clone()), &changes),
        namespaces: watch(Api::all(client.clone()), &changes),
        gateways: watch(scoped(&client, namespace), &changes),
        http_routes: watch(scoped(&client, namespace), &changes),
        reference_grants: watch(scoped(&client, namespace), &changes),
        services: watch(scoped(&client, namespace), &changes),
        endpoint_slices: watch(scoped(&client, namespace), &changes),
        backend_policies: watch(scoped(&client, namespace), &changes),
        secrets: watch_with(
            scoped(&client, namespace),
            watcher::Config::default().fields("type=kubernetes.io/tls"),
            &changes,
        ),
    }
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Starts a reflector for one kind; every event wakes the compile loop.
fn watch<K>(api: Api<DeserializeGuard<K>>, changes: &Arc<Changes>) -> Guarded<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    watch_with(api, watcher::Config::default(), changes)
}

fn watch_with<K>(api: Api<DeserializeGuard<K>>, config: watcher::Config, changes: &Arc<Changes>) -> Guarded<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let (store, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, config).default_backoff());
    let changes = Arc::clone(changes);
    tokio::spawn(async move {
        let events = METRICS.reflector_events.with_label_values(&[&kind]);
        let errors = METRICS.reflector_errors.with_label_values(&[&kind]);
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => {
                    events.inc();
                    changes.record();
                }
                Err(error) => {
                    errors.inc();
                    let hint = if error.to_string().contains("404") {
                        "is its CustomResourceDefinition installed? (Gateway API CRDs; Gantry's: kubectl apply -f crds/)"
                    } else {
                        "retrying with backoff; the last state keeps serving"
                    };
                    tracing::warn!(kind, %error, hint, "watch failed");
                }
            }
        }
    });
    store
}

impl Stores {
    /// Resolves once every reflector has listed its kind once.
    pub async fn ready(&self) {
        let _ = tokio::join!(
            self.gateway_classes.wait_until_ready(),
            self.gateways.wait_until_ready(),
            self.http_routes.wait_until_ready(),
            self.reference_grants.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.services.wait_until_ready(),
            self.endpoint_slices.wait_until_ready(),
            self.backend_policies.wait_until_ready(),
            self.secrets.wait_until_ready(),
        );
    }

    /// The index as the stores have it now, and the objects that could not be read.
    pub fn snapshot(&self) -> (Index, Vec<SourceError>) {
        let mut index = Index::default();
        let mut errors = Vec::new();
        collect(&self.gateway_classes, Object::GatewayClass, &mut index, &mut errors);
        collect(&self.gateways, Object::Gateway, &mut index, &mut errors);
        collect(&self.http_routes, Object::HttpRoute, &mut index, &mut errors);
        collect(&self.reference_grants, Object::ReferenceGrant, &mut index, &mut errors);
        collect(&self.namespaces, Object::Namespace, &mut index, &mut errors);
        collect(&self.services, Object::Service, &mut index, &mut errors);
        collect(&self.endpoint_slices, Object::EndpointSlice, &mut index, &mut errors);
        collect(&self.backend_policies, Object::BackendPolicy, &mut index, &mut errors);
        collect(&self.secrets, Object::Secret, &mut index, &mut errors);
        (index, errors)
    }

    pub fn gateway_classes(&self) -> &Guarded<GatewayClass> {
        &self.gateway_classes
    }

    pub fn gateways(&self) -> &Guarded<Gateway> {
        &self.gateways
    }

    pub fn http_routes(&self) -> &Guarded<HttpRoute> {
        &self.http_routes
    }

    pub fn backend_policies(&self) -> &Guarded<BackendPolicy> {
        &self.backend_policies
    }

    pub fn services(&self) -> &Guarded<Service> {
        &self.services
    }

    pub fn endpoint_slices(&self) -> &Guarded<EndpointSlice> {
        &self.endpoint_slices
    }
}

fn collect<K>(store: &Guarded<K>, wrap: fn(Arc<K>) -> Object, index: &mut Index, errors: &mut Vec<SourceError>)
where
    K: Resource + Clone,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    for guarded in store.state() {
        match &guarded.0 {
            Ok(object) => {
                index.upsert(wrap(Arc::new(object.clone())));
            }
            Err(invalid) => errors.push(SourceError {
                file: std::path::PathBuf::from("kubernetes"),
                document: None,
                object: Some(format!(
                    "{} {}/{}",
                    K::kind(&K::DynamicType::default()),
                    invalid.metadata.namespace.as_deref().unwrap_or_default(),
                    invalid.metadata.name.as_deref().unwrap_or_default()
                )),
                message: invalid.error.clone(),
            }),
        }
    }
}
