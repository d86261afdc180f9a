//! `gantry demo` exactly as the README starts it: bookinfo behind the gateway.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

fn reviews_version(page: &str) -> Option<&'static str> {
    ["reviews-v1", "reviews-v2", "reviews-v3"].into_iter().find(|v| page.contains(v))
}

#[test]
fn demo_serves_bookinfo_with_the_reviews_split_and_jason_on_v2() {
    let port = free_port();
    let admin = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("demo.log")).unwrap();
    let child = Command::new(GANTRY)
        .args(["demo", "--port", &port.to_string(), "--admin-address", &admin])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut demo = Process { child, log: dir.path().join("demo.log") };
    let page_url = format!("http://127.0.0.1:{port}/productpage");
    wait_for("the product page", Duration::from_secs(30), || {
        try_request("GET", &page_url, &[], None).ok().filter(|r| r.status == 200).map(|_| ())
    });

    let mut versions = BTreeSet::new();
    for _ in 0..20 {
        let page = http_get(&page_url);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("The Comedy of Errors"), "the product page");
        versions.insert(reviews_version(&page.body).expect("the page names the reviews version"));
    }
    assert!(versions.len() >= 2, "more than one reviews version answers: {versions:?}");

    for _ in 0..10 {
        let page = request("GET", &page_url, &[("end-user", "jason")], None);
        assert_eq!(reviews_version(&page.body), Some("reviews-v2"), "jason always sees v2");
    }

    let metrics = http_get(&format!("http://{admin}/metrics")).body;
    assert!(metrics.contains("gantry_requests_total{code_class=\"2xx\",route=\"bookinfo/productpage\"}"), "{metrics}");
    assert!(metrics.contains("route=\"bookinfo/reviews\""), "productpage reaches reviews through the gateway");

    signal(&demo.child, "INT");
    let status = wait_for("the demo to stop", Duration::from_secs(15), || demo.child.try_wait().ok().flatten());
    assert!(status.success(), "{status}\n{}", demo.log_text());
    assert!(std::net::TcpStream::connect("127.0.0.1:9080").is_err(), "productpage stopped with the demo");
}
