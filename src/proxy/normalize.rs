//! Request path normalisation, done before matching so that no spelling of a path can slip
//! past a route: `/a/../admin`, `/%2e%2e/admin` and `//admin` all become `/admin`.
//!
//! Following RFC 3986: percent-encoded unreserved characters are decoded (section 6.2.2.2),
//! other escapes are kept with upper-case hex (6.2.2.1), and dot segments are removed
//! (5.2.4). Repeated slashes are merged, as Envoy's `merge_slashes` does. Bytes outside ASCII
//! are kept exactly as they came. The normalised path is also what the backend receives, so
//! the gateway and the backend agree on it.
//!
//! Where gateways and backends part is what the backend decodes further. Many decode `%2F`
//! and `%5C` into separators (and some read `\` as `/`), so that `/public/..%2Fadmin` is
//! `/admin` to them while a gateway routes it as `/public/...`. What happens to encoded
//! slashes and backslashes is therefore a policy ([`EscapedSlashes`], as Envoy's
//! `path_with_escaped_slashes_action`), applied here before routing. Also refused whatever
//! the policy: a segment that is a dot-segment before its `;` parameters (`/..;/`, which
//! Tomcat and Spring read as `..`) and an encoded NUL byte.

use std::borrow::Cow;

/// What is done with `%2F`, `%5C` (either case) and `\` in a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EscapedSlashes {
    /// 400 Bad Request; double-encoded ones (`%252F`) too.
    #[default]
    Reject,
    /// Routed and forwarded as they are (the backend must not decode them).
    Keep,
    /// Decoded to `/`, and the client redirected (307) to the normalised path.
    UnescapeAndRedirect,
    /// Decoded to `/`; the normalised path is routed and forwarded.
    UnescapeAndForward,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPath {
    #[error("the path must start with '/'")]
    NotAbsolute,
    #[error("the path has a malformed percent-encoding")]
    BadEscape,
    #[error("the path has an encoded NUL byte")]
    Nul,
    #[error("the path has an encoded slash or a backslash")]
    EscapedSlash,
    #[error("the path has a dot-segment with parameters ('..;')")]
    DotSegmentParameter,
}

/// The outcome of normalising a path.
#[derive(Debug, PartialEq, Eq)]
pub enum Normalized<'a> {
    /// Route and forward this path.
    Path(Cow<'a, str>),
    /// Send the client here instead (`UnescapeAndRedirect` met an encoded slash).
    Redirect(String),
}

/// The normalised form of a request path (without the query).
pub fn normalize(path: &str, policy: EscapedSlashes) -> Result<Normalized<'_>, InvalidPath> {
    if !path.starts_with('/') {
        return Err(InvalidPath::NotAbsolute);
    }
    if !needs_work(path.as_bytes()) {
        return Ok(Normalized::Path(Cow::Borrowed(path)));
    }
    let (decoded, unescaped) = decode(path.as_bytes(), policy)?;
    let normalized = remove_dot_segments(&decoded)?;
    // Only ASCII sequences were replaced, by ASCII: the bytes are as valid UTF-8 as the input.
    let normalized = String::from_utf8(normalized).map_err(|_| InvalidPath::BadEscape)?;
    if unescaped && policy == EscapedSlashes::UnescapeAndRedirect {
        return Ok(Normalized::Redirect(normalized));
    }
    Ok(Normalized::Path(Cow::Owned(normalized)))
}

/// Whether the path has anything to decode or remove: an escape, a backslash, an empty
/// segment or a segment starting with a dot. One pass; most paths have none.
fn needs_work(path: &[u8]) -> bool {
    let mut previous = 0u8;
    for &b in path {
        if b == b'%' || b == b'\\' || (previous == b'/' && (b == b'/' || b == b'.')) {
            return true;
        }
        previous = b;
    }
    false
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes unreserved escapes and applies the policy to slashes and backslashes. Returns the
/// bytes and whether a slash or backslash was unescaped.
fn decode(path: &[u8], policy: EscapedSlashes) -> Result<(Vec<u8>, bool), InvalidPath> {
    let mut out = Vec::with_capacity(path.len());
    let mut unescaped = false;
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'\\' {
            match policy {
                EscapedSlashes::Reject => return Err(InvalidPath::EscapedSlash),
                EscapedSlashes::Keep => out.push(b),
                _ => {
                    out.push(b'/');
                    unescaped = true;
                }
            }
            i += 1;
            continue;
        }
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let (hi, lo) = match path.get(i + 1..i + 3) {
            Some(&[hi, lo]) => (hi, lo),
            _ => return Err(InvalidPath::BadEscape),
        };
        let value = hex_value(hi).zip(hex_value(lo)).map(|(h, l)| h << 4 | l).ok_or(InvalidPath::BadEscape)?;
        match value {
            0 => return Err(InvalidPath::Nul),
            v if is_unreserved(v) => out.push(v),
            b'/' | b'\\' => match policy {
                EscapedSlashes::Reject => return Err(InvalidPath::EscapedSlash),
                EscapedSlashes::Keep => push_escape(&mut out, hi, lo),
                _ => {
                    out.push(b'/');
                    unescaped = true;
                }
            },
            _ => push_escape(&mut out, hi, lo),
        }
        i += 3;
    }
    // `%252F`: a slash once a backend decodes twice. Looked for in the decoded bytes, where
    // decoding may have made one (`%252%46` gives `%252F`).
    if policy == EscapedSlashes::Reject && out.windows(5).any(double_encoded_slash) {
        return Err(InvalidPath::EscapedSlash);
    }
    Ok((out, unescaped))
}

fn push_escape(out: &mut Vec<u8>, hi: u8, lo: u8) {
    out.extend_from_slice(&[b'%', hi.to_ascii_uppercase(), lo.to_ascii_uppercase()]);
}

fn double_encoded_slash(bytes: &[u8]) -> bool {
    matches!(bytes, [b'%', b'2', b'5', b'2', b'f' | b'F'] | [b'%', b'2', b'5', b'5', b'c' | b'C'])
}

/// RFC 3986 5.2.4 on an absolute path, with empty segments (repeated slashes) dropped.
fn remove_dot_segments(path: &[u8]) -> Result<Vec<u8>, InvalidPath> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split(|&b| b == b'/').skip(1) {
        trailing_slash = false;
        match segment {
            b"" | b"." => trailing_slash = true,
            b".." => {
                segments.pop();
                trailing_slash = true;
            }
            s if is_dot_segment_with_parameters(s) => return Err(InvalidPath::DotSegmentParameter),
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// `.;x`, `..;x`, and the same with `;` encoded (`%3B`; escapes are upper case by now).
fn is_dot_segment_with_parameters(segment: &[u8]) -> bool {
    let rest = segment.strip_prefix(b"..").or_else(|| segment.strip_prefix(b".")).unwrap_or(b"x");
    rest.starts_with(b";") || rest.starts_with(b"%3B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        with(p, EscapedSlashes::Reject).unwrap()
    }

    fn with(p: &str, policy: EscapedSlashes) -> Result<String, InvalidPath> {
        match normalize(p, policy)? {
            Normalized::Path(path) => Ok(path.into_owned()),
            Normalized::Redirect(to) => Ok(format!("redirect {to}")),
        }
    }

    #[test]
    fn dot_segments_cannot_climb_out_of_a_route() {
        assert_eq!(n("/a/../admin"), "/admin");
        assert_eq!(n("/a/./b/../../admin"), "/admin");
        assert_eq!(n("/../../admin"), "/admin");
        assert_eq!(n("/a/.."), "/");
        assert_eq!(n("/a/b/."), "/a/b/");
    }

    #[test]
    fn percent_encoded_dots_are_dot_segments() {
        assert_eq!(n("/public/%2e%2e/admin"), "/admin");
        assert_eq!(n("/public/%2E%2e/admin"), "/admin");
        assert_eq!(n("/public/.%2e/admin"), "/admin");
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_kept_upper_case() {
        assert_eq!(n("/%61pi/%7euser"), "/api/~user");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/a%3fb%23c"), "/a%3Fb%23c");
    }

    #[test]
    fn repeated_slashes_are_merged() {
        assert_eq!(n("//admin"), "/admin");
        assert_eq!(n("/a//b///c/"), "/a/b/c/");
    }

    #[test]
    fn bytes_outside_ascii_are_kept_exactly() {
        assert_eq!(n("/ü"), "/ü");
        assert_eq!(n("//ü/./x"), "/ü/x");
        assert_eq!(n("/%C3%BC//ü"), "/%C3%BC/ü");
        assert_eq!(n("/日本/../語"), "/語");
    }

    #[test]
    fn ordinary_paths_are_not_copied() {
        for path in ["/api/v1/products", "/file.txt", "/a.b/c.", "/ü"] {
            let normalized = normalize(path, EscapedSlashes::Reject).unwrap();
            assert!(matches!(normalized, Normalized::Path(Cow::Borrowed(_))), "{path}");
        }
    }

    #[test]
    fn malformed_paths_are_rejected() {
        assert_eq!(normalize("/a%zz", EscapedSlashes::Keep), Err(InvalidPath::BadEscape));
        assert_eq!(normalize("/a%2", EscapedSlashes::Keep), Err(InvalidPath::BadEscape));
        assert_eq!(normalize("/a%", EscapedSlashes::Keep), Err(InvalidPath::BadEscape));
        assert_eq!(normalize("a/b", EscapedSlashes::Keep), Err(InvalidPath::NotAbsolute));
        assert_eq!(normalize("/a%00b", EscapedSlashes::Keep), Err(InvalidPath::Nul));
    }

    #[test]
    fn escaped_slashes_are_rejected_by_default() {
        for path in [
            "/a%2fb",
            "/a%2Fb",
            "/public/..%2fadmin",
            "/public/%2e%2e%2fadmin",
            "/a%5cb",
            "/a%5Cb",
            "/public\\..\\admin",
            "/a/%252F/b",
            "/a/%255c/b",
        ] {
            assert_eq!(normalize(path, EscapedSlashes::Reject), Err(InvalidPath::EscapedSlash), "{path}");
        }
        assert_eq!(n("/a/%2525/b"), "/a/%2525/b", "an encoded percent sign alone is fine");
        // Found by the `path` fuzz target: decoding `%46` (F) after `%252` made `%252F`.
        assert_eq!(normalize("/%252%46", EscapedSlashes::Reject), Err(InvalidPath::EscapedSlash));
        assert_eq!(normalize("/%255%63", EscapedSlashes::Reject), Err(InvalidPath::EscapedSlash));
    }

    #[test]
    fn kept_escaped_slashes_are_not_separators() {
        let keep = |p| with(p, EscapedSlashes::Keep).unwrap();
        assert_eq!(keep("/a%2fb"), "/a%2Fb");
        assert_eq!(keep("/public/..%2Fadmin"), "/public/..%2Fadmin");
        assert_eq!(keep("/a\\b"), "/a\\b");
    }

    #[test]
    fn unescaped_slashes_are_separators_for_routing() {
        let forward = |p| with(p, EscapedSlashes::UnescapeAndForward).unwrap();
        assert_eq!(forward("/public/..%2fadmin"), "/admin");
        assert_eq!(forward("/public/%2e%2e%2Fadmin"), "/admin");
        assert_eq!(forward("/public\\..\\admin"), "/admin");
        assert_eq!(forward("/a%5C%2F%2fb"), "/a/b");
        assert_eq!(forward("/a/%252F"), "/a/%252F", "double-encoding is left to the policy's user");
        let redirect = |p| with(p, EscapedSlashes::UnescapeAndRedirect).unwrap();
        assert_eq!(redirect("/public/..%2fadmin"), "redirect /admin");
        assert_eq!(redirect("/a/../b"), "/b", "only an unescaped slash redirects");
    }

    #[test]
    fn dot_segments_with_parameters_are_rejected_whatever_the_policy() {
        for policy in [EscapedSlashes::Reject, EscapedSlashes::Keep, EscapedSlashes::UnescapeAndForward] {
            for path in ["/public/..;/admin", "/public/..;x=1/admin", "/public/.;/x", "/a/..%3b/b", "/a/%2e%2e;/b"] {
                assert_eq!(normalize(path, policy), Err(InvalidPath::DotSegmentParameter), "{path} {policy:?}");
            }
        }
        assert_eq!(n("/a;jsessionid=1/b"), "/a;jsessionid=1/b", "parameters on ordinary segments stay");
        assert_eq!(n("/a/...;/b"), "/a/...;/b", "three dots are a name");
    }
}
