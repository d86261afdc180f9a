//! Which GatewayClasses and Gateways are ours, listener validation, and which sockets each
//! listener binds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use gateway_api::gatewayclasses::{GatewayClassStatus, GatewayClassStatusSupportedFeatures};
use gateway_api::gateways::{
    Gateway, GatewayListeners, GatewayStatus, GatewayStatusAddresses, GatewayStatusListeners,
    GatewayStatusListenersSupportedKinds,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;

use ipnet::IpNet;
use rustls::sign::CertifiedKey;
use std::sync::Arc;

use super::conditions::{condition, ok, reasons, types};
use super::placement::{
    self, AddressPool, GatewayService, Placement, PortAllocator, PortMapping, Requested, ServicePlacement,
};
use super::tls::{self, CertificateError};
use super::{CompileOptions, GATEWAY_GROUP, Status, report};
use crate::index::{Index, ObjectKey};
use crate::table::HostKey;

/// A Gateway of one of our classes.
pub(super) struct GatewayModel<'a> {
    pub key: ObjectKey,
    pub gateway: &'a Gateway,
    pub generation: Option<i64>,
    pub created: Option<Timestamp>,
    /// What `spec.addresses` ask for, or why they cannot be served at all (then nothing of
    /// this Gateway is, and it is not Accepted).
    pub requested: Result<Requested, String>,
    /// The IPs its listeners bind.
    pub addresses: Vec<IpAddr>,
    /// Listener port -> the port its socket binds, where they differ (the `Services` placement).
    pub socket_ports: BTreeMap<u16, u16>,
    /// Where the Gateway answers, for `status.addresses`.
    pub status_addresses: Vec<String>,
    /// Why the Gateway is not (yet) served although it is Accepted: (reason, message) of its
    /// `Programmed: False`. Only `AddressNotAssigned` still serves the listeners (the address
    /// is on its way).
    pub not_programmed: Option<(&'static str, String)>,
    /// Its Service in the `Services` placement.
    pub service: Option<GatewayService>,
    /// Why `spec.infrastructure.parametersRef` cannot be used; then nothing of it is served.
    pub invalid_parameters: Option<String>,
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
    /// HTTPS listeners: their certificates, or why they cannot be had.
    pub certificates: Option<Result<Vec<Arc<CertifiedKey>>, CertificateError>>,
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
        self.is_http() && self.conflict.is_none() && !matches!(self.certificates, Some(Err(_)))
    }
}

impl GatewayModel<'_> {
    /// Whether a listener is in the table.
    pub fn serves(&self, listener: &ListenerModel<'_>) -> bool {
        self.placed() && listener.servable() && listener.port_unavailable.is_none()
    }

    /// Whether the Gateway has a place in the data plane: its addresses are served, or about to
    /// be.
    fn placed(&self) -> bool {
        self.requested.is_ok()
            && self.invalid_parameters.is_none()
            && self.not_programmed.as_ref().is_none_or(|(reason, _)| *reason == reasons::ADDRESS_NOT_ASSIGNED)
    }

    /// The port the listener's sockets bind.
    pub fn socket_port(&self, listener: &ListenerModel<'_>) -> u16 {
        self.socket_ports.get(&listener.port).copied().unwrap_or(listener.port)
    }

    pub fn sockets(&self, listener: &ListenerModel<'_>) -> Vec<SocketAddr> {
        let port = self.socket_port(listener);
        self.addresses.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
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
        let features = super::features::supported(&options.placement)
            .into_iter()
            .map(|name| GatewayClassStatusSupportedFeatures { name })
            .collect();
        status.gateway_classes.insert(
            key.clone(),
            GatewayClassStatus { conditions: Some(conditions), supported_features: Some(features) },
        );
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
        .map(|(key, gw)| model(key, gw, index))
        .collect();
    gateways.sort_by(|a, b| {
        let age = |g: &GatewayModel<'_>| (g.created.is_none(), g.created);
        age(a).cmp(&age(b)).then_with(|| a.key.cmp(&b.key))
    });
    match &options.placement {
        Placement::Bind { pool } => {
            place_on_addresses(&mut gateways, options.bind_address, pool.as_ref());
            assign_sockets(&mut gateways);
        }
        Placement::Services(services) => place_behind_services(&mut gateways, index, options, services),
    }
    gateways
}

fn model<'a>(key: &ObjectKey, gateway: &'a Gateway, index: &Index) -> GatewayModel<'a> {
    let mut listeners: Vec<ListenerModel<'a>> = gateway.spec.listeners.iter().map(listener).collect();
    for l in listeners.iter_mut().filter(|l| l.spec.protocol == "HTTPS") {
        l.certificates = Some(tls::listener_certificates(index, &key.namespace, l.spec));
    }
    find_conflicts(&mut listeners);
    GatewayModel {
        key: key.clone(),
        gateway,
        generation: gateway.metadata.generation,
        created: gateway.metadata.creation_timestamp.as_ref().map(|t| t.0),
        requested: placement::requested(gateway),
        addresses: Vec::new(),
        socket_ports: BTreeMap::new(),
        status_addresses: Vec::new(),
        not_programmed: None,
        service: None,
        invalid_parameters: gateway.spec.infrastructure.as_ref().and_then(|i| i.parameters_ref.as_ref()).map(|r| {
            // Gantry takes no parameters objects of any kind, so every reference is invalid.
            format!(
                "infrastructure.parametersRef to {}/{} {:?}: Gantry takes no parameters objects",
                r.group, r.kind, r.name
            )
        }),
        listeners,
    }
}

/// The `Bind` placement: `spec.addresses`, else (or for an entry without a value) an address of
/// the pool, else the bind address.
fn place_on_addresses(gateways: &mut [GatewayModel<'_>], bind_address: IpAddr, pool: Option<&IpNet>) {
    let mut pool = pool.map(|net| AddressPool::new(*net));
    if let Some(pool) = &mut pool {
        for ip in gateways.iter().filter_map(|g| g.requested.as_ref().ok()).flat_map(|r| &r.ips) {
            pool.take(*ip);
        }
    }
    for gw in gateways.iter_mut() {
        let (Ok(requested), None) = (&gw.requested, &gw.invalid_parameters) else { continue };
        let mut ips = requested.ips.clone();
        let wants_one = requested.empty > 0 || ips.is_empty();
        if wants_one {
            match pool.as_mut() {
                Some(pool) => match pool.assign(&gw.key) {
                    Some(ip) => ips.push(ip),
                    None => {
                        gw.not_programmed = Some((
                            reasons::ADDRESS_NOT_ASSIGNED,
                            "every address of the Gateway address pool is taken".to_string(),
                        ));
                        continue;
                    }
                },
                None if ips.is_empty() => ips.push(bind_address),
                None => {}
            }
        }
        ips.sort();
        ips.dedup();
        gw.status_addresses = ips.iter().map(IpAddr::to_string).collect();
        gw.addresses = ips;
    }
}

/// The `Services` placement: a data-plane port per (Gateway, listener port) on the bind
/// address, and the Service that maps the listener ports onto them.
fn place_behind_services(
    gateways: &mut [GatewayModel<'_>],
    index: &Index,
    options: &CompileOptions,
    placement: &ServicePlacement,
) {
    let controller = placement::labels::controller_value(&options.controller_name);
    let endpoints = placement::data_plane_endpoints(index, &placement.data_plane);
    let mut ports = PortAllocator::default();
    for gw in gateways.iter_mut() {
        let (Ok(requested), None) = (&gw.requested, &gw.invalid_parameters) else { continue };
        let static_ip = match static_address(requested, placement) {
            Ok(ip) => ip,
            Err(message) => {
                gw.not_programmed = Some((reasons::ADDRESS_NOT_USABLE, message));
                continue;
            }
        };
        let name = placement::service_name(&gw.key.name);
        let existing = index.services.get(&ObjectKey::new(gw.key.namespace.clone(), name.clone()));
        if existing.is_some_and(|s| !placement::is_ours(s)) {
            gw.not_programmed = Some((
                reasons::INVALID,
                format!("Service {}/{name} exists and is not Gantry's; Gantry will not take it over", gw.key.namespace),
            ));
            continue;
        }
        let listener_ports: BTreeSet<u16> = gw.listeners.iter().filter(|l| l.servable()).map(|l| l.port).collect();
        if listener_ports.is_empty() {
            // Nothing to serve, so nothing to make: the Gateway is ListenersNotValid.
            continue;
        }
        let mut mappings = Vec::new();
        for port in listener_ports {
            match ports.assign(&gw.key, port) {
                Some(target_port) => mappings.push(PortMapping { port, target_port }),
                None => {
                    for l in gw.listeners.iter_mut().filter(|l| l.port == port) {
                        l.port_unavailable = Some("every data-plane port is taken".to_string());
                    }
                }
            }
        }
        gw.addresses = vec![options.bind_address];
        gw.socket_ports = mappings.iter().map(|m| (m.port, m.target_port)).collect();
        let mut addresses =
            existing.map(|s| placement::service_addresses(s, placement.service_type)).unwrap_or_default();
        if let Some(ip) = static_ip {
            addresses.retain(|a| *a == ip.to_string());
        }
        if addresses.is_empty() {
            gw.not_programmed = Some((
                reasons::ADDRESS_NOT_ASSIGNED,
                format!("waiting for the cluster to give Service {}/{name} an address", gw.key.namespace),
            ));
        }
        gw.status_addresses = addresses;
        let infrastructure = gw.gateway.spec.infrastructure.as_ref();
        let mut labels = infrastructure.and_then(|i| i.labels.clone()).unwrap_or_default();
        labels.insert(placement::labels::GATEWAY_NAME.to_string(), gw.key.name.clone());
        labels.insert(placement::labels::MANAGED_BY.to_string(), placement::labels::MANAGED_BY_VALUE.to_string());
        labels.insert(placement::labels::CONTROLLER.to_string(), controller.clone());
        gw.service = Some(GatewayService {
            name,
            gateway_uid: gw.gateway.metadata.uid.clone(),
            service_type: placement.service_type.as_str(),
            ports: mappings,
            labels,
            annotations: infrastructure.and_then(|i| i.annotations.clone()).unwrap_or_default(),
            load_balancer_ip: static_ip,
            endpoints: endpoints.clone(),
        });
    }
}

/// The one static address a Gateway asks for, if any, when this installation can use it.
fn static_address(requested: &Requested, placement: &ServicePlacement) -> Result<Option<IpAddr>, String> {
    match requested.ips.as_slice() {
        [] => Ok(None),
        [ip] => match &placement.pool {
            Some(pool) if AddressPool::new(*pool).contains(*ip) => Ok(Some(*ip)),
            Some(pool) => Err(format!("address {ip} is not in the Gateway address pool {pool}")),
            None => Err(format!("address {ip} cannot be used: no Gateway address pool is configured")),
        },
        more => Err(format!("{} static addresses asked for; Gantry gives a Gateway one", more.len())),
    }
}

fn listener(spec: &GatewayListeners) -> ListenerModel<'_> {
    let unsupported_protocol = (!matches!(spec.protocol.as_str(), "HTTP" | "HTTPS")).then(|| {
        format!(
            "listener {:?}: protocol {:?} is not supported; Gantry serves HTTP and HTTPS listeners",
            spec.name, spec.protocol
        )
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
        certificates: None,
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
        if !gw.placed() {
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
    let invalid_listeners = gw.listeners.iter().filter(|l| listener_accepted(l).is_err()).count();
    let mut conditions = Vec::new();
    if let Err(error) = &gw.requested {
        conditions.push(condition(types::ACCEPTED, false, reasons::UNSUPPORTED_ADDRESS, error.clone(), generation));
        conditions.push(condition(types::PROGRAMMED, false, reasons::INVALID, error.clone(), generation));
    } else if let Some(message) = &gw.invalid_parameters {
        conditions.push(condition(types::ACCEPTED, false, reasons::INVALID_PARAMETERS, message.clone(), generation));
        conditions.push(condition(types::PROGRAMMED, false, reasons::INVALID, message.clone(), generation));
    } else if served == 0 && gw.not_programmed.is_none() {
        let message = "no listener is valid; see the listener conditions";
        conditions.push(condition(types::ACCEPTED, false, reasons::LISTENERS_NOT_VALID, message, generation));
        conditions.push(condition(types::PROGRAMMED, false, reasons::INVALID, message, generation));
    } else {
        conditions.push(if invalid_listeners > 0 {
            let message = format!("{invalid_listeners} listener(s) are not valid and not served; see their conditions");
            condition(types::ACCEPTED, true, reasons::LISTENERS_NOT_VALID, message, generation)
        } else {
            ok(types::ACCEPTED, generation)
        });
        conditions.push(match &gw.not_programmed {
            Some((reason, message)) => condition(types::PROGRAMMED, false, reason, message.clone(), generation),
            None => ok(types::PROGRAMMED, generation),
        });
    }
    report(&mut status.problems, "Gateway", &gw.key, "", &conditions);
    let addresses = (!gw.status_addresses.is_empty()).then(|| {
        gw.status_addresses
            .iter()
            .map(|a| GatewayStatusAddresses { r#type: Some(address_type(a).into()), value: a.clone() })
            .collect()
    });
    if let Some(service) = &gw.service {
        status.gateway_services.insert(gw.key.clone(), service.clone());
    }
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

/// `IPAddress` for an IP, else `Hostname` (a load balancer may give a name).
fn address_type(address: &str) -> &'static str {
    if address.parse::<IpAddr>().is_ok() { "IPAddress" } else { "Hostname" }
}

/// A listener's own validity: Ok, or the reason and message of its `Accepted: False`.
fn listener_accepted<'l>(l: &'l ListenerModel<'_>) -> Result<(), (&'static str, &'l str)> {
    if let Some(message) = &l.unsupported_protocol {
        Err((reasons::UNSUPPORTED_PROTOCOL, message))
    } else if let Some((reason, message)) = &l.conflict {
        Err((reason, message))
    } else if let Some(message) = &l.port_unavailable {
        Err((reasons::PORT_UNAVAILABLE, message))
    } else {
        Ok(())
    }
}

fn listener_conditions(gw: &GatewayModel<'_>, l: &ListenerModel<'_>) -> Vec<Condition> {
    let generation = gw.generation;
    let accepted = match listener_accepted(l) {
        Ok(()) => ok(types::ACCEPTED, generation),
        Err((reason, message)) => condition(types::ACCEPTED, false, reason, message, generation),
    };
    let programmed = if gw.serves(l) {
        ok(types::PROGRAMMED, generation)
    } else {
        let why = match (&gw.requested, &gw.not_programmed) {
            (Err(e), _) => e.clone(),
            (Ok(_), Some((_, message))) => message.clone(),
            (Ok(_), None) if accepted.status == "False" => accepted.message.clone(),
            (Ok(_), None) => "the listener is not served".to_string(),
        };
        condition(types::PROGRAMMED, false, reasons::INVALID, why, generation)
    };
    let resolved = if let Some(Err((reason, message))) = &l.certificates {
        condition(types::RESOLVED_REFS, false, reason, message.clone(), generation)
    } else if l.invalid_kinds.is_empty() {
        ok(types::RESOLVED_REFS, generation)
    } else {
        let message = format!(
            "listener {:?}: allowedRoutes.kinds {} not supported; Gantry supports {GATEWAY_GROUP}/HTTPRoute on HTTP and HTTPS listeners",
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
