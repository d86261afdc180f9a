//! The Services Gantry makes for Gateways (the `Services` placement): applies the Service and
//! EndpointSlice that compile described for each Gateway, and deletes the ones no Gateway needs
//! any more. Only the Lease holder runs it, like the status writer.
//!
//! Each Gateway's Service sits in the Gateway's namespace, owned by the Gateway (so it goes with
//! it), without a selector: Services select Pods of their own namespace only, and the data-plane
//! Pods live in Gantry's. Its EndpointSlice lists the data-plane Pods (copied, with their
//! conditions, from the Service that selects them) on the Gateway's data-plane ports.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use serde_json::{Value, json};

use super::writer::{FIELD_MANAGER, contains};
use crate::compile::GatewayService;
use crate::compile::placement::labels;
use crate::index::ObjectKey;
use crate::metrics::METRICS;
use crate::source::k8s::Stores;

/// The `endpointslice.kubernetes.io/managed-by` value of the slices Gantry writes, so that the
/// cluster's EndpointSlice controllers leave them alone.
const SLICE_MANAGER: &str = "gateway-controller.gantry.dev";

/// Brings the cluster's Gateway Services in line with `desired` (keyed by Gateway).
pub async fn reconcile(
    client: &Client,
    stores: &Stores,
    controller_name: &str,
    desired: &std::collections::BTreeMap<ObjectKey, GatewayService>,
) {
    for (gateway, service) in desired {
        let api: Api<Service> = Api::namespaced(client.clone(), &gateway.namespace);
        let key = ObjectKey::new(gateway.namespace.clone(), service.name.clone());
        apply(api, stores.services(), &key, service_object(gateway, service)).await;
        for slice in slice_objects(gateway, service) {
            let name = slice["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &gateway.namespace);
            apply(api, stores.endpoint_slices(), &ObjectKey::new(gateway.namespace.clone(), name), slice).await;
        }
    }
    delete_stale(client, stores, &labels::controller_value(controller_name), desired).await;
}

fn owner(gateway: &ObjectKey, service: &GatewayService) -> Value {
    match &service.gateway_uid {
        Some(uid) => json!([{
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "name": gateway.name,
            "uid": uid,
            "controller": true,
        }]),
        None => json!([]),
    }
}

fn service_object(gateway: &ObjectKey, service: &GatewayService) -> Value {
    let ports: Vec<Value> = service
        .ports
        .iter()
        .map(|p| json!({"name": p.name(), "port": p.port, "targetPort": p.target_port, "protocol": "TCP"}))
        .collect();
    let mut spec = json!({"type": service.service_type, "ports": ports});
    if let Some(ip) = service.load_balancer_ip {
        spec["loadBalancerIP"] = json!(ip.to_string());
    }
    let mut object = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "namespace": gateway.namespace,
            "labels": service.labels,
            "ownerReferences": owner(gateway, service),
        },
        "spec": spec,
    });
    // An empty map is not stored, so asking for one would make the live object never look
    // like the desired one, and every status write would apply the Service again.
    if !service.annotations.is_empty() {
        object["metadata"]["annotations"] = json!(service.annotations);
    }
    object
}

/// One slice per address family that has endpoints (a slice holds one family); an IPv4 slice
/// even when there is no endpoint, so that the Service's ports are always described.
fn slice_objects(gateway: &ObjectKey, service: &GatewayService) -> Vec<Value> {
    let ports: Vec<Value> =
        service.ports.iter().map(|p| json!({"name": p.name(), "port": p.target_port, "protocol": "TCP"})).collect();
    let mut slice_labels = service.labels.clone();
    slice_labels.insert("kubernetes.io/service-name".into(), service.name.clone());
    slice_labels.insert("endpointslice.kubernetes.io/managed-by".into(), SLICE_MANAGER.into());
    let mut slices = Vec::new();
    for (family, suffix) in [("IPv4", ""), ("IPv6", "-v6")] {
        let endpoints: Vec<Value> = service
            .endpoints
            .iter()
            .filter(|e| e.address.contains(':') == (family == "IPv6"))
            .map(|e| {
                let mut endpoint = json!({
                    "addresses": [e.address],
                    "conditions": {"ready": e.ready, "serving": e.serving, "terminating": e.terminating},
                });
                if let Some(node) = &e.node_name {
                    endpoint["nodeName"] = json!(node);
                }
                endpoint
            })
            .collect();
        if endpoints.is_empty() && family == "IPv6" {
            continue;
        }
        slices.push(json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{}{suffix}", service.name),
                "namespace": gateway.namespace,
                "labels": slice_labels,
                "ownerReferences": owner(gateway, service),
            },
            "addressType": family,
            "endpoints": endpoints,
            "ports": ports,
        }));
    }
    slices
}

/// Server-side apply under Gantry's field manager, unless the live object already says it all.
async fn apply<K>(api: Api<K>, store: &Store<DeserializeGuard<K>>, key: &ObjectKey, desired: Value)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let live = super::writer::guarded(store, key).and_then(|o| serde_json::to_value(o).ok());
    if live.as_ref().is_some_and(|l| contains(l, &desired)) {
        return;
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(&key.name, &params, &Patch::Apply(&desired)).await {
        Ok(_) => {
            METRICS.infrastructure_writes.with_label_values(&[&kind, "ok"]).inc();
            tracing::info!(kind, object = %key, "gateway infrastructure applied");
        }
        Err(error) => {
            METRICS.infrastructure_writes.with_label_values(&[&kind, "error"]).inc();
            tracing::warn!(kind, object = %key, %error, "cannot apply gateway infrastructure");
        }
    }
}

/// Deletes Services and slices that this installation made (they carry its controller mark)
/// but that no Gateway needs now (its Gateway went to another class, or cannot be placed).
/// What another installation made is never touched.
async fn delete_stale(
    client: &Client,
    stores: &Stores,
    controller: &str,
    desired: &std::collections::BTreeMap<ObjectKey, GatewayService>,
) {
    let made_here = |l: Option<&std::collections::BTreeMap<String, String>>| {
        l.and_then(|l| l.get(labels::CONTROLLER)).map(String::as_str) == Some(controller)
    };
    let wanted: BTreeSet<ObjectKey> =
        desired.iter().map(|(gw, s)| ObjectKey::new(gw.namespace.clone(), s.name.clone())).collect();
    let stale_services: Vec<ObjectKey> = stores
        .services()
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|s| made_here(s.metadata.labels.as_ref()) && has_gateway_label(s.metadata.labels.as_ref()))
        .map(ObjectKey::of)
        .filter(|key| !wanted.contains(key))
        .collect();
    for key in stale_services {
        let api: Api<Service> = Api::namespaced(client.clone(), &key.namespace);
        delete(api, &key).await;
    }
    let stale_slices: Vec<ObjectKey> = stores
        .endpoint_slices()
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|s| {
            let labels = s.metadata.labels.as_ref();
            made_here(labels)
                && labels.and_then(|l| l.get("endpointslice.kubernetes.io/managed-by")).map(String::as_str)
                    == Some(SLICE_MANAGER)
                && !labels.and_then(|l| l.get("kubernetes.io/service-name")).is_some_and(|service| {
                    wanted.contains(&ObjectKey::new(s.metadata.namespace.clone().unwrap_or_default(), service.clone()))
                })
        })
        .map(ObjectKey::of)
        .collect();
    for key in stale_slices {
        let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &key.namespace);
        delete(api, &key).await;
    }
}

fn has_gateway_label(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    labels.is_some_and(|l| l.contains_key(labels::GATEWAY_NAME))
}

async fn delete<K>(api: Api<K>, key: &ObjectKey)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    match api.delete(&key.name, &DeleteParams::default()).await {
        Ok(_) => {
            METRICS.infrastructure_writes.with_label_values(&[&kind, "deleted"]).inc();
            tracing::info!(kind, object = %key, "gateway infrastructure no longer needed; deleted");
        }
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(error) => {
            METRICS.infrastructure_writes.with_label_values(&[&kind, "error"]).inc();
            tracing::warn!(kind, object = %key, %error, "cannot delete gateway infrastructure");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::placement::{DataPlaneEndpoint, PortMapping};

    fn desired() -> GatewayService {
        GatewayService {
            name: "web-gantry".into(),
            gateway_uid: Some("uid-1".into()),
            service_type: "LoadBalancer",
            ports: vec![PortMapping { port: 80, target_port: 12345 }],
            labels: [(labels::GATEWAY_NAME.to_string(), "web".to_string())].into(),
            annotations: Default::default(),
            load_balancer_ip: None,
            endpoints: vec![
                DataPlaneEndpoint {
                    address: "10.0.0.7".into(),
                    ready: true,
                    serving: true,
                    terminating: false,
                    node_name: None,
                },
                DataPlaneEndpoint {
                    address: "fd00::7".into(),
                    ready: false,
                    serving: true,
                    terminating: true,
                    node_name: None,
                },
            ],
        }
    }

    #[test]
    fn the_service_maps_listener_ports_onto_data_plane_ports_and_is_owned_by_the_gateway() {
        let service = service_object(&ObjectKey::new("apps", "web"), &desired());
        assert_eq!(service["spec"]["ports"][0]["port"], 80);
        assert_eq!(service["spec"]["ports"][0]["targetPort"], 12345);
        assert!(service["spec"].get("selector").is_none(), "the endpoints are Gantry's to write");
        assert_eq!(service["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert!(service["metadata"].get("annotations").is_none(), "no empty map the API server would drop");
    }

    #[test]
    fn slices_split_by_family_and_name_the_data_plane_port() {
        let slices = slice_objects(&ObjectKey::new("apps", "web"), &desired());
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[0]["addressType"], "IPv4");
        assert_eq!(slices[0]["ports"][0], json!({"name": "port-80", "port": 12345, "protocol": "TCP"}));
        assert_eq!(slices[0]["metadata"]["labels"]["kubernetes.io/service-name"], "web-gantry");
        assert_eq!(slices[1]["metadata"]["name"], "web-gantry-v6");
        assert_eq!(slices[1]["endpoints"][0]["conditions"]["terminating"], true);
    }
}
