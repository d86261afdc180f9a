//! Status conditions: one constructor and the spec's type and reason strings as constants.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Condition types.
pub mod types {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const CONFLICTED: &str = "Conflicted";
    /// Route condition: some rules were dropped, the rest is served.
    pub const PARTIALLY_INVALID: &str = "PartiallyInvalid";
}

/// Condition reasons, as the Gateway API spells them.
pub mod reasons {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const INVALID: &str = "Invalid";
    // Gateway
    pub const LISTENERS_NOT_VALID: &str = "ListenersNotValid";
    pub const UNSUPPORTED_ADDRESS: &str = "UnsupportedAddress";
    pub const ADDRESS_NOT_USABLE: &str = "AddressNotUsable";
    pub const ADDRESS_NOT_ASSIGNED: &str = "AddressNotAssigned";
    pub const INVALID_PARAMETERS: &str = "InvalidParameters";
    // Listener
    pub const NO_CONFLICTS: &str = "NoConflicts";
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    pub const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
    pub const PORT_UNAVAILABLE: &str = "PortUnavailable";
    pub const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    pub const INVALID_ROUTE_KINDS: &str = "InvalidRouteKinds";
    pub const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";
    // Route
    pub const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
    pub const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";
    pub const NO_MATCHING_PARENT: &str = "NoMatchingParent";
    pub const UNSUPPORTED_VALUE: &str = "UnsupportedValue";
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
    pub const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    pub const INVALID_KIND: &str = "InvalidKind";
}

/// A condition with `lastTransitionTime` at the Unix epoch: compile has no clock, the status
/// writer stamps real times.
pub fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
        message: message.into(),
        observed_generation: generation,
        reason: reason.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        type_: type_.to_string(),
    }
}

/// A condition that is True with its type as reason and no message.
pub fn ok(type_: &str, generation: Option<i64>) -> Condition {
    condition(type_, true, type_, "", generation)
}
