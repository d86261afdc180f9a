//! The route matcher against a plain reference: PathPrefix is segment-wise, Exact is equality,
//! and a host key (exact, `*.suffix` or none) matches as the Gateway API says.
#![no_main]

use gantry::table::{HostKey, HostRouter, PathMatch, RouteList};
use libfuzzer_sys::fuzz_target;

/// Segment-wise prefix, written the slow and obvious way: the path's first segments are the
/// prefix's segments.
fn prefix_reference(prefix: &str, path: &str) -> bool {
    let want: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    let have: Vec<&str> = path[1..].split('/').collect();
    have.len() >= want.len() && have[..want.len()] == want[..]
}

fn host_reference(key: &HostKey, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    match key {
        HostKey::Exact(name) => *name == host,
        HostKey::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        HostKey::Any => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\n');
    let (Some(pattern), Some(subject)) = (parts.next(), parts.next()) else { return };
    if pattern.starts_with('/') && subject.starts_with('/') && !pattern.contains("//") {
        let prefix = PathMatch::prefix(pattern);
        assert_eq!(prefix.matches(subject), prefix_reference(pattern, subject), "{pattern:?} {subject:?}");
        assert_eq!(PathMatch::Exact(pattern.to_string()).matches(subject), pattern == subject);
    }
    // Hostnames as the Gateway API allows them: a name, `*.` and a name, or none.
    let valid_wildcard = pattern.strip_prefix("*.").is_some_and(|rest| !rest.is_empty() && !rest.contains('*'));
    if !pattern.contains(['/', ' '])
        && (valid_wildcard || !pattern.contains('*'))
        && !subject.is_empty()
        && subject.is_ascii()
    {
        let key = HostKey::parse(Some(pattern));
        let router = HostRouter::new([(key.clone(), RouteList::default())]);
        assert_eq!(router.lookup(subject).is_some(), host_reference(&key, subject), "{pattern:?} {subject:?}");
    }
});
