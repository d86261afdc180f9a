//! The floor of Gantry's stack, for `scripts/bench`: the least a reverse proxy built on hyper and
//! tokio can do per request, with Gantry's threading (one current-thread runtime per core) and
//! nothing else: no routing, no header work, no metrics, no timeouts, no pool (each client
//! connection keeps one upstream connection of its own). Gantry's distance from this is the
//! cost of its features; this binary's distance from nginx is the cost of the stack.
//!
//! Usage: `hyper_floor LISTEN_ADDR BACKEND_ADDR [THREADS]`. Not a product: on any upstream
//! error it answers an empty 502 and forgets that upstream connection.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

type Body = UnsyncBoxBody<bytes::Bytes, hyper::Error>;
type Upstream = Rc<RefCell<Option<client::SendRequest<Body>>>>;
type Answer = Response<Either<Incoming, Empty<bytes::Bytes>>>;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || std::io::Error::other("usage: hyper_floor LISTEN_ADDR BACKEND_ADDR [THREADS]");
    let listen: SocketAddr = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let backend: SocketAddr = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let threads = match args.next() {
        Some(n) => n.parse().map_err(|_| usage())?,
        None => std::thread::available_parallelism()?.get(),
    };
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let listener = listener.try_clone()?;
        workers.push(std::thread::spawn(move || serve(listener, backend)));
    }
    for worker in workers {
        worker.join().map_err(|_| std::io::Error::other("a worker panicked"))??;
    }
    Ok(())
}

/// One worker: accepts on the shared socket (the kernel wakes one waiting thread per
/// connection) and serves each connection on this thread.
fn serve(listener: std::net::TcpListener, backend: SocketAddr) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let upstream = Upstream::default();
            let service = hyper::service::service_fn(move |request| forward(Rc::clone(&upstream), backend, request));
            tokio::task::spawn_local(server::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    })
}

async fn forward(
    upstream: Upstream,
    backend: SocketAddr,
    request: Request<Incoming>,
) -> Result<Answer, std::convert::Infallible> {
    let taken = upstream.borrow_mut().take();
    let mut sender = match taken {
        Some(sender) => sender,
        None => match connect(backend).await {
            Ok(sender) => sender,
            Err(_) => return Ok(bad_gateway()),
        },
    };
    match sender.send_request(request.map(|body| body.boxed_unsync())).await {
        Ok(response) => {
            *upstream.borrow_mut() = Some(sender);
            Ok(response.map(Either::Left))
        }
        Err(_) => Ok(bad_gateway()),
    }
}

async fn connect(backend: SocketAddr) -> Result<client::SendRequest<Body>, Box<dyn std::error::Error>> {
    let stream = tokio::net::TcpStream::connect(backend).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = client::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(connection);
    Ok(sender)
}

fn bad_gateway() -> Answer {
    let mut response = Response::new(Either::Right(Empty::new()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
