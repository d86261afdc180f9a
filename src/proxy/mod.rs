//! The data plane: hyper servers on the table's sockets, route lookup, filters, balancing and
//! forwarding over pooled upstream connections.

mod body;
mod error;
mod filters;
mod handler;
mod mirror;
mod normalize;
mod pool;
mod server;
mod tls;
mod upgrade;
mod upstream;
mod workers;

pub use error::ProxyError;
pub use server::{DataPlane, DataPlaneOptions, Limits};
