//! The Gateway API features Gantry implements, as `GatewayClass.status.supportedFeatures`
//! lists them (the conformance suite runs the tests of exactly these). A name goes here only
//! when the upstream conformance tests of that feature pass (`scripts/conformance`).

use super::Placement;

/// Features whatever the placement, in the spec's ascending alphabetical order.
const ALWAYS: &[&str] = &[
    "Gateway",
    "GatewayAddressEmpty",
    "GatewayHTTPListenerIsolation",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "GatewayPort8080",
    "GatewayRouteHostnameIntersectionPrecedence",
    "HTTPRoute",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendTimeout",
    "HTTPRouteDestinationPortMatching",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteSchemeRedirect",
    "ReferenceGrant",
];

/// The features of this installation, sorted.
pub fn supported(placement: &Placement) -> Vec<String> {
    let mut features: Vec<String> = ALWAYS.iter().map(|f| f.to_string()).collect();
    if let Placement::Services(services) = placement {
        // Labels and annotations reach the Service made per Gateway.
        features.push("GatewayInfrastructure".into());
        if services.pool.is_some() {
            features.push("GatewayStaticAddresses".into());
        }
    }
    features.sort();
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_sorted_and_unique() {
        let mut sorted = ALWAYS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, ALWAYS);
    }
}
