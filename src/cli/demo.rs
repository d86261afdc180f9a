//! `gantry demo`: the bookinfo services as child processes on loopback, and a file-mode
//! gateway serving `manifests/bookinfo/` (embedded in the binary) in front of them.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use tokio::process::{Child, Command};

use super::{ControllerArgs, RunArgs, ServeArgs};

/// The demo's configuration, as shipped in `manifests/bookinfo/`.
const GATEWAY: &str = include_str!("../../manifests/bookinfo/gateway.yaml");
const SERVICES: &str = include_str!("../../manifests/bookinfo/services.yaml");
const ROUTES: &str = include_str!("../../manifests/bookinfo/routes.yaml");

/// The port the shipped Gateway listens on; `--port` replaces it.
const SHIPPED_PORT: &str = "port: 8080";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Port of the gateway (the product page is at http://127.0.0.1:PORT/productpage).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Serves /metrics, /healthz, /readyz and /config.
    #[arg(long, default_value = "127.0.0.1:9901")]
    pub admin_address: SocketAddr,
}

/// One bookinfo process: its name, listen port and extra arguments.
struct ServiceSpec {
    name: &'static str,
    port: u16,
    args: Vec<String>,
}

fn services(gateway_port: u16) -> Vec<ServiceSpec> {
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let ratings = url(9085);
    let reviews = |version: &'static str, port| ServiceSpec {
        name: version,
        port,
        args: vec!["reviews".into(), "--version".into(), version.into(), "--ratings-url".into(), ratings.clone()],
    };
    vec![
        ServiceSpec { name: "details", port: 9081, args: vec!["details".into()] },
        ServiceSpec { name: "ratings", port: 9085, args: vec!["ratings".into()] },
        reviews("v1", 9082),
        reviews("v2", 9083),
        reviews("v3", 9084),
        ServiceSpec {
            name: "productpage",
            port: 9080,
            args: vec![
                "productpage".into(),
                "--details-url".into(),
                url(9081),
                // Through the gateway, so that the reviews routes (split, jason) apply.
                "--reviews-url".into(),
                url(gateway_port),
                "--ratings-url".into(),
                ratings.clone(),
            ],
        },
    ]
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let config = write_config(args.port)?;
    let exe = std::env::current_exe().context("cannot find the gantry binary")?;
    let mut children = Vec::new();
    for spec in services(args.port) {
        let address = SocketAddr::from(([127, 0, 0, 1], spec.port));
        if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
            bail!("port {} for bookinfo {} is already in use; stop what listens there", spec.port, spec.name);
        }
        let child = Command::new(&exe)
            .arg("bookinfo")
            .args(&spec.args)
            .args(["--listen", &address.to_string()])
            .env_remove("VERSION")
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start bookinfo {}", spec.name))?;
        children.push((spec.name, address, child));
    }
    for (name, address, child) in &mut children {
        wait_listening(name, *address, child).await?;
    }
    let run = RunArgs {
        config: vec![config.clone()],
        controller: ControllerArgs {
            controller_name: "gantry.dev/gateway-controller".into(),
            bind_address: [127, 0, 0, 1].into(),
            gateway_address_pool: None,
        },
        serve: ServeArgs {
            admin_address: args.admin_address,
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            workers: None,
            edge: Default::default(),
        },
    };
    println!("\nBookinfo is up. Open http://127.0.0.1:{}/productpage", args.port);
    println!("  reload it a few times: reviews-v1, reviews-v2 and reviews-v3 answer in turn by weight");
    println!("  as jason:  curl -H 'end-user: jason' http://127.0.0.1:{}/productpage   (always reviews-v2)", args.port);
    println!("  metrics:   curl http://{}/metrics", args.admin_address);
    println!("  the configuration is in {} (edit it: changes apply at once)", config.display());
    println!("Press Ctrl-C to stop.\n");
    let served = super::run::serve(&run, crate::signals::shutdown()).await;
    for (_, _, child) in &mut children {
        stop(child).await;
    }
    let _ = std::fs::remove_dir_all(&config);
    served
}

/// Writes the embedded manifests to a fresh folder, with the gateway on `port`.
fn write_config(port: u16) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gantry-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let gateway = GATEWAY.replace(SHIPPED_PORT, &format!("port: {port}"));
    for (name, text) in [("gateway.yaml", gateway.as_str()), ("services.yaml", SERVICES), ("routes.yaml", ROUTES)] {
        std::fs::write(dir.join(name), text).with_context(|| format!("cannot write {name}"))?;
    }
    Ok(dir)
}

async fn wait_listening(name: &str, address: SocketAddr, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("bookinfo {name} exited with {status} before listening on {address}");
        }
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("bookinfo {name} did not listen on {address} within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM, then SIGKILL if the process is still there after a few seconds.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
