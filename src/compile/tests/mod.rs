//! Tests of the whole compile step: YAML in, table and status out. One fixture helper here; the
//! topics in sibling files.

mod backends;
mod gateways;
mod placement;
mod routes;
mod rules;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::{HeaderMap, Method};
use serde::Deserialize;

use super::{CompileOptions, Compiled, compile};
use crate::balance::Registry;
use crate::index::{Index, Object, ObjectKey};
use crate::table::{RequestParts, RouteEntry};

pub(super) const CONTROLLER: &str = "gantry.dev/gateway";

/// Our GatewayClass and a Gateway `infra/gw` with one HTTP listener `http` on port 80 that
/// admits routes from every namespace.
pub(super) const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gantry, generation: 1}
spec: {controllerName: gantry.dev/gateway}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra, generation: 2}
spec:
  gatewayClassName: gantry
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
"#;

/// A Service `name` in `ns` with port 80 (named `http`, target 8080) and a slice with `ips`.
pub(super) fn service(ns: &str, name: &str, ips: &[&str]) -> String {
    let endpoints: String = ips.iter().map(|ip| format!("\n- addresses: [\"{ip}\"]")).collect();
    format!(
        r#"
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-abc, namespace: {ns}, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints: {}{endpoints}
"#,
        if ips.is_empty() { "[]" } else { "" }
    )
}

/// Reads multi-document YAML into an index.
pub(super) fn index(yaml: &str) -> Index {
    let mut index = Index::default();
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_yaml_ng::Value::deserialize(doc).expect("valid YAML");
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(|k| k.as_str()).expect("every document has a kind").to_string();
        let object = match kind.as_str() {
            "GatewayClass" => Object::GatewayClass(serde_yaml_ng::from_value(value).unwrap()),
            "Gateway" => Object::Gateway(serde_yaml_ng::from_value(value).unwrap()),
            "HTTPRoute" => Object::HttpRoute(serde_yaml_ng::from_value(value).unwrap()),
            "ReferenceGrant" => Object::ReferenceGrant(serde_yaml_ng::from_value(value).unwrap()),
            "Namespace" => Object::Namespace(serde_yaml_ng::from_value(value).unwrap()),
            "Service" => Object::Service(serde_yaml_ng::from_value(value).unwrap()),
            "EndpointSlice" => Object::EndpointSlice(serde_yaml_ng::from_value(value).unwrap()),
            "BackendPolicy" => Object::BackendPolicy(serde_yaml_ng::from_value(value).unwrap()),
            "Secret" => Object::Secret(serde_yaml_ng::from_value(value).unwrap()),
            other => panic!("unknown kind {other}"),
        };
        index.upsert(object);
    }
    index
}

pub(super) fn options() -> CompileOptions {
    CompileOptions {
        controller_name: CONTROLLER.into(),
        bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        placement: super::Placement::Bind { pool: None },
    }
}

pub(super) fn run(yaml: &str) -> Compiled {
    compile(&index(yaml), &options(), &Registry::default())
}

pub(super) fn key(s: &str) -> ObjectKey {
    match s.split_once('/') {
        Some((ns, name)) => ObjectKey::new(ns, name),
        None => ObjectKey::new("", s),
    }
}

/// A request as the data plane would look it up.
pub(super) struct Req<'a> {
    pub socket: SocketAddr,
    pub host: &'a str,
    pub method: Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: HeaderMap,
}

pub(super) fn get<'a>(host: &'a str, path: &'a str) -> Req<'a> {
    Req {
        socket: SocketAddr::from(([0, 0, 0, 0], 80)),
        host,
        method: Method::GET,
        path,
        query: None,
        headers: HeaderMap::new(),
    }
}

impl Compiled {
    /// The entry that would answer a request, if any.
    pub(super) fn lookup(&self, req: &Req<'_>) -> Option<&RouteEntry> {
        let socket = self.table.socket(req.socket)?;
        let parts = RequestParts { method: &req.method, path: req.path, query: req.query, headers: &req.headers };
        socket.hosts.lookup(req.host)?.find(&parts)
    }

    /// `namespace/name#rule` of the rule that answers a request.
    pub(super) fn answer(&self, req: &Req<'_>) -> Option<String> {
        self.lookup(req).map(|e| format!("{}#{}", e.rule.id.route, e.rule.id.rule))
    }

    /// (status, reason) of a condition of the route's `parent`-th status entry.
    pub(super) fn route_condition(&self, route: &str, parent: usize, type_: &str) -> Option<(String, String)> {
        let parents = &self.status.http_routes.get(&key(route))?.parents;
        let c = parents.get(parent)?.conditions.iter().find(|c| c.type_ == type_)?;
        Some((c.status.clone(), c.reason.clone()))
    }

    pub(super) fn listener_condition(&self, gateway: &str, listener: &str, type_: &str) -> Option<(String, String)> {
        let status = self.status.gateways.get(&key(gateway))?;
        let l = status.listeners.as_ref()?.iter().find(|l| l.name == listener)?;
        let c = l.conditions.iter().find(|c| c.type_ == type_)?;
        Some((c.status.clone(), c.reason.clone()))
    }

    pub(super) fn attached_routes(&self, gateway: &str, listener: &str) -> i32 {
        let status = &self.status.gateways[&key(gateway)];
        status.listeners.as_ref().unwrap().iter().find(|l| l.name == listener).unwrap().attached_routes
    }

    pub(super) fn gateway_condition(&self, gateway: &str, type_: &str) -> Option<(String, String)> {
        let c = self.status.gateways.get(&key(gateway))?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)?;
        Some((c.status.clone(), c.reason.clone()))
    }

    pub(super) fn has_problem(&self, object: &str, words: &str) -> bool {
        self.status.problems.iter().any(|p| p.object == key(object) && p.message.contains(words))
    }
}

/// `("True", "Accepted")` and the like, for assertions.
pub(super) fn cond(status: &str, reason: &str) -> Option<(String, String)> {
    Some((status.to_string(), reason.to_string()))
}
