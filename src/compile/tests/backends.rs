//! backendRefs: ReferenceGrants, kinds, endpoints, protocols and BackendPolicies.

use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use crate::balance::Endpoint;
use crate::table::{Backend, BackendTarget, UpstreamProtocol};

/// `apps/r` on the base Gateway with one rule whose backendRefs are given (a flow sequence).
fn route_to(backend_refs: &str) -> String {
    format!(
        "\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: apps}}\nspec:\n  parentRefs: [{{name: gw, namespace: infra}}]\n  rules: [{{backendRefs: {backend_refs}}}]\n"
    )
}

fn grant(ns: &str, from_ns: &str, to_name: Option<&str>) -> String {
    let name = to_name.map(|n| format!(", name: {n}")).unwrap_or_default();
    format!(
        "\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: g, namespace: {ns}}}\nspec:\n  from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {from_ns}}}]\n  to: [{{group: \"\", kind: Service{name}}}]\n"
    )
}

fn target(c: &Compiled) -> &BackendTarget {
    &c.lookup(&get("x.test", "/")).expect("the rule answers").rule.backends[0].target
}

fn backend(c: &Compiled) -> &Arc<Backend> {
    match target(c) {
        BackendTarget::Resolved(b) => b,
        BackendTarget::Unresolved(why) => panic!("unresolved: {why}"),
    }
}

fn addresses(b: &Backend) -> Vec<(String, bool)> {
    b.state.endpoints().iter().map(|e: &Endpoint| (e.address.to_string(), e.ready)).collect()
}

#[test]
fn same_namespace_backend_resolves_to_slice_endpoints() {
    let c = run(&format!(
        "{BASE}{}{}",
        route_to("[{name: web, port: 80}]"),
        service("apps", "web", &["10.0.0.1", "10.0.0.2"])
    ));
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("True", "ResolvedRefs"));
    let b = backend(&c);
    assert_eq!(&*b.id, "apps/web:80");
    assert_eq!(b.protocol, UpstreamProtocol::Http1);
    assert_eq!(addresses(b), [("10.0.0.1:8080".to_string(), true), ("10.0.0.2:8080".to_string(), true)]);
}

#[test]
fn cross_namespace_backend_needs_reference_grant() {
    let base = format!(
        "{BASE}{}{}",
        route_to("[{name: db, namespace: data, port: 80}]"),
        service("data", "db", &["10.0.0.9"])
    );
    let c = run(&base);
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("False", "RefNotPermitted"));
    assert!(matches!(target(&c), BackendTarget::Unresolved(_)));
    assert!(c.has_problem("apps/r", "no ReferenceGrant in namespace \"data\""));

    let c = run(&format!("{base}{}", grant("data", "apps", None)));
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("True", "ResolvedRefs"));
    assert_eq!(&*backend(&c).id, "data/db:80");
}

#[test]
fn reference_grant_must_name_the_right_namespaces_and_service() {
    let base = format!(
        "{BASE}{}{}",
        route_to("[{name: db, namespace: data, port: 80}]"),
        service("data", "db", &["10.0.0.9"])
    );
    for wrong in [grant("data", "elsewhere", None), grant("data", "apps", Some("other")), grant("apps", "apps", None)] {
        let c = run(&format!("{base}{wrong}"));
        assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("False", "RefNotPermitted"), "{wrong}");
    }
    let c = run(&format!("{base}{}", grant("data", "apps", Some("db"))));
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("True", "ResolvedRefs"));
}

#[test]
fn missing_service_is_backend_not_found_but_the_route_is_accepted() {
    let c = run(&format!("{BASE}{}", route_to("[{name: gone, port: 80}]")));
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("False", "BackendNotFound"));
    assert_eq!(c.route_condition("apps/r", 0, "Accepted"), cond("True", "Accepted"));
    assert!(matches!(target(&c), BackendTarget::Unresolved(why) if why.contains("apps/gone")));
}

#[test]
fn non_service_kind_is_invalid_kind() {
    let c = run(&format!("{BASE}{}", route_to("[{name: bucket, group: storage.example.com, kind: Bucket}]")));
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("False", "InvalidKind"));
}

#[test]
fn service_backend_without_port_is_unresolved_with_a_clear_message() {
    let c = run(&format!("{BASE}{}{}", route_to("[{name: web}]"), service("apps", "web", &["10.0.0.1"])));
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs").unwrap().0, "False");
    assert!(c.has_problem("apps/r", "port is required"));
}

#[test]
fn endpoint_readiness_follows_slice_conditions() {
    let svc = service("apps", "web", &[]).replace(
        "endpoints: []",
        r#"endpoints:
- {addresses: ["10.0.0.1"]}
- {addresses: ["10.0.0.2"], conditions: {ready: false, serving: true, terminating: true}}
- {addresses: ["10.0.0.3"], conditions: {ready: false, serving: false}}
- {addresses: ["10.0.0.4"], conditions: {ready: true}}"#,
    );
    let c = run(&format!("{BASE}{}{svc}", route_to("[{name: web, port: 80}]")));
    // The registry's state keeps only ready endpoints while some are ready.
    assert_eq!(addresses(backend(&c)), [("10.0.0.1:8080".to_string(), true), ("10.0.0.4:8080".to_string(), true)]);
    let only_terminating = svc
        .replace("[\"10.0.0.1\"]}", "[\"10.0.0.1\"], conditions: {ready: false, serving: true}}")
        .replace("conditions: {ready: true}", "conditions: {ready: false, serving: false}");
    let c = run(&format!("{BASE}{}{only_terminating}", route_to("[{name: web, port: 80}]")));
    assert_eq!(addresses(backend(&c)), [("10.0.0.1:8080".to_string(), false), ("10.0.0.2:8080".to_string(), false)]);
}

#[test]
fn service_port_maps_to_the_slice_port_of_the_same_name_in_ipv4_and_ipv6() {
    let yaml = r#"
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: apps}
spec:
  ports: [{name: metrics, port: 9090}, {name: grpc, port: 81, targetPort: grpc, appProtocol: kubernetes.io/h2c}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v4, namespace: apps, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: metrics, port: 9100}, {name: grpc, port: 50051}]
endpoints: [{addresses: ["10.1.0.1"]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v6, namespace: apps, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: grpc, port: 50051}]
endpoints: [{addresses: ["fd00::1"]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: not-web, namespace: apps, labels: {kubernetes.io/service-name: other}}
addressType: IPv4
ports: [{name: grpc, port: 1}]
endpoints: [{addresses: ["10.9.9.9"]}]
"#;
    let c = run(&format!("{BASE}{}{yaml}", route_to("[{name: web, port: 81}]")));
    let b = backend(&c);
    assert_eq!(b.protocol, UpstreamProtocol::H2c);
    let got: Vec<SocketAddr> = b.state.endpoints().iter().map(|e| e.address).collect();
    assert_eq!(got, ["10.1.0.1:50051".parse::<SocketAddr>().unwrap(), "[fd00::1]:50051".parse().unwrap()]);
}

#[test]
fn service_without_endpoints_is_resolved_with_none() {
    let c = run(&format!("{BASE}{}{}", route_to("[{name: web, port: 80}]"), service("apps", "web", &[])));
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("True", "ResolvedRefs"));
    assert!(backend(&c).state.endpoints().is_empty());
}

#[test]
fn tls_app_protocol_is_unsupported_protocol() {
    let svc =
        service("apps", "web", &["10.0.0.1"]).replace("targetPort: 8080}", "targetPort: 8080, appProtocol: https}");
    let c = run(&format!("{BASE}{}{svc}", route_to("[{name: web, port: 80}]")));
    assert_eq!(c.route_condition("apps/r", 0, "ResolvedRefs"), cond("False", "UnsupportedProtocol"));
}

fn policy(spec_extra: &str) -> String {
    format!(
        "\n---\napiVersion: gantry.dev/v1alpha1\nkind: BackendPolicy\nmetadata: {{name: p, namespace: apps}}\nspec:\n  targetRefs: [{{group: \"\", kind: Service, name: web}}]\n{spec_extra}\n"
    )
}

#[test]
fn valid_backend_policy_is_accepted_and_shapes_the_balancer() {
    let p = policy("  healthCheck: {passive: {consecutiveFailures: 2, ejectionTime: 5s}}");
    let c = run(&format!("{BASE}{}{}{p}", route_to("[{name: web, port: 80}]"), service("apps", "web", &["10.0.0.1"])));
    let status = &c.status.backend_policies[&key("apps/p")];
    assert_eq!((status.conditions[0].status.as_str(), status.conditions[0].reason.as_str()), ("True", "Accepted"));
    let health = &backend(&c).state.config().health;
    assert_eq!((health.consecutive_failures, health.ejection_time.as_secs()), (2, 5));
}

#[test]
fn invalid_backend_policy_is_reported_and_its_targets_use_defaults() {
    let p = policy("  healthCheck: {passive: {consecutiveFailures: 0}}");
    let c = run(&format!("{BASE}{}{}{p}", route_to("[{name: web, port: 80}]"), service("apps", "web", &["10.0.0.1"])));
    let status = &c.status.backend_policies[&key("apps/p")];
    assert_eq!((status.conditions[0].status.as_str(), status.conditions[0].reason.as_str()), ("False", "Invalid"));
    assert!(c.has_problem("apps/p", "consecutiveFailures 0 must be at least 1"));
    assert_eq!(backend(&c).state.config(), &crate::balance::BalancerConfig::default());
}

#[test]
fn unchanged_backends_keep_their_state_across_compiles() {
    let yaml = format!("{BASE}{}{}", route_to("[{name: web, port: 80}]"), service("apps", "web", &["10.0.0.1"]));
    let (index, registry) = (index(&yaml), crate::balance::Registry::default());
    let first = super::super::compile(&index, &options(), &registry);
    let second = super::super::compile(&index, &options(), &registry);
    assert!(Arc::ptr_eq(&backend(&first).state, &backend(&second).state));
}
