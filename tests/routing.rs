//! Black-box tests of Gateway API routing in file mode: the release of `gantry run`, real echo
//! backends on loopback, real HTTP clients.

mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use support::*;

/// A gateway on one port with the given routes and echo backends named after their Services.
struct Setup {
    gateway: Gateway,
    port: u16,
    _backends: Vec<Echo>,
}

fn setup(names: &[&str], routes: &str) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let backends: Vec<Echo> = names.iter().map(|n| echo(dir.path(), n)).collect();
    let port = free_port();
    let mut config = gateway_yaml(&[port]);
    for b in &backends {
        config.push_str(&service_yaml("default", &b.name, &[b.address]));
    }
    config.push_str(routes);
    let gateway = Gateway::start(&config);
    std::mem::forget(dir); // backends' logs stay readable while they run
    Setup { gateway, port, _backends: backends }
}

fn get(s: &Setup, path: &str, headers: &[(&str, &str)]) -> Reply {
    request("GET", &s.gateway.url(s.port, path), headers, None)
}

const MATCHES: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: matches, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules:
    - matches: [{path: {type: Exact, value: /exact}}]
      backendRefs: [{name: exact, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /exact}}]
      backendRefs: [{name: prefix, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: X-Env, value: canary}]}]
      backendRefs: [{name: header, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /api}, queryParams: [{name: v, value: "2"}]}]
      backendRefs: [{name: query, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /api}, method: POST}]
      backendRefs: [{name: method, port: 80}]
    - matches: [{path: {type: RegularExpression, value: "/items/[0-9]+"}}]
      backendRefs: [{name: regex, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /api}}]
      backendRefs: [{name: prefix, port: 80}]
"#;

#[test]
fn requests_are_matched_by_path_header_query_and_method_in_precedence_order() {
    let s = setup(&["exact", "prefix", "header", "query", "method", "regex"], MATCHES);
    assert_eq!(get(&s, "/exact", &[]).backend(), "exact");
    assert_eq!(get(&s, "/exact/more", &[]).backend(), "prefix", "prefix is segment-wise");
    assert_eq!(get(&s, "/exactly", &[]).status, 404, "/exactly is not under /exact");
    assert_eq!(get(&s, "/api/x", &[("x-env", "canary")]).backend(), "header");
    assert_eq!(get(&s, "/api/x?v=2", &[]).backend(), "query");
    assert_eq!(get(&s, "/api/x?v=3", &[]).backend(), "prefix");
    assert_eq!(request("POST", &s.gateway.url(s.port, "/api/x"), &[], Some("body")).backend(), "method");
    // Header and query matches both count; the header rule has one header match and the query
    // rule one query match: the header count is compared first.
    assert_eq!(get(&s, "/api/x?v=2", &[("x-env", "canary")]).backend(), "header");
    assert_eq!(get(&s, "/items/42", &[]).backend(), "regex");
    assert_eq!(get(&s, "/items/42/x", &[]).status, 404, "regular expressions match the whole path");
    assert_eq!(get(&s, "/nothing", &[]).status, 404);
}

const HOSTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: exact-host, namespace: default}
spec:
  parentRefs: [{name: web}]
  hostnames: [foo.example.com]
  rules: [{matches: [{path: {type: PathPrefix, value: /only-foo}}], backendRefs: [{name: foo, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wildcard-host, namespace: default}
spec:
  parentRefs: [{name: web}]
  hostnames: ["*.example.com"]
  rules: [{backendRefs: [{name: wildcard, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: any-host, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: any, port: 80}]}]
"#;

#[test]
fn the_most_specific_hostname_wins_and_falls_back_to_wildcards() {
    let s = setup(&["foo", "wildcard", "any"], HOSTS);
    assert_eq!(get(&s, "/only-foo", &[("host", "foo.example.com")]).backend(), "foo");
    assert_eq!(get(&s, "/only-foo", &[("host", "FOO.example.com:8080")]).backend(), "foo");
    assert_eq!(get(&s, "/elsewhere", &[("host", "foo.example.com")]).backend(), "wildcard");
    assert_eq!(get(&s, "/x", &[("host", "a.b.example.com")]).backend(), "wildcard");
    assert_eq!(get(&s, "/x", &[("host", "example.com")]).backend(), "any");
    assert_eq!(get(&s, "/x", &[("host", "other.test")]).backend(), "any");
}

fn split_route(weights: &[(&str, u32)]) -> String {
    let refs: String =
        weights.iter().map(|(n, w)| format!("        - {{name: {n}, port: 80, weight: {w}}}\n")).collect();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: split, namespace: default}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules:\n    - backendRefs:\n{refs}"
    )
}

#[test]
fn weights_interleave_smoothly_and_hold_over_hundreds_of_requests() {
    let s = setup(&["a", "b", "c"], &split_route(&[("a", 5), ("b", 1), ("c", 1)]));
    let first: Vec<String> = (0..7).map(|_| get(&s, "/", &[]).backend()).collect();
    // Smooth weighted round-robin: never five a's in a row.
    assert_eq!(first, ["a", "a", "b", "a", "c", "a", "a"]);
    let mut counts = BTreeMap::new();
    for _ in 0..700 {
        *counts.entry(get(&s, "/", &[]).backend()).or_insert(0) += 1;
    }
    assert_eq!(counts, BTreeMap::from([("a".to_string(), 500), ("b".to_string(), 100), ("c".to_string(), 100)]));
}

#[test]
fn an_unresolved_backend_answers_500_for_its_share_only() {
    let s = setup(&["a"], &split_route(&[("a", 1), ("missing", 1)]));
    let statuses: Vec<u16> = (0..100).map(|_| get(&s, "/", &[]).status).collect();
    assert_eq!(statuses.iter().filter(|&&c| c == 200).count(), 50);
    assert_eq!(statuses.iter().filter(|&&c| c == 500).count(), 50);
    let config = s.gateway.config();
    let status = &config["report"]["status"]["http_routes"]["default/split"];
    let resolved =
        status["parents"][0]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "ResolvedRefs").unwrap();
    assert_eq!(resolved["status"], "False");
    assert_eq!(resolved["reason"], "BackendNotFound");
}

const FILTERS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filters, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /headers}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: x-set, value: set-value}]
            add: [{name: x-add, value: added}]
            remove: [x-remove]
        - type: ResponseHeaderModifier
          responseHeaderModifier:
            set: [{name: x-response, value: from-gateway}]
            remove: [x-backend]
      backendRefs: [{name: a, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /old}}]
      filters:
        - type: RequestRedirect
          requestRedirect:
            scheme: https
            hostname: new.example.com
            statusCode: 301
            path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
    - matches: [{path: {type: PathPrefix, value: /v1/api}}]
      filters:
        - type: URLRewrite
          urlRewrite:
            hostname: rewritten.internal
            path: {type: ReplacePrefixMatch, replacePrefixMatch: /api/v2}
      backendRefs: [{name: a, port: 80}]
    - matches: [{path: {type: Exact, value: /full}}]
      filters:
        - type: URLRewrite
          urlRewrite:
            path: {type: ReplaceFullPath, replaceFullPath: /replaced}
      backendRefs: [{name: a, port: 80}]
"#;

#[test]
fn filters_modify_headers_redirect_and_rewrite() {
    let s = setup(&["a"], FILTERS);
    let reply = get(&s, "/headers", &[("x-set", "client"), ("x-add", "client"), ("x-remove", "gone")]);
    let seen = &reply.echoed()["headers"];
    assert_eq!(seen["x-set"], serde_json::json!(["set-value"]));
    assert_eq!(seen["x-add"], serde_json::json!(["client", "added"]));
    assert!(seen.get("x-remove").is_none());
    assert_eq!(reply.header("x-response"), Some("from-gateway"));
    assert_eq!(reply.header("x-backend"), None, "response header removed");

    let redirect = get(&s, "/old/page?q=1", &[]);
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("https://new.example.com/new/page?q=1"));

    let rewritten = get(&s, "/v1/api/users?id=7", &[("host", "public.example")]).echoed();
    assert_eq!(rewritten["path"], "/api/v2/users?id=7");
    assert_eq!(rewritten["host"], "rewritten.internal");
    assert_eq!(rewritten["headers"]["x-forwarded-host"], serde_json::json!(["public.example"]));
    assert_eq!(get(&s, "/full", &[]).echoed()["path"], "/replaced");
}

#[test]
fn forwarding_sets_x_forwarded_headers_and_a_request_id() {
    let s = setup(&["a"], &split_route(&[("a", 1)]));
    let seen = get(&s, "/", &[("x-forwarded-for", "203.0.113.9"), ("connection", "keep-alive, x-hop"), ("x-hop", "1")])
        .echoed();
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-for"], serde_json::json!(["127.0.0.1"]), "a client's own claim is replaced");
    assert_eq!(headers["x-forwarded-proto"], serde_json::json!(["http"]));
    assert!(headers.get("x-hop").is_none(), "headers named by Connection are hop-by-hop");
    let id = headers["x-request-id"][0].as_str().unwrap();
    assert_eq!(id.len(), 36, "a generated request id: {id}");
    let replaced = get(&s, "/", &[("x-request-id", "mine-123")]).echoed();
    assert_ne!(replaced["headers"]["x-request-id"], serde_json::json!(["mine-123"]));
}

#[test]
fn cross_namespace_backends_need_a_reference_grant() {
    let dir = tempfile::tempdir().unwrap();
    let backend = echo(dir.path(), "other-ns");
    let port = free_port();
    let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: cross, namespace: default}\nspec:\n  parentRefs: [{name: web}]\n  rules: [{backendRefs: [{name: other-ns, namespace: team-b, port: 80}]}]\n---\n";
    let grant = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: allow-default, namespace: team-b}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]\n  to: [{group: '', kind: Service}]\n";
    let base = format!("{}{}{route}", gateway_yaml(&[port]), service_yaml("team-b", "other-ns", &[backend.address]));
    let gateway = Gateway::start(&base);
    let url = gateway.url(port, "/");
    assert_eq!(http_get(&url).status, 500, "not permitted without a ReferenceGrant");
    let config = gateway.config();
    let conditions = &config["report"]["status"]["http_routes"]["default/cross"]["parents"][0]["conditions"];
    assert!(conditions.as_array().unwrap().iter().any(|c| c["reason"] == "RefNotPermitted"), "{conditions}");

    let generation = gateway.generation();
    gateway.write_config(&format!("{base}{grant}"));
    gateway.wait_generation_after(generation);
    assert_eq!(http_get(&url).backend(), "other-ns");
}

#[test]
fn timeouts_answer_504() {
    let route = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: slow, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /backend}}]
      timeouts: {backendRequest: 300ms}
      backendRefs: [{name: a, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /request}}]
      timeouts: {request: 300ms}
      backendRefs: [{name: a, port: 80}]
"#;
    let s = setup(&["a"], route);
    assert_eq!(get(&s, "/backend?delay_ms=2000", &[]).status, 504);
    assert_eq!(get(&s, "/request?delay_ms=2000", &[]).status, 504);
    assert_eq!(get(&s, "/request?delay_ms=10", &[]).status, 200);
}

#[test]
fn request_mirror_copies_requests_without_slowing_them() {
    // The mirror target is a real socket that reads the request and never answers.
    let mirror = TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror_address = mirror.local_addr().unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in mirror.incoming().flatten() {
            let seen_tx = seen_tx.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut stream = stream;
                let mut buffer = vec![0u8; 8192];
                let mut received = Vec::new();
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    received.extend_from_slice(&buffer[..n]);
                    if received.windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = seen_tx.send(String::from_utf8_lossy(&received).into_owned());
                    }
                }
            });
        }
    });
    let route = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mirrored, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules:
    - filters:
        - type: RequestMirror
          requestMirror: {backendRef: {name: mirror, port: 80}}
      backendRefs: [{name: a, port: 80}]
---
"#;
    let dir = tempfile::tempdir().unwrap();
    let a = echo(dir.path(), "a");
    let port = free_port();
    let config = format!(
        "{}{}{}{route}",
        gateway_yaml(&[port]),
        service_yaml("default", "a", &[a.address]),
        service_yaml("default", "mirror", &[mirror_address])
    );
    let gateway = Gateway::start(&config);
    let started = std::time::Instant::now();
    let reply = request("GET", &gateway.url(port, "/mirrored/path?x=1"), &[], None);
    assert_eq!(reply.backend(), "a");
    assert!(started.elapsed() < Duration::from_secs(2), "a silent mirror does not delay the answer");
    let copy = seen_rx.recv_timeout(Duration::from_secs(5)).expect("the mirror received a copy");
    assert!(copy.starts_with("GET /mirrored/path?x=1 HTTP/1.1"), "{copy}");
}
