//! The consistent-hash key of a request: a header, a cookie, the client IP or a query
//! parameter, hashed with xxh3. xxh3's output is fixed by its specification, so a key maps to
//! the same endpoint across Gantry releases and replicas (std's `DefaultHasher` promises
//! neither).

use std::net::IpAddr;

use http::header::COOKIE;
use percent_encoding::percent_decode_str;
use xxhash_rust::xxh3::xxh3_64;

use super::{HashKey, RequestInfo};

/// Prefix of the cookie values Gantry generates: `g` and 16 hex digits that are the hash
/// itself, so that Gantry can mint a value landing on a chosen endpoint (see `maglev.rs`).
const MINTED_PREFIX: &str = "g";

/// The hash of the request's key, None when the request does not carry it.
pub(super) fn key_hash(key: &HashKey, request: &RequestInfo<'_>) -> Option<u64> {
    match key {
        HashKey::Header(name) => request.headers.get(name.as_str()).map(|v| xxh3_64(v.as_bytes())),
        HashKey::Cookie { name, .. } => cookie(request, name).map(cookie_hash),
        HashKey::SourceIp => Some(ip_hash(request.client_ip)),
        HashKey::QueryParam(name) => query_param(request.query?, name).map(|v| xxh3_64(v.as_bytes())),
    }
}

/// A cookie value minted by `minted_cookie` carries its hash; any other value is hashed.
fn cookie_hash(value: &str) -> u64 {
    value
        .strip_prefix(MINTED_PREFIX)
        .filter(|hex| hex.len() == 16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| xxh3_64(value.as_bytes()))
}

/// The cookie value that `cookie_hash` reads back as `hash`.
pub(super) fn minted_cookie(hash: u64) -> String {
    format!("{MINTED_PREFIX}{hash:016x}")
}

/// IPv4 and IPv4-mapped IPv6 hash alike, so that a dual-stack listener keeps affinity.
fn ip_hash(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => xxh3_64(&v4.octets()),
        IpAddr::V6(v6) => xxh3_64(&v6.octets()),
    }
}

/// The value of cookie `name` from the request's `Cookie` headers (RFC 6265 `a=b; c=d`).
/// Malformed pairs are skipped; surrounding double quotes are part of the value as sent.
pub(super) fn cookie<'a>(request: &RequestInfo<'a>, name: &str) -> Option<&'a str> {
    request
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim())
}

/// The raw (still percent-encoded) value of the first query parameter called `name`.
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| *key == name || percent_decode_str(key).decode_utf8_lossy() == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use http::HeaderMap;

    use super::*;

    fn request<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> RequestInfo<'a> {
        RequestInfo { headers, query, client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)) }
    }

    #[test]
    fn cookies_are_found_among_several_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "theme=dark; broken; session = abc ".parse().unwrap());
        headers.append(COOKIE, "user=u1".parse().unwrap());
        let req = request(&headers, None);
        assert_eq!(cookie(&req, "session"), Some("abc"));
        assert_eq!(cookie(&req, "user"), Some("u1"));
        assert_eq!(cookie(&req, "broken"), None);
        assert_eq!(cookie(&req, "missing"), None);
    }

    #[test]
    fn query_parameters_match_by_decoded_name() {
        assert_eq!(query_param("a=1&user%5Fid=42&b", "user_id"), Some("42"));
        assert_eq!(query_param("b&a=1", "b"), Some(""));
        assert_eq!(query_param("a=1", "b"), None);
    }

    #[test]
    fn each_key_source_reads_its_part_of_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", "alice".parse().unwrap());
        headers.insert(COOKIE, "sid=s1".parse().unwrap());
        let req = request(&headers, Some("tenant=t1"));
        let hash = |key: HashKey| key_hash(&key, &req);
        assert_eq!(hash(HashKey::Header("x-user".into())), Some(xxh3_64(b"alice")));
        assert_eq!(hash(HashKey::Header("x-other".into())), None);
        assert_eq!(hash(HashKey::Cookie { name: "sid".into(), ttl: None }), Some(xxh3_64(b"s1")));
        assert_eq!(hash(HashKey::QueryParam("tenant".into())), Some(xxh3_64(b"t1")));
        assert_eq!(key_hash(&HashKey::QueryParam("tenant".into()), &request(&headers, None)), None);
        assert!(hash(HashKey::SourceIp).is_some());
    }

    #[test]
    fn minted_cookies_carry_their_hash_and_mapped_ips_hash_alike() {
        assert_eq!(cookie_hash(&minted_cookie(0xdead_beef)), 0xdead_beef);
        assert_eq!(cookie_hash("gnot-hex-at-all!"), xxh3_64(b"gnot-hex-at-all!"));
        let v4 = Ipv4Addr::new(10, 1, 2, 3);
        assert_eq!(ip_hash(IpAddr::V4(v4)), ip_hash(IpAddr::V6(v4.to_ipv6_mapped())));
        assert_ne!(ip_hash(IpAddr::V4(v4)), ip_hash(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }
}
