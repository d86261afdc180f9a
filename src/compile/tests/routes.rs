//! Route attachment (parentRefs, allowedRoutes, hostnames) and host/precedence lookups.

use super::*;

/// A route `ns/name` with the given spec lines (indented by two spaces under `spec:`).
fn route(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n"
    )
}

const LISTENERS: &str = r#"
  - {name: same, port: 81, protocol: HTTP}
  - {name: selected, port: 82, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: a}, matchExpressions: [{key: env, operator: In, values: [prod, stage]}, {key: legacy, operator: DoesNotExist}]}}}}
  - {name: notin, port: 83, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector, selector: {matchExpressions: [{key: team, operator: NotIn, values: [b]}, {key: env, operator: Exists}]}}}}
"#;

fn namespaces() -> String {
    let ns = |name: &str, labels: &str| {
        format!("\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n")
    };
    [
        ns("apps", "team: a, env: prod"),
        ns("legacy", "team: a, env: prod, legacy: \"yes\""),
        ns("other", "team: b, env: dev"),
    ]
    .concat()
}

fn with_listeners() -> String {
    format!("{}{}", BASE.trim_end(), LISTENERS)
}

fn on(listener: &str, ns: &str) -> String {
    route(ns, "r", &format!("  parentRefs: [{{name: gw, namespace: infra, sectionName: {listener}}}]"))
}

#[test]
fn allowed_routes_same_namespace_is_the_default() {
    let c = run(&format!("{}{}{}", with_listeners(), on("same", "infra"), namespaces()));
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("True", "Accepted"));
    let c = run(&format!("{}{}", with_listeners(), on("same", "apps")));
    assert_eq!(c.route_condition("apps/r", 0, "Accepted"), cond("False", "NotAllowedByListeners"));
    assert!(c.has_problem("apps/r", "NotAllowedByListeners"));
}

#[test]
fn allowed_routes_all_admits_any_namespace() {
    let c = run(&format!("{}{}", with_listeners(), on("http", "other")));
    assert_eq!(c.route_condition("other/r", 0, "Accepted"), cond("True", "Accepted"));
    assert_eq!(c.attached_routes("infra/gw", "http"), 1);
}

#[test]
fn allowed_routes_selector_uses_match_labels_and_expressions() {
    let base = format!("{}{}", with_listeners(), namespaces());
    let accepted = |ns: &str, listener: &str| {
        let c = run(&format!("{base}{}", on(listener, ns)));
        c.route_condition(&format!("{ns}/r"), 0, "Accepted").unwrap().0 == "True"
    };
    assert!(accepted("apps", "selected"));
    assert!(!accepted("legacy", "selected"), "DoesNotExist excludes the legacy namespace");
    assert!(!accepted("other", "selected"), "matchLabels team=a");
    assert!(accepted("apps", "notin"));
    assert!(!accepted("other", "notin"), "NotIn b");
    assert!(!accepted("unlabelled", "notin"), "Exists env");
}

#[test]
fn section_name_and_port_must_both_hold() {
    let both = route("infra", "r", "  parentRefs: [{name: gw, sectionName: same, port: 81}]");
    let c = run(&format!("{}{both}", with_listeners()));
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("True", "Accepted"));
    assert_eq!(c.attached_routes("infra/gw", "same"), 1);
    let wrong = route("infra", "r", "  parentRefs: [{name: gw, sectionName: same, port: 82}]");
    let c = run(&format!("{}{wrong}", with_listeners()));
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("False", "NoMatchingParent"));
    assert!(c.has_problem("infra/r", "sectionName \"same\" and port 82"));
}

#[test]
fn port_selects_every_listener_on_that_port() {
    let yaml =
        BASE.replace("  - {name: http", "  - {name: a, port: 80, protocol: HTTP, hostname: a.test}\n  - {name: http");
    let r = route("infra", "r", "  parentRefs: [{name: gw, port: 80}]");
    let c = run(&format!("{yaml}{r}"));
    assert_eq!(c.attached_routes("infra/gw", "a"), 1);
    assert_eq!(c.attached_routes("infra/gw", "http"), 1);
}

#[test]
fn parent_ref_to_a_foreign_gateway_gets_no_status() {
    let r = route("infra", "r", "  parentRefs: [{name: elsewhere}, {name: gw, kind: Service, group: \"\"}]");
    let c = run(&format!("{BASE}{r}"));
    assert!(!c.status.http_routes.contains_key(&key("infra/r")));
}

#[test]
fn route_status_echoes_the_parent_ref_with_defaults() {
    let c = run(&format!("{BASE}{}", route("infra", "r", "  parentRefs: [{name: gw}]")));
    let parent = &c.status.http_routes[&key("infra/r")].parents[0];
    assert_eq!(parent.controller_name, CONTROLLER);
    assert_eq!(parent.parent_ref.name, "gw");
    assert_eq!(parent.parent_ref.kind.as_deref(), Some("Gateway"));
    assert_eq!(parent.parent_ref.group.as_deref(), Some("gateway.networking.k8s.io"));
}

#[test]
fn route_hostname_outside_the_listener_is_no_matching_listener_hostname() {
    let yaml = BASE.replace("protocol: HTTP,", "protocol: HTTP, hostname: \"*.example.com\",");
    let r = route("infra", "r", "  parentRefs: [{name: gw}]\n  hostnames: [example.com, foo.other.com]");
    let c = run(&format!("{yaml}{r}"));
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("False", "NoMatchingListenerHostname"));
    assert_eq!(c.attached_routes("infra/gw", "http"), 0);
}

#[test]
fn wildcard_listener_serves_route_on_the_intersection_only() {
    let yaml = BASE.replace("protocol: HTTP,", "protocol: HTTP, hostname: \"*.example.com\",");
    let r = route("infra", "r", "  parentRefs: [{name: gw}]\n  hostnames: [foo.example.com, bar.other.com]");
    let c = run(&format!("{yaml}{r}"));
    assert_eq!(c.answer(&get("foo.example.com", "/")).as_deref(), Some("infra/r#0"));
    assert_eq!(c.answer(&get("baz.example.com", "/")), None, "the listener's own key answers 404");
    assert_eq!(c.answer(&get("bar.other.com", "/")), None);
}

#[test]
fn exact_host_falls_back_to_wildcard_and_catch_all_rules() {
    let exact = route(
        "infra",
        "exact",
        "  parentRefs: [{name: gw}]\n  hostnames: [a.example.com]\n  rules: [{matches: [{path: {type: PathPrefix, value: /api}}]}]",
    );
    let wild = route(
        "infra",
        "wild",
        "  parentRefs: [{name: gw}]\n  hostnames: [\"*.example.com\"]\n  rules: [{matches: [{path: {type: PathPrefix, value: /api/v2}}]}, {}]",
    );
    let any = route(
        "infra",
        "any",
        "  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {type: Exact, value: /health}}]}]",
    );
    let c = run(&format!("{BASE}{exact}{wild}{any}"));
    // Hostname specificity comes before path: the exact host's /api beats the wildcard's /api/v2.
    assert_eq!(c.answer(&get("a.example.com", "/api/v2/x")).as_deref(), Some("infra/exact#0"));
    assert_eq!(c.answer(&get("a.example.com", "/other")).as_deref(), Some("infra/wild#1"));
    assert_eq!(c.answer(&get("a.example.com", "/health")).as_deref(), Some("infra/wild#1"));
    assert_eq!(c.answer(&get("b.example.com", "/api/v2")).as_deref(), Some("infra/wild#0"));
    assert_eq!(c.answer(&get("other.test", "/health")).as_deref(), Some("infra/any#0"));
    assert_eq!(c.answer(&get("other.test", "/api")), None);
}

#[test]
fn on_an_exact_listener_the_routes_own_hostnames_rank_them() {
    let yaml = BASE.replace("{name: http, port: 80,", "{name: http, port: 80, hostname: abc.example.com,");
    let created = |r: String, at: &str| {
        r.replace("namespace: infra}", &format!("namespace: infra, creationTimestamp: \"{at}\"}}"))
    };
    // The wildcard route is older and its prefix longer; the exact route still goes first,
    // and what it does not match falls to the wildcard route.
    let wild = created(
        route(
            "infra",
            "wild",
            "  parentRefs: [{name: gw}]\n  hostnames: [\"*.example.com\"]\n  rules: [{matches: [{path: {type: PathPrefix, value: /a/b}}]}, {}]",
        ),
        "2020-01-01T00:00:00Z",
    );
    let exact = created(
        route(
            "infra",
            "exact",
            "  parentRefs: [{name: gw}]\n  hostnames: [abc.example.com]\n  rules: [{matches: [{path: {type: PathPrefix, value: /a}}]}]",
        ),
        "2021-01-01T00:00:00Z",
    );
    let none =
        route("infra", "none", "  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {type: Exact, value: /n}}]}]");
    let c = run(&format!("{yaml}{wild}{exact}{none}"));
    assert_eq!(c.answer(&get("abc.example.com", "/a/b")).as_deref(), Some("infra/exact#0"));
    assert_eq!(c.answer(&get("abc.example.com", "/other")).as_deref(), Some("infra/wild#1"));
    assert_eq!(c.answer(&get("abc.example.com", "/n")).as_deref(), Some("infra/wild#1"), "no hostname ranks last");
}

#[test]
fn requests_match_the_most_specific_listener_first() {
    let yaml = BASE.replace(
        "  - {name: http",
        "  - {name: foo, port: 80, protocol: HTTP, hostname: foo.example.com, allowedRoutes: {namespaces: {from: All}}}\n  - {name: http",
    );
    let general = route("infra", "general", "  parentRefs: [{name: gw, sectionName: http}]");
    let foo = route(
        "infra",
        "foo",
        "  parentRefs: [{name: gw, sectionName: foo}]\n  rules: [{matches: [{path: {type: Exact, value: /only}}]}]",
    );
    let c = run(&format!("{yaml}{general}{foo}"));
    assert_eq!(c.answer(&get("foo.example.com", "/only")).as_deref(), Some("infra/foo#0"));
    assert_eq!(c.answer(&get("foo.example.com", "/else")), None, "the catch-all listener's route does not apply");
    assert_eq!(c.answer(&get("bar.example.com", "/else")).as_deref(), Some("infra/general#0"));
}

#[test]
fn precedence_spans_routes_on_a_listener() {
    let older = route(
        "infra",
        "zzz",
        "  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {type: PathPrefix, value: /a}}]}]",
    )
    .replace("namespace: infra}", "namespace: infra, creationTimestamp: \"2020-01-01T00:00:00Z\"}");
    let newer = route("infra", "aaa", "  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {type: PathPrefix, value: /a}}, {path: {type: PathPrefix, value: /a/b}, method: POST}]}]")
        .replace("namespace: infra}", "namespace: infra, creationTimestamp: \"2021-01-01T00:00:00Z\"}");
    let c = run(&format!("{BASE}{older}{newer}"));
    assert_eq!(c.answer(&get("x.test", "/a/c")).as_deref(), Some("infra/zzz#0"), "oldest route wins a tie");
    let post = Req { method: http::Method::POST, ..get("x.test", "/a/b") };
    assert_eq!(c.answer(&post).as_deref(), Some("infra/aaa#0"), "longer prefix wins");
    assert_eq!(c.answer(&get("x.test", "/a/b")).as_deref(), Some("infra/zzz#0"));
}

#[test]
fn attached_routes_counts_accepted_routes_once_per_listener() {
    let twice = route("infra", "r", "  parentRefs: [{name: gw}, {name: gw, sectionName: http}]");
    let c = run(&format!("{BASE}{twice}"));
    assert_eq!(c.attached_routes("infra/gw", "http"), 1);
    assert_eq!(c.status.http_routes[&key("infra/r")].parents.len(), 2);
}
