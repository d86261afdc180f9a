//! The headers that tell a backend about the client: `X-Forwarded-For`, `-Proto`, `-Host` and
//! `X-Request-Id`. Backends believe them, so a client must not be able to write them: unless
//! the connection comes from a trusted proxy (`--trusted-proxies`), every header of that kind
//! the client sent is removed and Gantry's own take their place (as Traefik does by default,
//! and Envoy with `use_remote_address` and `xff_num_trusted_hops: 0`). A trusted proxy's
//! headers are kept and extended.

use std::net::IpAddr;
use std::str::FromStr;

use http::header::{Entry, HOST};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::connection::Connection;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// An address range, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a range of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    address: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(range), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(range) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(range), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(range) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let address: IpAddr =
            address.trim().parse().map_err(|_| format!("{text:?} is not an IP address or address/prefix"))?;
        let address = address.to_canonical();
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be a number from 0 to {bits}"))?,
        };
        Ok(Self { address, prefix })
    }
}

/// The proxies in front of Gantry whose forwarding headers are believed. None by default.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<IpRange>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }
}

/// Whether a client header claims something about the client or the way it came, and so is
/// removed unless a trusted proxy sent it: `Forwarded`, every `X-Forwarded-*` (client
/// certificates in `X-Forwarded-Client-Cert` included), `X-Real-IP`, `X-Client-Cert` and
/// `X-Request-Id` (a fresh one is made, as Envoy does at the edge).
fn is_forwarding_claim(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("x-forwarded-") || matches!(name, "forwarded" | "x-real-ip" | "x-client-cert" | "x-request-id")
}

/// Sets `X-Forwarded-For`, `-Proto`, `-Host` and `X-Request-Id`. From a trusted proxy, its
/// values are kept (its `X-Forwarded-For` list gets the proxy's address appended); from
/// anyone else, every claim is replaced. One pass over the names plus one map lookup per
/// header: this runs on every request.
pub fn set(headers: &mut HeaderMap, connection: &Connection, host: &str) {
    if !connection.trusted && headers.keys().any(is_forwarding_claim) {
        let claims: Vec<HeaderName> = headers.keys().filter(|n| is_forwarding_claim(n)).cloned().collect();
        for name in claims {
            headers.remove(name);
        }
    }
    // hyper sizes the map for the headers it parsed: one growth for the four added here.
    headers.reserve(4);
    // The Host header usually is the host already (lower case, no port): share its bytes.
    let forwarded_host = match headers.get(HOST) {
        Some(value) if value.as_bytes() == host.as_bytes() => Some(value.clone()),
        _ => HeaderValue::try_from(host).ok(),
    };
    match headers.entry(&X_FORWARDED_FOR) {
        Entry::Vacant(entry) => {
            entry.insert(connection.peer_ip.clone());
        }
        Entry::Occupied(mut entry) => {
            // Several X-Forwarded-For fields are one list (RFC 9110 section 5.3): keep them all.
            let mut chain: Vec<&[u8]> = entry.iter().map(HeaderValue::as_bytes).collect();
            chain.push(connection.peer_ip.as_bytes());
            if let Ok(value) = HeaderValue::from_bytes(&chain.join(&b", "[..])) {
                entry.insert(value);
            }
        }
    }
    if let Entry::Vacant(entry) = headers.entry(&X_FORWARDED_PROTO) {
        entry.insert(HeaderValue::from_static(connection.scheme()));
    }
    if let (Entry::Vacant(entry), Some(value)) = (headers.entry(&X_FORWARDED_HOST), forwarded_host) {
        entry.insert(value);
    }
    if let Entry::Vacant(entry) = headers.entry(&X_REQUEST_ID) {
        let mut buffer = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
        entry.insert(HeaderValue::from_str(id).expect("a UUID is a valid header value"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proxy::admission::Admission;
    use crate::proxy::connection::Registry;

    fn connection(trusted: bool) -> Connection {
        let admission = Arc::new(Admission::new(10, 10));
        let state = Arc::new(Registry::default()).open(admission.admit("192.0.2.7".parse().unwrap()).unwrap());
        Connection::new("127.0.0.1:80".parse().unwrap(), "192.0.2.7:5000".parse().unwrap(), trusted, state)
    }

    fn forged() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("site.example"));
        headers.append(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.1"));
        headers.append(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.2"));
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        headers.insert(&X_FORWARDED_HOST, HeaderValue::from_static("admin.example"));
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("mine"));
        for name in ["forwarded", "x-real-ip", "x-forwarded-port", "x-forwarded-client-cert", "x-client-cert"] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("forged"));
        }
        headers
    }

    #[test]
    fn forwarding_headers_name_the_client_and_the_host_it_asked_for() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("Site.Example:8080"));
        set(&mut headers, &connection(false), "site.example");
        assert_eq!(headers[&X_FORWARDED_HOST], "site.example");
        assert_eq!(headers[&X_FORWARDED_FOR], "192.0.2.7");
        assert_eq!(headers[&X_FORWARDED_PROTO], "http");
        assert_eq!(headers[&X_REQUEST_ID].len(), 36);
    }

    #[test]
    fn an_untrusted_client_cannot_forge_what_gantry_sets() {
        let mut headers = forged();
        set(&mut headers, &connection(false), "site.example");
        assert_eq!(headers.get_all(&X_FORWARDED_FOR).iter().collect::<Vec<_>>(), ["192.0.2.7"]);
        assert_eq!(headers[&X_FORWARDED_PROTO], "http");
        assert_eq!(headers[&X_FORWARDED_HOST], "site.example");
        assert_ne!(headers[&X_REQUEST_ID], "mine");
        for name in ["forwarded", "x-real-ip", "x-forwarded-port", "x-forwarded-client-cert", "x-client-cert"] {
            assert!(!headers.contains_key(name), "{name} is removed");
        }
    }

    #[test]
    fn a_trusted_proxy_s_headers_are_kept_and_extended() {
        let mut headers = forged();
        set(&mut headers, &connection(true), "site.example");
        let forwarded_for: Vec<_> = headers.get_all(&X_FORWARDED_FOR).iter().collect();
        assert_eq!(forwarded_for, ["203.0.113.1, 203.0.113.2, 192.0.2.7"], "one list: every address, then the peer");
        assert_eq!(headers[&X_FORWARDED_PROTO], "https");
        assert_eq!(headers[&X_FORWARDED_HOST], "admin.example");
        assert_eq!(headers[&X_REQUEST_ID], "mine");
        assert_eq!(headers["x-real-ip"], "forged");
    }

    #[test]
    fn address_ranges_match_by_prefix() {
        let range: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(range.contains("10.1.2.3".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.2.3".parse().unwrap()), "IPv4 on a dual-stack socket");
        assert!(!range.contains("11.0.0.1".parse().unwrap()));
        let one: IpRange = "192.0.2.1".parse().unwrap();
        assert!(one.contains("192.0.2.1".parse().unwrap()) && !one.contains("192.0.2.2".parse().unwrap()));
        let v6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()) && !v6.contains("2001:db9::1".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0/8", "example.com", "::/129", "10.0.0.0/x"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }
}
