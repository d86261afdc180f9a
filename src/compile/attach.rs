//! Route attachment: which listeners a parentRef selects, whether they allow the route, and on
//! which hostnames.

use gateway_api::gateways::{
    GatewayListenersAllowedRoutesNamespacesFrom as From, GatewayListenersAllowedRoutesNamespacesSelector,
};
use gateway_api::httproutes::HttpRouteParentRefs;

use super::conditions::reasons;
use super::gateways::{GatewayModel, ListenerModel};
use super::{GATEWAY_GROUP, hostnames};
use crate::index::{Index, ObjectKey};
use crate::table::HostKey;

/// The Gateway a parentRef names, when it names a Gateway.
pub(super) fn parent_gateway(parent: &HttpRouteParentRefs, route_namespace: &str) -> Option<ObjectKey> {
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    (group == GATEWAY_GROUP && kind == "Gateway")
        .then(|| ObjectKey::new(parent.namespace.as_deref().unwrap_or(route_namespace), &parent.name))
}

/// One listener a route attached to, with the hostnames it answers there.
pub(super) struct Attached {
    pub listener: usize,
    pub hostnames: Vec<HostKey>,
}

/// Why a parentRef attached to no listener: a reason and a message.
pub(super) type Refused = (&'static str, String);

/// The listeners of `gw` that `parent` selects and that accept the route.
pub(super) fn attach(
    index: &Index,
    gw: &GatewayModel<'_>,
    parent: &HttpRouteParentRefs,
    route_namespace: &str,
    route_hostnames: &[HostKey],
) -> Result<Vec<Attached>, Refused> {
    let selected: Vec<(usize, &ListenerModel<'_>)> = gw
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| parent.section_name.as_ref().is_none_or(|s| *s == l.spec.name))
        .filter(|(_, l)| parent.port.is_none_or(|p| p == l.spec.port))
        .collect();
    if selected.is_empty() {
        let mut what = Vec::new();
        if let Some(s) = &parent.section_name {
            what.push(format!("sectionName {s:?}"));
        }
        if let Some(p) = parent.port {
            what.push(format!("port {p}"));
        }
        return Err((
            reasons::NO_MATCHING_PARENT,
            format!("Gateway {} has no listener with {}", gw.key, what.join(" and ")),
        ));
    }
    let allowed: Vec<(usize, &ListenerModel<'_>)> = selected
        .into_iter()
        .filter(|(_, l)| l.allows_http_routes() && namespace_allowed(index, gw, l, route_namespace))
        .collect();
    if allowed.is_empty() {
        return Err((
            reasons::NOT_ALLOWED_BY_LISTENERS,
            format!(
                "no selected listener of Gateway {} allows HTTPRoutes from namespace {route_namespace:?} \
                 (check the listeners' protocol and allowedRoutes)",
                gw.key
            ),
        ));
    }
    let attached: Vec<Attached> = allowed
        .into_iter()
        .filter_map(|(i, l)| {
            let hostnames = hostnames::effective(&l.hostname, route_hostnames);
            (!hostnames.is_empty()).then_some(Attached { listener: i, hostnames })
        })
        .collect();
    if attached.is_empty() {
        return Err((
            reasons::NO_MATCHING_LISTENER_HOSTNAME,
            format!("spec.hostnames match no hostname of the selected listeners of Gateway {}", gw.key),
        ));
    }
    Ok(attached)
}

/// allowedRoutes.namespaces: Same (the default), All, or Selector over the namespace's labels.
fn namespace_allowed(index: &Index, gw: &GatewayModel<'_>, l: &ListenerModel<'_>, route_namespace: &str) -> bool {
    let namespaces = l.spec.allowed_routes.as_ref().and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_ref()).unwrap_or(&From::Same) {
        From::Same => route_namespace == gw.key.namespace,
        From::All => true,
        From::Selector => namespaces
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|s| selector_matches(s, &index.namespace_labels(route_namespace))),
    }
}

/// A label selector; an unknown operator matches nothing.
pub(super) fn selector_matches(
    selector: &GatewayListenersAllowedRoutesNamespacesSelector,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let labels_ok = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}
