//! Kubernetes mode against the real test cluster (`scripts/testenv up`): `gantry controller`
//! runs as a local process with a ServiceAccount token bound only to the chart's RBAC, its
//! backends are Deployments of `gantry echo` Pods run by the process kubelet on their own pod
//! IPs, and every object is applied with kubectl.

mod support;

use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Pausing the API server stalls every other test's kubectl calls: that test takes this lock
/// for writing, the others for reading.
static API_SERVER: RwLock<()> = RwLock::new(());

/// One test's world: a namespace with echo Pods behind a Service, a GatewayClass of a
/// controller name of its own, a Gateway on a free port, and the RBAC the chart ships.
struct World {
    ns: TestNamespace,
    controller_name: String,
    port: u16,
    kubeconfig: std::path::PathBuf,
}

fn testenv_bin(name: &str) -> String {
    testenv_dir().join("bin").join(name).to_string_lossy().into_owned()
}

impl World {
    fn new(prefix: &str, replicas: u32) -> World {
        let ns = TestNamespace::new(prefix);
        let name = ns.0.clone();
        let controller_name = format!("gantry.dev/{name}");
        let port = free_port();
        apply(&format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: {name}}}\nspec: {{controllerName: {controller_name}}}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: web, namespace: {name}}}\nspec:\n  gatewayClassName: {name}\n  listeners:\n    - {{name: http, protocol: HTTP, port: {port}, allowedRoutes: {{namespaces: {{from: All}}}}}}\n    - {{name: only-a, protocol: HTTP, port: {port}, hostname: a.example.com}}\n"
        ));
        echo_deployment(&name, "echo", replicas);
        let kubeconfig = service_account_kubeconfig(&name);
        World { ns, controller_name, port, kubeconfig }
    }

    fn name(&self) -> &str {
        &self.ns.0
    }
}

impl Drop for World {
    /// The cluster-scoped objects; the namespace goes with `TestNamespace`.
    fn drop(&mut self) {
        let name = self.ns.0.clone();
        for kind in ["gatewayclass", "clusterrole", "clusterrolebinding"] {
            let _ = kubectl(&["delete", kind, &name, "--ignore-not-found", "--wait=false"]);
        }
    }
}

impl World {
    /// `gantry controller` with the world's ServiceAccount, data plane on `bind`.
    fn controller(&self, bind: &str, identity: &str) -> (Process, SocketAddr) {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = testenv_dir().join(format!("{}-{identity}.log", self.name()));
        let process = spawn_gantry(
            &[
                "controller",
                "--kubeconfig",
                self.kubeconfig.to_str().unwrap(),
                "--controller-name",
                &self.controller_name,
                "--bind-address",
                bind,
                "--admin-address",
                &admin.to_string(),
                "--gateway-address",
                bind,
                "--lease-namespace",
                self.name(),
                "--identity",
                identity,
                "--lease-duration",
                "6s",
            ],
            log,
        );
        wait_for("the controller to be ready", Duration::from_secs(60), || {
            try_request("GET", &format!("http://{admin}/readyz"), &[], None).ok().filter(|r| r.status == 200)
        });
        (process, admin)
    }

    fn url(&self, bind: &str, path: &str) -> String {
        format!("http://{bind}:{}{path}", self.port)
    }

    fn route(&self, name: &str, path: &str, backend: &str) {
        apply(&route_yaml(self.name(), name, path, backend, ""));
    }
}

fn route_yaml(ns: &str, name: &str, path: &str, backend: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  parentRefs: [{{name: web, namespace: {ns}, sectionName: http}}]\n{extra_spec}  rules:\n    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n      backendRefs: [{{name: {backend}, port: 80}}]\n"
    )
}

/// A ServiceAccount bound to the chart's ClusterRole and Lease Role only (rendered with helm
/// from `charts/gantry`), and a kubeconfig with a token minted for it.
fn service_account_kubeconfig(ns: &str) -> std::path::PathBuf {
    let chart = repo_root().join("charts/gantry");
    let output = std::process::Command::new(testenv_bin("helm"))
        .args(["template", ns, chart.to_str().unwrap(), "--namespace", ns])
        .args(["--show-only", "templates/clusterrole.yaml", "--show-only", "templates/role.yaml"])
        .output()
        .expect("helm template");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    apply(&String::from_utf8_lossy(&output.stdout));
    kubectl_ok(&["-n", ns, "create", "serviceaccount", "gantry"]);
    let _ = kubectl(&["delete", "clusterrolebinding", ns, "--ignore-not-found"]);
    kubectl_ok(&[
        "create",
        "clusterrolebinding",
        ns,
        &format!("--clusterrole={ns}"),
        &format!("--serviceaccount={ns}:gantry"),
    ]);
    kubectl_ok(&[
        "-n",
        ns,
        "create",
        "rolebinding",
        "gantry-leader-election",
        &format!("--role={ns}-leader-election"),
        &format!("--serviceaccount={ns}:gantry"),
    ]);
    let token = kubectl_ok(&["-n", ns, "create", "token", "gantry", "--duration=2h"]);
    let ca = testenv_dir().join("pki/ca.crt");
    let path = testenv_dir().join(format!("{ns}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: testenv, cluster: {{server: 'https://127.0.0.1:6443', certificate-authority: '{}'}}}}]\nusers: [{{name: gantry, user: {{token: '{}'}}}}]\ncontexts: [{{name: gantry, context: {{cluster: testenv, user: gantry}}}}]\ncurrent-context: gantry\n",
            ca.display(),
            token.trim()
        ),
    )
    .unwrap();
    path
}

fn spawn_gantry(args: &[&str], log: std::path::PathBuf) -> Process {
    let out = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new(GANTRY)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Process { child, log }
}

/// The condition `kind` of an object's status at `pointer` (a JSON pointer to a conditions list).
fn condition(object: &Value, pointer: &str, kind: &str) -> Option<(String, String)> {
    object.pointer(pointer)?.as_array()?.iter().find(|c| c["type"] == kind).map(|c| {
        (c["status"].as_str().unwrap_or_default().to_string(), c["reason"].as_str().unwrap_or_default().to_string())
    })
}

fn route_condition(ns: &str, route: &str, kind: &str) -> Option<(String, String)> {
    let object = kubectl_json(&["-n", ns, "get", "httproute", route]);
    condition(&object, "/status/parents/0/conditions", kind)
}

fn wait_route_condition(ns: &str, route: &str, kind: &str, want: (&str, &str)) {
    let what = format!("HTTPRoute {ns}/{route} {kind}={}/{}", want.0, want.1);
    wait_for(&what, Duration::from_secs(30), || {
        route_condition(ns, route, kind).filter(|(s, r)| s == want.0 && r == want.1)
    });
}

fn backend_of(url: &str) -> Option<String> {
    try_request("GET", url, &[], None).ok().filter(|r| r.status == 200).map(|r| r.backend())
}

#[test]
fn routes_serve_pods_follow_scaling_and_rollouts_and_go_away_on_delete() {
    let _shared = API_SERVER.read().unwrap_or_else(|e| e.into_inner());
    let world = World::new("k8s-serve", 3);
    let ns = world.name().to_string();
    let (_controller, _admin) = world.controller("127.0.0.1", "a");
    world.route("echo", "/", "echo");
    let url = world.url("127.0.0.1", "/hello");
    wait_for("the route to serve", Duration::from_secs(30), || backend_of(&url));

    let pods = ready_pods(&ns, "echo");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        seen.insert(backend_of(&url).expect("200"));
    }
    assert_eq!(seen, pods.iter().cloned().collect(), "every pod IP gets requests, nothing else");

    // Status, as the Gateway API defines it.
    wait_route_condition(&ns, "echo", "Accepted", ("True", "Accepted"));
    wait_route_condition(&ns, "echo", "ResolvedRefs", ("True", "ResolvedRefs"));
    let class = kubectl_json(&["get", "gatewayclass", &ns]);
    assert_eq!(condition(&class, "/status/conditions", "Accepted"), Some(("True".into(), "Accepted".into())));
    let gateway = kubectl_json(&["-n", &ns, "get", "gateway", "web"]);
    assert_eq!(condition(&gateway, "/status/conditions", "Programmed").map(|c| c.0), Some("True".into()));
    assert_eq!(gateway["status"]["addresses"][0]["value"], "127.0.0.1");
    assert_eq!(gateway["status"]["listeners"][0]["attachedRoutes"], 1, "{gateway}");
    let generation = gateway["metadata"]["generation"].clone();
    assert_eq!(gateway["status"]["conditions"][0]["observedGeneration"], generation);

    // Scaling down: only the remaining pod answers.
    kubectl_ok(&["-n", &ns, "scale", "deployment/echo", "--replicas=1"]);
    let remaining = wait_for("one ready pod", Duration::from_secs(60), || {
        let ready = ready_pods(&ns, "echo");
        (ready.len() == 1).then(|| ready[0].clone())
    });
    wait_for("traffic on the remaining pod only", Duration::from_secs(30), || {
        (0..10).all(|_| backend_of(&url).as_deref() == Some(remaining.as_str())).then_some(())
    });

    // A rolling update under steady requests fails none of them.
    kubectl_ok(&["-n", &ns, "scale", "deployment/echo", "--replicas=2"]);
    wait_for("two ready pods", Duration::from_secs(60), || (ready_pods(&ns, "echo").len() == 2).then_some(()));
    kubectl_ok(&["-n", &ns, "set", "env", "deployment/echo", "ROLLOUT=2"]);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut served = 0;
    loop {
        match try_request("GET", &url, &[], None) {
            Ok(r) if r.status == 200 => served += 1,
            Ok(r) => failures.push(r.status.to_string()),
            Err(e) => failures.push(e.to_string()),
        }
        let rolled = kubectl_json(&["-n", &ns, "get", "deployment", "echo"]);
        let done = rolled["status"]["updatedReplicas"] == 2
            && rolled["status"]["availableReplicas"] == 2
            && rolled["status"]["replicas"] == 2;
        if done || started.elapsed() > Duration::from_secs(90) {
            break;
        }
    }
    assert!(failures.is_empty(), "failed during the rollout: {failures:?} ({served} served)");

    kubectl_ok(&["-n", &ns, "delete", "httproute", "echo"]);
    wait_for("404 after the route is deleted", Duration::from_secs(30), || {
        try_request("GET", &url, &[], None).ok().filter(|r| r.status == 404)
    });
}

#[test]
fn broken_routes_get_the_specs_conditions_and_events() {
    let _shared = API_SERVER.read().unwrap_or_else(|e| e.into_inner());
    let world = World::new("k8s-status", 1);
    let ns = world.name().to_string();
    let other = TestNamespace::new("k8s-status-other");
    echo_deployment(&other.0, "elsewhere", 1);
    let (_controller, _admin) = world.controller("127.0.0.1", "a");

    world.route("missing", "/missing", "no-such-service");
    wait_route_condition(&ns, "missing", "ResolvedRefs", ("False", "BackendNotFound"));
    wait_for("500 for the missing backend", Duration::from_secs(30), || {
        try_request("GET", &world.url("127.0.0.1", "/missing"), &[], None).ok().filter(|r| r.status == 500)
    });

    let cross = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: cross, namespace: {ns}}}\nspec:\n  parentRefs: [{{name: web, sectionName: http}}]\n  rules: [{{matches: [{{path: {{type: PathPrefix, value: /cross}}}}], backendRefs: [{{name: elsewhere, namespace: {}, port: 80}}]}}]\n",
        other.0
    );
    apply(&cross);
    wait_route_condition(&ns, "cross", "ResolvedRefs", ("False", "RefNotPermitted"));
    apply(&format!(
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: allow, namespace: {}}}\nspec:\n  from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {ns}}}]\n  to: [{{group: '', kind: Service}}]\n",
        other.0
    ));
    wait_route_condition(&ns, "cross", "ResolvedRefs", ("True", "ResolvedRefs"));
    wait_for("the cross-namespace backend to serve", Duration::from_secs(30), || {
        backend_of(&world.url("127.0.0.1", "/cross")).filter(|b| b.starts_with("elsewhere-"))
    });

    // Listener a.example.com, route b.example.com: no hostname in common.
    apply(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: hostname, namespace: {ns}}}\nspec:\n  parentRefs: [{{name: web, sectionName: only-a}}]\n  hostnames: [b.example.com]\n  rules: [{{backendRefs: [{{name: echo, port: 80}}]}}]\n"
    ));
    wait_route_condition(&ns, "hostname", "Accepted", ("False", "NoMatchingListenerHostname"));

    // The listener `only-a` allows routes from its own namespace only (the default).
    let foreign = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: foreign, namespace: {}}}\nspec:\n  parentRefs: [{{name: web, namespace: {ns}, sectionName: SECTION}}]\n  rules: [{{backendRefs: [{{name: elsewhere, port: 80}}]}}]\n",
        other.0
    );
    apply(&foreign.replace("SECTION", "only-a"));
    wait_route_condition(&other.0, "foreign", "Accepted", ("False", "NotAllowedByListeners"));
    apply(&foreign.replace("SECTION", "http"));
    wait_route_condition(&other.0, "foreign", "Accepted", ("True", "Accepted"));

    let events = kubectl_ok(&["-n", &ns, "get", "events", "--field-selector", "reason=Rejected"]);
    assert!(
        events.contains("missing") || events.contains("hostname"),
        "a Warning Event for a rejected route:\n{events}"
    );
}

#[test]
fn new_routes_and_new_endpoints_converge_in_well_under_a_second() {
    let _shared = API_SERVER.read().unwrap_or_else(|e| e.into_inner());
    let world = World::new("k8s-converge", 1);
    let (_controller, _admin) = world.controller("127.0.0.1", "a");
    let mut times = Vec::new();
    for i in 0..20 {
        let path = format!("/c{i}");
        let url = world.url("127.0.0.1", &path);
        let started = Instant::now();
        world.route(&format!("c{i}"), &path, "echo");
        wait_for("the new route", Duration::from_secs(10), || backend_of(&url));
        times.push(started.elapsed());
    }
    times.sort();
    println!("kubectl apply to first 200 over 20 routes: median {:?}, worst {:?}", times[10], times[19]);
    assert!(times[10] < Duration::from_secs(2), "median {:?}", times[10]);

    // A new ready endpoint: from the Pod turning Ready to its first request, 20 times (scale to
    // two, measure the new Pod, scale back to one).
    let url = world.url("127.0.0.1", "/c0");
    let mut endpoint_times = Vec::new();
    for _ in 0..20 {
        let before: std::collections::BTreeSet<String> = ready_pods(world.name(), "echo").into_iter().collect();
        kubectl_ok(&["-n", world.name(), "scale", "deployment/echo", "--replicas=2"]);
        // Polled every 50 ms throughout, so that the measurement starts no later than that.
        let new_pod = wait_for_every("a new ready pod", Duration::from_secs(60), Duration::from_millis(50), || {
            ready_pods(world.name(), "echo").into_iter().find(|p| !before.contains(p))
        });
        let ready_at = Instant::now();
        wait_for("the new pod to get a request", Duration::from_secs(10), || {
            (backend_of(&url).as_deref() == Some(new_pod.as_str())).then_some(())
        });
        endpoint_times.push(ready_at.elapsed());
        kubectl_ok(&["-n", world.name(), "scale", "deployment/echo", "--replicas=1"]);
        wait_for("one ready pod again", Duration::from_secs(60), || {
            (ready_pods(world.name(), "echo").len() == 1).then_some(())
        });
    }
    endpoint_times.sort();
    println!(
        "pod Ready (as kubectl sees it) to its first request over 20 new pods: median {:?}, worst {:?}",
        endpoint_times[10], endpoint_times[19]
    );
    assert!(endpoint_times[10] < Duration::from_secs(1), "median {:?}", endpoint_times[10]);
}

#[test]
fn a_paused_api_server_does_not_stop_traffic_and_changes_apply_after() {
    let world = World::new("k8s-pause", 2);
    let (_controller, admin) = world.controller("127.0.0.1", "a");
    world.route("echo", "/", "echo");
    let url = world.url("127.0.0.1", "/");
    wait_for("the route to serve", Duration::from_secs(30), || backend_of(&url));

    let _exclusive = API_SERVER.write().unwrap_or_else(|e| e.into_inner());
    let pid = std::fs::read_to_string(testenv_dir().join("run/kube-apiserver.pid")).unwrap().trim().to_string();
    let signal = |name: &str| {
        assert!(std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
    };
    signal("STOP");
    let started = Instant::now();
    let mut failures = 0;
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(30) {
        match backend_of(&url) {
            Some(_) => served += 1,
            None => failures += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ready = try_request("GET", &format!("http://{admin}/readyz"), &[], None).map(|r| r.status);
    signal("CONT");
    assert_eq!(failures, 0, "requests failed while the API server was paused ({served} served)");
    assert_eq!(ready.ok(), Some(200), "/readyz stays ready");

    world.route("after", "/after", "echo");
    wait_for("a route applied after the pause", Duration::from_secs(60), || {
        backend_of(&world.url("127.0.0.1", "/after"))
    });
}

#[test]
fn when_the_leader_dies_the_other_replica_takes_over_status_writing() {
    let _shared = API_SERVER.read().unwrap_or_else(|e| e.into_inner());
    let world = World::new("k8s-leader", 1);
    let ns = world.name().to_string();
    let (mut first, _) = world.controller("127.0.0.1", "first");
    let (_second, _) = world.controller("127.0.0.2", "second");
    world.route("echo", "/", "echo");
    wait_route_condition(&ns, "echo", "Accepted", ("True", "Accepted"));
    let holder = || {
        kubectl_json(&["-n", &ns, "get", "lease", "gantry-status-writer"])["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    };
    let leader = wait_for("a leader", Duration::from_secs(30), holder);
    assert_eq!(leader, "first", "the first replica took the Lease");
    for bind in ["127.0.0.1", "127.0.0.2"] {
        assert!(backend_of(&world.url(bind, "/")).is_some(), "every replica serves traffic ({bind})");
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let killed = Instant::now();
    wait_for("the second replica to take the Lease", Duration::from_secs(30), || {
        (holder().as_deref() == Some("second")).then_some(())
    });
    println!("leader failover took {:?} (Lease duration 6s)", killed.elapsed());
    world.route("after-failover", "/after", "echo");
    wait_route_condition(&ns, "after-failover", "Accepted", ("True", "Accepted"));
    assert!(backend_of(&world.url("127.0.0.2", "/after")).is_some());
}

#[test]
fn a_thousand_routes_at_once_all_go_live_with_status() {
    let _shared = API_SERVER.read().unwrap_or_else(|e| e.into_inner());
    let world = World::new("k8s-scale", 1);
    let ns = world.name().to_string();
    let (controller, _) = world.controller("127.0.0.1", "a");
    let routes: Vec<String> =
        (0..1000).map(|i| route_yaml(&ns, &format!("r{i}"), &format!("/r{i}"), "echo", "")).collect();
    let started = Instant::now();
    kubectl_with_input(&["apply", "-f", "-"], Some(&routes.join("---\n"))).unwrap();
    let applied = started.elapsed();
    for probe in [0, 499, 999] {
        wait_for("the last routes to serve", Duration::from_secs(120), || {
            backend_of(&world.url("127.0.0.1", &format!("/r{probe}")))
        });
    }
    let live = started.elapsed();
    wait_for("status on all 1,000 routes", Duration::from_secs(300), || {
        let list = kubectl_json(&["-n", &ns, "get", "httproutes"]);
        let with_status = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| condition(r, "/status/parents/0/conditions", "Accepted").is_some_and(|c| c.0 == "True"))
            .count();
        (with_status == 1000).then_some(())
    });
    let statused = started.elapsed();
    let status = std::fs::read_to_string(format!("/proc/{}/status", controller.child.id())).unwrap();
    let peak = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: ?").to_string();
    println!(
        "1,000 HTTPRoutes: kubectl apply {applied:?}, all live {live:?}, all with status {statused:?}, controller {peak}"
    );
}
