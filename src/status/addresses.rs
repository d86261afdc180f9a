//! Where the data plane answers, for Gateways' `status.addresses`: fixed addresses, or those of
//! the Service in front of the data plane (its load-balancer ingress when it has one, else its
//! ready endpoints, that is the data-plane Pods' IPs).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use crate::index::ObjectKey;

#[derive(Clone, Debug)]
pub enum AddressSource {
    /// Nothing to publish.
    None,
    Static(Vec<String>),
    /// `namespace/name` of the data plane's Service.
    Service(ObjectKey),
}

impl AddressSource {
    /// Parses `NAMESPACE/NAME`.
    pub fn service(text: &str) -> Result<Self, String> {
        match text.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok(Self::Service(ObjectKey::new(ns, name))),
            _ => Err(format!("expected NAMESPACE/NAME, got {text:?}")),
        }
    }
}

/// An address entry as `status.addresses` lists it: an IP, or a host name.
pub fn entry(value: &str) -> Value {
    let kind = if value.parse::<std::net::IpAddr>().is_ok() { "IPAddress" } else { "Hostname" };
    json!({"type": kind, "value": value})
}

/// The Service's load-balancer ingress, else the ready addresses of its EndpointSlices; sorted
/// and without duplicates so that the status does not flap between equal lists.
pub fn of_service<'a>(service: &Service, slices: impl Iterator<Item = &'a EndpointSlice>) -> Vec<String> {
    let ingress = crate::compile::placement::load_balancer_ingress(service);
    let mut addresses = if ingress.is_empty() {
        slices
            .flat_map(|slice| slice.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
            .flat_map(|e| e.addresses.iter().cloned())
            .collect()
    } else {
        ingress
    };
    addresses.sort();
    addresses.dedup();
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(ready: &[(&str, bool)]) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "s"},
            "addressType": "IPv4",
            "endpoints": ready.iter().map(|(ip, r)| json!({"addresses": [ip], "conditions": {"ready": r}})).collect::<Vec<_>>()
        }))
        .unwrap()
    }

    #[test]
    fn load_balancer_ingress_wins_over_pod_ips() {
        let service: Service = serde_json::from_value(
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example"}]}}}),
        )
        .unwrap();
        let s = slice(&[("10.0.0.1", true)]);
        assert_eq!(of_service(&service, [&s].into_iter()), ["203.0.113.7", "lb.example"]);
    }

    #[test]
    fn without_a_load_balancer_the_ready_pods_are_the_addresses() {
        let a = slice(&[("10.0.0.2", true), ("10.0.0.9", false)]);
        let b = slice(&[("10.0.0.1", true), ("10.0.0.2", true)]);
        assert_eq!(of_service(&Service::default(), [&a, &b].into_iter()), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn entries_say_whether_they_are_ips_or_names() {
        assert_eq!(entry("10.0.0.1")["type"], "IPAddress");
        assert_eq!(entry("lb.example")["type"], "Hostname");
    }

    #[test]
    fn service_source_needs_namespace_and_name() {
        assert!(AddressSource::service("gantry-system/gantry").is_ok());
        assert!(AddressSource::service("gantry").is_err());
    }
}
