//! HTTPRoutes: compile their rules, attach them to listeners, and write their status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gateway_api::httproutes::{HttpRouteStatus, HttpRouteStatusParents, HttpRouteStatusParentsParentRef};
use k8s_openapi::jiff::Timestamp;

use super::attach::{self, Attached};
use super::backends::Resolver;
use super::conditions::{condition, ok, reasons, types};
use super::gateways::GatewayModel;
use super::rules::{self, CompiledRules};
use super::{CompileOptions, GATEWAY_GROUP, Problem, Status, report};
use crate::index::{Index, ObjectKey};
use crate::table::HostKey;

/// A route's rules as served, shared by every listener it attached to.
pub(super) struct ServedRoute {
    pub key: ObjectKey,
    pub created: Option<Timestamp>,
    /// The route's own `spec.hostnames` (empty: none), which rank it among routes whose
    /// hostnames intersect.
    pub hostnames: Vec<HostKey>,
    pub rules: Vec<rules::CompiledRule>,
}

/// A route attached to one listener.
pub(super) struct Attachment {
    /// Index into the gateway list and into that gateway's listeners.
    pub gateway: usize,
    pub listener: usize,
    pub hostnames: Vec<HostKey>,
    pub route: Arc<ServedRoute>,
}

/// Processes every HTTPRoute; returns the attachments and the accepted-route count per
/// (gateway index, listener name).
pub(super) fn attach_all(
    index: &Index,
    options: &CompileOptions,
    gateways: &[GatewayModel<'_>],
    resolver: &mut Resolver<'_>,
    status: &mut Status,
) -> (Vec<Attachment>, Vec<BTreeMap<String, i32>>) {
    let mut attachments = Vec::new();
    let mut counts: Vec<BTreeMap<String, i32>> = vec![BTreeMap::new(); gateways.len()];
    let by_key: BTreeMap<&ObjectKey, usize> = gateways.iter().enumerate().map(|(i, g)| (&g.key, i)).collect();

    for (key, route) in &index.http_routes {
        let parents: Vec<(usize, &_)> = route
            .spec
            .parent_refs
            .iter()
            .flatten()
            .filter_map(|p| attach::parent_gateway(p, &key.namespace).and_then(|g| by_key.get(&g)).map(|&i| (i, p)))
            .collect();
        if parents.is_empty() {
            continue; // not ours: no status
        }
        let route_id: Arc<str> = Arc::from(key.to_string());
        let compiled = rules::compile(route, &key.namespace, &route_id, resolver);
        // With no rule left the Accepted condition carries these messages instead.
        for message in compiled.dropped.iter().filter(|_| !compiled.rules.is_empty()) {
            status.problems.push(Problem { kind: "HTTPRoute", object: key.clone(), message: message.clone() });
        }
        let hostnames: Vec<HostKey> = route.spec.hostnames.iter().flatten().map(|h| HostKey::parse(Some(h))).collect();
        let CompiledRules { rules, dropped, unresolved, unresolved_messages } = compiled;
        let served = Arc::new(ServedRoute {
            key: key.clone(),
            created: route.metadata.creation_timestamp.as_ref().map(|t| t.0),
            hostnames,
            rules,
        });
        let generation = route.metadata.generation;
        let mut seen = BTreeSet::new();
        let mut statuses = Vec::new();
        for (gi, parent) in parents {
            let gw = &gateways[gi];
            let outcome = attach::attach(index, gw, parent, &key.namespace, &served.hostnames);
            let accepted = match (&outcome, served.rules.is_empty()) {
                (Err((reason, message)), _) => condition(types::ACCEPTED, false, reason, message.clone(), generation),
                (Ok(_), true) => {
                    let message = format!("no valid rule is left: {}", dropped.join("; "));
                    condition(types::ACCEPTED, false, reasons::UNSUPPORTED_VALUE, message, generation)
                }
                (Ok(_), false) => ok(types::ACCEPTED, generation),
            };
            if accepted.status == "True"
                && let Ok(list) = outcome
            {
                for Attached { listener, hostnames } in list {
                    if seen.insert((gi, listener)) {
                        *counts[gi].entry(gw.listeners[listener].spec.name.clone()).or_default() += 1;
                        attachments.push(Attachment { gateway: gi, listener, hostnames, route: Arc::clone(&served) });
                    }
                }
            }
            let mut conditions = vec![accepted, resolved_refs(&unresolved, &unresolved_messages, generation)];
            if !dropped.is_empty() && !served.rules.is_empty() {
                let message = format!("some rules were dropped: {}", dropped.join("; "));
                conditions.push(condition(
                    types::PARTIALLY_INVALID,
                    true,
                    reasons::UNSUPPORTED_VALUE,
                    message,
                    generation,
                ));
            }
            let parent_ref = HttpRouteStatusParentsParentRef {
                group: Some(parent.group.clone().unwrap_or_else(|| GATEWAY_GROUP.to_string())),
                kind: Some(parent.kind.clone().unwrap_or_else(|| "Gateway".to_string())),
                name: parent.name.clone(),
                namespace: parent.namespace.clone(),
                port: parent.port,
                section_name: parent.section_name.clone(),
            };
            report(&mut status.problems, "HTTPRoute", key, &format!("parentRef Gateway {}", gw.key), &conditions);
            statuses.push(HttpRouteStatusParents {
                conditions,
                controller_name: options.controller_name.clone(),
                parent_ref,
            });
        }
        status.http_routes.insert(key.clone(), HttpRouteStatus { parents: statuses });
    }
    (attachments, counts)
}

fn resolved_refs(
    unresolved: &Option<super::backends::RefError>,
    messages: &[String],
    generation: Option<i64>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    match unresolved {
        None => ok(types::RESOLVED_REFS, generation),
        Some(error) => condition(types::RESOLVED_REFS, false, error.reason, messages.join("; "), generation),
    }
}
