//! Patches status subresources from a compile `Report`, only where they differ from what the
//! objects show, and publishes an Event the first time an object is found wrong.

use std::collections::HashSet;

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::jiff::{Timestamp, Unit};
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde_json::{Value, json};

use super::addresses::{self, AddressSource};
use super::stamp::stamp;
use crate::index::ObjectKey;
use crate::metrics::METRICS;
use crate::policy::BackendPolicy;
use crate::runtime::Report;
use crate::source::k8s::Stores;

/// Gantry's field manager for server-side apply.
pub(super) const FIELD_MANAGER: &str = "gantry";

pub struct StatusWriter {
    client: Client,
    stores: Stores,
    controller_name: String,
    /// Published as `status.addresses` of Gateways that do not name their own.
    addresses: AddressSource,
    /// Whether Gantry makes a Service per Gateway (and so owns the ones it made).
    gateway_services: bool,
    recorder: Recorder,
    /// Problems already published as Events, so that each is published once.
    published: HashSet<String>,
}

impl StatusWriter {
    pub fn new(
        client: Client,
        stores: Stores,
        controller_name: String,
        addresses: AddressSource,
        gateway_services: bool,
        instance: String,
    ) -> Self {
        let reporter = Reporter { controller: "gantry".into(), instance: Some(instance) };
        let recorder = Recorder::new(client.clone(), reporter);
        Self { client, stores, controller_name, addresses, gateway_services, recorder, published: HashSet::new() }
    }

    /// Brings every status in the report onto its object. Failures are logged and counted;
    /// the next report tries again.
    pub async fn write(&mut self, report: &Report) {
        // Generation 0 is the empty report from before the first compile: it would delete
        // every Gateway's Service.
        if self.gateway_services && report.generation > 0 {
            let (client, stores) = (&self.client, &self.stores);
            super::infra::reconcile(client, stores, &self.controller_name, &report.status.gateway_services).await;
        }
        let now = Timestamp::now().round(Unit::Second).unwrap_or_else(|_| Timestamp::now()).to_string();
        for (key, status) in &report.status.gateway_classes {
            let api = Api::all(self.client.clone());
            self.apply::<GatewayClass>(api, self.stores.gateway_classes(), key, to_value(status), &now).await;
        }
        let data_plane = self.data_plane_addresses();
        for (key, status) in &report.status.gateways {
            let mut desired = to_value(status);
            let own_addresses = self.live(self.stores.gateways(), key).is_some_and(|g: GatewayLive| g.has_addresses);
            if !own_addresses && !data_plane.is_empty() {
                desired["addresses"] = data_plane.iter().map(|a| addresses::entry(a)).collect();
            }
            self.apply::<Gateway>(self.api(key), self.stores.gateways(), key, desired, &now).await;
        }
        for (key, status) in &report.status.http_routes {
            let mut desired = to_value(status);
            self.keep_other_controllers_parents(key, &mut desired);
            self.apply::<HttpRoute>(self.api(key), self.stores.http_routes(), key, desired, &now).await;
        }
        for (key, status) in &report.status.backend_policies {
            self.apply::<BackendPolicy>(self.api(key), self.stores.backend_policies(), key, to_value(status), &now)
                .await;
        }
        self.publish_events(report).await;
    }

    /// Where the data plane answers now, by the configured source.
    fn data_plane_addresses(&self) -> Vec<String> {
        match &self.addresses {
            AddressSource::None => Vec::new(),
            AddressSource::Static(list) => list.clone(),
            AddressSource::Service(key) => {
                let Some(service) = guarded(self.stores.services(), key) else { return Vec::new() };
                let slices: Vec<_> = self
                    .stores
                    .endpoint_slices()
                    .state()
                    .into_iter()
                    .filter_map(|g| g.0.as_ref().ok().cloned())
                    .filter(|s| {
                        s.metadata.namespace.as_deref() == Some(&key.namespace)
                            && s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name"))
                                == Some(&key.name)
                    })
                    .collect();
                addresses::of_service(&service, slices.iter())
            }
        }
    }

    /// `status.parents` is one list shared by every controller: entries of other controllers
    /// are carried over so that applying ours does not erase theirs.
    fn keep_other_controllers_parents(&self, key: &ObjectKey, desired: &mut Value) {
        let Some(route) = guarded(self.stores.http_routes(), key) else { return };
        let others: Vec<Value> = route
            .status
            .as_ref()
            .map(|s| s.parents.iter().filter(|p| p.controller_name != self.controller_name).map(to_value).collect())
            .unwrap_or_default();
        if let Some(parents) = desired.get_mut("parents").and_then(Value::as_array_mut) {
            parents.extend(others);
        }
    }

    fn live<K, T>(&self, store: &Store<DeserializeGuard<K>>, key: &ObjectKey) -> Option<T>
    where
        K: Resource + Clone,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
        T: From<K>,
    {
        guarded(store, key).map(T::from)
    }

    fn api<K>(&self, key: &ObjectKey) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &key.namespace)
    }

    async fn apply<K>(
        &self,
        api: Api<K>,
        store: &Store<DeserializeGuard<K>>,
        key: &ObjectKey,
        mut desired: Value,
        now: &str,
    ) where
        K: Resource + Clone + Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let kind = K::kind(&K::DynamicType::default()).into_owned();
        let Some(object) = guarded(store, key) else { return };
        let live = serde_json::to_value(&object).ok().and_then(|mut v| v.get_mut("status").map(Value::take));
        stamp(&mut desired, live.as_ref(), now);
        if live.as_ref().is_some_and(|l| contains(l, &desired)) {
            return;
        }
        let body = json!({
            "apiVersion": K::api_version(&K::DynamicType::default()),
            "kind": kind,
            "status": desired,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch_status(&key.name, &params, &Patch::Apply(body)).await {
            Ok(_) => {
                METRICS.status_writes.with_label_values(&[&kind, "ok"]).inc();
                tracing::debug!(kind, object = %key, "status written");
            }
            Err(error) => {
                METRICS.status_writes.with_label_values(&[&kind, "error"]).inc();
                tracing::warn!(kind, object = %key, %error, "cannot write status");
            }
        }
    }

    /// A Warning Event for each problem the first time it is seen.
    async fn publish_events(&mut self, report: &Report) {
        for problem in &report.status.problems {
            let id = format!("{}/{}/{}", problem.kind, problem.object, problem.message);
            if self.published.contains(&id) {
                continue;
            }
            let reference = match problem.kind {
                "GatewayClass" => guarded(self.stores.gateway_classes(), &problem.object).map(|o| o.object_ref(&())),
                "Gateway" => guarded(self.stores.gateways(), &problem.object).map(|o| o.object_ref(&())),
                "HTTPRoute" => guarded(self.stores.http_routes(), &problem.object).map(|o| o.object_ref(&())),
                "BackendPolicy" => guarded(self.stores.backend_policies(), &problem.object).map(|o| o.object_ref(&())),
                _ => None,
            };
            let Some(reference) = reference else { continue };
            let event = Event {
                type_: EventType::Warning,
                reason: "Rejected".into(),
                note: Some(problem.message.chars().take(1000).collect()),
                action: "Reconcile".into(),
                secondary: None,
            };
            match self.recorder.publish(&event, &reference).await {
                Ok(()) => {
                    self.published.insert(id);
                }
                Err(error) => tracing::debug!(%error, "cannot publish an Event"),
            }
        }
    }
}

/// The object behind `key` in a store, when it deserialized.
pub(super) fn guarded<K>(store: &Store<DeserializeGuard<K>>, key: &ObjectKey) -> Option<K>
where
    K: Resource + Clone,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let mut reference = ObjectRef::<DeserializeGuard<K>>::new(&key.name);
    if !key.namespace.is_empty() {
        reference = reference.within(&key.namespace);
    }
    store.get(&reference).and_then(|g| g.0.as_ref().ok().cloned())
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Whether `live` already says everything `desired` says (it may say more).
pub(super) fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d.iter().all(|(k, v)| l.get(k).is_some_and(|lv| contains(lv, v))),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && d.iter().all(|dv| l.iter().any(|lv| contains(lv, dv)))
        }
        _ => live == desired,
    }
}

/// What the writer needs to know of a live Gateway.
struct GatewayLive {
    has_addresses: bool,
}

impl From<Gateway> for GatewayLive {
    fn from(gateway: Gateway) -> Self {
        Self { has_addresses: gateway.spec.addresses.as_ref().is_some_and(|a| !a.is_empty()) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::contains;

    #[test]
    fn a_status_already_shown_is_not_written_again() {
        let live =
            json!({"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}], "extra": 1});
        assert!(contains(
            &live,
            &json!({"conditions": [{"type": "B", "status": "False"}, {"type": "A", "status": "True"}]})
        ));
        assert!(!contains(
            &live,
            &json!({"conditions": [{"type": "A", "status": "False"}, {"type": "B", "status": "False"}]})
        ));
        assert!(!contains(&live, &json!({"conditions": [{"type": "A", "status": "True"}]})), "a condition to remove");
    }
}
