//! Host lookup: exact names first, then the longest matching wildcard suffix, then the
//! catch-all, as the Gateway API ranks hostnames.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::RouteList;

/// What a host entry is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum HostKey {
    /// A full hostname, lower case.
    Exact(String),
    /// `*.example.com`, stored as the suffix `.example.com`; matches one or more labels.
    Wildcard(String),
    /// No hostname: any host.
    Any,
}

impl HostKey {
    /// Parses a Gateway API hostname (`foo.example.com`, `*.example.com`); `None` is any host.
    pub fn parse(hostname: Option<&str>) -> Self {
        match hostname {
            None | Some("") => HostKey::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => HostKey::Wildcard(suffix.to_ascii_lowercase()),
                None => HostKey::Exact(h.to_ascii_lowercase()),
            },
        }
    }
}

/// Values keyed by host pattern, looked up the Gateway API's way: the exact name, else the
/// longest wildcard suffix, else the catch-all.
#[derive(Debug, Serialize)]
pub struct HostMap<T> {
    exact: HashMap<Box<str>, T>,
    /// Keyed by suffix including the leading dot.
    wildcard: HashMap<Box<str>, T>,
    any: Option<T>,
}

impl<T> Default for HostMap<T> {
    fn default() -> Self {
        Self { exact: HashMap::new(), wildcard: HashMap::new(), any: None }
    }
}

impl<T> HostMap<T> {
    pub fn new(entries: impl IntoIterator<Item = (HostKey, T)>) -> Self {
        let mut map = HostMap::default();
        for (key, value) in entries {
            match key {
                HostKey::Exact(h) => {
                    map.exact.insert(h.into_boxed_str(), value);
                }
                HostKey::Wildcard(s) => {
                    map.wildcard.insert(s.into_boxed_str(), value);
                }
                HostKey::Any => map.any = Some(value),
            }
        }
        map
    }

    /// The value for a host (without port). Case-insensitive.
    pub fn lookup(&self, host: &str) -> Option<&T> {
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.lookup_lower(&host.to_ascii_lowercase());
        }
        self.lookup_lower(host)
    }

    fn lookup_lower(&self, host: &str) -> Option<&T> {
        if let Some(value) = self.exact.get(host) {
            return Some(value);
        }
        if !self.wildcard.is_empty() {
            // Each dot starts a candidate suffix; the first found is the longest.
            for (i, _) in host.match_indices('.') {
                if i == 0 {
                    continue; // a wildcard needs at least one label before the suffix
                }
                if let Some(value) = self.wildcard.get(&host[i..]) {
                    return Some(value);
                }
            }
        }
        self.any.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.any.is_none()
    }
}

/// The route lists of a socket by host.
#[derive(Debug, Default, Serialize)]
#[serde(transparent)]
pub struct HostRouter {
    map: HostMap<Arc<RouteList>>,
}

impl HostRouter {
    pub fn new(entries: impl IntoIterator<Item = (HostKey, RouteList)>) -> Self {
        Self { map: HostMap::new(entries.into_iter().map(|(key, list)| (key, Arc::new(list)))) }
    }

    /// The routes for a request's host (without port). Case-insensitive.
    pub fn lookup(&self, host: &str) -> Option<&RouteList> {
        self.map.lookup(host).map(|list| &**list)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> HostRouter {
        HostRouter::new([
            (HostKey::parse(Some("foo.example.com")), RouteList::default()),
            (HostKey::parse(Some("*.example.com")), RouteList::default()),
            (HostKey::parse(Some("*.bar.example.com")), RouteList::default()),
        ])
    }

    fn same(a: Option<&RouteList>, b: Option<&Arc<RouteList>>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => std::ptr::eq(a, Arc::as_ptr(b)),
            (None, None) => true,
            _ => false,
        }
    }

    #[test]
    fn exact_host_wins_over_wildcard() {
        let r = router();
        assert!(same(r.lookup("foo.example.com"), r.map.exact.get("foo.example.com")));
        assert!(same(r.lookup("FOO.Example.com"), r.map.exact.get("foo.example.com")));
    }

    #[test]
    fn longest_wildcard_suffix_wins() {
        let r = router();
        assert!(same(r.lookup("x.bar.example.com"), r.map.wildcard.get(".bar.example.com")));
        assert!(same(r.lookup("a.b.example.com"), r.map.wildcard.get(".example.com")));
    }

    #[test]
    fn wildcard_needs_a_label_before_the_suffix() {
        let r = router();
        assert!(r.lookup("example.com").is_none());
        assert!(r.lookup(".example.com").is_none());
    }

    #[test]
    fn catch_all_answers_unknown_hosts() {
        let r = HostRouter::new([(HostKey::Any, RouteList::default())]);
        assert!(r.lookup("anything.test").is_some());
        assert!(router().lookup("other.test").is_none());
    }
}
