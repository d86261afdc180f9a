//! What a request must be before anything routes it. hyper has parsed the request line and
//! headers (and refused malformed framing); these are the checks hyper leaves to the server:
//! sizes it cannot bound exactly, methods a gateway should not pass, and the HTTP/2 field
//! rules of RFC 9113 section 8.2.1 that the `h2` crate does not enforce.

use http::{Method, Request, Version};

use super::error::ProxyError;
use super::server::Limits;

/// The longest method accepted. The longest registered ones (`UPDATEREDIRECTREF`,
/// `BASELINE-CONTROL`) have 17 and 16 bytes.
pub const MAX_METHOD_BYTES: usize = 20;

pub fn check<B>(request: &Request<B>, limits: &Limits) -> Result<(), ProxyError> {
    let method = request.method();
    if method.as_str().len() > MAX_METHOD_BYTES {
        return Err(ProxyError::MethodTooLong);
    }
    // CONNECT would make a tunnel to any address, and TRACE echoes the request (credentials
    // and cookies included) back into a page; nginx refuses TRACE too.
    if *method == Method::CONNECT || *method == Method::TRACE {
        return Err(ProxyError::MethodNotAllowed);
    }
    let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > limits.max_uri_bytes {
        return Err(ProxyError::UriTooLong);
    }
    let headers = request.headers();
    // hyper bounds its read buffer but accepts a larger head that arrives in one read; the
    // limit is enforced exactly here, counting as HTTP/1.1 would carry each header.
    let header_bytes: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if header_bytes > limits.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge);
    }
    // HTTP/1.1 parsing strips whitespace around field values; HTTP/2 carries them as sent,
    // and a field value may not start or end with it (RFC 9113 section 8.2.1).
    if request.version() == Version::HTTP_2 && headers.values().any(has_outer_whitespace) {
        return Err(ProxyError::MalformedHeader);
    }
    Ok(())
}

fn has_outer_whitespace(value: &http::HeaderValue) -> bool {
    let bytes = value.as_bytes();
    matches!(bytes.first(), Some(b' ' | b'\t')) || matches!(bytes.last(), Some(b' ' | b'\t'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_request(request: Request<()>) -> Result<(), ProxyError> {
        check(&request, &Limits::default())
    }

    #[test]
    fn long_methods_and_tunnelling_methods_are_refused() {
        let method = |m: &str| Request::builder().method(m).uri("/").body(()).unwrap();
        assert!(check_request(method("UPDATEREDIRECTREF")).is_ok());
        assert!(matches!(check_request(method(&"A".repeat(21))), Err(ProxyError::MethodTooLong)));
        assert!(matches!(check_request(method(&"A".repeat(100 * 1024))), Err(ProxyError::MethodTooLong)));
        assert!(matches!(check_request(method("TRACE")), Err(ProxyError::MethodNotAllowed)));
        let connect = Request::builder().method("CONNECT").uri("example.com:443").body(()).unwrap();
        assert!(matches!(check_request(connect), Err(ProxyError::MethodNotAllowed)));
    }

    #[test]
    fn a_long_target_is_refused() {
        let uri = |len: usize| Request::builder().uri(format!("/{}", "a".repeat(len - 1))).body(()).unwrap();
        assert!(check_request(uri(8192)).is_ok());
        assert!(matches!(check_request(uri(8193)), Err(ProxyError::UriTooLong)));
    }

    #[test]
    fn http2_field_values_with_outer_whitespace_are_malformed() {
        let h2 =
            |value: &str| Request::builder().version(Version::HTTP_2).uri("/").header("x-a", value).body(()).unwrap();
        assert!(check_request(h2("fine value")).is_ok());
        for bad in [" lead", "trail ", "\ttab", "tab\t"] {
            assert!(matches!(check_request(h2(bad)), Err(ProxyError::MalformedHeader)), "{bad:?}");
        }
        let h1 = Request::builder().uri("/").header("x-a", " lead").body(()).unwrap();
        assert!(check_request(h1).is_ok(), "HTTP/1.1 parsing has already trimmed it");
    }
}
