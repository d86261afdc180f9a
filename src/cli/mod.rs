//! The `gantry` command line.

mod check;
mod controller;
mod demo;
mod edge;
mod run;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::compile::{CompileOptions, Placement};

#[derive(Parser, Debug)]
#[command(name = "gantry", version, about = "A Gateway API ingress controller with its own hyper data plane")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[arg(long, global = true, env = "GANTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve Gateway API objects from YAML files or folders (file mode), reloading on change.
    Run(RunArgs),
    /// Kubernetes mode: watch the cluster's Gateway API objects, serve them, write their status.
    Controller(Box<controller::ControllerCmd>),
    /// Load and compile the configuration, print every problem, exit non-zero if there is one.
    Check(CheckArgs),
    /// Run one of the bookinfo sample services (productpage, details, reviews, ratings).
    Bookinfo(crate::bookinfo::BookinfoArgs),
    /// Run the bookinfo sample application behind a gateway, all on this machine.
    Demo(demo::DemoArgs),
    /// Print Gantry's CustomResourceDefinitions as YAML (what `crds/` holds).
    Crds,
    /// A small echo backend for trying routes out: answers every request with a JSON
    /// description of it.
    Echo(crate::echo::EchoArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings that decide what is served.
#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Gateways whose GatewayClass names this controller are served.
    #[arg(long, env = "GANTRY_CONTROLLER_NAME", default_value = "gantry.dev/gateway-controller")]
    pub controller_name: String,
    /// Address that listeners of Gateways without `spec.addresses` bind.
    #[arg(long, env = "GANTRY_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Addresses for Gateways (CIDR). Listeners binding their own ports: each Gateway without
    /// `spec.addresses` (or with an entry without a value) gets an address of it, the same for
    /// its whole life. With Services per Gateway: the addresses `spec.addresses` may ask the
    /// load balancer for.
    #[arg(long, env = "GANTRY_GATEWAY_ADDRESS_POOL")]
    pub gateway_address_pool: Option<ipnet::IpNet>,
}

impl ControllerArgs {
    /// Options where every listener binds its own port (file mode, and Kubernetes mode
    /// without Services per Gateway).
    pub fn compile_options(&self) -> CompileOptions {
        CompileOptions {
            controller_name: self.controller_name.clone(),
            bind_address: self.bind_address,
            placement: Placement::Bind { pool: self.gateway_address_pool },
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// YAML files or folders (read recursively) with Gateway API objects. Repeatable.
    #[arg(long = "config", short = 'c', required = true, num_args = 1..)]
    pub config: Vec<PathBuf>,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Settings of the serving process, whatever feeds it.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Serves /metrics, /healthz, /readyz and /config.
    #[arg(long, env = "GANTRY_ADMIN_ADDRESS", default_value = "127.0.0.1:9901")]
    pub admin_address: SocketAddr,
    /// How long a client may take to send its request headers before it is cut off.
    #[arg(long, env = "GANTRY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// On SIGTERM, how long requests in flight may take to finish.
    #[arg(long, env = "GANTRY_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Data-plane worker threads; each serves the connections it is given on its own runtime
    /// with its own upstream connections. Default: one per CPU available to the process.
    #[arg(long, env = "GANTRY_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    #[command(flatten)]
    pub edge: edge::EdgeArgs,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[arg(long = "config", short = 'c', required = true, num_args = 1..)]
    pub config: Vec<PathBuf>,
    #[command(flatten)]
    pub controller: ControllerArgs,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

/// Runs the command; the process exit code is the result.
pub async fn main(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args).await.map(|()| std::process::ExitCode::SUCCESS),
        Command::Controller(args) => controller::controller(*args).await.map(|()| std::process::ExitCode::SUCCESS),
        Command::Check(args) => check::check(args),
        Command::Bookinfo(args) => crate::bookinfo::run(args).await.map(|()| std::process::ExitCode::SUCCESS),
        Command::Demo(args) => demo::demo(args).await.map(|()| std::process::ExitCode::SUCCESS),
        Command::Crds => {
            print!("{}", crate::policy::crd_yaml());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Echo(args) => crate::echo::run(args).await.map(|()| std::process::ExitCode::SUCCESS),
    }
}
