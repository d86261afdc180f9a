//! `scripts/testenv down` leaves nothing behind, and `up` after it works again.
//! In its own file (so its own test binary) because it takes the cluster away
//! while it runs; it ends with the cluster up again.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn down_leaves_nothing_behind_and_up_works_again() {
    kubeconfig(); // fails with what to do when the cluster is not up

    // A running Pod, so that down has a process, a namespace and a veth to clean up.
    let ns = "testenv-cycle";
    let _ = kubectl(&["delete", "namespace", ns, "--wait=true", "--timeout=60s"]);
    kubectl_ok(&["create", "namespace", ns]);
    wait_for("the default service account", Duration::from_secs(30), || {
        kubectl(&["-n", ns, "get", "serviceaccount", "default"]).ok()
    });
    let pod_pid = container_pid(&run_ratings_pod(ns));

    let run_dir = testenv_dir().join("run");
    let pids: Vec<u32> = std::fs::read_dir(&run_dir)
        .expect("target/testenv/run")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
        .collect();
    assert_eq!(
        pids.len(),
        8,
        "etcd, apiserver, controller-manager, scheduler, kubelet, kube-proxy, lb-allocator, coredns: {pids:?}"
    );

    testenv("down");
    for pid in pids.iter().chain([&pod_pid]) {
        assert!(!process_exists(*pid), "process {pid} still runs after down");
    }
    assert!(pod_netns_names().is_empty(), "namespaces left: {:?}", pod_netns_names());
    let links = run("ip", &["-o", "link", "show"]);
    assert!(!links.contains("gantry0"), "bridge left: {links}");
    assert!(!links.lines().any(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with("gv"))), "veths left: {links}");
    let routes = run("ip", &["route", "show"]);
    let (services, pool) = (testenv_setting("SERVICE_CIDR"), testenv_setting("LB_POOL"));
    for range in ["10.244.0.", services.as_str(), pool.as_str()] {
        assert!(!routes.contains(range), "routes left: {routes}");
    }
    // Neither the forward filter nor kube-proxy's rules stay behind.
    let tables = run("nft", &["list", "tables"]);
    assert!(!tables.contains("gantry_testenv") && !tables.contains("kube-proxy"), "nftables left: {tables}");
    assert!(!testenv_dir().join("kubeconfig").exists(), "kubeconfig of a stopped cluster left");

    testenv("up");
    let node = kubectl_json(&["get", "node", "gantry-node"]);
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "node not Ready after up again");
    let again = testenv("up");
    assert!(again.contains("already up"), "a second up is a no-op: {again}");
}
