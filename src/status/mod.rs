//! Kubernetes mode: writing what compile concluded back to the objects' status subresources.
//!
//! Only the replica holding the Lease writes (`leader`); every replica serves traffic. A status
//! is patched only when it differs from what the object already shows (`stamp`), with
//! server-side apply under Gantry's field manager (`writer`).

mod addresses;
mod infra;
pub mod leader;
mod stamp;
pub mod writer;

pub use addresses::AddressSource;

pub use writer::StatusWriter;
