//! The rules of one HTTPRoute: matches, filters, timeouts and backends, with the defaults the API
//! server would have applied (objects may come from YAML files that never saw one).

use std::sync::Arc;

use gateway_api::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use http::Method;

use super::backends::{BackendRef, RefError, Resolver};
use super::filters::{self, FilterContext, FilterError};
use crate::table::{
    BackendTarget, Filter, HeaderMatch, PathMatch, QueryMatch, RequestMatch, Rule, RuleId, StringMatch, Timeouts,
    WeightedBackend,
};

/// A rule ready to serve and the matches that lead to it.
pub(super) struct CompiledRule {
    pub index: usize,
    pub matches: Vec<RequestMatch>,
    pub rule: Arc<Rule>,
}

/// The rules of a route that survived validation, and what went wrong with the others.
#[derive(Default)]
pub(super) struct CompiledRules {
    pub rules: Vec<CompiledRule>,
    /// One message per dropped rule (the route reason is UnsupportedValue).
    pub dropped: Vec<String>,
    /// The first backendRef that did not resolve (ResolvedRefs False), and all their messages.
    pub unresolved: Option<RefError>,
    pub unresolved_messages: Vec<String>,
}

pub(super) fn compile(
    route: &HttpRoute,
    namespace: &str,
    route_id: &Arc<str>,
    resolver: &mut Resolver<'_>,
) -> CompiledRules {
    let mut out = CompiledRules::default();
    // The API server defaults a route without rules to one rule matching every path.
    let default_rules = [HttpRouteRules::default()];
    let specs = route.spec.rules.as_deref().filter(|r| !r.is_empty()).unwrap_or(&default_rules);
    for (index, spec) in specs.iter().enumerate() {
        let mut refs = Vec::new();
        match rule(spec, index, route_id, namespace, resolver, &mut refs) {
            Ok(compiled) => out.rules.push(compiled),
            Err(message) => out.dropped.push(format!("rules[{index}] dropped: {message}")),
        }
        for (field, error) in refs {
            out.unresolved_messages.push(format!("rules[{index}].{field}: {}", error.message));
            out.unresolved.get_or_insert(error);
        }
    }
    out
}

fn rule(
    spec: &HttpRouteRules,
    index: usize,
    route_id: &Arc<str>,
    namespace: &str,
    resolver: &mut Resolver<'_>,
    refs: &mut Vec<(String, RefError)>,
) -> Result<CompiledRule, String> {
    let default_match = [HttpRouteRulesMatches::default()];
    let specs = spec.matches.as_deref().filter(|m| !m.is_empty()).unwrap_or(&default_match);
    let matches = specs
        .iter()
        .enumerate()
        .map(|(i, m)| request_match(m).map_err(|e| format!("matches[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let all_prefix_matches = matches.iter().all(|m| matches!(m.path, PathMatch::Prefix(_)));
    let timeouts = timeouts(spec)?;

    let rule_filters = spec.filters.as_deref().unwrap_or_default();
    filters::check_combination(rule_filters)?;
    let mut cx = FilterContext { resolver, route_namespace: namespace, all_prefix_matches };
    let filters = convert_filters(rule_filters, "filters", &mut cx, refs)?;

    let mut backends = Vec::new();
    for (i, b) in spec.backend_refs.iter().flatten().enumerate() {
        let field = format!("backendRefs[{i}]");
        let backend_filters = b
            .filters
            .iter()
            .flatten()
            .map(filters::from_backend_filter)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{field}: {e}"))?;
        filters::check_combination(&backend_filters).map_err(|e| format!("{field}.{e}"))?;
        let filters = convert_filters(&backend_filters, &format!("{field}.filters"), &mut cx, refs)?;
        let target = match cx.resolver.resolve(namespace, BackendRef::from(b)) {
            Ok(backend) => BackendTarget::Resolved(backend),
            Err(error) => {
                let message = error.message.clone();
                refs.push((field, error));
                BackendTarget::Unresolved(message)
            }
        };
        let weight = u32::try_from(b.weight.unwrap_or(1)).unwrap_or(0);
        backends.push(WeightedBackend { weight, target, filters });
    }
    let split = if backends.len() > 1 {
        crate::balance::WeightedSplit::new(&backends.iter().map(|b| b.weight).collect::<Vec<_>>())
    } else {
        None
    };
    let rule = Rule {
        id: RuleId { route: Arc::clone(route_id), rule: index },
        filters,
        backends,
        split,
        timeouts,
        metrics: Default::default(),
    };
    Ok(CompiledRule { index, matches, rule: Arc::new(rule) })
}

/// Converts a list of filters; an invalid one fails the rule, a mirror whose backend did not
/// resolve is left out and reported.
fn convert_filters(
    specs: &[gateway_api::httproutes::HttpRouteRulesFilters],
    field: &str,
    cx: &mut FilterContext<'_, '_>,
    refs: &mut Vec<(String, RefError)>,
) -> Result<Vec<Filter>, String> {
    let mut out = Vec::new();
    for (i, f) in specs.iter().enumerate() {
        match filters::convert(f, cx) {
            Ok(filter) => out.push(filter),
            Err(FilterError::Invalid(message)) => return Err(format!("{field}[{i}]: {message}")),
            Err(FilterError::Ref(error)) => refs.push((format!("{field}[{i}].requestMirror.backendRef"), error)),
        }
    }
    Ok(out)
}

fn request_match(m: &HttpRouteRulesMatches) -> Result<RequestMatch, String> {
    let path = match &m.path {
        None => PathMatch::prefix("/"),
        Some(p) => {
            let value = p.value.as_deref().unwrap_or("/");
            match p.r#type.as_ref().unwrap_or(&HttpRouteRulesMatchesPathType::PathPrefix) {
                HttpRouteRulesMatchesPathType::Exact => {
                    check_path(value)?;
                    PathMatch::Exact(value.to_string())
                }
                HttpRouteRulesMatchesPathType::PathPrefix => {
                    check_path(value)?;
                    PathMatch::prefix(value)
                }
                HttpRouteRulesMatchesPathType::RegularExpression => PathMatch::Regex(
                    StringMatch::anchored_regex(value)
                        .map_err(|e| format!("path regular expression {value:?}: {e}"))?,
                ),
            }
        }
    };
    let method = m
        .method
        .as_ref()
        .map(|method| {
            let text =
                serde_json::to_value(method).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            Method::from_bytes(text.as_bytes()).map_err(|_| format!("method {text:?} is not valid"))
        })
        .transpose()?;
    let headers = m
        .headers
        .iter()
        .flatten()
        .map(|h| {
            let regex = matches!(h.r#type, Some(HttpRouteRulesMatchesHeadersType::RegularExpression));
            Ok(HeaderMatch { name: filters::header_name(&h.name)?, value: string_match(&h.value, regex)? })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let query = m
        .query_params
        .iter()
        .flatten()
        .map(|q| {
            let regex = matches!(q.r#type, Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression));
            Ok(QueryMatch { name: q.name.clone(), value: string_match(&q.value, regex)? })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(RequestMatch { path, method, headers, query })
}

fn check_path(value: &str) -> Result<(), String> {
    if value.starts_with('/') { Ok(()) } else { Err(format!("path {value:?} must start with '/'")) }
}

fn string_match(value: &str, regex: bool) -> Result<StringMatch, String> {
    if !regex && http::HeaderValue::from_str(value).is_err() {
        return Err(format!("value {value:?} contains characters not allowed in HTTP"));
    }
    if regex {
        StringMatch::anchored_regex(value)
            .map(StringMatch::Regex)
            .map_err(|e| format!("regular expression {value:?}: {e}"))
    } else {
        Ok(StringMatch::Exact(value.to_string()))
    }
}

/// `timeouts.request` and `timeouts.backendRequest`; "0s" means no timeout.
fn timeouts(spec: &HttpRouteRules) -> Result<Timeouts, String> {
    let Some(t) = &spec.timeouts else { return Ok(Timeouts::default()) };
    let parse = |field: &str, value: &Option<String>| -> Result<Option<std::time::Duration>, String> {
        value
            .as_deref()
            .map(|v| crate::duration::parse(v).map_err(|e| format!("timeouts.{field}: {e}")))
            .transpose()
            .map(|d| d.filter(|d| !d.is_zero()))
    };
    Ok(Timeouts {
        request: parse("request", &t.request)?,
        backend_request: parse("backendRequest", &t.backend_request)?,
    })
}
