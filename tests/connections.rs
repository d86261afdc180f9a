//! Black-box tests of how the data plane holds connections: client connections spread over
//! the worker threads, upstream connections kept per worker and reused, and endpoints that
//! close idle connections. Real `gantry` processes, real backends.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use support::*;

const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: default}\nspec:\n  parentRefs: [{name: web}]\n  rules:\n    - backendRefs: [{name: backend, port: 80}]\n---\n";

fn gateway_to(backend: SocketAddr, extra_args: &[&str]) -> (Gateway, SocketAddr) {
    let port = free_port();
    let config = format!("{}{}{ROUTE}", gateway_yaml(&[port]), service_yaml("default", "backend", &[backend]));
    let gateway = Gateway::start_with(&config, extra_args);
    (gateway, format!("127.0.0.1:{port}").parse().unwrap())
}

fn upstream_connections(gateway: &Gateway) -> f64 {
    metric(&gateway.metrics(), "gantry_upstream_connections_total")
}

/// A keep-alive HTTP/1.1 client connection that reads each response by its Content-Length.
struct Client(BufReader<TcpStream>);

impl Client {
    fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).expect("connect to the gateway");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self(BufReader::new(stream))
    }

    /// Sends a GET and returns the status code.
    fn get(&mut self, path: &str) -> u16 {
        write!(self.0.get_mut(), "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        self.read_response().0
    }

    /// Sends a POST with `body` and returns the status code and the response body's length.
    fn post(&mut self, path: &str, body: &[u8]) -> (u16, usize) {
        let stream = self.0.get_mut();
        write!(stream, "POST {path} HTTP/1.1\r\nHost: test\r\ncontent-length: {}\r\n\r\n", body.len()).unwrap();
        stream.write_all(body).unwrap();
        self.read_response()
    }

    fn read_response(&mut self) -> (u16, usize) {
        let mut status_line = String::new();
        self.0.read_line(&mut status_line).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.0.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).unwrap();
        (status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line"), length)
    }
}

#[test]
fn one_upstream_connection_serves_a_whole_keep_alive_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let backend = echo(dir.path(), "a");
    let (gateway, address) = gateway_to(backend.address, &["--workers", "2"]);
    let mut client = Client::connect(address);
    for i in 0..50 {
        assert_eq!(client.get(&format!("/{i}")), 200);
    }
    assert_eq!(upstream_connections(&gateway), 1.0, "50 requests in a row need one upstream connection");
}

/// Two client connections, requests alternating between them. With two workers each
/// connection lands on its own worker, and each worker has its own pool: two upstream
/// connections. With one worker both share its pool: one.
#[test]
fn client_connections_are_spread_over_the_workers_and_each_has_its_pool() {
    let dir = tempfile::tempdir().unwrap();
    let backend = echo(dir.path(), "a");
    for (workers, expected) in [("2", 2.0), ("1", 1.0)] {
        let (gateway, address) = gateway_to(backend.address, &["--workers", workers]);
        let mut clients = [Client::connect(address), Client::connect(address)];
        for i in 0..20 {
            assert_eq!(clients[i % 2].get("/"), 200);
        }
        assert_eq!(upstream_connections(&gateway), expected, "upstream connections with {workers} worker(s)");
    }
}

/// A backend that answers each request and then closes the connection without saying so
/// (no `Connection: close`), as a server does when its keep-alive timeout or request limit
/// is reached. The gateway must notice, or send again on a new connection: no request fails.
#[test]
fn an_endpoint_that_closes_kept_alive_connections_fails_no_request() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            // Dropped here: the connection closes right after the answer.
        }
    });
    let (gateway, address) = gateway_to(backend, &["--workers", "1"]);
    let mut client = Client::connect(address);
    for i in 0..40 {
        assert_eq!(client.get("/"), 200, "request {i}");
        if i % 4 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(upstream_connections(&gateway) >= 40.0, "each request needed a new connection");
}

/// Bodies far larger than any buffer, both ways, on one kept-alive upstream connection: the
/// request body streams up, the response body streams down, and once it has been read to the
/// end the connection goes back to the pool and carries the next exchange.
#[test]
fn large_bodies_stream_both_ways_and_the_connection_is_reused() {
    const RESPONSE_EXTRA: usize = 3 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    // Answers each request with a body of the request's length plus 3 MiB, and keeps the
    // connection open for the next one.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let answer = length + RESPONSE_EXTRA;
                    let stream = reader.get_mut();
                    write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {answer}\r\n\r\n").unwrap();
                    stream.write_all(&vec![b'x'; answer]).unwrap();
                }
            });
        }
    });
    let (gateway, address) = gateway_to(backend, &["--workers", "1"]);
    let mut client = Client::connect(address);
    for i in 0..3 {
        let sent = (i + 1) << 20;
        assert_eq!(client.post("/", &vec![b'y'; sent]), (200, sent + RESPONSE_EXTRA), "exchange {i}");
    }
    assert_eq!(client.get("/"), 200);
    assert_eq!(upstream_connections(&gateway), 1.0, "every exchange on the one upstream connection");
}
