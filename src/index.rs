//! The index: every object the sources currently know, keyed by kind, namespace and name.
//!
//! Both sources (YAML files and the Kubernetes API) fill the same `Index`; the compile step reads
//! it and knows nothing of where the objects came from.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use serde_with::SerializeDisplay;

use crate::policy::BackendPolicy;

/// Identifies one object of a kind. Cluster-scoped objects have an empty namespace.
/// Serialises as `namespace/name` so that it can key JSON maps.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }

    /// The key of a Kubernetes object, from its metadata.
    pub fn of<K: ResourceExt>(object: &K) -> Self {
        Self::new(object.namespace().unwrap_or_default(), object.name_any())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() { f.write_str(&self.name) } else { write!(f, "{}/{}", self.namespace, self.name) }
    }
}

/// The desired state: all objects of the kinds Gantry reads. Objects are shared (`Arc`) so that
/// a source can keep what it parsed and hand the same objects to every new index.
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub gateway_classes: BTreeMap<ObjectKey, Arc<GatewayClass>>,
    pub gateways: BTreeMap<ObjectKey, Arc<Gateway>>,
    pub http_routes: BTreeMap<ObjectKey, Arc<HttpRoute>>,
    /// ReferenceGrants from both `v1beta1` and `v1`: the two versions share one schema.
    pub reference_grants: BTreeMap<ObjectKey, Arc<ReferenceGrant>>,
    pub namespaces: BTreeMap<ObjectKey, Arc<Namespace>>,
    pub services: BTreeMap<ObjectKey, Arc<Service>>,
    pub endpoint_slices: BTreeMap<ObjectKey, Arc<EndpointSlice>>,
    pub backend_policies: BTreeMap<ObjectKey, Arc<BackendPolicy>>,
    /// TLS certificates and keys (`kubernetes.io/tls` Secrets) for HTTPS listeners.
    pub secrets: BTreeMap<ObjectKey, Arc<Secret>>,
}

/// One object of any kind the index holds; what a source hands over.
#[derive(Clone, Debug)]
pub enum Object {
    GatewayClass(Arc<GatewayClass>),
    Gateway(Arc<Gateway>),
    HttpRoute(Arc<HttpRoute>),
    ReferenceGrant(Arc<ReferenceGrant>),
    Namespace(Arc<Namespace>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    BackendPolicy(Arc<BackendPolicy>),
    Secret(Arc<Secret>),
}

impl Object {
    /// The object's kind as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::GatewayClass(_) => "GatewayClass",
            Object::Gateway(_) => "Gateway",
            Object::HttpRoute(_) => "HTTPRoute",
            Object::ReferenceGrant(_) => "ReferenceGrant",
            Object::Namespace(_) => "Namespace",
            Object::Service(_) => "Service",
            Object::EndpointSlice(_) => "EndpointSlice",
            Object::BackendPolicy(_) => "BackendPolicy",
            Object::Secret(_) => "Secret",
        }
    }

    pub fn key(&self) -> ObjectKey {
        match self {
            Object::GatewayClass(o) => ObjectKey::of(&**o),
            Object::Gateway(o) => ObjectKey::of(&**o),
            Object::HttpRoute(o) => ObjectKey::of(&**o),
            Object::ReferenceGrant(o) => ObjectKey::of(&**o),
            Object::Namespace(o) => ObjectKey::of(&**o),
            Object::Service(o) => ObjectKey::of(&**o),
            Object::EndpointSlice(o) => ObjectKey::of(&**o),
            Object::BackendPolicy(o) => ObjectKey::of(&**o),
            Object::Secret(o) => ObjectKey::of(&**o),
        }
    }
}

impl Index {
    /// Adds or replaces an object; true when it replaced one.
    pub fn upsert(&mut self, object: Object) -> bool {
        let key = object.key();
        match object {
            Object::GatewayClass(o) => self.gateway_classes.insert(key, o).is_some(),
            Object::Gateway(o) => self.gateways.insert(key, o).is_some(),
            Object::HttpRoute(o) => self.http_routes.insert(key, o).is_some(),
            Object::ReferenceGrant(o) => self.reference_grants.insert(key, o).is_some(),
            Object::Namespace(o) => self.namespaces.insert(key, o).is_some(),
            Object::Service(o) => self.services.insert(key, o).is_some(),
            Object::EndpointSlice(o) => self.endpoint_slices.insert(key, o).is_some(),
            Object::BackendPolicy(o) => self.backend_policies.insert(key, o).is_some(),
            Object::Secret(o) => self.secrets.insert(key, o).is_some(),
        }
    }

    /// Labels of a namespace; a namespace that no source described has only the
    /// `kubernetes.io/metadata.name` label, as the API server would give it.
    pub fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .namespaces
            .get(&ObjectKey::new("", namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default();
        labels.insert("kubernetes.io/metadata.name".to_string(), namespace.to_string());
        labels
    }

    /// Whether a ReferenceGrant in `to.namespace` lets objects of kind `from_kind` (a Gateway API
    /// kind) in `from_namespace` refer to the core object `to` of kind `to_kind`.
    pub fn reference_granted(&self, from_kind: &str, from_namespace: &str, to_kind: &str, to: &ObjectKey) -> bool {
        self.reference_grants
            .range(ObjectKey::new(to.namespace.clone(), String::new())..)
            .take_while(|(k, _)| k.namespace == to.namespace)
            .any(|(_, grant)| {
                grant.spec.from.iter().any(|f| {
                    f.group == "gateway.networking.k8s.io" && f.kind == from_kind && f.namespace == from_namespace
                }) && grant
                    .spec
                    .to
                    .iter()
                    .any(|t| t.group.is_empty() && t.kind == to_kind && t.name.as_deref().is_none_or(|n| n == to.name))
            })
    }

    /// EndpointSlices that belong to a Service (label `kubernetes.io/service-name`).
    pub fn endpoint_slices_of<'a>(&'a self, service: &'a ObjectKey) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.endpoint_slices
            .range(ObjectKey::new(service.namespace.clone(), String::new())..)
            .take_while(move |(key, _)| key.namespace == service.namespace)
            .map(|(_, slice)| &**slice)
            .filter(move |slice| {
                slice.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")) == Some(&service.name)
            })
    }
}
