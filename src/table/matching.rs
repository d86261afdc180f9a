//! Request matchers of an HTTPRoute rule, compiled once (regexes included) and evaluated per
//! request without allocating.

use http::{HeaderName, Method};
use regex::Regex;
use serde::{Serialize, Serializer};

use super::RequestParts;

#[derive(Debug, Clone, Serialize)]
pub enum PathMatch {
    Exact(String),
    /// Segment-wise prefix, stored without a trailing slash (`/` is stored as "").
    Prefix(String),
    /// Anchored at both ends.
    #[serde(serialize_with = "regex_str")]
    Regex(Regex),
}

impl PathMatch {
    pub fn prefix(value: &str) -> Self {
        PathMatch::Prefix(value.trim_end_matches('/').to_string())
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => p == path,
            PathMatch::Prefix(p) => {
                path.starts_with(p.as_str()) && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
            }
            PathMatch::Regex(r) => r.is_match(path),
        }
    }

    /// For `ReplacePrefixMatch`: how many bytes of `path` the prefix matched.
    pub fn matched_prefix_len(&self) -> Option<usize> {
        match self {
            PathMatch::Prefix(p) => Some(p.len()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub enum StringMatch {
    Exact(String),
    #[serde(serialize_with = "regex_str")]
    Regex(Regex),
}

impl StringMatch {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(v) => v == value,
            StringMatch::Regex(r) => r.is_match(value),
        }
    }

    /// Compiles a Gateway API regular expression; it must match the whole value.
    pub fn anchored_regex(pattern: &str) -> Result<Regex, regex::Error> {
        Regex::new(&format!("^(?:{pattern})$"))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatch {
    #[serde(serialize_with = "header_name")]
    pub name: HeaderName,
    pub value: StringMatch,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryMatch {
    pub name: String,
    pub value: StringMatch,
}

/// All conditions of one HTTPRoute match; every one must hold.
#[derive(Debug, Clone, Serialize)]
pub struct RequestMatch {
    pub path: PathMatch,
    #[serde(serialize_with = "method")]
    pub method: Option<Method>,
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<QueryMatch>,
}

impl RequestMatch {
    pub fn matches(&self, request: &RequestParts<'_>) -> bool {
        self.path.matches(request.path)
            && self.method.as_ref().is_none_or(|m| m == request.method)
            && self.headers.iter().all(|h| {
                // A repeated header matches when any of its values does.
                request.headers.get_all(&h.name).iter().any(|v| v.to_str().is_ok_and(|v| h.value.matches(v)))
            })
            && self.query.iter().all(|q| first_query_value(request.query, &q.name).is_some_and(|v| q.value.matches(&v)))
    }
}

/// The first value of a query parameter, percent-decoded. The spec says only the first entry
/// with a given name counts.
fn first_query_value<'a>(query: Option<&'a str>, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    query?
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
        .next()
        .map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy())
}

fn regex_str<S: Serializer>(r: &Regex, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn header_name<S: Serializer>(n: &HeaderName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(n.as_str())
}

fn method<S: Serializer>(m: &Option<Method>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_str(m.as_str()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_match_is_segment_wise() {
        let m = PathMatch::prefix("/foo");
        assert!(m.matches("/foo"));
        assert!(m.matches("/foo/"));
        assert!(m.matches("/foo/bar"));
        assert!(!m.matches("/foobar"));
        assert!(!m.matches("/fo"));
    }

    #[test]
    fn prefix_with_trailing_slash_matches_the_bare_segment() {
        let m = PathMatch::prefix("/foo/");
        assert!(m.matches("/foo"));
        assert!(m.matches("/foo/x"));
        assert!(!m.matches("/foox"));
    }

    #[test]
    fn root_prefix_matches_everything() {
        let m = PathMatch::prefix("/");
        assert!(m.matches("/"));
        assert!(m.matches("/anything/at/all"));
    }

    #[test]
    fn regex_must_match_the_whole_path() {
        let m = PathMatch::Regex(StringMatch::anchored_regex("/v[0-9]+").unwrap());
        assert!(m.matches("/v12"));
        assert!(!m.matches("/v12/x"));
        assert!(!m.matches("/api/v12"));
    }

    #[test]
    fn only_the_first_query_value_counts_and_is_decoded() {
        assert_eq!(first_query_value(Some("a=1&b=x%20y&a=2"), "a").as_deref(), Some("1"));
        assert_eq!(first_query_value(Some("a=1&b=x%20y"), "b").as_deref(), Some("x y"));
        assert_eq!(first_query_value(Some("flag"), "flag").as_deref(), Some(""));
        assert_eq!(first_query_value(None, "a"), None);
    }

    #[test]
    fn every_condition_of_a_match_must_hold() {
        let m = RequestMatch {
            path: PathMatch::prefix("/api"),
            method: Some(Method::POST),
            headers: vec![HeaderMatch {
                name: HeaderName::from_static("x-env"),
                value: StringMatch::Exact("canary".into()),
            }],
            query: vec![QueryMatch { name: "v".into(), value: StringMatch::Exact("2".into()) }],
        };
        let mut headers = http::HeaderMap::new();
        headers.insert("x-env", "canary".parse().unwrap());
        let ok = RequestParts { method: &Method::POST, path: "/api/x", query: Some("v=2"), headers: &headers };
        assert!(m.matches(&ok));
        let wrong_method = RequestParts { method: &Method::GET, ..ok };
        assert!(!m.matches(&wrong_method));
        let wrong_query = RequestParts { method: &Method::POST, path: "/api/x", query: Some("v=3"), headers: &headers };
        assert!(!m.matches(&wrong_query));
        let empty = http::HeaderMap::new();
        let no_header = RequestParts { method: &Method::POST, path: "/api/x", query: Some("v=2"), headers: &empty };
        assert!(!m.matches(&no_header));
    }
}
