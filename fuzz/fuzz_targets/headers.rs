//! Header filters: after hop-by-hop stripping and the forwarding headers, no hop-by-hop header
//! and no client-chosen forwarding header is left, Host and Content-Length are untouched, and
//! X-Forwarded-For is exactly the client.
#![no_main]

use gantry::proxy::fuzzing::{set_forwarding_headers, strip_hop_by_hop};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 16] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "http2-settings",
    "x-forwarded-for",
    "x-forwarded-host",
    "forwarded",
    "x-request-id",
    "host",
    "content-length",
    "x-other",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    // Each line is a header: a first byte picks a well-known name (or the line is `name: value`).
    for line in data.split(|&b| b == b'\n') {
        let Some((&pick, rest)) = line.split_first() else { continue };
        let (name, value) = if pick < 128 {
            (HeaderName::from_static(NAMES[usize::from(pick) % NAMES.len()]), rest)
        } else {
            let Some(colon) = rest.iter().position(|&b| b == b':') else { continue };
            let Ok(name) = HeaderName::from_bytes(&rest[..colon]) else { continue };
            (name, &rest[colon + 1..])
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let host = headers.get("host").cloned();
    let length = headers.get("content-length").cloned();
    strip_hop_by_hop(&mut headers, false);
    set_forwarding_headers(&mut headers, "site.example");
    for name in &NAMES[..9] {
        assert!(!headers.contains_key(*name), "{name} left in {headers:?}");
    }
    assert!(!headers.contains_key("forwarded"));
    assert_eq!(headers.get_all("x-forwarded-for").iter().collect::<Vec<_>>(), ["192.0.2.7"]);
    assert_eq!(headers.get_all("x-forwarded-host").iter().collect::<Vec<_>>(), ["site.example"]);
    assert_eq!(headers.get_all("x-request-id").iter().count(), 1);
    assert_eq!(headers.get("host"), host.as_ref());
    assert_eq!(headers.get("content-length"), length.as_ref());
});
