//! Black-box tests of the edge's defences, as an attacker tries them: upgrade smuggling, path
//! and host confusion, forged headers, idle and slow clients, connection limits, client faults
//! blamed on backends, HTTP/2 strictness (h2spec) and the drain of WebSocket tunnels. Real
//! `gantry` processes, real backends (some of them hostile) on loopback.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;

fn route(name: &str, path: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules:\n    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n      backendRefs: [{{name: {backend}, port: 80}}]\n---\n"
    )
}

/// A gateway on one port with echo backends `a` (for `/public`) and `b` (for `/admin`), plus
/// the Services and routes in `more`.
struct Edge {
    gateway: Gateway,
    port: u16,
    _echoes: Vec<Echo>,
}

fn edge(more: &str, args: &[&str]) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let a = echo(dir.path(), "a");
    let b = echo(dir.path(), "b");
    let port = free_port();
    let config = format!(
        "{}{}{}{}{}{more}",
        gateway_yaml(&[port]),
        service_yaml("default", "a", &[a.address]),
        service_yaml("default", "b", &[b.address]),
        route("public", "/public", "a"),
        route("admin", "/admin", "b"),
    );
    let gateway = Gateway::start_with(&config, args);
    std::mem::forget(dir);
    Edge { gateway, port, _echoes: vec![a, b] }
}

impl Edge {
    fn address(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    /// One request on its own connection (the request must close it).
    fn exchange(&self, request: &[u8]) -> Answer {
        Answer::parse(&raw_bytes(self.address(), request, Duration::from_secs(5)))
    }

    fn metric(&self, series: &str) -> f64 {
        metric(&self.gateway.metrics(), series)
    }
}

/// `raw`, keeping the bytes.
fn raw_bytes(address: SocketAddr, bytes: &[u8], timeout: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(timeout)).unwrap();
    let _ = stream.write_all(bytes);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// The first response in what a connection returned.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        Answer { status, head: head.to_ascii_lowercase(), body: body.to_string() }
    }

    fn backend(&self) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix("x-backend: "))
    }

    /// The path the echo backend received.
    fn echoed_path(&self) -> String {
        let echoed: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("{self:?}"));
        echoed["path"].as_str().unwrap().to_string()
    }
}

fn get(path: &[u8], host: &str) -> Vec<u8> {
    [&b"GET "[..], path, format!(" HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()].concat()
}

// ---------------------------------------------------------------------------------------------
// Upgrade smuggling

/// A hostile backend: answers every request with 101 (switching to h2c, whatever was asked),
/// then serves plain HTTP/1.1 on the raw connection, as a backend that accepts h2c upgrades
/// would. If Gantry ever joined the two connections, the client's next request would arrive
/// here, past every route: each such request is recorded as `TUNNELLED <request line>`.
struct SwitchingBackend {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

fn switching_backend() -> SwitchingBackend {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut switched = false;
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
                            return;
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let stream = reader.get_mut();
                    if switched {
                        record.lock().unwrap().push(format!("TUNNELLED {}", head.lines().next().unwrap_or("")));
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\ntunnelled");
                    } else {
                        record.lock().unwrap().push(head.to_ascii_lowercase());
                        let _ = stream.write_all(
                            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
                        );
                        switched = true;
                    }
                }
            });
        }
    });
    SwitchingBackend { address, seen }
}

#[test]
fn no_upgrade_but_websocket_passes_and_no_101_becomes_a_tunnel() {
    let evil = switching_backend();
    let more = format!("{}{}", service_yaml("default", "evil", &[evil.address]), route("evil", "/evil", "evil"));
    let s = edge(&more, &[]);
    let attempts: [(&str, &str); 9] = [
        (
            "h2c, the known technique",
            "GET /evil HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
        ),
        ("h2c without Connection", "GET /evil HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n"),
        (
            "h2c with a body",
            "POST /evil HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\nhi",
        ),
        (
            "an invented protocol",
            "GET /evil HTTP/1.1\r\nHost: x\r\nUpgrade: foo/1\r\nConnection: keep-alive, Upgrade\r\n\r\n",
        ),
        (
            "a list with websocket in it",
            "GET /evil HTTP/1.1\r\nHost: x\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\n\r\n",
        ),
        (
            "websocket on POST",
            "POST /evil HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "websocket over HTTP/1.0",
            "GET /evil HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade, keep-alive\r\n\r\n",
        ),
        ("no upgrade at all", "GET /evil HTTP/1.1\r\nHost: x\r\n\r\n"),
        // A proper WebSocket request, but the backend switches to something else.
        (
            "websocket answered with h2c",
            "GET /evil HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ),
    ];
    for (what, attempt) in attempts {
        evil.seen.lock().unwrap().clear();
        let mut stream = TcpStream::connect(s.address()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(attempt.as_bytes()).unwrap();
        let mut first = [0u8; 4096];
        let n = stream.read(&mut first).unwrap_or(0);
        let first = Answer::parse(&first[..n]);
        assert_eq!(first.status, 502, "{what}: a 101 nobody asked for is a bad gateway: {first:?}");
        // The follow-up goes to Gantry, which routes it (or has closed the connection); it
        // never reaches the hostile backend through a tunnel.
        let _ = stream.write_all(b"GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        let rest = String::from_utf8_lossy(&rest);
        assert!(!rest.contains("tunnelled"), "{what}: {rest}");
        let seen = evil.seen.lock().unwrap().clone();
        assert!(seen.iter().all(|h| !h.starts_with("TUNNELLED")), "{what}: {seen:?}");
        let forwarded = seen.first().cloned().unwrap_or_default();
        if !what.starts_with("websocket answered") {
            assert!(!forwarded.contains("upgrade"), "{what}: the upgrade was forwarded: {forwarded}");
            assert!(!forwarded.contains("http2-settings"), "{what}: {forwarded}");
        }
    }
    assert!(s.metric("gantry_requests_total{code_class=\"5xx\",route=\"default/evil\"}") >= 9.0);
}

// ---------------------------------------------------------------------------------------------
// Path confusion

#[test]
fn encoded_separators_and_path_parameters_cannot_cross_routes() {
    let s = edge("", &[]);
    for path in [
        &b"/public/..%2fadmin"[..],
        b"/public/..%2Fadmin",
        b"/public/%2e%2e%2fadmin",
        b"/public/%2E%2E%2Fadmin/",
        b"/public/..%5cadmin",
        b"/public/..%5Cadmin",
        b"/public\\..\\admin",
        b"/public/..\\admin",
        b"/public/%252e%252e%252fadmin",
        b"/public/..%252Fadmin",
        b"/public/..;/admin",
        b"/public/..;jsessionid=x/admin",
        b"/public/.;/../admin",
        b"/public/..%3b/admin",
        b"/public/%2e%2e;/admin",
        b"/public/%2e%2e%3B/admin",
        b"/public/x/..%2f..%2fadmin",
        b"/public/%00/admin",
        b"/public/%zz",
    ] {
        let answer = s.exchange(&get(path, "x"));
        let shown = String::from_utf8_lossy(path);
        assert_eq!(answer.status, 400, "{shown}: {answer:?}");
        assert_eq!(answer.backend(), None, "{shown} reached a backend");
    }
    // Plain dot-segments, encoded or not, are resolved before routing: the route that gets
    // the request is the one whose path the backend sees.
    for path in
        [&b"/public/../admin"[..], b"/public/%2e%2e/admin", b"/public/.%2E/admin", b"//admin", b"/public/./../admin"]
    {
        let answer = s.exchange(&get(path, "x"));
        assert_eq!((answer.status, answer.backend()), (200, Some("b")), "{}", String::from_utf8_lossy(path));
        assert_eq!(answer.echoed_path(), "/admin");
    }
    assert!(s.metric("gantry_requests_refused_total{reason=\"escaped_slash\"}") >= 10.0);
    assert!(s.metric("gantry_requests_refused_total{reason=\"dot_segment_parameter\"}") >= 6.0);
}

#[test]
fn paths_reach_the_backend_exactly_as_they_were_routed() {
    let s = edge("", &[]);
    // Bytes outside ASCII are kept as they came, merged slashes or not.
    for (sent, forwarded) in [
        ("/public/ü", "/public/ü"),
        ("/public//ü/./x", "/public/ü/x"),
        ("/public/%C3%BC", "/public/%C3%BC"),
        ("/public/%c3%bc//日本", "/public/%C3%BC/日本"),
        ("/public/%7euser?q=%2F", "/public/~user?q=%2F"),
        ("/public/a;v=1/b", "/public/a;v=1/b"),
    ] {
        let answer = s.exchange(&get(sent.as_bytes(), "x"));
        assert_eq!((answer.status, answer.backend()), (200, Some("a")), "{sent}: {answer:?}");
        assert_eq!(answer.echoed_path(), forwarded, "{sent}");
    }
}

#[test]
fn the_escaped_slash_policy_decides_what_an_encoded_slash_is() {
    let keep = edge("", &["--escaped-slashes", "keep"]);
    let answer = keep.exchange(&get(b"/public/..%2fadmin", "x"));
    assert_eq!((answer.status, answer.backend()), (200, Some("a")));
    assert_eq!(answer.echoed_path(), "/public/..%2Fadmin", "routed and forwarded as one segment");

    let forward = edge("", &["--escaped-slashes", "unescape-and-forward"]);
    for path in [&b"/public/..%2fadmin"[..], b"/public\\..\\admin", b"/public/%2e%2e%5Cadmin"] {
        let answer = forward.exchange(&get(path, "x"));
        assert_eq!((answer.status, answer.backend()), (200, Some("b")), "{}", String::from_utf8_lossy(path));
        assert_eq!(answer.echoed_path(), "/admin");
    }
    assert_eq!(forward.exchange(&get(b"/public/..;/admin", "x")).status, 400, "parameters stay refused");

    let redirect = edge("", &["--escaped-slashes", "unescape-and-redirect"]);
    let answer = redirect.exchange(&get(b"/public/..%2Fadmin?x=1", "x"));
    assert_eq!(answer.status, 307);
    assert!(answer.head.contains("location: /admin?x=1"), "{answer:?}");
    assert_eq!(redirect.exchange(&get(b"/public/ok", "x")).status, 200);
}

// ---------------------------------------------------------------------------------------------
// Hosts

#[test]
fn hosts_that_could_be_read_two_ways_get_400_and_reach_no_backend() {
    let s = edge("", &[]);
    let close = "Connection: close\r\n\r\n";
    for request in [
        format!("GET /public HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: a.example, b.example\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: a.example b.example\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: a.example/admin\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: user@a.example\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: a.example\\b\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: a..example\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: a.example:\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: a.example:99999\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost: [::1\r\n{close}"),
        format!("GET /public HTTP/1.1\r\nHost:\r\n{close}"),
        format!("GET /public HTTP/1.1\r\n{close}"),
        format!("GET http://user@a.example/public HTTP/1.1\r\nHost: a.example\r\n{close}"),
        format!("GET http://user:pass@a.example/public HTTP/1.1\r\n{close}"),
        format!("GET http://a.example/public HTTP/1.1\r\nHost: b.example\r\n{close}"),
        format!("GET http://a.example/public HTTP/1.1\r\nHost: a.example:8080\r\n{close}"),
        format!("GET ftp://a.example/public HTTP/1.1\r\nHost: a.example\r\n{close}"),
    ] {
        let answer = s.exchange(request.as_bytes());
        assert_eq!(answer.status, 400, "{request:?}: {answer:?}");
        assert_eq!(answer.backend(), None, "{request:?}");
    }
    let agreeing = "GET http://A.example/public HTTP/1.1\r\nHost: a.example:80\r\nConnection: close\r\n\r\n";
    assert_eq!(s.exchange(agreeing.as_bytes()).status, 200);
    assert!(s.metric("gantry_requests_refused_total{reason=\"invalid_host\"}") >= 17.0);
}

#[test]
fn a_trailing_dot_reaches_the_same_virtual_host() {
    let named = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: named, namespace: default}\nspec:\n  parentRefs: [{name: web}]\n  hostnames: [site.example, '*.wild.example']\n  rules: [{backendRefs: [{name: b, port: 80}]}]\n---\n";
    let catch_all = route("catch-all", "/", "a");
    let s = edge(&format!("{named}{catch_all}"), &[]);
    for host in ["site.example", "site.example.", "SITE.Example.", "site.example.:80", "x.wild.example."] {
        let answer = s.exchange(&get(b"/x", host));
        assert_eq!((answer.status, answer.backend()), (200, Some("b")), "{host}");
    }
    assert_eq!(s.exchange(&get(b"/x", "site.example..")).status, 400);
    assert_eq!(s.exchange(&get(b"/x", "other.example.")).backend(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_host_header_must_agree_with_the_authority() {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let s = tokio::task::spawn_blocking(|| edge("", &[])).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Empty<bytes::Bytes>>();
    let request = |host: Option<&str>, value: Option<&str>| {
        let mut builder = http::Request::get(format!("http://127.0.0.1:{}/public", s.port));
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        if let Some(value) = value {
            builder = builder.header("x-padded", value);
        }
        builder.body(Empty::new()).unwrap()
    };
    let status = |r: http::Request<Empty<bytes::Bytes>>| {
        let client = client.clone();
        async move { client.request(r).await.unwrap().status().as_u16() }
    };
    assert_eq!(status(request(None, None)).await, 200);
    assert_eq!(status(request(Some(&format!("127.0.0.1:{}", s.port)), None)).await, 200);
    assert_eq!(status(request(Some("admin.example"), None)).await, 400, ":authority and Host disagree");
    // RFC 9113 section 8.2.1: no leading or trailing whitespace in a field value.
    assert_eq!(status(request(None, Some(" padded"))).await, 400);
    assert_eq!(status(request(None, Some("padded\t"))).await, 400);
    drop(s);
}

// ---------------------------------------------------------------------------------------------
// Requests Gantry refuses before routing

#[test]
fn overlong_methods_and_targets_and_tunnelling_methods_are_refused() {
    let s = edge("", &[]);
    let method = format!("{} /public HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "A".repeat(100 * 1024));
    let answer = s.exchange(method.as_bytes());
    assert!(answer.status == 400 || answer.status == 431, "{answer:?}");
    assert_eq!(answer.backend(), None);
    let short = format!("{} /public HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "A".repeat(21));
    assert_eq!(s.exchange(short.as_bytes()).status, 400);
    let target = format!("GET /public/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(9 * 1024));
    let answer = s.exchange(target.as_bytes());
    assert_eq!((answer.status, answer.backend()), (414, None), "{answer:?}");
    let huge = format!("GET /public/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(100 * 1024));
    let answer = s.exchange(huge.as_bytes());
    assert!(matches!(answer.status, 414 | 431), "{answer:?}");
    for request in [
        "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nConnection: close\r\n\r\n",
        "TRACE /public HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        assert_eq!(s.exchange(request.as_bytes()).status, 405, "{request:?}");
    }
    // Not HTTP/1.x and not the HTTP/2 preface: closed, no HTTP/1.1 page.
    for garbage in
        [&b"INVALID CONNECTION PREFACE\r\n\r\n"[..], b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", b"GET /\r\n"]
    {
        assert!(raw_bytes(s.address(), garbage, Duration::from_secs(5)).is_empty(), "{garbage:?}");
    }
    // The gateway kept serving.
    assert_eq!(s.exchange(&get(b"/public", "x")).status, 200);
}

#[test]
fn headers_the_gateway_sets_cannot_be_forged_and_proxy_credentials_do_not_pass() {
    let forged = "GET /public HTTP/1.1\r\nHost: site.example\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: admin.example\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Client-Cert: Hash=forged\r\nX-Client-Cert: forged\r\nForwarded: for=10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\nX-Request-Id: chosen\r\nProxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nConnection: close, x-forwarded-for, host, content-length\r\n\r\n";
    let s = edge("", &[]);
    let seen: serde_json::Value = serde_json::from_str(&s.exchange(forged.as_bytes()).body).unwrap();
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-for"], serde_json::json!(["127.0.0.1"]), "{headers}");
    assert_eq!(headers["x-forwarded-proto"], serde_json::json!(["http"]));
    assert_eq!(headers["x-forwarded-host"], serde_json::json!(["site.example"]));
    assert_ne!(headers["x-request-id"], serde_json::json!(["chosen"]));
    for gone in [
        "x-forwarded-port",
        "x-forwarded-client-cert",
        "x-client-cert",
        "forwarded",
        "x-real-ip",
        "proxy-authorization",
        "proxy-connection",
        "keep-alive",
        "te",
    ] {
        assert!(headers.get(gone).is_none(), "{gone} passed: {headers}");
    }
    assert_eq!(seen["host"], "site.example", "Connection cannot take the Host away");

    let trusting = edge("", &["--trusted-proxies", "192.0.2.0/24,127.0.0.1"]);
    let from_proxy = forged.replace("Connection: close, x-forwarded-for, host, content-length", "Connection: close");
    let seen: serde_json::Value = serde_json::from_str(&trusting.exchange(from_proxy.as_bytes()).body).unwrap();
    let headers = &seen["headers"];
    assert_eq!(
        headers["x-forwarded-for"],
        serde_json::json!(["10.0.0.1, 127.0.0.1"]),
        "a trusted proxy's list, extended"
    );
    assert_eq!(headers["x-forwarded-proto"], serde_json::json!(["https"]));
    assert_eq!(headers["x-request-id"], serde_json::json!(["chosen"]));
    assert!(headers.get("proxy-authorization").is_none(), "credentials for a proxy never pass");
}

// ---------------------------------------------------------------------------------------------
// Idle and slow clients, connection limits

/// Seconds until the server closes a connection after `bytes` were sent (bounded by 15 s).
fn seconds_until_closed(address: SocketAddr, bytes: &[u8]) -> f64 {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream.write_all(bytes).unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
    started.elapsed().as_secs_f64()
}

#[test]
fn idle_and_slow_connections_are_closed_on_time() {
    let s = edge("", &["--header-read-timeout", "1s", "--idle-timeout", "2s", "--request-body-timeout", "1s"]);
    let never = seconds_until_closed(s.address(), b"");
    assert!((0.9..3.0).contains(&never), "a connection that sends nothing: {never} s");
    let partial = seconds_until_closed(s.address(), b"GET /public HTTP/1.1\r\nHost: x\r\n");
    assert!((0.9..3.0).contains(&partial), "a head that never ends: {partial} s");
    let preface = seconds_until_closed(s.address(), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!((0.9..3.0).contains(&preface), "HTTP/2 without a request: {preface} s");

    // Between requests the idle timeout applies, and each request starts it afresh.
    let mut stream = TcpStream::connect(s.address()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..4 {
        stream.write_all(b"GET /public HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length: ") {
                length = value.trim().parse().unwrap();
            }
        }
        reader.read_exact(&mut vec![0; length]).unwrap();
        std::thread::sleep(Duration::from_millis(1200)); // longer than the header timeout
    }
    let idle_from = Instant::now();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    let idle = idle_from.elapsed().as_secs_f64();
    assert!((0.5..3.5).contains(&idle), "closed {idle} s after the last answer (2 s idle, 1.2 s of it slept)");

    // A request body that stops coming gets 408.
    let started = Instant::now();
    let stalled =
        s.exchange(b"POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhalf ");
    assert_eq!(stalled.status, 408, "{stalled:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(s.metric("gantry_connections_closed_total{reason=\"header_timeout\"}") >= 3.0);
    assert!(s.metric("gantry_connections_closed_total{reason=\"idle_timeout\"}") >= 1.0);
}

#[test]
fn a_thousand_idle_sockets_are_all_closed_and_the_gateway_keeps_serving() {
    let s = edge("", &["--header-read-timeout", "2s"]);
    let sockets: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(s.address()).unwrap()).collect();
    assert_eq!(s.exchange(&get(b"/public", "x")).status, 200, "served while they are open");
    let started = Instant::now();
    for mut socket in sockets {
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut sink = [0u8; 16];
        assert!(matches!(socket.read(&mut sink), Ok(0) | Err(_)), "closed by the gateway");
    }
    assert!(started.elapsed() < Duration::from_secs(8), "all closed in {:?}", started.elapsed());
    wait_for("the connections to be counted closed", Duration::from_secs(5), || {
        (s.metric("gantry_active_connections") == 0.0).then_some(())
    });
    assert_eq!(s.exchange(&get(b"/public", "x")).status, 200);
}

#[test]
fn a_client_that_does_not_read_is_cut_off() {
    // A backend with a large answer: 64 MiB, far more than the socket buffers hold.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let stream = reader.get_mut();
                let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 64 << 20);
                let chunk = vec![b'x'; 1 << 20];
                for _ in 0..64 {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let more = format!("{}{}", service_yaml("default", "big", &[backend]), route("big", "/big", "big"));
    let s = edge(&more, &["--send-timeout", "2s"]);
    let mut stream = TcpStream::connect(s.address()).unwrap();
    stream.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // Never reads: the gateway's writes block, and 2 to 4 s later (the deadline is looked at
    // once per send timeout) it closes.
    wait_for("the slow reader to be cut off", Duration::from_secs(10), || {
        (s.metric("gantry_connections_closed_total{reason=\"send_timeout\"}") >= 1.0).then_some(())
    });
    wait_for("the connection to be gone", Duration::from_secs(5), || {
        (s.metric("gantry_active_connections") == 0.0).then_some(())
    });
}

/// A connection from `source` (any 127.0.0.0/8 address is this machine's) that reports
/// whether the gateway closed it at once.
fn refused_from(source: &str, gateway: SocketAddr) -> (TcpStream, bool) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(gateway).await.unwrap();
        let mut byte = [0u8; 1];
        let closed = matches!(
            tokio::time::timeout(Duration::from_millis(500), stream.peek(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        );
        (stream.into_std().unwrap(), closed)
    })
}

#[test]
fn connection_limits_hold_per_client_and_in_total() {
    let s = edge("", &["--max-connections-per-client", "3", "--max-connections", "5"]);
    let mut open = Vec::new();
    for _ in 0..3 {
        let (stream, closed) = refused_from("127.0.0.1", s.address());
        assert!(!closed, "within the client's limit");
        open.push(stream);
    }
    let (_, closed) = refused_from("127.0.0.1", s.address());
    assert!(closed, "the client's fourth connection is closed at once");
    for _ in 0..2 {
        let (stream, closed) = refused_from("127.0.0.2", s.address());
        assert!(!closed, "another client has its own share");
        open.push(stream);
    }
    let (_, closed) = refused_from("127.0.0.3", s.address());
    assert!(closed, "the total is reached");
    assert_eq!(s.metric("gantry_connections_refused_total{reason=\"max_connections_per_client\"}"), 1.0);
    assert_eq!(s.metric("gantry_connections_refused_total{reason=\"max_connections\"}"), 1.0);
    drop(open);
    wait_for("the places to be given back", Duration::from_secs(5), || {
        (s.metric("gantry_active_connections") == 0.0).then_some(())
    });
    assert_eq!(s.exchange(&get(b"/public", "x")).status, 200);
}

// ---------------------------------------------------------------------------------------------
// Client faults are not backend faults

#[test]
fn broken_or_stalled_request_bodies_never_eject_an_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let one = echo(dir.path(), "one");
    let two = echo(dir.path(), "two");
    let more =
        format!("{}{}", service_yaml("default", "pool", &[one.address, two.address]), route("pool", "/pool", "pool"));
    let s = edge(&more, &["--request-body-timeout", "1s"]);
    // Twenty bodies each (ejection takes 5 failures in a row by default): a broken chunk,
    // a body cut short by the client closing, a body that stops coming.
    for _ in 0..20 {
        let broken =
            s.exchange(b"POST /pool HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n");
        assert!(matches!(broken.status, 400 | 0), "{broken:?}");
        let mut cut = TcpStream::connect(s.address()).unwrap();
        cut.write_all(b"POST /pool HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(cut);
    }
    for _ in 0..6 {
        let stalled = s.exchange(b"POST /pool HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf ");
        assert_eq!(stalled.status, 408, "{stalled:?}");
    }
    let metrics = s.gateway.metrics();
    assert!(!metrics.contains("gantry_endpoint_ejections_total{"), "an endpoint was ejected:\n{metrics}");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let answer = s.exchange(&get(b"/pool", "x"));
        assert_eq!(answer.status, 200);
        seen.insert(answer.backend().unwrap().to_string());
    }
    assert_eq!(seen.len(), 2, "both endpoints still in rotation: {seen:?}");
}

// ---------------------------------------------------------------------------------------------
// HTTP/2: h2spec

#[test]
fn h2spec_passes_every_case_against_h2c() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/h2spec");
    let built = std::process::Command::new(&script).arg("path").output().expect("run scripts/h2spec");
    assert!(built.status.success(), "scripts/h2spec: {}", String::from_utf8_lossy(&built.stderr));
    let s = edge("", &[]);
    let port = s.port.to_string();
    let run = std::process::Command::new(&script)
        .args(["-h", "127.0.0.1", "-p", &port, "-P", "/public", "-o", "3", "--strict"])
        .output()
        .expect("run h2spec");
    let report = String::from_utf8_lossy(&run.stdout);
    let summary = report.lines().rev().find(|l| l.contains("tests,")).unwrap_or_default();
    println!("h2spec: {summary}");
    let counts: Vec<u32> = summary.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    assert!(matches!(counts[..], [total, passed, 0, 0] if total == passed && total >= 146), "{report}");
    assert_eq!(s.exchange(&get(b"/public", "x")).status, 200, "still serving after h2spec");
}

// ---------------------------------------------------------------------------------------------
// Draining tunnels

/// A WebSocket backend answering each text message with `echo: <text>`.
async fn websocket_backend() -> SocketAddr {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Text(text) = message {
                        let _ = ws.send(Message::text(format!("echo: {text}"))).await;
                    }
                }
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_websockets_like_requests() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let backend = websocket_backend().await;
    let more = format!("{}{}", service_yaml("default", "ws", &[backend]), route("ws", "/ws", "ws"));
    let mut s = tokio::task::spawn_blocking(move || edge(&more, &["--drain-timeout", "20s"])).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", s.port)).await.unwrap();
    signal(&s.gateway.process.child, "TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..3 {
        ws.send(Message::text(format!("after SIGTERM {i}"))).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(answer.into_text().unwrap().as_str(), format!("echo: after SIGTERM {i}"), "the tunnel lives on");
    }
    assert!(s.gateway.process.child.try_wait().unwrap().is_none(), "still draining while the tunnel is open");
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {} // the close handshake
    drop(ws);
    let closed = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        wait_for("the gateway to exit", Duration::from_secs(10), || s.gateway.process.child.try_wait().ok().flatten())
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");
    assert!(closed.elapsed() < Duration::from_secs(5), "exited {:?} after the last tunnel closed", closed.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_that_stays_open_is_cut_at_the_drain_timeout() {
    let backend = websocket_backend().await;
    let more = format!("{}{}", service_yaml("default", "ws", &[backend]), route("ws", "/ws", "ws"));
    let s = tokio::task::spawn_blocking(move || edge(&more, &["--drain-timeout", "2s"])).await.unwrap();
    let (_ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", s.port)).await.unwrap();
    let started = Instant::now();
    let mut s = s;
    let status =
        tokio::task::spawn_blocking(move || s.gateway.process.terminate(Duration::from_secs(10))).await.unwrap();
    let waited = started.elapsed();
    assert!(status.success(), "{status}");
    assert!((Duration::from_millis(1500)..Duration::from_secs(6)).contains(&waited), "exited after {waited:?}");
}

// ---------------------------------------------------------------------------------------------
// Configuration input

#[test]
fn deeply_nested_yaml_is_refused_at_once_and_the_last_good_table_serves() {
    let s = edge("", &[]);
    for deep in [
        format!("{}{}\n", "[".repeat(60_000), "]".repeat(60_000)),
        format!("a: {}1{}\n", "{a: ".repeat(30_000), "}".repeat(30_000)),
    ] {
        let generation = s.gateway.generation();
        let deep_file = s.gateway.config_file().with_file_name("deep.yaml");
        let written = Instant::now();
        std::fs::write(&deep_file, &deep).unwrap();
        s.gateway.wait_generation_after(generation);
        let took = written.elapsed();
        let report = s.gateway.config()["report"]["source_errors"].to_string();
        assert!(report.contains("deep.yaml") && report.contains("document 1"), "{report}");
        // The reload itself waits for the file watcher's debounce; the rejection adds little.
        assert!(took < Duration::from_secs(2), "rejected after {took:?}");
        assert_eq!(s.exchange(&get(b"/public", "x")).status, 200, "the last good table serves");
        std::fs::remove_file(&deep_file).unwrap();
        wait_for("the rejected file to be forgotten", Duration::from_secs(5), || {
            s.gateway.config()["report"]["source_errors"].as_array().is_some_and(Vec::is_empty).then_some(())
        });
    }
}
