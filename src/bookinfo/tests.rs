//! Each test starts real servers on 127.0.0.1:0 and talks HTTP to them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::details::Details;
use super::http::{self as shared, BaseUrl, Body, Handler, Upstream, serve};
use super::productpage::{DETAILS_UNAVAILABLE, ProductPage, REVIEWS_UNAVAILABLE};
use super::ratings::RatingsService;
use super::reviews::{RATINGS_UNAVAILABLE, Reviews};
use super::{BookinfoArgs, Service, Version};

/// Starts `handler` on an ephemeral port; the server lives until the test's runtime ends.
async fn start<H: Handler>(handler: H) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, handler, std::future::pending()));
    addr
}

fn url(addr: SocketAddr) -> BaseUrl {
    format!("http://{addr}").parse().unwrap()
}

/// An address where nothing listens: bound, then released.
async fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap()
}

fn upstream() -> Upstream {
    Upstream::new(Duration::from_secs(2))
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&'static str, &'static str)]) -> (StatusCode, String) {
    let mut map = HeaderMap::new();
    for &(name, value) in headers {
        map.append(name, HeaderValue::from_static(value));
    }
    let (status, body) = Upstream::new(Duration::from_secs(5)).get(&url(addr), path, &map).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get_json(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    let (status, body) = get(addr, path, &[]).await;
    (status, serde_json::from_str(&body).unwrap())
}

async fn reviews(version: Version, ratings: SocketAddr) -> SocketAddr {
    start(Reviews::new(version, "reviews-pod".into(), None, url(ratings), upstream())).await
}

async fn product_page(details: SocketAddr, reviews: SocketAddr, ratings: SocketAddr, upstream: Upstream) -> SocketAddr {
    start(ProductPage::new(url(details), url(reviews), url(ratings), upstream)).await
}

/// A stand-in upstream that records the headers of every request and answers a fixed JSON body.
#[derive(Clone)]
struct Capture {
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    status: StatusCode,
    body: Value,
}

impl Capture {
    fn new(status: StatusCode, body: Value) -> Self {
        Capture { seen: Arc::default(), status, body }
    }

    fn seen(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Capture {
    const NAME: &'static str = "capture";
    type Route = ();

    fn route(&self, _path: &str) -> Option<()> {
        Some(())
    }

    async fn respond(&self, (): (), request: &Parts) -> Response<Body> {
        self.seen.lock().unwrap().push(request.headers.clone());
        shared::json(self.status, &self.body)
    }
}

fn reviews_v2_body() -> Value {
    json!({"id": 0, "version": "v2", "podname": "capture", "reviews": [
        {"reviewer": "Reviewer1", "text": "fine", "rating": {"stars": 3, "color": "black"}}
    ]})
}

#[tokio::test]
async fn reviews_v1_has_no_ratings() {
    let reviews = reviews(Version::V1, closed_port().await).await;
    let (status, body) = get_json(reviews, "/reviews/0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], "v1");
    assert_eq!(body["podname"], "reviews-pod");
    let list = body["reviews"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|review| review.get("rating").is_none()), "{body}");
}

#[tokio::test]
async fn reviews_v2_shows_black_stars_from_ratings() {
    let ratings = start(RatingsService).await;
    let reviews = reviews(Version::V2, ratings).await;
    let (status, body) = get_json(reviews, "/reviews/7").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], 7);
    assert_eq!(body["version"], "v2");
    assert_eq!(body["reviews"][0]["rating"], json!({"stars": 5, "color": "black"}));
    assert_eq!(body["reviews"][1]["rating"], json!({"stars": 4, "color": "black"}));
}

#[tokio::test]
async fn reviews_v3_shows_red_stars_from_ratings() {
    let ratings = start(RatingsService).await;
    let reviews = reviews(Version::V3, ratings).await;
    let (_, body) = get_json(reviews, "/reviews/0").await;
    assert_eq!(body["version"], "v3");
    assert_eq!(body["reviews"][0]["rating"], json!({"stars": 5, "color": "red"}));
    assert_eq!(body["reviews"][1]["rating"], json!({"stars": 4, "color": "red"}));
}

#[tokio::test]
async fn reviews_v3_with_ratings_down_answers_200_with_an_error_rating() {
    let reviews = reviews(Version::V3, closed_port().await).await;
    let (status, body) = get_json(reviews, "/reviews/0").await;
    assert_eq!(status, StatusCode::OK);
    for review in body["reviews"].as_array().unwrap() {
        assert_eq!(review["rating"], json!({"error": RATINGS_UNAVAILABLE}));
    }
}

#[tokio::test]
async fn reviews_forwards_end_user_to_ratings() {
    let ratings = Capture::new(StatusCode::OK, json!({"id": 0, "ratings": {"Reviewer1": 1}}));
    let reviews = reviews(Version::V2, start(ratings.clone()).await).await;
    let (_, body) = get(reviews, "/reviews/0", &[("end-user", "jason"), ("x-request-id", "r-1")]).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reviews"][0]["rating"], json!({"stars": 1, "color": "black"}));
    assert_eq!(body["reviews"][1]["rating"], json!({"error": "no rating from Reviewer2"}));
    let seen = ratings.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["end-user"], "jason");
    assert_eq!(seen[0]["x-request-id"], "r-1");
}

#[tokio::test]
async fn productpage_names_the_reviews_version_that_answered_and_colours_its_stars() {
    let ratings = start(RatingsService).await;
    let details = start(Details).await;
    let page = product_page(details, reviews(Version::V2, ratings).await, ratings, upstream()).await;
    let (status, html) = get(page, "/productpage", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("reviews-v2"), "{html}");
    assert!(html.contains("style=\"color: black\">★★★★★</p>"), "{html}");
    assert!(html.contains("William Shakespeare"), "{html}");
    assert!(!html.contains(REVIEWS_UNAVAILABLE) && !html.contains(DETAILS_UNAVAILABLE));
}

#[tokio::test]
async fn productpage_renders_red_stars_for_v3_and_none_for_v1() {
    let ratings = start(RatingsService).await;
    let details = start(Details).await;
    let v3 = product_page(details, reviews(Version::V3, ratings).await, ratings, upstream()).await;
    let (_, html) = get(v3, "/productpage", &[]).await;
    assert!(html.contains("reviews-v3") && html.contains("style=\"color: red\">★★★★☆</p>"), "{html}");

    let v1 = product_page(details, reviews(Version::V1, ratings).await, ratings, upstream()).await;
    let (_, html) = get(v1, "/productpage", &[]).await;
    assert!(html.contains("reviews-v1") && !html.contains('★'), "{html}");
}

#[tokio::test]
async fn productpage_shows_an_error_box_with_200_when_reviews_is_down() {
    let details = start(Details).await;
    let down = closed_port().await;
    let page = product_page(details, down, down, upstream()).await;
    let (status, html) = get(page, "/productpage", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(REVIEWS_UNAVAILABLE), "{html}");
    assert!(html.contains("William Shakespeare"), "details must still render: {html}");
}

#[tokio::test]
async fn productpage_shows_an_error_box_when_reviews_answers_an_error_status() {
    let failing = start(Capture::new(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "overloaded"}))).await;
    let down = closed_port().await;
    let page = product_page(down, failing, down, upstream()).await;
    let (status, html) = get(page, "/productpage", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(REVIEWS_UNAVAILABLE) && html.contains(DETAILS_UNAVAILABLE), "{html}");
}

#[tokio::test]
async fn productpage_gives_up_on_a_reviews_service_that_never_answers() {
    // Bound but never accepted: the connection completes in the backlog, no response comes.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let details = start(Details).await;
    let timeout = Duration::from_millis(300);
    let page = product_page(details, silent.local_addr().unwrap(), details, Upstream::new(timeout)).await;
    let started = std::time::Instant::now();
    let (status, html) = get(page, "/productpage", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(REVIEWS_UNAVAILABLE), "{html}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn productpage_forwards_routing_and_trace_headers_to_reviews_only_those() {
    let capture = Capture::new(StatusCode::OK, reviews_v2_body());
    let reviews = start(capture.clone()).await;
    let down = closed_port().await;
    let page = product_page(down, reviews, down, upstream()).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let headers = [
        ("end-user", "jason"),
        ("x-request-id", "req-42"),
        ("traceparent", traceparent),
        ("tracestate", "vendor=1"),
        ("cookie", "session=secret"),
    ];
    let (_, html) = get(page, "/productpage", &headers).await;
    assert!(html.contains("reviews-v2"), "{html}");

    let seen = capture.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["end-user"], "jason");
    assert_eq!(seen[0]["x-request-id"], "req-42");
    assert_eq!(seen[0]["traceparent"], traceparent);
    assert_eq!(seen[0]["tracestate"], "vendor=1");
    assert!(seen[0].get("cookie").is_none(), "only the listed headers are forwarded");
}

#[tokio::test]
async fn productpage_api_proxies_to_upstreams_and_maps_failures_to_status() {
    let ratings = start(RatingsService).await;
    let details = start(Details).await;
    let down = closed_port().await;
    let page = product_page(details, down, ratings, upstream()).await;

    let (status, products) = get_json(page, "/api/v1/products").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(products[0]["title"], "The Comedy of Errors");
    let (status, book) = get_json(page, "/api/v1/products/3").await;
    assert_eq!((status, &book["id"], &book["ISBN-13"]), (StatusCode::OK, &json!(3), &json!("000-0000000001")));
    let (status, ratings) = get_json(page, "/api/v1/products/3/ratings").await;
    assert_eq!((status, &ratings["ratings"]["Reviewer2"]), (StatusCode::OK, &json!(4)));
    let (status, error) = get_json(page, "/api/v1/products/3/reviews").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(error["error"].as_str().unwrap().starts_with("reviews service"), "{error}");
}

#[tokio::test]
async fn every_service_answers_health_and_404_json_for_unknown_paths() {
    let down = url(closed_port().await);
    let services = [
        (start(Details).await, "Details is healthy"),
        (start(RatingsService).await, "Ratings is healthy"),
        (start(Reviews::new(Version::V1, "p".into(), None, down.clone(), upstream())).await, "Reviews is healthy"),
        (start(ProductPage::new(down.clone(), down.clone(), down, upstream())).await, "Product page is healthy"),
    ];
    for (addr, healthy) in services {
        assert_eq!(get_json(addr, "/health").await, (StatusCode::OK, json!({"status": healthy})));
        let (status, body) = get_json(addr, "/no/such/thing").await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"error": "not found"})));
    }
}

#[tokio::test]
async fn non_numeric_product_ids_are_not_found() {
    let details = start(Details).await;
    assert_eq!(get_json(details, "/details/abc").await.0, StatusCode::NOT_FOUND);
}

/// Sends one raw HTTP/1.1 request and returns the status line.
async fn raw_status_line(addr: SocketAddr, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn known_paths_with_another_method_are_405() {
    let details = start(Details).await;
    assert_eq!(raw_status_line(details, "POST", "/details/0").await, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(raw_status_line(details, "DELETE", "/nowhere").await, "HTTP/1.1 404 Not Found");
    assert_eq!(raw_status_line(details, "HEAD", "/health").await, "HTTP/1.1 200 OK");
}

/// Answers after a delay, to have a request in flight during shutdown.
struct Slow;

impl Handler for Slow {
    const NAME: &'static str = "slow";
    type Route = ();

    fn route(&self, _path: &str) -> Option<()> {
        Some(())
    }

    async fn respond(&self, (): (), _request: &Parts) -> Response<Body> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        shared::json(StatusCode::OK, &json!({"slow": true}))
    }
}

#[tokio::test]
async fn serve_stops_accepting_on_shutdown_and_finishes_in_flight_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Slow, async move {
        let _ = stopped.await;
    }));

    let in_flight = tokio::spawn(async move { get(addr, "/", &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();

    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"slow":true}"#));
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns after draining").unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BookinfoArgs,
}

#[test]
fn bookinfo_args_parse_service_version_and_urls() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from([
        "gantry",
        "productpage",
        "--listen",
        "127.0.0.1:9999",
        "--version",
        "v3",
        "--details-url",
        "http://details:9080/",
        "--reviews-url",
        "http://reviews:9080",
        "--ratings-url",
        "http://ratings:9080",
    ])
    .unwrap();
    assert_eq!(cli.args.service, Service::ProductPage);
    assert_eq!(cli.args.listen, "127.0.0.1:9999".parse().unwrap());
    assert_eq!(cli.args.version, Version::V3);
    assert_eq!(cli.args.details_url.to_string(), "http://details:9080", "trailing slash trimmed");

    assert!(Cli::try_parse_from(["gantry", "details", "--details-url", "https://details"]).is_err());
    assert!(Cli::try_parse_from(["gantry", "frontpage"]).is_err());
}
