//! Rule defaults, validation, filters, timeouts and weights.

use std::time::Duration;

use http::HeaderValue;

use super::*;
use crate::table::{BackendTarget, Filter, PathMatch, PathModifier, StringMatch};

/// `infra/r` attached to the base Gateway with the given `rules:` YAML (a flow sequence).
fn with_rules(rules: &str) -> Compiled {
    let route = format!(
        "\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules: {rules}\n"
    );
    run(&format!("{BASE}{route}{}{}", service("infra", "a", &["10.0.0.1"]), service("infra", "b", &["10.0.0.2"])))
}

fn only_rule(c: &Compiled) -> &crate::table::Rule {
    &c.lookup(&get("x.test", "/")).expect("the rule answers /").rule
}

#[test]
fn missing_path_defaults_to_root_prefix_and_types_default_to_exact() {
    let c =
        with_rules("[{matches: [{headers: [{name: X-Env, value: canary}], queryParams: [{name: V, value: \"2\"}]}]}]");
    let entry = &c.table.sockets[0].hosts.lookup("x.test").unwrap().entries[0];
    assert!(matches!(&entry.matches.path, PathMatch::Prefix(p) if p.is_empty()));
    assert_eq!(entry.matches.headers[0].name.as_str(), "x-env", "header names are lower-cased");
    assert!(matches!(&entry.matches.headers[0].value, StringMatch::Exact(v) if v == "canary"));
    assert_eq!(entry.matches.query[0].name, "V", "query names stay exact");
    let mut req = get("x.test", "/any");
    req.headers.insert("x-env", HeaderValue::from_static("canary"));
    req.query = Some("V=2");
    assert!(c.lookup(&req).is_some());
}

#[test]
fn invalid_regex_drops_the_rule_and_with_none_left_the_route_is_unsupported_value() {
    let c = with_rules("[{matches: [{path: {type: RegularExpression, value: \"/(unclosed\"}}]}]");
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("False", "UnsupportedValue"));
    assert!(c.has_problem("infra/r", "regular expression"));
    assert!(c.lookup(&get("x.test", "/")).is_none());
    assert_eq!(c.attached_routes("infra/gw", "http"), 0);
}

#[test]
fn a_dropped_rule_leaves_the_others_served_and_marks_the_route_partially_invalid() {
    let c = with_rules(
        "[{matches: [{headers: [{name: \"bad header\", value: x}]}]}, {backendRefs: [{name: a, port: 80}]}]",
    );
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("True", "Accepted"));
    assert_eq!(c.route_condition("infra/r", 0, "PartiallyInvalid"), cond("True", "UnsupportedValue"));
    assert!(c.has_problem("infra/r", "rules[0] dropped: matches[0]: invalid header name \"bad header\""));
    assert_eq!(c.answer(&get("x.test", "/")).as_deref(), Some("infra/r#1"));
}

#[test]
fn unsupported_or_contradictory_filters_drop_the_rule() {
    for rules in [
        "[{filters: [{type: ExtensionRef, extensionRef: {group: x, kind: Y, name: z}}]}]",
        "[{filters: [{type: CORS, cors: {allowOrigins: [\"*\"]}}]}]",
        "[{filters: [{type: RequestRedirect, requestRedirect: {hostname: a.test}}, {type: URLRewrite, urlRewrite: {hostname: b.test}}]}]",
        "[{matches: [{path: {type: Exact, value: /a}}], filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]}]",
        "[{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x, value: \"a\\nb\"}]}}]}]",
    ] {
        let c = with_rules(rules);
        assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("False", "UnsupportedValue"), "{rules}");
    }
}

#[test]
fn filters_convert_in_order_with_defaults() {
    let c = with_rules(
        r#"[{matches: [{path: {type: PathPrefix, value: /old}}], filters: [
            {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "1"}], add: [{name: x-b, value: "2"}], remove: [X-C]}},
            {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-r, value: "3"}]}},
            {type: RequestRedirect, requestRedirect: {scheme: https, port: 8443, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}},
            {type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}, fraction: {numerator: 1, denominator: 4}}}]}]"#,
    );
    let rule = &c.lookup(&get("x.test", "/old/x")).unwrap().rule;
    let [
        Filter::RequestHeaders(req),
        Filter::ResponseHeaders(resp),
        Filter::Redirect(redirect),
        Filter::Mirror(mirror),
    ] = rule.filters.as_slice()
    else {
        panic!("unexpected filters {:?}", rule.filters);
    };
    assert_eq!(req.set[0].0.as_str(), "x-a");
    assert_eq!(req.add[0].1, "2");
    assert_eq!(req.remove[0].as_str(), "x-c");
    assert_eq!(resp.add[0].0.as_str(), "x-r");
    assert_eq!(redirect.status.as_u16(), 302, "statusCode defaults to 302");
    assert_eq!((redirect.scheme.as_deref(), redirect.port), (Some("https"), Some(8443)));
    assert!(matches!(&redirect.path, Some(PathModifier::ReplacePrefixMatch(p)) if p == "/new"));
    assert_eq!((&*mirror.backend.id, mirror.numerator, mirror.denominator), ("infra/b:80", 1, 4));
}

#[test]
fn mirror_defaults_to_every_request_and_accepts_percent() {
    let c = with_rules("[{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}}}]}]");
    let Filter::Mirror(m) = &only_rule(&c).filters[0] else { panic!() };
    assert_eq!((m.numerator, m.denominator), (100, 100));
    let c = with_rules(
        "[{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}, percent: 25}}]}]",
    );
    let Filter::Mirror(m) = &only_rule(&c).filters[0] else { panic!() };
    assert_eq!((m.numerator, m.denominator), (25, 100));
}

#[test]
fn mirror_to_a_missing_service_is_backend_not_found_and_left_out() {
    let c = with_rules(
        "[{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: gone, port: 80}}}], backendRefs: [{name: a, port: 80}]}]",
    );
    assert_eq!(c.route_condition("infra/r", 0, "ResolvedRefs"), cond("False", "BackendNotFound"));
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("True", "Accepted"));
    assert!(only_rule(&c).filters.is_empty());
}

#[test]
fn url_rewrite_converts_hostname_and_full_path() {
    let c = with_rules(
        "[{filters: [{type: URLRewrite, urlRewrite: {hostname: up.test, path: {type: ReplaceFullPath, replaceFullPath: /x}}}]}]",
    );
    let Filter::Rewrite(r) = &only_rule(&c).filters[0] else { panic!() };
    assert_eq!(r.hostname.as_deref(), Some("up.test"));
    assert!(matches!(&r.path, Some(PathModifier::ReplaceFullPath(p)) if p == "/x"));
}

#[test]
fn backend_ref_filters_use_the_rule_filter_converter() {
    let c = with_rules(
        "[{backendRefs: [{name: a, port: 80, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Backend, value: a}]}}]}]}]",
    );
    let Filter::RequestHeaders(m) = &only_rule(&c).backends[0].filters[0] else { panic!() };
    assert_eq!((m.set[0].0.as_str(), m.set[0].1.to_str().unwrap()), ("x-backend", "a"));
    let c = with_rules(
        "[{backendRefs: [{name: a, port: 80, filters: [{type: ExtensionRef, extensionRef: {group: x, kind: Y, name: z}}]}]}]",
    );
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("False", "UnsupportedValue"));
}

#[test]
fn timeouts_parse_and_zero_means_none() {
    let c = with_rules("[{timeouts: {request: 10s, backendRequest: 0s}}]");
    let t = only_rule(&c).timeouts;
    assert_eq!((t.request, t.backend_request), (Some(Duration::from_secs(10)), None));
    let c = with_rules("[{timeouts: {request: 1.5s}}]");
    assert_eq!(c.route_condition("infra/r", 0, "Accepted"), cond("False", "UnsupportedValue"));
    assert!(c.has_problem("infra/r", "timeouts.request"));
}

#[test]
fn weights_default_to_one_and_split_interleaves() {
    let c = with_rules("[{backendRefs: [{name: a, port: 80, weight: 3}, {name: b, port: 80}]}]");
    let rule = only_rule(&c);
    assert_eq!(rule.backends.iter().map(|b| b.weight).collect::<Vec<_>>(), [3, 1]);
    let split = rule.split.as_ref().expect("two backends are split");
    let picks: Vec<usize> = (0..4).map(|_| split.pick()).collect();
    assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 3);
}

#[test]
fn all_zero_weights_have_no_split_and_one_backend_needs_none() {
    let c = with_rules("[{backendRefs: [{name: a, port: 80, weight: 0}, {name: b, port: 80, weight: 0}]}]");
    assert!(only_rule(&c).split.is_none());
    let c = with_rules("[{backendRefs: [{name: a, port: 80}]}]");
    let rule = only_rule(&c);
    assert!(rule.split.is_none());
    assert!(matches!(&rule.backends[0].target, BackendTarget::Resolved(b) if &*b.id == "infra/a:80"));
}
