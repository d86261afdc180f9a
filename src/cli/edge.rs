//! The data plane's defences, as flags (each with an environment variable). The defaults are
//! the strict ones; README "Security" sets them beside nginx's and Envoy's.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::proxy::{EscapedSlashes, IpRange, Limits, RequestPolicy, TrustedProxies};

#[derive(Args, Debug, Clone)]
pub struct EdgeArgs {
    /// What to do with encoded slashes and backslashes in a path (`%2F`, `%5C`, `\`), which
    /// backends that decode paths read as separators.
    #[arg(long, env = "GANTRY_ESCAPED_SLASHES", value_enum, default_value_t = EscapedSlashesArg::Reject)]
    pub escaped_slashes: EscapedSlashesArg,
    /// Addresses or ranges (`10.0.0.0/8`, comma-separated) of proxies in front of Gantry
    /// whose `X-Forwarded-*` and `X-Request-Id` headers are kept. From anyone else they are
    /// replaced.
    #[arg(long, env = "GANTRY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_range)]
    pub trusted_proxies: Vec<IpRange>,
    /// How long a connection may wait between requests before it is closed.
    #[arg(long, env = "GANTRY_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Longest wait for the next piece of a request body (408 after it).
    #[arg(long, env = "GANTRY_REQUEST_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_body_timeout: Duration,
    /// Longest wait for a client to read what Gantry writes to it before the connection is
    /// closed.
    #[arg(long, env = "GANTRY_SEND_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub send_timeout: Duration,
    /// How long a WebSocket may pass no byte either way before it is closed.
    #[arg(long, env = "GANTRY_TUNNEL_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub tunnel_idle_timeout: Duration,
    /// Client connections open at once; more are closed at accept. Default: half the open
    /// files limit (which Gantry raises to its hard limit at start).
    #[arg(long, env = "GANTRY_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Client connections open at once from one IP address.
    #[arg(long, env = "GANTRY_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_client: u32,
    /// Serve `/config` on the admin address to every peer; by default only to loopback (a
    /// shell in the Pod, or `kubectl port-forward`), since it shows the whole configuration.
    #[arg(long, env = "GANTRY_EXPOSE_CONFIG")]
    pub expose_config: bool,
}

/// [`EscapedSlashes`] as a flag value.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EscapedSlashesArg {
    /// 400 Bad Request (double-encoded ones too).
    Reject,
    /// Route and forward them as they are.
    Keep,
    /// Decode them to `/` and redirect the client (307) to the normalised path.
    UnescapeAndRedirect,
    /// Decode them to `/`, route and forward the normalised path.
    UnescapeAndForward,
}

impl Default for EdgeArgs {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            escaped_slashes: EscapedSlashesArg::Reject,
            trusted_proxies: Vec::new(),
            idle_timeout: limits.idle_timeout,
            request_body_timeout: limits.request_body_timeout,
            send_timeout: limits.send_timeout,
            tunnel_idle_timeout: limits.tunnel_idle_timeout,
            max_connections: None,
            max_connections_per_client: limits.max_connections_per_client as u32,
            expose_config: false,
        }
    }
}

impl EdgeArgs {
    pub fn limits(&self, header_read_timeout: Duration) -> Limits {
        Limits {
            header_read_timeout,
            idle_timeout: self.idle_timeout,
            request_body_timeout: self.request_body_timeout,
            send_timeout: self.send_timeout,
            tunnel_idle_timeout: self.tunnel_idle_timeout,
            max_connections: self.max_connections.map(|n| n as usize),
            max_connections_per_client: self.max_connections_per_client as usize,
            ..Limits::default()
        }
    }

    pub fn policy(&self) -> RequestPolicy {
        RequestPolicy {
            escaped_slashes: match self.escaped_slashes {
                EscapedSlashesArg::Reject => EscapedSlashes::Reject,
                EscapedSlashesArg::Keep => EscapedSlashes::Keep,
                EscapedSlashesArg::UnescapeAndRedirect => EscapedSlashes::UnescapeAndRedirect,
                EscapedSlashesArg::UnescapeAndForward => EscapedSlashes::UnescapeAndForward,
            },
            trusted_proxies: TrustedProxies(self.trusted_proxies.clone()),
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

fn parse_range(text: &str) -> Result<IpRange, String> {
    text.parse()
}
