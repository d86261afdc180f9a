//! The host a request is for, read strictly. Virtual hosts part on this value, so every
//! spelling that two parties could read two ways is refused with 400 instead of guessed at:
//! several Host headers, a Host that is a list or carries characters no host name has (`/`,
//! `@`, spaces), user information in the request target, and a Host header that names another
//! host than an absolute-form target or HTTP/2's `:authority` (RFC 9112 section 3.2, RFC 9113
//! section 8.3.1). A fully qualified name with its trailing dot (`example.com.`) is the same
//! host as without it, so it reaches the same routes.

use http::Request;
use http::header::HOST;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHost {
    #[error("the request has no host")]
    Missing,
    #[error("the request has more than one Host header")]
    Duplicate,
    #[error("the host is not a host name or IP address with an optional port")]
    Malformed,
    #[error("the request target carries user information")]
    UserInfo,
    #[error("the Host header names another host than the request target")]
    Mismatch,
    #[error("the request target's scheme is neither http nor https")]
    Scheme,
}

/// The host a request is for, lower case, without port and trailing dot: from the absolute-form
/// target or `:authority` when there is one, else from the Host header.
pub fn request_host<B>(request: &Request<B>) -> Result<String, InvalidHost> {
    let mut host_headers = request.headers().get_all(HOST).iter();
    let header = host_headers.next();
    if host_headers.next().is_some() {
        return Err(InvalidHost::Duplicate);
    }
    let host = match request.uri().authority() {
        Some(authority) => {
            let default_port = match request.uri().scheme_str() {
                None => 80,
                Some(s) if s.eq_ignore_ascii_case("http") => 80,
                Some(s) if s.eq_ignore_ascii_case("https") => 443,
                Some(_) => return Err(InvalidHost::Scheme),
            };
            let target = authority.as_str().as_bytes();
            if target.contains(&b'@') {
                return Err(InvalidHost::UserInfo);
            }
            let target = HostPort::parse(target)?;
            if let Some(header) = header
                && !HostPort::parse(header.as_bytes())?.same_as(&target, default_port)
            {
                return Err(InvalidHost::Mismatch);
            }
            target
        }
        None => HostPort::parse(header.ok_or(InvalidHost::Missing)?.as_bytes())?,
    };
    // Validated above: ASCII only.
    let name = std::str::from_utf8(host.name).map_err(|_| InvalidHost::Malformed)?;
    Ok(name.to_ascii_lowercase())
}

/// A host and optional port, checked; `name` is without the trailing dot.
struct HostPort<'a> {
    name: &'a [u8],
    port: Option<u16>,
}

impl<'a> HostPort<'a> {
    /// `host[:port]` where host is a DNS name (letters, digits, `-`, `_`, dot-separated labels,
    /// one trailing dot allowed), an IPv4 address, or an IPv6 address in brackets.
    fn parse(text: &'a [u8]) -> Result<Self, InvalidHost> {
        let (name, port) = if text.first() == Some(&b'[') {
            let end = text.iter().position(|&b| b == b']').ok_or(InvalidHost::Malformed)?;
            let inner = std::str::from_utf8(&text[1..end]).map_err(|_| InvalidHost::Malformed)?;
            inner.parse::<std::net::Ipv6Addr>().map_err(|_| InvalidHost::Malformed)?;
            (&text[..=end], port_after(&text[end + 1..])?)
        } else {
            match text.iter().rposition(|&b| b == b':') {
                Some(colon) => (&text[..colon], port_after(&text[colon..])?),
                None => (text, None),
            }
        };
        let name = if name.first() == Some(&b'[') { name } else { dns_name(name)? };
        Ok(Self { name, port })
    }

    fn same_as(&self, other: &HostPort<'_>, default_port: u16) -> bool {
        self.name.eq_ignore_ascii_case(other.name)
            && self.port.unwrap_or(default_port) == other.port.unwrap_or(default_port)
    }
}

/// The port in `:digits`, or none for an empty text. An empty port (`host:`) is refused: no
/// client sends one.
fn port_after(text: &[u8]) -> Result<Option<u16>, InvalidHost> {
    match text {
        [] => Ok(None),
        [b':', digits @ ..] if (1..=5).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) => {
            let port = digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            u16::try_from(port).map(Some).map_err(|_| InvalidHost::Malformed)
        }
        _ => Err(InvalidHost::Malformed),
    }
}

/// The name without its trailing dot, if every label is 1 to 63 letters, digits, `-` or `_`
/// and the whole is at most 253 bytes.
fn dns_name(name: &[u8]) -> Result<&[u8], InvalidHost> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(InvalidHost::Malformed);
    }
    let labels_ok = name.split(|&b| b == b'.').all(|label| {
        (1..=63).contains(&label.len()) && label.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if labels_ok { Ok(name) } else { Err(InvalidHost::Malformed) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(target: &str, hosts: &[&str]) -> Result<String, InvalidHost> {
        let mut request = Request::builder().uri(target);
        for h in hosts {
            request = request.header(HOST, *h);
        }
        request_host(&request.body(()).unwrap())
    }

    #[test]
    fn host_comes_from_the_authority_before_the_host_header() {
        assert_eq!(host("http://Absolute.Example:8080/x", &["absolute.example:8080"]).unwrap(), "absolute.example");
        assert_eq!(host("http://absolute.example/x", &[]).unwrap(), "absolute.example");
        assert_eq!(host("/x", &["Site.Example:81"]).unwrap(), "site.example");
        assert_eq!(host("/x", &[]), Err(InvalidHost::Missing));
    }

    #[test]
    fn a_trailing_dot_names_the_same_host() {
        assert_eq!(host("/", &["a.example."]).unwrap(), "a.example");
        assert_eq!(host("/", &["a.example.:8080"]).unwrap(), "a.example");
        assert_eq!(host("http://a.example./", &["a.example"]).unwrap(), "a.example");
        assert_eq!(host("/", &["a.example.."]), Err(InvalidHost::Malformed));
        assert_eq!(host("/", &["."]), Err(InvalidHost::Malformed));
    }

    #[test]
    fn ip_addresses_are_hosts() {
        assert_eq!(host("/", &["127.0.0.1:8080"]).unwrap(), "127.0.0.1");
        assert_eq!(host("/", &["[::1]:8080"]).unwrap(), "[::1]");
        assert_eq!(host("/", &["[::1]"]).unwrap(), "[::1]");
        assert_eq!(host("/", &["[::1"]), Err(InvalidHost::Malformed));
        assert_eq!(host("/", &["[not-v6]"]), Err(InvalidHost::Malformed));
        assert_eq!(host("/", &["[::1]x"]), Err(InvalidHost::Malformed));
        assert_eq!(host("/", &["[fe80::1%25eth0]"]), Err(InvalidHost::Malformed), "no zone identifiers");
    }

    #[test]
    fn hosts_that_could_be_read_two_ways_are_refused() {
        for bad in [
            "a.example, b.example",
            "a.example b.example",
            "a.example/b",
            "user@a.example",
            "a.example\\b",
            "a..example",
            ".a.example",
            "a.example:",
            "a.example:80:80",
            "a.example:99999",
            "a.example:8o",
            "a%2eexample",
            "",
        ] {
            assert_eq!(host("/", &[bad]), Err(InvalidHost::Malformed), "{bad:?}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert_eq!(host("/", &[&long_label]), Err(InvalidHost::Malformed));
        assert_eq!(host("/", &["a.example", "a.example"]), Err(InvalidHost::Duplicate));
    }

    #[test]
    fn the_host_header_must_agree_with_the_request_target() {
        assert_eq!(host("http://a.example/x", &["b.example"]), Err(InvalidHost::Mismatch));
        assert_eq!(host("http://a.example/x", &["a.example:8080"]), Err(InvalidHost::Mismatch));
        assert_eq!(host("http://a.example/x", &["A.Example:80"]).unwrap(), "a.example", "80 is http's port");
        assert_eq!(host("https://a.example/x", &["a.example:443"]).unwrap(), "a.example");
        assert_eq!(host("http://user@a.example/x", &["a.example"]), Err(InvalidHost::UserInfo));
        assert_eq!(host("http://user:pw@a.example/x", &[]), Err(InvalidHost::UserInfo));
        assert_eq!(host("ftp://a.example/x", &[]), Err(InvalidHost::Scheme));
    }
}
