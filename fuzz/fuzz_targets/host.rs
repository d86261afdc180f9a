//! Host validation: a host Gantry accepts is lower case, has no port, no trailing dot and only
//! the characters of a host name or a bracketed IPv6 address; and the same Host header with a
//! trailing dot names the same host.
#![no_main]

use gantry::proxy::fuzzing::request_host;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (target, host) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"/"[..], data),
    };
    let Ok(target) = std::str::from_utf8(target) else { return };
    let mut request = http::Request::builder();
    if let Ok(uri) = target.parse::<http::Uri>() {
        request = request.uri(uri);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(host) {
        request = request.header(http::header::HOST, value);
    }
    let Ok(request) = request.body(()) else { return };
    let Ok(name) = request_host(&request) else { return };
    assert!(!name.is_empty() && !name.ends_with('.'), "{name:?}");
    assert_eq!(name, name.to_ascii_lowercase());
    if name.starts_with('[') {
        assert!(name.ends_with(']') && name[1..name.len() - 1].parse::<std::net::Ipv6Addr>().is_ok(), "{name:?}");
    } else {
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')), "{name:?}");
    }
    if request.uri().authority().is_none() && !host.contains(&b':') && !host.ends_with(b".") {
        let mut dotted = host.to_vec();
        dotted.push(b'.');
        let dotted = http::Request::builder().header(http::header::HOST, dotted.as_slice()).body(()).unwrap();
        assert_eq!(request_host(&dotted).as_deref(), Ok(name.as_str()));
    }
});
