//! Where each Gateway answers: its addresses, and which socket each of its listener ports binds.
//!
//! Two placements (chosen by the mode, see `Placement`):
//! - `Bind`: listeners bind their own port on the Gateway's addresses: `spec.addresses`, else
//!   an address of the pool that stays the Gateway's for its life, else the bind address.
//! - `Services` (Kubernetes): every Gateway gets a Service of its own in its namespace whose
//!   ports map each listener port onto a data-plane port unique to (Gateway, listener port);
//!   the data plane binds those. Two Gateways on port 80 then never clash. Compile describes
//!   the Service and its endpoints (the data-plane Pods); the status writer applies them.
//!
//! Assignments are a pure function of the Gateways: every replica computes the same. A
//! Gateway's slot is the hash of its identity, probed forward past slots taken by older
//! Gateways, so a new Gateway never moves an older one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use gateway_api::gateways::Gateway;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use crate::index::{Index, ObjectKey};

/// How Gateways get addresses.
#[derive(Clone, Debug)]
pub enum Placement {
    /// Listeners bind their own port on the Gateway's addresses.
    Bind {
        /// Gateways without `spec.addresses` (or with an empty value) get one address of it.
        pool: Option<IpNet>,
    },
    /// A Service per Gateway in front of the data plane (Kubernetes mode).
    Services(ServicePlacement),
}

#[derive(Clone, Debug)]
pub struct ServicePlacement {
    /// `LoadBalancer`, `ClusterIP` or `NodePort`.
    pub service_type: ServiceType,
    /// The Service that selects the data-plane Pods: its ready endpoints become the endpoints
    /// of every Gateway's Service.
    pub data_plane: ObjectKey,
    /// Addresses that `spec.addresses` may ask for (handed to the load balancer); others are
    /// not usable.
    pub pool: Option<IpNet>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceType {
    LoadBalancer,
    ClusterIp,
    NodePort,
}

impl std::str::FromStr for ServiceType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "LoadBalancer" => Ok(ServiceType::LoadBalancer),
            "ClusterIP" => Ok(ServiceType::ClusterIp),
            "NodePort" => Ok(ServiceType::NodePort),
            other => Err(format!("{other:?} is not a Service type Gantry makes (LoadBalancer, ClusterIP, NodePort)")),
        }
    }
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::LoadBalancer => "LoadBalancer",
            ServiceType::ClusterIp => "ClusterIP",
            ServiceType::NodePort => "NodePort",
        }
    }
}

/// Data-plane ports handed to (Gateway, listener port) pairs: below the kernel's ephemeral
/// range, above the well-known ports and Gantry's own admin port.
pub const DATA_PLANE_PORTS: std::ops::RangeInclusive<u16> = 10000..=29999;

/// Labels Gantry puts on what it creates for a Gateway.
pub mod labels {
    /// The Gateway API's label naming the Gateway a resource was made for.
    pub const GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGED_BY_VALUE: &str = "gantry";
    /// Which installation made it (a hash of its controller name), so that one installation
    /// never deletes what another made.
    pub const CONTROLLER: &str = "gantry.dev/controller";

    /// The value of `CONTROLLER` for a controller name (label values cannot hold a `/`).
    pub fn controller_value(controller_name: &str) -> String {
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(controller_name.as_bytes()))
    }
}

/// What the data plane must run for one Gateway in the `Services` placement: its Service and
/// the endpoints behind it. Plain data; the status writer turns it into API objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GatewayService {
    pub name: String,
    /// The Gateway's UID, for the owner reference (the Service goes when the Gateway goes).
    pub gateway_uid: Option<String>,
    pub service_type: &'static str,
    /// Listener port -> data-plane port, one entry per distinct served listener port.
    pub ports: Vec<PortMapping>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// A static address asked for in `spec.addresses`.
    pub load_balancer_ip: Option<IpAddr>,
    /// The data-plane Pods, with their conditions.
    pub endpoints: Vec<DataPlaneEndpoint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PortMapping {
    pub port: u16,
    pub target_port: u16,
}

impl PortMapping {
    /// The name of the port in the Service and its EndpointSlice.
    pub fn name(&self) -> String {
        format!("port-{}", self.port)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataPlaneEndpoint {
    pub address: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node_name: Option<String>,
}

/// What a Gateway's `spec.addresses` ask for.
#[derive(Debug, Default)]
pub struct Requested {
    pub ips: Vec<IpAddr>,
    /// Entries with an IPAddress type and no value: "assign me one".
    pub empty: usize,
}

/// Reads `spec.addresses`; an error is an address type or value Gantry cannot serve (the
/// Gateway's `Accepted: False`, `UnsupportedAddress`).
pub fn requested(gateway: &Gateway) -> Result<Requested, String> {
    let mut requested = Requested::default();
    for (i, address) in gateway.spec.addresses.iter().flatten().enumerate() {
        let kind = address.r#type.as_deref().unwrap_or("IPAddress");
        if kind != "IPAddress" {
            return Err(format!(
                "spec.addresses[{i}].type {kind:?} is not supported; Gantry serves addresses of type IPAddress"
            ));
        }
        match address.value.as_deref().filter(|v| !v.is_empty()) {
            None => requested.empty += 1,
            Some(value) => match value.parse::<IpAddr>() {
                Ok(ip) => requested.ips.push(ip),
                Err(_) => {
                    return Err(format!("spec.addresses[{i}].value {value:?} is not an IP address"));
                }
            },
        }
    }
    requested.ips.sort();
    requested.ips.dedup();
    Ok(requested)
}

/// Hands out slots of a space of `size` by hash and forward probing; `taken` holds the slots
/// of older claimants.
fn probe(identity: &str, size: u128, taken: &BTreeSet<u128>) -> Option<u128> {
    if size == 0 || taken.len() as u128 >= size {
        return None;
    }
    let start = u128::from(xxh3_64(identity.as_bytes())) % size;
    (0..size).map(|i| (start + i) % size).find(|slot| !taken.contains(slot))
}

/// Assigns pool addresses to Gateways, oldest first.
#[derive(Debug)]
pub struct AddressPool {
    net: IpNet,
    taken: BTreeSet<u128>,
}

impl AddressPool {
    pub fn new(net: IpNet) -> Self {
        Self { net, taken: BTreeSet::new() }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.contains(&ip) && self.offset(ip).is_some()
    }

    /// Marks an address as used (a Gateway's own `spec.addresses` inside the pool).
    pub fn take(&mut self, ip: IpAddr) {
        if let Some(offset) = self.offset(ip) {
            self.taken.insert(offset);
        }
    }

    /// A stable address for the Gateway `key`.
    pub fn assign(&mut self, key: &ObjectKey) -> Option<IpAddr> {
        let slot = probe(&key.to_string(), self.size(), &self.taken)?;
        self.taken.insert(slot);
        Some(self.nth(slot))
    }

    /// Usable host addresses: without the network and broadcast addresses of IPv4 nets larger
    /// than /31.
    fn size(&self) -> u128 {
        let bits = u32::from(self.net.max_prefix_len() - self.net.prefix_len());
        let total = 1u128.checked_shl(bits).unwrap_or(u128::MAX);
        if self.skips_ends() { total - 2 } else { total }
    }

    fn skips_ends(&self) -> bool {
        matches!(self.net, IpNet::V4(n) if n.prefix_len() < 31)
    }

    fn first(&self) -> u128 {
        let base = match self.net.network() {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        base + u128::from(self.skips_ends())
    }

    fn offset(&self, ip: IpAddr) -> Option<u128> {
        let value = match (ip, self.net) {
            (IpAddr::V4(a), IpNet::V4(_)) => u128::from(u32::from(a)),
            (IpAddr::V6(a), IpNet::V6(_)) => u128::from(a),
            _ => return None,
        };
        value.checked_sub(self.first()).filter(|o| *o < self.size() && self.net.contains(&ip))
    }

    fn nth(&self, slot: u128) -> IpAddr {
        let value = self.first() + slot;
        match self.net {
            IpNet::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(value as u32)),
            IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(value)),
        }
    }
}

/// Assigns data-plane ports to (Gateway, listener port) pairs, oldest Gateway first.
#[derive(Debug, Default)]
pub struct PortAllocator {
    taken: BTreeSet<u128>,
}

impl PortAllocator {
    pub fn assign(&mut self, gateway: &ObjectKey, port: u16) -> Option<u16> {
        let size = u128::from(DATA_PLANE_PORTS.end() - DATA_PLANE_PORTS.start()) + 1;
        let slot = probe(&format!("{gateway}:{port}"), size, &self.taken)?;
        self.taken.insert(slot);
        Some(DATA_PLANE_PORTS.start() + slot as u16)
    }
}

/// The name of a Gateway's Service: `<gateway>-gantry` when that is a valid Service name (a
/// DNS label of at most 63 characters starting with a letter), else a shortened form with a
/// hash of the full name, so that two long names never share a Service.
pub fn service_name(gateway: &str) -> String {
    let plain = format!("{gateway}-gantry");
    let valid = plain.len() <= 63
        && plain.starts_with(|c: char| c.is_ascii_lowercase())
        && plain.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        return plain;
    }
    let cleaned: String =
        gateway.chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' }).take(40).collect();
    let cleaned = cleaned.trim_matches('-');
    format!("gw-{cleaned}-{:08x}-gantry", xxh3_64(gateway.as_bytes()) as u32)
}

/// Whether a Service carries Gantry's marks (so that Gantry never takes over a user's).
pub fn is_ours(service: &Service) -> bool {
    service.metadata.labels.as_ref().and_then(|l| l.get(labels::MANAGED_BY)).map(String::as_str)
        == Some(labels::MANAGED_BY_VALUE)
}

/// The data-plane Pods behind `service`, from its EndpointSlices, sorted.
pub fn data_plane_endpoints(index: &Index, service: &ObjectKey) -> Vec<DataPlaneEndpoint> {
    let mut endpoints: Vec<DataPlaneEndpoint> = index
        .endpoint_slices_of(service)
        .flat_map(|slice| slice.endpoints.iter())
        .flat_map(|e| {
            let conditions = e.conditions.clone().unwrap_or_default();
            let ready = conditions.ready.unwrap_or(true);
            e.addresses.iter().map(move |address| DataPlaneEndpoint {
                address: address.clone(),
                ready,
                serving: conditions.serving.unwrap_or(ready),
                terminating: conditions.terminating.unwrap_or(false),
                node_name: e.node_name.clone(),
            })
        })
        .collect();
    endpoints.sort_by(|a, b| a.address.cmp(&b.address));
    endpoints.dedup_by(|a, b| a.address == b.address);
    endpoints
}

/// The addresses (IPs, else host names) a load balancer gave a Service.
pub fn load_balancer_ingress(service: &Service) -> Vec<String> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
        .collect()
}

/// Where a Gateway's Service answers, once the cluster has given it an address: the load
/// balancer's ingress for type LoadBalancer, else the cluster IPs.
pub fn service_addresses(service: &Service, service_type: ServiceType) -> Vec<String> {
    let mut addresses: Vec<String> = if service_type == ServiceType::LoadBalancer {
        load_balancer_ingress(service)
    } else {
        let spec = service.spec.as_ref();
        let ips = spec.and_then(|s| s.cluster_ips.clone()).unwrap_or_default();
        let ips = if ips.is_empty() { spec.and_then(|s| s.cluster_ip.clone()).into_iter().collect() } else { ips };
        ips.into_iter().filter(|ip| ip != "None" && !ip.is_empty()).collect()
    };
    addresses.sort();
    addresses.dedup();
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_gateway_never_moves_an_older_ones_port() {
        let a = ObjectKey::new("ns", "a");
        let b = ObjectKey::new("ns", "b");
        let mut alone = PortAllocator::default();
        let a_alone = alone.assign(&a, 80).unwrap();
        let mut both = PortAllocator::default();
        assert_eq!(both.assign(&a, 80), Some(a_alone));
        let b80 = both.assign(&b, 80).unwrap();
        assert_ne!(b80, a_alone);
        assert!(DATA_PLANE_PORTS.contains(&b80));
    }

    #[test]
    fn ports_collide_only_by_probing_forward() {
        let mut ports = PortAllocator::default();
        let mut seen = BTreeSet::new();
        for i in 0..2000 {
            let port = ports.assign(&ObjectKey::new("ns", format!("gw-{i}")), 80).unwrap();
            assert!(seen.insert(port), "port {port} handed out twice");
        }
    }

    #[test]
    fn pool_addresses_are_stable_and_skip_network_and_broadcast() {
        let net: IpNet = "10.245.0.0/30".parse().unwrap();
        let mut pool = AddressPool::new(net);
        let a = pool.assign(&ObjectKey::new("ns", "a")).unwrap();
        let b = pool.assign(&ObjectKey::new("ns", "b")).unwrap();
        let mut got = [a.to_string(), b.to_string()];
        got.sort();
        assert_eq!(got, ["10.245.0.1", "10.245.0.2"]);
        assert_eq!(pool.assign(&ObjectKey::new("ns", "c")), None, "a /30 has two host addresses");
        let mut again = AddressPool::new(net);
        assert_eq!(again.assign(&ObjectKey::new("ns", "a")), Some(a), "the same Gateway gets the same address");
        assert!(pool.contains("10.245.0.2".parse().unwrap()));
        assert!(!pool.contains("10.245.0.3".parse().unwrap()), "broadcast");
        assert!(!pool.contains("10.246.0.1".parse().unwrap()));
    }

    #[test]
    fn a_gateways_own_address_in_the_pool_is_not_handed_to_another() {
        let mut pool = AddressPool::new("127.0.10.0/30".parse().unwrap());
        pool.take("127.0.10.1".parse().unwrap());
        assert_eq!(pool.assign(&ObjectKey::new("ns", "x")), Some("127.0.10.2".parse().unwrap()));
    }

    #[test]
    fn service_names_are_valid_dns_labels() {
        assert_eq!(service_name("web"), "web-gantry");
        let long = "a".repeat(253);
        let name = service_name(&long);
        assert!(name.len() <= 63 && name.starts_with("gw-") && name.ends_with("-gantry"), "{name}");
        assert_ne!(service_name("a.b"), service_name("a-b"));
        assert!(service_name("9lives").starts_with("gw-9lives-"));
    }
}
