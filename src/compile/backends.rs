//! backendRefs to Services, Services to endpoints, ReferenceGrants and BackendPolicies.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Service, ServicePort};

use super::conditions::{condition, ok, reasons, types};
use super::{Status, report};
use crate::balance::{BalancerConfig, Endpoint, Registry};
use crate::index::{Index, ObjectKey};
use crate::policy::{BackendPolicyStatus, balancer_config};
use crate::table::{Backend, UpstreamProtocol};

/// The fields every kind of backendRef shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct BackendRef<'a> {
    pub group: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub port: Option<i32>,
}

/// A rule's backendRefs and a RequestMirror's backendRef are separate generated types with the
/// same fields.
macro_rules! backend_ref_from {
    ($($source:ty),+) => {$(
        impl<'a> From<&'a $source> for BackendRef<'a> {
            fn from(b: &'a $source) -> Self {
                Self {
                    group: b.group.as_deref(),
                    kind: b.kind.as_deref(),
                    name: &b.name,
                    namespace: b.namespace.as_deref(),
                    port: b.port,
                }
            }
        }
    )+};
}

backend_ref_from!(
    gateway_api::httproutes::HttpRouteRulesBackendRefs,
    gateway_api::httproutes::HttpRouteRulesFiltersRequestMirrorBackendRef
);

/// Why a backendRef did not resolve: the ResolvedRefs reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RefError {
    pub reason: &'static str,
    pub message: String,
}

impl RefError {
    fn new(reason: &'static str, message: String) -> Self {
        Self { reason, message }
    }
}

/// Resolves backendRefs, sharing one `Backend` per Service port within a compile.
pub(super) struct Resolver<'a> {
    index: &'a Index,
    registry: &'a Registry,
    /// Balancer settings of the Services that a valid BackendPolicy targets.
    configs: HashMap<ObjectKey, BalancerConfig>,
    cache: HashMap<String, Arc<Backend>>,
}

impl<'a> Resolver<'a> {
    /// Reads the BackendPolicies (and writes their status).
    pub fn new(index: &'a Index, registry: &'a Registry, status: &mut Status) -> Self {
        let mut configs = HashMap::new();
        for (key, policy) in &index.backend_policies {
            let generation = policy.metadata.generation;
            let conditions = match balancer_config(&policy.spec) {
                Ok(config) => {
                    for target in &policy.spec.target_refs {
                        if target.group.is_empty() && target.kind == "Service" {
                            configs
                                .entry(ObjectKey::new(&key.namespace, &target.name))
                                .or_insert_with(|| config.clone());
                        }
                    }
                    vec![ok(types::ACCEPTED, generation)]
                }
                Err(message) => {
                    let message = format!("{message}; the targeted Services use the default balancer");
                    vec![condition(types::ACCEPTED, false, reasons::INVALID, message, generation)]
                }
            };
            report(&mut status.problems, "BackendPolicy", key, "", &conditions);
            status.backend_policies.insert(key.clone(), BackendPolicyStatus { conditions });
        }
        Self { index, registry, configs, cache: HashMap::new() }
    }

    /// Resolves a backendRef of an HTTPRoute in `route_namespace`.
    pub fn resolve(&mut self, route_namespace: &str, r: BackendRef<'_>) -> Result<Arc<Backend>, RefError> {
        let group = r.group.unwrap_or("");
        let kind = r.kind.unwrap_or("Service");
        if !group.is_empty() || kind != "Service" {
            return Err(RefError::new(
                reasons::INVALID_KIND,
                format!("backendRef {:?} has group {group:?} kind {kind:?}; only core Services are supported", r.name),
            ));
        }
        let namespace = r.namespace.unwrap_or(route_namespace);
        if namespace != route_namespace
            && !self.index.reference_granted(
                "HTTPRoute",
                route_namespace,
                "Service",
                &ObjectKey::new(namespace, r.name),
            )
        {
            return Err(RefError::new(
                reasons::REF_NOT_PERMITTED,
                format!(
                    "backendRef to Service {namespace}/{} is not permitted: no ReferenceGrant in namespace \
                     {namespace:?} allows HTTPRoutes from namespace {route_namespace:?}",
                    r.name
                ),
            ));
        }
        let key = ObjectKey::new(namespace, r.name);
        let Some(service) = self.index.services.get(&key) else {
            return Err(RefError::new(reasons::BACKEND_NOT_FOUND, format!("Service {key} does not exist")));
        };
        let Some(port) = r.port else {
            return Err(RefError::new(
                reasons::BACKEND_NOT_FOUND,
                format!("backendRef to Service {key} has no port; port is required for a Service"),
            ));
        };
        let Some(service_port) = service_port(service, port) else {
            return Err(RefError::new(reasons::BACKEND_NOT_FOUND, format!("Service {key} has no port {port}")));
        };
        let protocol = protocol(service_port).map_err(|p| {
            RefError::new(
                reasons::UNSUPPORTED_PROTOCOL,
                format!("Service {key} port {port} has appProtocol {p:?}, which Gantry cannot speak"),
            )
        })?;
        let id = format!("{key}:{port}");
        if let Some(backend) = self.cache.get(&id) {
            return Ok(Arc::clone(backend));
        }
        let endpoints = endpoints(self.index, &key, service_port);
        let config = self.configs.get(&key).cloned().unwrap_or_default();
        let id: Arc<str> = Arc::from(id);
        let state = self.registry.backend(&id, &endpoints, &config);
        let metrics = crate::metrics::BackendMetrics::new(state.endpoints().len());
        let backend = Arc::new(Backend { id: Arc::clone(&id), protocol, state, metrics });
        self.cache.insert(id.to_string(), Arc::clone(&backend));
        Ok(backend)
    }
}

fn service_port(service: &Service, port: i32) -> Option<&ServicePort> {
    service.spec.as_ref()?.ports.as_ref()?.iter().find(|p| p.port == port)
}

/// The upstream protocol of a Service port, or the appProtocol we cannot speak.
fn protocol(port: &ServicePort) -> Result<UpstreamProtocol, String> {
    match port.app_protocol.as_deref() {
        Some("kubernetes.io/h2c") => Ok(UpstreamProtocol::H2c),
        Some(p @ ("https" | "HTTPS" | "tls" | "kubernetes.io/wss" | "grpcs")) => Err(p.to_string()),
        _ => Ok(UpstreamProtocol::Http1),
    }
}

/// The endpoints of a Service port, from its EndpointSlices: the slice port with the Service
/// port's name carries the real port, as kube-proxy maps them. Ready endpoints (a missing ready
/// condition counts as ready) are ready; serving but not ready ones (terminating) are kept as not
/// ready; the rest are skipped.
fn endpoints(index: &Index, service: &ObjectKey, port: &ServicePort) -> Vec<Endpoint> {
    let name = port.name.as_deref().unwrap_or("");
    let mut out = Vec::new();
    for slice in index.endpoint_slices_of(service) {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let slice_port =
            slice.ports.iter().flatten().find(|p| p.name.as_deref().unwrap_or("") == name).and_then(|p| p.port);
        let Some(number) = slice_port.and_then(|p| u16::try_from(p).ok()) else { continue };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            if !ready && !serving {
                continue;
            }
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<IpAddr>() {
                    out.push(Endpoint { address: SocketAddr::new(ip, number), ready });
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
