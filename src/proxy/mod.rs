//! The data plane: hyper servers on the table's sockets, route lookup, filters, balancing and
//! forwarding over pooled upstream connections.

mod body;
mod error;
mod filters;
mod handler;
mod mirror;
mod normalize;
mod server;
mod upgrade;
mod upstream;

pub use error::ProxyError;
pub use handler::Shared;
pub use server::{DataPlane, Limits};
pub use upstream::Upstream;
