//! Applying a rule's filters to one request, in onion order: request-side filters in the
//! order the route lists them, response-side filters in reverse on the way back.

use http::header::{HOST, LOCATION};
use http::{HeaderMap, HeaderValue, Response, Uri};

use super::body::{self, ProxyBody};
use super::error::ProxyError;
use crate::table::{HeaderModifier, PathModifier, Redirect, Rewrite};

/// What the request looks like while filters run: they may change its host and path.
pub struct Target {
    /// Host without port, as the client sent it or as a rewrite set it.
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    /// The listener's port (for redirects that keep the scheme).
    pub listener_port: u16,
    pub scheme: &'static str,
    /// Bytes of `path` that the matched PathPrefix covered, for `ReplacePrefixMatch`.
    pub matched_prefix: Option<usize>,
}

pub fn modify_headers(headers: &mut HeaderMap, modifier: &HeaderModifier) {
    for (name, value) in &modifier.set {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in &modifier.add {
        headers.append(name.clone(), value.clone());
    }
    for name in &modifier.remove {
        headers.remove(name);
    }
}

/// The path after a path modifier. `ReplacePrefixMatch` swaps the matched prefix and keeps the
/// rest, joining them with exactly one slash.
fn modified_path(path: &str, modifier: &PathModifier, matched_prefix: Option<usize>) -> Result<String, ProxyError> {
    match modifier {
        PathModifier::ReplaceFullPath(p) => Ok(p.clone()),
        PathModifier::ReplacePrefixMatch(replacement) => {
            let len = matched_prefix
                .ok_or_else(|| ProxyError::Rewrite("ReplacePrefixMatch needs a PathPrefix match".into()))?;
            let rest = path.get(len..).unwrap_or("");
            let mut out = replacement.trim_end_matches('/').to_string();
            out.push_str(rest);
            if out.is_empty() {
                out.push('/');
            }
            Ok(out)
        }
    }
}

pub fn rewrite(target: &mut Target, rewrite: &Rewrite) -> Result<(), ProxyError> {
    if let Some(host) = &rewrite.hostname {
        target.host.clone_from(host);
    }
    if let Some(path) = &rewrite.path {
        target.path = modified_path(&target.path, path, target.matched_prefix)?;
        // After a rewrite the prefix no longer describes the path.
        target.matched_prefix = None;
    }
    Ok(())
}

/// The redirect response. The port follows the spec: the filter's port, else the well-known
/// port of a changed scheme, else the listener's port; well-known ports are left out.
pub fn redirect(target: &Target, redirect: &Redirect) -> Result<Response<ProxyBody>, ProxyError> {
    let scheme = redirect.scheme.as_deref().unwrap_or(target.scheme);
    let host = redirect.hostname.as_deref().unwrap_or(&target.host);
    let port = redirect.port.unwrap_or(match redirect.scheme.as_deref() {
        Some("https") => 443,
        Some(_) => 80,
        None => target.listener_port,
    });
    let path = match &redirect.path {
        Some(modifier) => modified_path(&target.path, modifier, target.matched_prefix)?,
        None => target.path.clone(),
    };
    let default_port = matches!((scheme, port), ("http", 80) | ("https", 443));
    let authority = if default_port { host.to_string() } else { format!("{host}:{port}") };
    let mut location = format!("{scheme}://{authority}{path}");
    if let Some(q) = &target.query {
        location.push('?');
        location.push_str(q);
    }
    let location = HeaderValue::try_from(location).map_err(|e| ProxyError::Rewrite(e.to_string()))?;
    let mut response = Response::new(body::empty());
    *response.status_mut() = redirect.status;
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

/// Writes the target's host and path back into the request. The URI is rebuilt only when
/// normalisation or a rewrite changed the path or query: most requests pass as they came.
pub fn apply_target(
    uri: &mut Uri,
    headers: &mut HeaderMap,
    target: &Target,
    host_changed: bool,
) -> Result<(), ProxyError> {
    if uri.path() != target.path || uri.query() != target.query.as_deref() {
        let mut path_and_query = target.path.clone();
        if let Some(q) = &target.query {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        *uri = Uri::try_from(path_and_query).map_err(|e| ProxyError::Rewrite(e.to_string()))?;
    }
    if host_changed {
        let host = HeaderValue::try_from(target.host.as_str()).map_err(|e| ProxyError::Rewrite(e.to_string()))?;
        headers.insert(HOST, host);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    fn target(path: &str, prefix: Option<usize>) -> Target {
        Target {
            host: "example.com".into(),
            path: path.into(),
            query: Some("a=1".into()),
            listener_port: 8080,
            scheme: "http",
            matched_prefix: prefix,
        }
    }

    #[test]
    fn replace_prefix_match_keeps_the_rest_of_the_path() {
        let m = PathModifier::ReplacePrefixMatch("/one".into());
        assert_eq!(modified_path("/prefix/one/two", &m, Some("/prefix/one".len())).unwrap(), "/one/two");
        assert_eq!(modified_path("/prefix/one", &m, Some("/prefix/one".len())).unwrap(), "/one");
        assert_eq!(modified_path("/prefix/one/", &m, Some("/prefix/one".len())).unwrap(), "/one/");
        let root = PathModifier::ReplacePrefixMatch("/".into());
        assert_eq!(modified_path("/api/x", &root, Some(4)).unwrap(), "/x");
        assert_eq!(modified_path("/api", &root, Some(4)).unwrap(), "/");
    }

    #[test]
    fn redirect_to_https_drops_the_default_port() {
        let r = Redirect {
            scheme: Some("https".into()),
            hostname: None,
            port: None,
            path: None,
            status: StatusCode::MOVED_PERMANENTLY,
        };
        let resp = redirect(&target("/x", None), &r).unwrap();
        assert_eq!(resp.status(), 301);
        assert_eq!(resp.headers()[LOCATION], "https://example.com/x?a=1");
    }

    #[test]
    fn redirect_without_scheme_keeps_the_listener_port() {
        let r = Redirect {
            scheme: None,
            hostname: Some("other.test".into()),
            port: None,
            path: None,
            status: StatusCode::FOUND,
        };
        let resp = redirect(&target("/x", None), &r).unwrap();
        assert_eq!(resp.headers()[LOCATION], "http://other.test:8080/x?a=1");
    }

    #[test]
    fn redirect_with_explicit_port_and_full_path() {
        let r = Redirect {
            scheme: Some("http".into()),
            hostname: None,
            port: Some(9000),
            path: Some(PathModifier::ReplaceFullPath("/new".into())),
            status: StatusCode::FOUND,
        };
        let resp = redirect(&target("/old", None), &r).unwrap();
        assert_eq!(resp.headers()[LOCATION], "http://example.com:9000/new?a=1");
    }

    #[test]
    fn the_target_path_and_query_replace_the_uri_only_when_they_changed() {
        let mut headers = HeaderMap::new();
        let mut uri: Uri = "/a/b?a=1".parse().unwrap();
        let before = uri.path_and_query().unwrap().as_str().as_ptr();
        apply_target(&mut uri, &mut headers, &target("/a/b", None), false).unwrap();
        assert_eq!(uri.path_and_query().unwrap().as_str().as_ptr(), before, "unchanged: the same bytes are kept");
        let mut uri: Uri = "/a/./b?a=1".parse().unwrap();
        apply_target(&mut uri, &mut headers, &target("/a/b", None), false).unwrap();
        assert_eq!(uri, "/a/b?a=1");
        let mut uri: Uri = "http://example.com/a/b".parse().unwrap();
        apply_target(&mut uri, &mut headers, &target("/a/b", None), true).unwrap();
        assert_eq!(uri.path_and_query().unwrap(), "/a/b?a=1", "the target's query is the one forwarded");
        assert_eq!(headers[http::header::HOST], "example.com");
    }

    #[test]
    fn header_modifier_sets_adds_and_removes() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", "old".parse().unwrap());
        headers.insert("x-gone", "1".parse().unwrap());
        let m = HeaderModifier {
            set: vec![("x-a".parse().unwrap(), "new".parse().unwrap())],
            add: vec![("x-a".parse().unwrap(), "more".parse().unwrap())],
            remove: vec!["x-gone".parse().unwrap()],
        };
        modify_headers(&mut headers, &m);
        let values: Vec<_> = headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["new", "more"]);
        assert!(!headers.contains_key("x-gone"));
    }
}
