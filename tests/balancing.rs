//! Black-box tests of how traffic is spread over real endpoints: BackendPolicy algorithms,
//! passive health and connection limits, in file mode.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: default}\nspec:\n  parentRefs: [{name: web}]\n  rules: [{backendRefs: [{name: svc, port: 80}]}]\n---\n";

fn policy(spec: &str) -> String {
    format!(
        "apiVersion: gantry.dev/v1alpha1\nkind: BackendPolicy\nmetadata: {{name: p, namespace: default}}\nspec:\n  targetRefs: [{{group: '', kind: Service, name: svc}}]\n{spec}---\n"
    )
}

struct Setup {
    gateway: Gateway,
    port: u16,
    backends: Vec<Echo>,
}

impl Setup {
    fn start(count: usize, policy: &str, echo_args: &[&str]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let backends: Vec<Echo> = (0..count).map(|i| echo_with(dir.path(), &format!("e{i}"), echo_args)).collect();
        std::mem::forget(dir);
        let port = free_port();
        let addresses: Vec<SocketAddr> = backends.iter().map(|b| b.address).collect();
        let gateway = Gateway::start(&Self::config(port, &addresses, policy));
        Setup { gateway, port, backends }
    }

    fn config(port: u16, addresses: &[SocketAddr], policy: &str) -> String {
        format!("{}{}{ROUTE}{policy}", gateway_yaml(&[port]), service_yaml("default", "svc", addresses))
    }

    fn url(&self) -> String {
        self.gateway.url(self.port, "/")
    }

    fn counts(&self, requests: usize, headers: &[(&str, &str)]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for _ in 0..requests {
            *counts.entry(request("GET", &self.url(), headers, None).backend()).or_insert(0) += 1;
        }
        counts
    }
}

#[test]
fn round_robin_is_even() {
    let s = Setup::start(3, "", &[]);
    let counts = s.counts(300, &[]);
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), [100, 100, 100], "{counts:?}");
}

#[test]
fn random_spreads_over_every_endpoint() {
    let s = Setup::start(3, &policy("  loadBalancer: {type: Random}\n"), &[]);
    let counts = s.counts(600, &[]);
    assert_eq!(counts.len(), 3);
    for (backend, n) in &counts {
        // Binomial(600, 1/3): the mean is 200 and the standard deviation 11.5; 5 sigma.
        assert!((143..=257).contains(n), "{backend}: {n} of 600 ({counts:?})");
    }
}

#[test]
fn consistent_hash_is_sticky_and_removing_an_endpoint_moves_only_its_keys() {
    let hash = policy("  loadBalancer:\n    type: ConsistentHash\n    consistentHash: {header: x-user}\n");
    let s = Setup::start(5, &hash, &[]);
    let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let owner = |user: &str| request("GET", &s.url(), &[("x-user", user)], None).backend();
    let before: BTreeMap<&str, String> = users.iter().map(|u| (u.as_str(), owner(u))).collect();
    for user in users.iter().take(50) {
        assert_eq!(owner(user), before[user.as_str()], "the same key reaches the same endpoint");
    }
    let removed = s.backends[2].name.clone();
    let generation = s.gateway.generation();
    let survivors: Vec<SocketAddr> = s.backends.iter().filter(|b| b.name != removed).map(|b| b.address).collect();
    s.gateway.write_config(&Setup::config(s.port, &survivors, &hash));
    s.gateway.wait_generation_after(generation);
    let mut moved = 0;
    for user in &users {
        let now = owner(user);
        assert_ne!(now, removed);
        if before[user.as_str()] != removed && now != before[user.as_str()] {
            moved += 1;
        }
    }
    // Maglev keeps keys of the surviving endpoints where they were, up to a small slack.
    assert!(moved <= 4, "{moved} of 200 keys moved between surviving endpoints");
}

#[test]
fn a_cookie_affinity_is_set_and_kept() {
    let s = Setup::start(
        4,
        &policy("  loadBalancer:\n    type: ConsistentHash\n    consistentHash: {cookie: {name: session, ttl: 1h}}\n"),
        &[],
    );
    let first = http_get(&s.url());
    let cookie = first.header("set-cookie").expect("a session cookie is set").to_string();
    assert!(cookie.starts_with("session="), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    for _ in 0..20 {
        assert_eq!(request("GET", &s.url(), &[("cookie", &pair)], None).backend(), first.backend());
    }
}

#[test]
fn least_request_sends_less_to_a_slow_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let fast = echo(dir.path(), "fast");
    let slow = echo_with(dir.path(), "slow", &["--delay-ms", "200"]);
    let port = free_port();
    let config = |policy: &str| {
        format!(
            "{}{}{ROUTE}{policy}",
            gateway_yaml(&[port]),
            service_yaml("default", "svc", &[fast.address, slow.address])
        )
    };
    let gateway = Gateway::start(&config(&policy("  loadBalancer: {type: LeastRequest}\n")));
    let url = gateway.url(port, "/");
    let counts = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (url, counts) = (url.clone(), Arc::clone(&counts));
            std::thread::spawn(move || {
                for _ in 0..40 {
                    let backend = http_get(&url).backend();
                    *counts.lock().unwrap().entry(backend).or_insert(0) += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    let slow_share = counts.get("slow").copied().unwrap_or(0) as f64 / 320.0;
    // Round-robin would give the slow endpoint half; least-request keeps it to a few percent.
    assert!(slow_share < 0.2, "slow endpoint got {:.0}% ({counts:?})", slow_share * 100.0);
}

#[test]
fn a_killed_endpoint_is_avoided_without_failed_requests() {
    let mut s =
        Setup::start(3, &policy("  healthCheck:\n    passive: {consecutiveFailures: 2, ejectionTime: 30s}\n"), &[]);
    let mut failures = Vec::new();
    for i in 0..150 {
        if i == 30 {
            let victim = &mut s.backends[1].process.child;
            victim.kill().unwrap();
            victim.wait().unwrap();
        }
        let reply = try_request("GET", &s.url(), &[], None);
        match reply {
            Ok(r) if r.status == 200 => assert!(i < 31 || r.backend() != "e1"),
            Ok(r) => failures.push((i, r.status)),
            Err(e) => failures.push((i, e.to_string().len() as u16)),
        }
    }
    // A refused connection is retried on another endpoint, so not even the first fails.
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let metrics = s.gateway.metrics();
    assert!(metrics.contains("gantry_endpoint_ejections_total{backend=\"default/svc:80\""), "{metrics}");
}

#[test]
fn over_the_connection_limit_requests_get_503_at_once() {
    let s =
        Setup::start(1, &policy("  connection: {maxConnections: 2, maxPendingRequests: 0}\n"), &["--delay-ms", "1000"]);
    let url = s.url();
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                (http_get(&url).status, started.elapsed())
            })
        })
        .collect();
    let results: Vec<(u16, Duration)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let served = results.iter().filter(|(s, _)| *s == 200).count();
    let rejected: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(served, 2, "{results:?}");
    assert_eq!(rejected.len(), 4, "{results:?}");
    assert!(rejected.iter().all(|(_, took)| *took < Duration::from_millis(500)), "503 at once: {results:?}");
}

#[test]
fn an_invalid_policy_is_reported_and_the_service_keeps_the_defaults() {
    let s = Setup::start(2, &policy("  loadBalancer: {type: ConsistentHash}\n"), &[]);
    let counts = s.counts(20, &[]);
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), [10, 10], "round-robin by default");
    let config = s.gateway.config();
    let problems = config["report"]["status"]["problems"].to_string();
    assert!(problems.contains("consistentHash"), "{problems}");
    let status = config["report"]["status"]["backend_policies"]["default/p"].to_string();
    assert!(status.contains("\"False\""), "{status}");
}
