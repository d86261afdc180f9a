//! Request path normalisation, done before matching so that no spelling of a path can slip
//! past a route: `/a/../admin`, `/%2e%2e/admin` and `//admin` all become `/admin`.
//!
//! Following RFC 3986: percent-encoded unreserved characters are decoded (section 6.2.2.2),
//! other escapes are kept with upper-case hex (6.2.2.1), and dot segments are removed
//! (5.2.4). Repeated slashes are merged, as Envoy's `merge_slashes` does. Encoded slashes
//! (`%2F`) stay encoded: decoding them would change the path's segments. The normalised path
//! is also what the backend receives, so the gateway and the backend agree on it.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPath {
    #[error("the path must start with '/'")]
    NotAbsolute,
    #[error("the path has a malformed percent-encoding")]
    BadEscape,
}

/// The normalised form of a request path (without the query).
pub fn normalize(path: &str) -> Result<Cow<'_, str>, InvalidPath> {
    if !path.starts_with('/') {
        return Err(InvalidPath::NotAbsolute);
    }
    if !needs_work(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)))
}

fn needs_work(path: &str) -> bool {
    path.contains('%') || path.contains("//") || path.contains("/.")
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn decode_unreserved(path: &str) -> Result<String, InvalidPath> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).ok_or(InvalidPath::BadEscape)?;
        let value =
            std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or(InvalidPath::BadEscape)?;
        if is_unreserved(value) {
            out.push(value as char);
        } else {
            out.push('%');
            out.push(hex[0].to_ascii_uppercase() as char);
            out.push(hex[1].to_ascii_uppercase() as char);
        }
        i += 3;
    }
    Ok(out)
}

/// RFC 3986 5.2.4 on an absolute path, with empty segments (repeated slashes) dropped.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/').skip(1) {
        trailing_slash = false;
        match segment {
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize(p).unwrap().into_owned()
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
        assert_eq!(n("/a%2fb"), "/a%2Fb");
        assert_eq!(n("/a%20b"), "/a%20b");
    }

    #[test]
    fn repeated_slashes_are_merged() {
        assert_eq!(n("//admin"), "/admin");
        assert_eq!(n("/a//b///c/"), "/a/b/c/");
    }

    #[test]
    fn ordinary_paths_are_not_copied() {
        assert!(matches!(normalize("/api/v1/products").unwrap(), Cow::Borrowed(_)));
        assert!(matches!(normalize("/file.txt").unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn malformed_paths_are_rejected() {
        assert_eq!(normalize("/a%zz"), Err(InvalidPath::BadEscape));
        assert_eq!(normalize("/a%2"), Err(InvalidPath::BadEscape));
        assert_eq!(normalize("a/b"), Err(InvalidPath::NotAbsolute));
    }
}
