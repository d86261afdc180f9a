//! Hostname intersection between listeners and routes, and which pattern covers which host key.

use crate::table::HostKey;

/// The hostnames a route answers on a listener: the intersection of the listener's hostname and
/// the route's hostnames, as the spec defines it. A route with no hostnames takes the listener's;
/// a listener with no hostname takes the route's. Empty when nothing overlaps.
pub(super) fn effective(listener: &HostKey, route: &[HostKey]) -> Vec<HostKey> {
    let mut out: Vec<HostKey> = Vec::new();
    let route: &[HostKey] = if route.is_empty() { &[HostKey::Any] } else { route };
    for r in route {
        if let Some(h) = intersect(listener, r)
            && !out.contains(&h)
        {
            out.push(h);
        }
    }
    out
}

/// The narrower of two hostname patterns, when they overlap.
pub(super) fn intersect(a: &HostKey, b: &HostKey) -> Option<HostKey> {
    match (a, b) {
        (HostKey::Any, other) | (other, HostKey::Any) => Some(other.clone()),
        (HostKey::Exact(x), HostKey::Exact(y)) => (x == y).then(|| a.clone()),
        (HostKey::Wildcard(s), HostKey::Exact(h)) | (HostKey::Exact(h), HostKey::Wildcard(s)) => {
            wildcard_matches(s, h).then(|| HostKey::Exact(h.clone()))
        }
        (HostKey::Wildcard(x), HostKey::Wildcard(y)) => {
            if x.ends_with(y.as_str()) {
                Some(a.clone())
            } else if y.ends_with(x.as_str()) {
                Some(b.clone())
            } else {
                None
            }
        }
    }
}

/// Whether every host that `key` stands for is also matched by `pattern`.
pub(super) fn covers(pattern: &HostKey, key: &HostKey) -> bool {
    match (pattern, key) {
        (HostKey::Any, _) => true,
        (HostKey::Exact(p), HostKey::Exact(k)) => p == k,
        (HostKey::Wildcard(s), HostKey::Exact(h)) => wildcard_matches(s, h),
        (HostKey::Wildcard(s), HostKey::Wildcard(k)) => k.ends_with(s.as_str()),
        _ => false,
    }
}

/// `*.example.com` (suffix `.example.com`) matches `a.example.com` and `a.b.example.com`, never
/// `example.com` itself.
fn wildcard_matches(suffix: &str, host: &str) -> bool {
    host.len() > suffix.len() && host.ends_with(suffix)
}

/// Ranks patterns from most to least specific: exact names (longer first), then wildcards
/// (longer first), then the catch-all. Smaller is more specific.
pub(super) fn specificity(key: &HostKey) -> (u8, std::cmp::Reverse<usize>) {
    match key {
        HostKey::Exact(h) => (0, std::cmp::Reverse(h.len())),
        HostKey::Wildcard(s) => (1, std::cmp::Reverse(s.len())),
        HostKey::Any => (2, std::cmp::Reverse(0)),
    }
}

/// The most specific of `patterns` that covers `key`.
pub(super) fn best_cover<'a>(patterns: impl IntoIterator<Item = &'a HostKey>, key: &HostKey) -> Option<&'a HostKey> {
    patterns.into_iter().filter(|p| covers(p, key)).min_by_key(|p| specificity(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HostKey {
        HostKey::parse(Some(s))
    }

    #[test]
    fn wildcard_listener_narrows_to_the_route_host() {
        assert_eq!(effective(&h("*.example.com"), &[h("foo.example.com")]), vec![h("foo.example.com")]);
    }

    #[test]
    fn wildcard_route_narrows_to_the_listener_host() {
        assert_eq!(effective(&h("foo.example.com"), &[h("*.example.com")]), vec![h("foo.example.com")]);
    }

    #[test]
    fn nested_wildcards_keep_the_longer_suffix() {
        assert_eq!(effective(&h("*.example.com"), &[h("*.foo.example.com")]), vec![h("*.foo.example.com")]);
        assert_eq!(effective(&h("*.foo.example.com"), &[h("*.example.com")]), vec![h("*.foo.example.com")]);
    }

    #[test]
    fn wildcard_does_not_match_its_parent_domain() {
        assert!(effective(&h("*.example.com"), &[h("example.com")]).is_empty());
    }

    #[test]
    fn disjoint_hostnames_do_not_intersect() {
        assert!(effective(&h("foo.example.com"), &[h("bar.example.com"), h("*.other.com")]).is_empty());
    }

    #[test]
    fn missing_hostnames_take_the_other_side() {
        assert_eq!(effective(&HostKey::Any, &[]), vec![HostKey::Any]);
        assert_eq!(effective(&h("a.test"), &[]), vec![h("a.test")]);
        assert_eq!(effective(&HostKey::Any, &[h("*.test")]), vec![h("*.test")]);
    }

    #[test]
    fn the_most_specific_cover_wins() {
        let patterns = [HostKey::Any, h("*.example.com"), h("*.foo.example.com")];
        assert_eq!(best_cover(&patterns, &h("a.foo.example.com")), Some(&h("*.foo.example.com")));
        assert_eq!(best_cover(&patterns, &h("a.example.com")), Some(&h("*.example.com")));
        assert_eq!(best_cover(&patterns, &h("*.bar.example.com")), Some(&h("*.example.com")));
        assert_eq!(best_cover(&patterns, &h("other.test")), Some(&HostKey::Any));
    }
}
