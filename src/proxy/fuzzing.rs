//! Entry points for the fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing` (which
//! `cargo fuzz` sets): the edge's parsers stay private in every other build.

use http::{HeaderMap, Request};

pub use super::normalize::{EscapedSlashes, InvalidPath, Normalized, normalize};

/// The host of a request, or why it has none.
pub fn request_host<B>(request: &Request<B>) -> Result<String, String> {
    super::authority::request_host(request).map_err(|e| e.to_string())
}

pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    super::upstream::strip_hop_by_hop(headers, keep_upgrade);
}

/// Sets the forwarding headers as for an untrusted client at 192.0.2.7 asking for `host`.
pub fn set_forwarding_headers(headers: &mut HeaderMap, host: &str) {
    use std::sync::Arc;
    let admission = Arc::new(super::admission::Admission::new(1, 1));
    let Ok(permit) = admission.admit([192, 0, 2, 7].into()) else { return };
    let state = Arc::new(super::connection::Registry::default()).open(permit);
    let connection =
        super::connection::Connection::new(([127, 0, 0, 1], 80).into(), ([192, 0, 2, 7], 5000).into(), false, state);
    super::forwarding::set(headers, &connection, host);
}

/// Whether the request passes the checks made before routing.
pub fn validate<B>(request: &Request<B>) -> bool {
    super::validate::check(request, &super::Limits::default()).is_ok()
}

/// Feeds a connection's first bytes to its first-line check: `Ok(true)` once the line is
/// known good, `Err` as soon as it is known bad.
pub fn first_line(chunks: &[&[u8]]) -> std::io::Result<bool> {
    super::supervise::first_line(chunks)
}
