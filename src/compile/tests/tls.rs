//! HTTPS listeners: certificates from Secrets, their errors, and the sockets' TLS.

use super::*;
use crate::compile::tls::tests::{CERT, KEY};

fn https_gateway(certificate_ref: &str) -> String {
    BASE.replace(
        "  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}",
        &format!(
            "  - {{name: https, port: 443, protocol: HTTPS, hostname: \"*.example.com\", tls: {{certificateRefs: [{certificate_ref}]}}}}\n  - {{name: plain, port: 80, protocol: HTTP}}"
        ),
    )
}

fn secret(ns: &str, name: &str, kind: &str) -> String {
    let indent = |pem: &str| pem.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\ntype: {kind}\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(CERT),
        indent(KEY)
    )
}

const GRANT: &str = r#"
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: certs, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra}]
  to: [{group: "", kind: Secret}]
"#;

#[test]
fn an_https_listener_with_a_valid_secret_is_served_with_tls() {
    let c = run(&format!("{}{}", https_gateway("{name: cert}"), secret("infra", "cert", "kubernetes.io/tls")));
    assert_eq!(c.listener_condition("infra/gw", "https", "ResolvedRefs"), cond("True", "ResolvedRefs"));
    assert_eq!(c.listener_condition("infra/gw", "https", "Programmed"), cond("True", "Programmed"));
    let https = c.table.sockets.iter().find(|s| s.address.port() == 443).expect("port 443 is bound");
    let tls = https.tls.as_ref().expect("the socket is TLS");
    assert_eq!(tls.listener_of("www.example.com"), Some(0));
    assert_eq!(tls.listener_of("other.test"), None);
    let plain = c.table.sockets.iter().find(|s| s.address.port() == 80).unwrap();
    assert!(plain.tls.is_none());
}

#[test]
fn certificate_ref_problems_are_resolved_refs_false_with_the_specs_reason() {
    for (certificate_ref, extra, reason, words) in [
        ("{name: missing}", String::new(), "InvalidCertificateRef", "Secret infra/missing does not exist"),
        (
            "{group: wrong.group.io, kind: Secret, name: cert}",
            secret("infra", "cert", "kubernetes.io/tls"),
            "InvalidCertificateRef",
            "only core Secrets",
        ),
        (
            "{kind: WrongKind, name: cert}",
            secret("infra", "cert", "kubernetes.io/tls"),
            "InvalidCertificateRef",
            "kind \"WrongKind\"",
        ),
        ("{name: cert}", secret("infra", "cert", "Opaque"), "InvalidCertificateRef", "kubernetes.io/tls"),
        (
            "{name: cert, namespace: certs}",
            secret("certs", "cert", "kubernetes.io/tls"),
            "RefNotPermitted",
            "no ReferenceGrant",
        ),
    ] {
        let c = run(&format!("{}{extra}", https_gateway(certificate_ref)));
        assert_eq!(
            c.listener_condition("infra/gw", "https", "ResolvedRefs"),
            cond("False", reason),
            "{certificate_ref}"
        );
        assert_eq!(c.listener_condition("infra/gw", "https", "Programmed"), cond("False", "Invalid"));
        assert!(c.has_problem("infra/gw", words), "{certificate_ref}: {:?}", c.status.problems);
        assert!(c.table.sockets.iter().all(|s| s.address.port() != 443), "not served without its certificate");
        assert!(c.table.sockets.iter().any(|s| s.address.port() == 80), "the other listener keeps serving");
    }
}

#[test]
fn a_reference_grant_permits_a_secret_in_another_namespace() {
    let c = run(&format!(
        "{}{}{GRANT}",
        https_gateway("{name: cert, namespace: certs}"),
        secret("certs", "cert", "kubernetes.io/tls")
    ));
    assert_eq!(c.listener_condition("infra/gw", "https", "ResolvedRefs"), cond("True", "ResolvedRefs"));
}

#[test]
fn http_and_https_on_one_port_conflict() {
    let yaml = BASE.replace(
        "  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}",
        "  - {name: http, port: 80, protocol: HTTP}\n  - {name: https, port: 80, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: cert}]}}",
    );
    let c = run(&format!("{yaml}{}", secret("infra", "cert", "kubernetes.io/tls")));
    assert_eq!(c.listener_condition("infra/gw", "https", "Conflicted"), cond("True", "ProtocolConflict"));
}
