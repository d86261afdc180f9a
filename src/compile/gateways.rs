//! Which GatewayClasses and Gateways are ours, listener validation, and which sockets each
//! listener binds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use gateway_api::gatewayclasses::GatewayClassStatus;
use gateway_api::gateways::{
    Gateway, GatewayListeners, GatewayStatus, GatewayStatusAddresses, GatewayStatusListeners,
    GatewayStatusListenersSupportedKinds,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;

use super::conditions::{condition, ok, reasons, types};
use super::{CompileOptions, GATEWAY_GROUP, Status, report};
use crate::index::{Index, ObjectKey};
use crate::table::HostKey;

/// A Gateway of one of our classes.
pub(super) struct GatewayModel<'a> {
    pub key: ObjectKey,
    pub generation: Option<i64>,
    pub created: Option<Timestamp>,
    /// The IPs its listeners bind.
    pub addresses: Vec<IpAddr>,
    /// Why `spec.addresses` cannot be served; then nothing of this Gateway is.
    pub address_error: Option<String>,
    pub listeners: Vec<ListenerModel<'a>>,
}

pub(super) struct ListenerModel<'a> {
    pub spec: &'a GatewayListeners,
    pub hostname: HostKey,
    pub port: u16,
    /// Route kinds the listener allows that we support (HTTPRoute), and those we do not.
    pub supported_kinds: Vec<GatewayStatusListenersSupportedKinds>,
    pub invalid_kinds: Vec<String>,
    pub unsupported_protocol: Option<String>,
    pub conflict: Option<(&'static str, String)>,
    pub port_unavailable: Option<String>,
}

impl ListenerModel<'_> {
    pub fn is_http(&self) -> bool {
        self.unsupported_protocol.is_none()
    }

    pub fn allows_http_routes(&self) -> bool {
        self.is_http() && !self.supported_kinds.is_empty()
    }

    /// Whether the listener is in the table (before socket ownership is decided).
    fn servable(&self) -> bool {
        self.is_http() && self.conflict.is_none()
    }
}

impl GatewayModel<'_> {
    /// Whether a listener is in the table.
    pub fn serves(&self, listener: &ListenerModel<'_>) -> bool {
        self.address_error.is_none() && listener.servable() && listener.port_unavailable.is_none()
    }

    pub fn sockets(&self, listener: &ListenerModel<'_>) -> Vec<SocketAddr> {
        self.addresses.iter().map(|ip| SocketAddr::new(*ip, listener.port)).collect()
    }

    pub fn listener_id(&self, listener: &ListenerModel<'_>) -> String {
        format!("{}/{}/{}", self.key.namespace, self.key.name, listener.spec.name)
    }
}

/// Accepts our GatewayClasses; returns their names.
pub(super) fn classes(index: &Index, options: &CompileOptions, status: &mut Status) -> BTreeSet<String> {
    let mut ours = BTreeSet::new();
    for (key, class) in &index.gateway_classes {
        if class.spec.controller_name != options.controller_name {
            continue;
        }
        let conditions = vec![ok(types::ACCEPTED, class.metadata.generation)];
        status
            .gateway_classes
            .insert(key.clone(), GatewayClassStatus { conditions: Some(conditions), ..Default::default() });
        ours.insert(key.name.clone());
    }
    ours
}

/// The Gateways of our classes, oldest first, with listeners validated and sockets assigned.
pub(super) fn collect<'a>(
    index: &'a Index,
    options: &CompileOptions,
    ours: &BTreeSet<String>,
) -> Vec<GatewayModel<'a>> {
    let mut gateways: Vec<GatewayModel<'a>> = index
        .gateways
        .iter()
        .filter(|(_, gw)| ours.contains(&gw.spec.gateway_class_name))
        .map(|(key, gw)| model(key, gw, options))
        .collect();
    gateways.sort_by(|a, b| {
        let age = |g: &GatewayModel<'_>| (g.created.is_none(), g.created);
        age(a).cmp(&age(b)).then_with(|| a.key.cmp(&b.key))
    });
    assign_sockets(&mut gateways);
    gateways
}

fn model<'a>(key: &ObjectKey, gateway: &'a Gateway, options: &CompileOptions) -> GatewayModel<'a> {
    let (addresses, address_error) = addresses(gateway, options);
    let mut listeners: Vec<ListenerModel<'a>> = gateway.spec.listeners.iter().map(listener).collect();
    find_conflicts(&mut listeners);
    GatewayModel {
        key: key.clone(),
        generation: gateway.metadata.generation,
        created: gateway.metadata.creation_timestamp.as_ref().map(|t| t.0),
        addresses,
        address_error,
        listeners,
    }
}

/// `spec.addresses` of type IPAddress (or no type) are bound; without any, `bind_address`.
fn addresses(gateway: &Gateway, options: &CompileOptions) -> (Vec<IpAddr>, Option<String>) {
    let mut ips = Vec::new();
    for (i, address) in gateway.spec.addresses.iter().flatten().enumerate() {
        let kind = address.r#type.as_deref().unwrap_or("IPAddress");
        if kind != "IPAddress" {
            return (ips, Some(format!("spec.addresses[{i}].type {kind:?} is not supported; use IPAddress")));
        }
        match address.value.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(ip)) => ips.push(ip),
            Some(Err(_)) => {
                let value = address.value.as_deref().unwrap_or_default();
                return (ips, Some(format!("spec.addresses[{i}].value {value:?} is not an IP address")));
            }
            None => {
                return (ips, Some(format!("spec.addresses[{i}].value is empty; Gantry does not assign addresses")));
            }
        }
    }
    if ips.is_empty() {
        ips.push(options.bind_address);
    }
    ips.sort();
    ips.dedup();
    (ips, None)
}

fn listener(spec: &GatewayListeners) -> ListenerModel<'_> {
    let unsupported_protocol = (spec.protocol != "HTTP").then(|| {
        format!("listener {:?}: protocol {:?} is not supported; Gantry serves HTTP listeners", spec.name, spec.protocol)
    });
    let mut supported_kinds = Vec::new();
    let mut invalid_kinds = Vec::new();
    match spec.allowed_routes.as_ref().and_then(|a| a.kinds.as_ref()).filter(|k| !k.is_empty()) {
        None if unsupported_protocol.is_none() => supported_kinds.push(GatewayStatusListenersSupportedKinds {
            group: Some(GATEWAY_GROUP.to_string()),
            kind: "HTTPRoute".to_string(),
        }),
        None => {}
        Some(kinds) => {
            for kind in kinds {
                let group = kind.group.as_deref().unwrap_or(GATEWAY_GROUP);
                if group == GATEWAY_GROUP && kind.kind == "HTTPRoute" && unsupported_protocol.is_none() {
                    supported_kinds.push(GatewayStatusListenersSupportedKinds {
                        group: Some(group.to_string()),
                        kind: kind.kind.clone(),
                    });
                } else {
                    invalid_kinds.push(format!("{group}/{}", kind.kind));
                }
            }
        }
    }
    ListenerModel {
        spec,
        hostname: HostKey::parse(spec.hostname.as_deref()),
        port: u16::try_from(spec.port).unwrap_or(0),
        supported_kinds,
        invalid_kinds,
        unsupported_protocol,
        conflict: None,
        port_unavailable: None,
    }
}

/// Listeners on one port must share a protocol, and their hostnames must differ.
fn find_conflicts(listeners: &mut [ListenerModel<'_>]) {
    for i in 0..listeners.len() {
        for j in 0..listeners.len() {
            if i == j || listeners[i].port != listeners[j].port {
                continue;
            }
            let (a, b) = (&listeners[i], &listeners[j]);
            let conflict = if a.spec.protocol != b.spec.protocol {
                Some((
                    reasons::PROTOCOL_CONFLICT,
                    format!(
                        "listener {:?} uses protocol {} on port {} but listener {:?} uses {} on the same port",
                        a.spec.name, a.spec.protocol, a.port, b.spec.name, b.spec.protocol
                    ),
                ))
            } else if a.hostname == b.hostname {
                let host = a.spec.hostname.as_deref().unwrap_or("(any)");
                Some((
                    reasons::HOSTNAME_CONFLICT,
                    format!(
                        "listeners {:?} and {:?} both use port {} with hostname {host}",
                        a.spec.name, b.spec.name, a.port
                    ),
                ))
            } else {
                None
            };
            // A protocol conflict is the more fundamental one; keep it once found.
            if let Some(c) = conflict
                && listeners[i].conflict.as_ref().is_none_or(|(r, _)| *r != reasons::PROTOCOL_CONFLICT)
            {
                listeners[i].conflict = Some(c);
            }
        }
    }
}

/// Two Gateways on one (address, port): the older keeps it, the other's listeners there get
/// PortUnavailable. `gateways` is sorted oldest first.
fn assign_sockets(gateways: &mut [GatewayModel<'_>]) {
    let mut owners: BTreeMap<SocketAddr, ObjectKey> = BTreeMap::new();
    for gw in gateways.iter_mut() {
        if gw.address_error.is_some() {
            continue;
        }
        let addresses = gw.addresses.clone();
        for listener in gw.listeners.iter_mut().filter(|l| l.servable()) {
            let sockets = addresses.iter().map(|ip| SocketAddr::new(*ip, listener.port));
            let taken: Vec<String> = sockets
                .clone()
                .filter_map(|s| owners.get(&s).filter(|o| **o != gw.key).map(|o| format!("{s} (Gateway {o})")))
                .collect();
            if taken.is_empty() {
                for s in sockets {
                    owners.insert(s, gw.key.clone());
                }
            } else {
                listener.port_unavailable = Some(format!(
                    "listener {:?} of Gateway {}: {} already served by an older Gateway",
                    listener.spec.name,
                    gw.key,
                    taken.join(", ")
                ));
            }
        }
    }
}

/// The Gateway's status, given how many routes each listener accepted.
pub(super) fn write_status(gw: &GatewayModel<'_>, attached: &BTreeMap<String, i32>, status: &mut Status) {
    let generation = gw.generation;
    let mut listener_statuses = Vec::new();
    let mut served = 0;
    for l in &gw.listeners {
        let conditions = listener_conditions(gw, l);
        report(&mut status.problems, "Gateway", &gw.key, &format!("listener {:?}", l.spec.name), &conditions);
        served += usize::from(gw.serves(l));
        listener_statuses.push(GatewayStatusListeners {
            attached_routes: attached.get(&l.spec.name).copied().unwrap_or(0),
            conditions,
            name: l.spec.name.clone(),
            supported_kinds: Some(l.supported_kinds.clone()),
        });
    }
    let mut conditions = Vec::new();
    if let Some(error) = &gw.address_error {
        conditions.push(condition(types::ACCEPTED, false, reasons::UNSUPPORTED_ADDRESS, error.clone(), generation));
        conditions.push(condition(types::PROGRAMMED, false, reasons::INVALID, error.clone(), generation));
    } else if served == 0 {
        let message = "no listener is valid; see the listener conditions";
        conditions.push(condition(types::ACCEPTED, false, reasons::LISTENERS_NOT_VALID, message, generation));
        conditions.push(condition(types::PROGRAMMED, false, reasons::INVALID, message, generation));
    } else {
        conditions.push(ok(types::ACCEPTED, generation));
        conditions.push(ok(types::PROGRAMMED, generation));
    }
    report(&mut status.problems, "Gateway", &gw.key, "", &conditions);
    let addresses = (gw.address_error.is_none()).then(|| {
        gw.addresses
            .iter()
            .map(|ip| GatewayStatusAddresses { r#type: Some("IPAddress".into()), value: ip.to_string() })
            .collect()
    });
    status.gateways.insert(
        gw.key.clone(),
        GatewayStatus {
            addresses,
            conditions: Some(conditions),
            listeners: Some(listener_statuses),
            ..Default::default()
        },
    );
}

fn listener_conditions(gw: &GatewayModel<'_>, l: &ListenerModel<'_>) -> Vec<Condition> {
    let generation = gw.generation;
    let accepted = if let Some(message) = &l.unsupported_protocol {
        condition(types::ACCEPTED, false, reasons::UNSUPPORTED_PROTOCOL, message.clone(), generation)
    } else if let Some((reason, message)) = &l.conflict {
        condition(types::ACCEPTED, false, reason, message.clone(), generation)
    } else if let Some(message) = &l.port_unavailable {
        condition(types::ACCEPTED, false, reasons::PORT_UNAVAILABLE, message.clone(), generation)
    } else {
        ok(types::ACCEPTED, generation)
    };
    let programmed = if gw.serves(l) {
        ok(types::PROGRAMMED, generation)
    } else {
        let why = match &gw.address_error {
            Some(e) => e.clone(),
            None if accepted.status == "False" => accepted.message.clone(),
            None => "the listener is not served".to_string(),
        };
        condition(types::PROGRAMMED, false, reasons::INVALID, why, generation)
    };
    let resolved = if l.invalid_kinds.is_empty() {
        ok(types::RESOLVED_REFS, generation)
    } else {
        let message = format!(
            "listener {:?}: allowedRoutes.kinds {} not supported; Gantry supports {GATEWAY_GROUP}/HTTPRoute on HTTP listeners",
            l.spec.name,
            l.invalid_kinds.join(", ")
        );
        condition(types::RESOLVED_REFS, false, reasons::INVALID_ROUTE_KINDS, message, generation)
    };
    let conflicted = match &l.conflict {
        Some((reason, message)) => condition(types::CONFLICTED, true, reason, message.clone(), generation),
        None => condition(types::CONFLICTED, false, reasons::NO_CONFLICTS, "", generation),
    };
    vec![accepted, programmed, resolved, conflicted]
}
