//! Where Gateways answer: a Service per Gateway (Kubernetes mode) and the address pool.

use std::net::SocketAddr;

use super::*;
use crate::compile::placement::{DATA_PLANE_PORTS, ServicePlacement, ServiceType};
use crate::compile::{Placement, features};

/// A second Gateway on port 80, and the data-plane Service `gantry-system/gantry-metrics` with
/// two Pods (one terminating).
const SECOND_AND_DATA_PLANE: &str = r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: other, namespace: apps, uid: uid-other, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  gatewayClassName: gantry
  infrastructure:
    labels: {team: web}
    annotations: {example.com/owner: me}
  listeners: [{name: web, port: 80, protocol: HTTP}, {name: alt, port: 8080, protocol: HTTP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: gantry-metrics-x, namespace: gantry-system, labels: {kubernetes.io/service-name: gantry-metrics}}
addressType: IPv4
ports: [{name: metrics, port: 9901}]
endpoints:
- {addresses: ["10.244.0.9"], conditions: {ready: true}, nodeName: n1}
- {addresses: ["10.244.0.8"], conditions: {ready: false, serving: true, terminating: true}}
"#;

fn services(pool: Option<&str>) -> CompileOptions {
    CompileOptions {
        placement: Placement::Services(ServicePlacement {
            service_type: ServiceType::LoadBalancer,
            data_plane: key("gantry-system/gantry-metrics"),
            pool: pool.map(|p| p.parse().unwrap()),
        }),
        ..options()
    }
}

fn run_with(yaml: &str, options: &CompileOptions) -> Compiled {
    compile(&index(yaml), options, &crate::balance::Registry::default())
}

/// The Service Gantry made for `gateway`, as the cluster shows it once its load balancer gave
/// it `ip`.
fn provisioned(ns: &str, name: &str, ip: &str) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}, labels: {{app.kubernetes.io/managed-by: gantry}}}}
spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}
status: {{loadBalancer: {{ingress: [{{ip: "{ip}"}}]}}}}
"#
    )
}

#[test]
fn gateways_on_one_port_each_get_a_data_plane_port_and_a_service_of_their_own() {
    let c = run_with(&format!("{BASE}{SECOND_AND_DATA_PLANE}"), &services(None));
    let ports: Vec<(SocketAddr, u16)> = c.table.sockets.iter().map(|s| (s.address, s.listener_port)).collect();
    assert_eq!(ports.len(), 3, "{ports:?}");
    assert!(ports.iter().all(|(a, _)| a.ip().is_unspecified() && DATA_PLANE_PORTS.contains(&a.port())));
    assert_eq!(ports.iter().filter(|(_, listener)| *listener == 80).count(), 2);
    assert_eq!(c.listener_condition("infra/gw", "http", "Accepted"), cond("True", "Accepted"));
    assert_eq!(c.listener_condition("apps/other", "web", "Accepted"), cond("True", "Accepted"));

    let other = &c.status.gateway_services[&key("apps/other")];
    assert_eq!(other.name, "other-gantry");
    assert_eq!(other.gateway_uid.as_deref(), Some("uid-other"));
    assert_eq!(other.ports.iter().map(|p| p.port).collect::<Vec<_>>(), [80, 8080]);
    let socket_of_80 = c.table.sockets.iter().find(|s| s.listeners == ["apps/other/web"]).unwrap();
    assert_eq!(other.ports[0].target_port, socket_of_80.address.port());
    assert_eq!(other.labels["team"], "web", "infrastructure labels reach the Service");
    assert_eq!(other.labels["gateway.networking.k8s.io/gateway-name"], "other");
    assert_eq!(other.annotations["example.com/owner"], "me");
    // The installation's mark: only what it made is ever deleted by it.
    let mark = crate::compile::placement::labels::controller_value(CONTROLLER);
    assert_eq!(other.labels["gantry.dev/controller"], mark);
    assert_ne!(mark, crate::compile::placement::labels::controller_value("example.com/another"));
    let endpoints: Vec<(&str, bool, bool)> =
        other.endpoints.iter().map(|e| (e.address.as_str(), e.ready, e.terminating)).collect();
    assert_eq!(endpoints, [("10.244.0.8", false, true), ("10.244.0.9", true, false)]);
}

#[test]
fn a_gateway_is_programmed_once_its_service_has_an_address() {
    let waiting = run_with(&format!("{BASE}{SECOND_AND_DATA_PLANE}"), &services(None));
    assert_eq!(waiting.gateway_condition("infra/gw", "Programmed"), cond("False", "AddressNotAssigned"));
    assert_eq!(waiting.gateway_condition("infra/gw", "Accepted"), cond("True", "Accepted"));
    assert!(waiting.status.gateways[&key("infra/gw")].addresses.is_none());
    assert_eq!(waiting.table.sockets.len(), 3, "listeners serve while the address is on its way");

    let yaml = format!("{BASE}{SECOND_AND_DATA_PLANE}{}", provisioned("infra", "gw-gantry", "10.245.0.7"));
    let c = run_with(&yaml, &services(None));
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("True", "Programmed"));
    let addresses = c.status.gateways[&key("infra/gw")].addresses.clone().unwrap();
    assert_eq!((addresses[0].r#type.as_deref(), addresses[0].value.as_str()), (Some("IPAddress"), "10.245.0.7"));
}

#[test]
fn a_users_service_of_the_same_name_is_never_taken_over() {
    let users = format!("{BASE}{}", service("infra", "gw-gantry", &["10.0.0.1"]));
    let c = run_with(&users, &services(None));
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("False", "Invalid"));
    assert!(c.has_problem("infra/gw", "Service infra/gw-gantry exists and is not Gantry's"));
    assert!(!c.status.gateway_services.contains_key(&key("infra/gw")));
    assert!(c.table.sockets.is_empty());
}

fn with_addresses(addresses: &str) -> String {
    BASE.replace("  gatewayClassName: gantry", &format!("  gatewayClassName: gantry\n  addresses: {addresses}"))
}

#[test]
fn a_static_address_in_the_pool_is_asked_of_the_load_balancer() {
    let yaml = with_addresses("[{type: IPAddress, value: 10.245.0.42}]");
    let c = run_with(&yaml, &services(Some("10.245.0.0/24")));
    let service = &c.status.gateway_services[&key("infra/gw")];
    assert_eq!(service.load_balancer_ip, Some("10.245.0.42".parse().unwrap()));
    // An ingress address other than the one asked for is not published.
    let c = run_with(
        &format!("{yaml}{}", provisioned("infra", "gw-gantry", "10.245.0.7")),
        &services(Some("10.245.0.0/24")),
    );
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("False", "AddressNotAssigned"));
    let c = run_with(
        &format!("{yaml}{}", provisioned("infra", "gw-gantry", "10.245.0.42")),
        &services(Some("10.245.0.0/24")),
    );
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("True", "Programmed"));
}

#[test]
fn a_static_address_outside_the_pool_is_not_usable_but_accepted() {
    let c = run_with(&with_addresses("[{value: 192.0.2.1}]"), &services(Some("10.245.0.0/24")));
    assert_eq!(c.gateway_condition("infra/gw", "Accepted"), cond("True", "Accepted"));
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("False", "AddressNotUsable"));
    assert!(c.has_problem("infra/gw", "192.0.2.1 is not in the Gateway address pool 10.245.0.0/24"));
    assert!(c.table.sockets.is_empty());
    assert!(!c.status.gateway_services.contains_key(&key("infra/gw")));
}

#[test]
fn an_address_type_other_than_ip_is_unsupported_in_every_placement() {
    let yaml = with_addresses("[{type: test/fake-invalid-type, value: x}, {value: 10.245.0.1}]");
    for options in [options(), services(Some("10.245.0.0/24"))] {
        let c = run_with(&yaml, &options);
        assert_eq!(c.gateway_condition("infra/gw", "Accepted"), cond("False", "UnsupportedAddress"));
        assert!(c.table.sockets.is_empty());
    }
}

#[test]
fn an_address_without_a_value_is_assigned_one() {
    let yaml = with_addresses("[{type: IPAddress}]");
    let pool =
        CompileOptions { placement: Placement::Bind { pool: Some("127.0.10.0/24".parse().unwrap()) }, ..options() };
    let c = run_with(&yaml, &pool);
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("True", "Programmed"));
    let address = c.table.sockets[0].address;
    assert!(address.to_string().starts_with("127.0.10."), "{address}");
    // Without a pool the Gateway answers on the bind address.
    let c = run_with(&yaml, &options());
    assert_eq!(c.table.sockets[0].address, "0.0.0.0:80".parse::<SocketAddr>().unwrap());
}

#[test]
fn pool_addresses_let_gateways_share_a_port_and_stay_put() {
    let pool =
        CompileOptions { placement: Placement::Bind { pool: Some("127.0.10.0/24".parse().unwrap()) }, ..options() };
    let alone = run_with(BASE, &pool);
    let both = run_with(&format!("{BASE}{}", super::gateways::SECOND_GATEWAY), &pool);
    assert_eq!(both.table.sockets.len(), 2);
    assert_eq!(both.listener_condition("infra/b-gw", "web", "Accepted"), cond("True", "Accepted"));
    let first_alone = &alone.status.gateways[&key("infra/gw")].addresses.as_ref().unwrap()[0].value;
    let first_both = &both.status.gateways[&key("infra/gw")].addresses.as_ref().unwrap()[0].value;
    assert_eq!(first_alone, first_both, "a new Gateway does not move an older one");
}

#[test]
fn the_class_lists_its_features_sorted_and_infrastructure_only_with_services() {
    let c = run_with(BASE, &services(Some("10.245.0.0/24")));
    let listed: Vec<String> = c.status.gateway_classes[&key("gantry")]
        .supported_features
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    assert!(listed.contains(&"GatewayInfrastructure".to_string()));
    assert!(listed.contains(&"GatewayStaticAddresses".to_string()));
    assert!(!features::supported(&Placement::Bind { pool: None }).contains(&"GatewayInfrastructure".to_string()));
}

#[test]
fn a_gateway_without_a_valid_listener_gets_no_service() {
    let yaml = BASE.replace("protocol: HTTP,", "protocol: UDP,");
    let c = run_with(&yaml, &services(None));
    assert_eq!(c.gateway_condition("infra/gw", "Accepted"), cond("False", "ListenersNotValid"));
    assert!(!c.status.gateway_services.contains_key(&key("infra/gw")), "a Service needs at least one port");
}

#[test]
fn a_gateway_with_parameters_is_not_accepted_as_gantry_takes_none() {
    let yaml = BASE.replace(
        "  gatewayClassName: gantry",
        "  gatewayClassName: gantry\n  infrastructure: {parametersRef: {group: invalid.io, kind: InvalidParameters, name: x}}",
    );
    for options in [options(), services(None)] {
        let c = run_with(&yaml, &options);
        assert_eq!(c.gateway_condition("infra/gw", "Accepted"), cond("False", "InvalidParameters"));
        assert!(c.table.sockets.is_empty());
        assert!(!c.status.gateway_services.contains_key(&key("infra/gw")));
    }
}
