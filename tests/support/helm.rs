//! The test cluster's helm and a release of Gantry's chart (`charts/gantry`) installed with it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{conditions_true, kubeconfig, kubectl, kubectl_json, repo_root, testenv_dir};

pub fn chart() -> PathBuf {
    repo_root().join("charts/gantry")
}

/// Runs the test cluster's helm: stdout on success, stderr and stdout on failure.
pub fn helm(args: &[&str]) -> Result<String, String> {
    let out = Command::new(testenv_dir().join("bin/helm"))
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(args)
        .output()
        .map_err(|e| format!("running helm: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("helm {}: {}{stdout}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

pub fn helm_ok(args: &[&str]) -> String {
    helm(args).unwrap_or_else(|e| panic!("{e}"))
}

/// How long `helm install/upgrade --wait` may take here: two Pods of the debug build, Ready
/// once they have listed every watched kind (a few seconds on an idle machine).
pub const HELM_WAIT: &str = "120s";

/// A release `gantry` installed as the README installs it, but in a namespace of its own and
/// with a GatewayClass (and controllerName) of its own, so that tests running at once, and
/// other installations on the shared cluster, never serve each other's Gateways. Uninstalled,
/// with its class and namespace, when dropped.
pub struct Release {
    pub ns: String,
    pub class: String,
}

impl Release {
    /// `helm install gantry charts/gantry -n <ns> --create-namespace --wait` plus the
    /// isolating values and `sets`.
    pub fn install(prefix: &str, sets: &[&str]) -> Release {
        let ns = format!("{prefix}-{}", std::process::id() % 100_000);
        let _ = helm(&["uninstall", "gantry", "-n", &ns, "--wait", "--timeout", "60s"]);
        let _ = kubectl(&["delete", "namespace", &ns, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
        let release = Release { class: ns.clone(), ns };
        let class = format!("gatewayClass.name={}", release.class);
        let controller = format!("gatewayClass.controllerName=gantry.dev/{}", release.class);
        let chart = chart();
        let mut args = vec!["install", "gantry", chart.to_str().unwrap(), "-n", &release.ns, "--create-namespace"];
        args.extend(["--wait", "--timeout", HELM_WAIT, "--set", &class, "--set", &controller]);
        for set in sets {
            args.extend(["--set", set]);
        }
        let started = Instant::now();
        helm_ok(&args);
        println!("helm install --wait into {}: {:?}", release.ns, started.elapsed());
        super::wait_for("the GatewayClass to be Accepted", Duration::from_secs(30), || {
            let class = kubectl_json(&["get", "gatewayclass", &release.class]);
            conditions_true(&class["status"]["conditions"], "Accepted").then_some(())
        });
        release
    }

    /// `helm upgrade gantry charts/gantry --reuse-values --wait` with `sets`.
    pub fn upgrade(&self, sets: &[&str]) {
        let chart = chart();
        let mut args = vec!["upgrade", "gantry", chart.to_str().unwrap(), "-n", &self.ns, "--reuse-values"];
        args.extend(["--wait", "--timeout", HELM_WAIT]);
        for set in sets {
            args.extend(["--set", set]);
        }
        helm_ok(&args);
    }

    /// The release's Pods that are Ready and not being deleted: (name, IP).
    pub fn ready_pods(&self) -> Vec<(String, String)> {
        let pods = kubectl_json(&["-n", &self.ns, "get", "pods", "-l", "app.kubernetes.io/instance=gantry"]);
        pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| conditions_true(&p["status"]["conditions"], "Ready"))
            .filter_map(|p| Some((p["metadata"]["name"].as_str()?.into(), p["status"]["podIP"].as_str()?.into())))
            .collect()
    }

    /// The names of the release's Pods, whatever their state.
    pub fn pod_names(&self) -> std::collections::BTreeSet<String> {
        let pods = kubectl_json(&["-n", &self.ns, "get", "pods", "-l", "app.kubernetes.io/instance=gantry"]);
        pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The release's controller logs (every Pod, the last `lines` lines each), for failure
    /// messages.
    pub fn logs(&self, lines: u32) -> String {
        let tail = format!("--tail={lines}");
        kubectl(&["-n", &self.ns, "logs", "-l", "app.kubernetes.io/instance=gantry", "--prefix", &tail])
            .unwrap_or_else(|e| e)
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm(&["uninstall", "gantry", "-n", &self.ns, "--timeout", "60s"]);
        let _ = kubectl(&["delete", "gatewayclass", &self.class, "--ignore-not-found", "--wait=false"]);
        let _ = kubectl(&["delete", "namespace", &self.ns, "--ignore-not-found", "--wait=false"]);
    }
}
