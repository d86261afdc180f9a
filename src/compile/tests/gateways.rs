//! GatewayClasses, Gateways, listeners and sockets.

use std::net::SocketAddr;

use super::*;

const ROUTE: &str = r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#;

#[test]
fn our_gateway_class_is_accepted_and_others_are_ignored() {
    let yaml = format!(
        "{BASE}---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: other}}\nspec: {{controllerName: example.com/other}}\n"
    );
    let c = run(&yaml);
    let class = &c.status.gateway_classes[&key("gantry")];
    let accepted = &class.conditions.as_ref().unwrap()[0];
    assert_eq!(
        (accepted.type_.as_str(), accepted.status.as_str(), accepted.reason.as_str()),
        ("Accepted", "True", "Accepted")
    );
    assert_eq!(accepted.observed_generation, Some(1));
    assert!(!c.status.gateway_classes.contains_key(&key("other")));
}

#[test]
fn gateway_of_missing_or_foreign_class_is_not_ours() {
    let yaml = BASE.replace("gatewayClassName: gantry", "gatewayClassName: nobody");
    let c = run(&yaml);
    assert!(c.status.gateways.is_empty());
    assert!(c.table.sockets.is_empty());
}

#[test]
fn http_listener_is_served_on_the_bind_address() {
    let c = run(&format!("{BASE}{ROUTE}{}", service("infra", "web", &["10.0.0.1"])));
    assert_eq!(c.gateway_condition("infra/gw", "Accepted"), cond("True", "Accepted"));
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("True", "Programmed"));
    assert_eq!(c.listener_condition("infra/gw", "http", "Programmed"), cond("True", "Programmed"));
    assert_eq!(c.listener_condition("infra/gw", "http", "Conflicted"), cond("False", "NoConflicts"));
    assert_eq!(c.attached_routes("infra/gw", "http"), 1);
    let socket = &c.table.sockets[0];
    assert_eq!(socket.address, "0.0.0.0:80".parse::<SocketAddr>().unwrap());
    assert_eq!(socket.listeners, vec!["infra/gw/http".to_string()]);
    let gw = &c.status.gateways[&key("infra/gw")];
    assert!(gw.conditions.as_ref().unwrap().iter().all(|c| c.observed_generation == Some(2)));
    assert_eq!(gw.listeners.as_ref().unwrap()[0].supported_kinds.as_ref().unwrap()[0].kind, "HTTPRoute");
    assert!(c.status.problems.is_empty(), "{:?}", c.status.problems);
}

#[test]
fn tls_and_tcp_listeners_are_unsupported_protocol_and_not_served() {
    let yaml = BASE.replace(
        "  - {name: http",
        "  - {name: tls, port: 443, protocol: TLS}\n  - {name: tcp, port: 9000, protocol: TCP}\n  - {name: http",
    );
    let c = run(&yaml);
    assert_eq!(c.listener_condition("infra/gw", "tls", "Accepted"), cond("False", "UnsupportedProtocol"));
    assert_eq!(c.listener_condition("infra/gw", "tcp", "Accepted"), cond("False", "UnsupportedProtocol"));
    assert_eq!(c.listener_condition("infra/gw", "tls", "Programmed"), cond("False", "Invalid"));
    // Accepted, but saying that some listeners are not (GatewayListenerUnsupportedProtocol).
    assert_eq!(c.gateway_condition("infra/gw", "Accepted"), cond("True", "ListenersNotValid"));
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("True", "Programmed"));
    assert_eq!(c.table.sockets.len(), 1, "only port 80 is bound");
    assert!(c.has_problem("infra/gw", "protocol \"TLS\" is not supported"));
}

#[test]
fn gateway_without_valid_listener_is_listeners_not_valid() {
    let yaml = BASE.replace("protocol: HTTP,", "protocol: UDP,");
    let c = run(&yaml);
    assert_eq!(c.gateway_condition("infra/gw", "Accepted"), cond("False", "ListenersNotValid"));
    assert_eq!(c.gateway_condition("infra/gw", "Programmed"), cond("False", "Invalid"));
}

#[test]
fn same_port_and_hostname_is_a_hostname_conflict_for_both() {
    let yaml = BASE.replace(
        "  - {name: http",
        "  - {name: a, port: 8080, protocol: HTTP, hostname: x.test}\n  - {name: b, port: 8080, protocol: HTTP, hostname: x.test}\n  - {name: http",
    );
    let c = run(&yaml);
    for l in ["a", "b"] {
        assert_eq!(c.listener_condition("infra/gw", l, "Conflicted"), cond("True", "HostnameConflict"));
        assert_eq!(c.listener_condition("infra/gw", l, "Programmed"), cond("False", "Invalid"));
    }
    assert!(c.table.socket("0.0.0.0:8080".parse().unwrap()).is_none());
    assert!(c.has_problem("infra/gw", "HostnameConflict"));
}

#[test]
fn same_port_with_different_protocols_is_a_protocol_conflict() {
    let yaml = BASE.replace("  - {name: http", "  - {name: tls, port: 80, protocol: HTTPS}\n  - {name: http");
    let c = run(&yaml);
    assert_eq!(c.listener_condition("infra/gw", "http", "Conflicted"), cond("True", "ProtocolConflict"));
    assert_eq!(c.listener_condition("infra/gw", "tls", "Conflicted"), cond("True", "ProtocolConflict"));
    assert!(c.table.sockets.is_empty());
}

#[test]
fn listener_with_only_unsupported_kinds_is_invalid_route_kinds() {
    let yaml = BASE.replace("{namespaces: {from: All}}", "{kinds: [{kind: TCPRoute}]}");
    let c = run(&format!("{yaml}{ROUTE}"));
    assert_eq!(c.listener_condition("infra/gw", "http", "ResolvedRefs"), cond("False", "InvalidRouteKinds"));
    assert_eq!(c.route_condition("infra/web", 0, "Accepted"), cond("False", "NotAllowedByListeners"));
    assert_eq!(c.attached_routes("infra/gw", "http"), 0);
}

pub(super) const SECOND_GATEWAY: &str = r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: b-gw, namespace: infra, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  gatewayClassName: gantry
  listeners: [{name: web, port: 80, protocol: HTTP}]
"#;

#[test]
fn second_gateway_on_same_socket_is_port_unavailable() {
    let older = BASE.replace("generation: 2}", "generation: 2, creationTimestamp: \"2024-01-01T00:00:00Z\"}");
    let c = run(&format!("{older}{SECOND_GATEWAY}"));
    assert_eq!(c.listener_condition("infra/b-gw", "web", "Accepted"), cond("False", "PortUnavailable"));
    assert_eq!(c.listener_condition("infra/b-gw", "web", "Programmed"), cond("False", "Invalid"));
    assert_eq!(c.listener_condition("infra/gw", "http", "Accepted"), cond("True", "Accepted"));
    assert_eq!(c.table.sockets.len(), 1);
    assert_eq!(c.table.sockets[0].listeners, vec!["infra/gw/http".to_string()]);
    let problem = c.status.problems.iter().find(|p| p.message.contains("PortUnavailable")).unwrap();
    assert_eq!(problem.object, key("infra/b-gw"));
    assert!(problem.message.contains("infra/gw") && problem.message.contains("infra/b-gw"), "{}", problem.message);
}

#[test]
fn the_older_gateway_keeps_the_socket_whatever_its_name() {
    let newer = BASE.replace("generation: 2}", "generation: 2, creationTimestamp: \"2024-06-01T00:00:00Z\"}");
    let c = run(&format!("{newer}{SECOND_GATEWAY}"));
    assert_eq!(c.listener_condition("infra/gw", "http", "Accepted"), cond("False", "PortUnavailable"));
    assert_eq!(c.table.sockets[0].listeners, vec!["infra/b-gw/web".to_string()]);
}

#[test]
fn gateways_with_their_own_addresses_share_a_port() {
    let own = BASE.replace(
        "  gatewayClassName: gantry",
        "  gatewayClassName: gantry\n  addresses: [{value: 127.0.0.2}, {type: IPAddress, value: \"::1\"}]",
    );
    let c = run(&format!("{own}{SECOND_GATEWAY}"));
    let mut sockets: Vec<String> = c.table.sockets.iter().map(|s| s.address.to_string()).collect();
    sockets.sort();
    assert_eq!(sockets, ["0.0.0.0:80", "127.0.0.2:80", "[::1]:80"]);
    assert_eq!(c.listener_condition("infra/b-gw", "web", "Accepted"), cond("True", "Accepted"));
    let addresses = c.status.gateways[&key("infra/gw")].addresses.clone().unwrap();
    assert_eq!(addresses.len(), 2);
}

#[test]
fn hostname_address_is_unsupported() {
    let yaml = BASE.replace(
        "  gatewayClassName: gantry",
        "  gatewayClassName: gantry\n  addresses: [{type: Hostname, value: gw.test}]",
    );
    let c = run(&yaml);
    assert_eq!(c.gateway_condition("infra/gw", "Accepted"), cond("False", "UnsupportedAddress"));
    assert!(c.table.sockets.is_empty());
    assert!(c.has_problem("infra/gw", "spec.addresses[0].type \"Hostname\""));
}
