//! The order in which the rules of one host are tried: the Gateway API's precedence, as one
//! `Ord` impl.

use std::cmp::{Ordering, Reverse};

use k8s_openapi::jiff::Timestamp;

use super::hostnames;
use crate::index::ObjectKey;
use crate::table::{HostKey, PathMatch, RequestMatch};

/// Where one rule-match stands among all rule-matches that may answer a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Precedence<'a> {
    /// The route hostname pattern through which the entry covers the host key.
    pub host: HostKey,
    pub path: PathRank,
    pub method: bool,
    pub headers: usize,
    pub query: usize,
    /// `None` (objects from files carry no creationTimestamp) sorts after every timestamp.
    pub created: Option<Timestamp>,
    pub route: &'a ObjectKey,
    pub rule: usize,
    pub match_index: usize,
}

/// Path kinds from strongest to weakest. Regular expressions are ranked after prefixes, longer
/// patterns first: the spec leaves their place to implementations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PathRank {
    Exact,
    Prefix(Reverse<usize>),
    Regex(Reverse<usize>),
}

impl PathRank {
    pub fn of(path: &PathMatch) -> Self {
        match path {
            PathMatch::Exact(_) => PathRank::Exact,
            // Stored without its trailing slash, so `/foo/` and `/foo` rank alike.
            PathMatch::Prefix(p) => PathRank::Prefix(Reverse(p.len())),
            // The stored pattern is wrapped in `^(?:...)$`; the wrapper is the same for all.
            PathMatch::Regex(r) => PathRank::Regex(Reverse(r.as_str().len())),
        }
    }
}

impl<'a> Precedence<'a> {
    pub fn new(
        host: HostKey,
        matches: &RequestMatch,
        created: Option<Timestamp>,
        route: &'a ObjectKey,
        rule: usize,
        match_index: usize,
    ) -> Self {
        Precedence {
            host,
            path: PathRank::of(&matches.path),
            method: matches.method.is_some(),
            headers: matches.headers.len(),
            query: matches.query.len(),
            created,
            route,
            rule,
            match_index,
        }
    }
}

/// `Less` means "tried first".
///
/// HTTPRoute `spec.hostnames`: "If both the Listener and HTTPRoute have specified hostnames, and
/// none match with the criteria above, then the HTTPRoute is not accepted. [...] In the event
/// that multiple HTTPRoutes specify intersecting hostnames (e.g. overlapping wildcard matching
/// and exact matching hostnames), precedence must be given to rules from the HTTPRoute with the
/// largest number of: Characters in a matching non-wildcard hostname. Characters in a matching
/// hostname. If ties exist across multiple Routes, the matching precedence rules for
/// HTTPRouteMatches takes over."
///
/// HTTPRoute `rules[].matches`: "Proxy or Load Balancer routing configuration generated from
/// HTTPRoutes MUST prioritize matches based on the following criteria, continuing on ties.
/// Across all rules specified on applicable Routes, precedence must be given to the match
/// having: "Exact" path match. "Prefix" path match with largest number of characters. Method
/// match. Largest number of header matches. Largest number of query param matches.
/// Note: The precedence of RegularExpression path matches are implementation-specific.
/// If ties still exist across multiple Routes, matching precedence MUST be determined in order
/// of the following criteria, continuing on ties: The oldest Route based on creation timestamp.
/// The Route appearing first in alphabetical order by "{namespace}/{name}". If ties still exist
/// within an HTTPRoute, matching precedence MUST be granted to the FIRST matching rule (in list
/// order) with a match meeting the above criteria."
impl Ord for Precedence<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        hostnames::specificity(&self.host)
            .cmp(&hostnames::specificity(&other.host))
            .then_with(|| self.path.cmp(&other.path))
            .then_with(|| other.method.cmp(&self.method))
            .then_with(|| other.headers.cmp(&self.headers))
            .then_with(|| other.query.cmp(&self.query))
            .then_with(|| match (self.created, other.created) {
                (Some(a), Some(b)) => a.cmp(&b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| self.route.cmp(other.route))
            .then_with(|| self.rule.cmp(&other.rule))
            .then_with(|| self.match_index.cmp(&other.match_index))
    }
}

impl PartialOrd for Precedence<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, Method};

    use super::*;
    use crate::table::{HeaderMatch, QueryMatch, StringMatch};

    fn path_only(path: PathMatch) -> RequestMatch {
        RequestMatch { path, method: None, headers: vec![], query: vec![] }
    }

    fn root() -> RequestMatch {
        path_only(PathMatch::prefix("/"))
    }

    fn header(n: &'static str) -> HeaderMatch {
        HeaderMatch { name: HeaderName::from_static(n), value: StringMatch::Exact("v".into()) }
    }

    fn query(n: &str) -> QueryMatch {
        QueryMatch { name: n.into(), value: StringMatch::Exact("v".into()) }
    }

    fn key() -> ObjectKey {
        ObjectKey::new("ns", "route")
    }

    fn p<'a>(m: &RequestMatch, route: &'a ObjectKey) -> Precedence<'a> {
        Precedence::new(HostKey::Any, m, None, route, 0, 0)
    }

    #[test]
    fn exact_hostname_outranks_wildcard_and_catch_all() {
        let k = key();
        let exact = Precedence { host: HostKey::parse(Some("a.example.com")), ..p(&root(), &k) };
        let long_wild = Precedence { host: HostKey::parse(Some("*.b.example.com")), ..p(&root(), &k) };
        let wild = Precedence { host: HostKey::parse(Some("*.example.com")), ..p(&root(), &k) };
        let any = p(&root(), &k);
        assert!(exact < long_wild && long_wild < wild && wild < any);
    }

    #[test]
    fn exact_path_outranks_longer_prefix() {
        let k = key();
        let exact = path_only(PathMatch::Exact("/a".into()));
        let prefix = path_only(PathMatch::prefix("/a/very/long/prefix"));
        assert!(p(&exact, &k) < p(&prefix, &k));
    }

    #[test]
    fn longer_prefix_outranks_shorter_and_regex_comes_after_prefixes() {
        let k = key();
        let long = path_only(PathMatch::prefix("/api/v1"));
        let short = path_only(PathMatch::prefix("/api"));
        let regex = path_only(PathMatch::Regex(StringMatch::anchored_regex("/api/v[0-9]+/.*").unwrap()));
        let short_regex = path_only(PathMatch::Regex(StringMatch::anchored_regex("/.*").unwrap()));
        assert!(p(&long, &k) < p(&short, &k));
        assert!(p(&short, &k) < p(&regex, &k));
        assert!(p(&regex, &k) < p(&short_regex, &k));
    }

    #[test]
    fn method_match_outranks_header_matches() {
        let k = key();
        let method = RequestMatch { method: Some(Method::GET), ..root() };
        let headers = RequestMatch { headers: vec![header("a"), header("b")], ..root() };
        assert!(p(&method, &k) < p(&headers, &k));
    }

    #[test]
    fn more_header_matches_outrank_more_query_matches() {
        let k = key();
        let two_headers = RequestMatch { headers: vec![header("a"), header("b")], ..root() };
        let one_header = RequestMatch { headers: vec![header("a")], query: vec![query("x"), query("y")], ..root() };
        assert!(p(&two_headers, &k) < p(&one_header, &k));
    }

    #[test]
    fn more_query_matches_win_when_the_rest_ties() {
        let k = key();
        let two = RequestMatch { query: vec![query("x"), query("y")], ..root() };
        let one = RequestMatch { query: vec![query("x")], ..root() };
        assert!(p(&two, &k) < p(&one, &k));
    }

    #[test]
    fn oldest_route_wins_a_tie() {
        let (old_key, new_key) = (ObjectKey::new("z", "old"), ObjectKey::new("a", "new"));
        let old = Precedence { created: Some(Timestamp::from_second(100).unwrap()), ..p(&root(), &old_key) };
        let new = Precedence { created: Some(Timestamp::from_second(200).unwrap()), ..p(&root(), &new_key) };
        let unknown = p(&root(), &new_key);
        assert!(old < new);
        assert!(new < unknown, "a route without creationTimestamp sorts after dated ones");
    }

    #[test]
    fn alphabetical_namespace_and_name_break_a_timestamp_tie() {
        let (a, b) = (ObjectKey::new("a", "z"), ObjectKey::new("b", "a"));
        assert!(p(&root(), &a) < p(&root(), &b));
    }

    #[test]
    fn rule_order_then_match_order_within_a_route() {
        let k = key();
        let first_rule = Precedence { rule: 0, match_index: 3, ..p(&root(), &k) };
        let second_rule = Precedence { rule: 1, match_index: 0, ..p(&root(), &k) };
        let second_match = Precedence { rule: 1, match_index: 1, ..p(&root(), &k) };
        assert!(first_rule < second_rule && second_rule < second_match);
    }
}
