//! The data plane: hyper servers on the table's sockets, route lookup, filters, balancing and
//! forwarding over pooled upstream connections, with the edge's defences: connection limits
//! and deadlines, strict hosts and paths, and only WebSocket upgrades.

mod admission;
mod authority;
mod body;
mod connection;
mod error;
mod filters;
mod forwarding;
#[cfg(fuzzing)]
pub mod fuzzing;
mod handler;
mod mirror;
mod normalize;
mod pool;
mod request_body;
mod server;
mod supervise;
mod tls;
mod upgrade;
mod upstream;
mod validate;
mod workers;

pub use error::ProxyError;
pub use forwarding::{IpRange, TrustedProxies};
pub use normalize::EscapedSlashes;
pub use server::{DataPlane, DataPlaneOptions, Limits, RequestPolicy};
