//! Certificates of HTTPS listeners: `tls.certificateRefs` to `kubernetes.io/tls` Secrets,
//! checked (PEM, key type, key matching the certificate) and turned into rustls keys.
//!
//! Errors name the Secret and what is wrong with it, never its content.

use std::sync::Arc;

use gateway_api::gateways::{GatewayListeners, GatewayListenersTlsMode};
use k8s_openapi::api::core::v1::Secret;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::conditions::reasons;
use crate::index::{Index, ObjectKey};

/// Why a listener's certificates cannot be used: the reason of its `ResolvedRefs: False`, and
/// a message.
pub type CertificateError = (&'static str, String);

/// The certificates of an HTTPS listener, in the order of its `certificateRefs`.
pub fn listener_certificates(
    index: &Index,
    gateway_namespace: &str,
    listener: &GatewayListeners,
) -> Result<Vec<Arc<CertifiedKey>>, CertificateError> {
    let tls = listener.tls.as_ref();
    if tls.and_then(|t| t.mode.as_ref()).is_some_and(|m| *m == GatewayListenersTlsMode::Passthrough) {
        return Err((
            reasons::INVALID_CERTIFICATE_REF,
            format!(
                "listener {:?}: an HTTPS listener terminates TLS; mode Passthrough is for TLS listeners",
                listener.name
            ),
        ));
    }
    let refs = tls.and_then(|t| t.certificate_refs.as_deref()).unwrap_or_default();
    if refs.is_empty() {
        return Err((
            reasons::INVALID_CERTIFICATE_REF,
            format!("listener {:?}: an HTTPS listener needs tls.certificateRefs", listener.name),
        ));
    }
    let mut keys = Vec::with_capacity(refs.len());
    for r in refs {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or("Secret");
        if !group.is_empty() || kind != "Secret" {
            return Err((
                reasons::INVALID_CERTIFICATE_REF,
                format!(
                    "certificateRef {:?} has group {group:?} kind {kind:?}; only core Secrets hold certificates",
                    r.name
                ),
            ));
        }
        let key = ObjectKey::new(r.namespace.as_deref().unwrap_or(gateway_namespace), r.name.as_str());
        if key.namespace != gateway_namespace && !index.reference_granted("Gateway", gateway_namespace, "Secret", &key)
        {
            return Err((
                reasons::REF_NOT_PERMITTED,
                format!(
                    "certificateRef to Secret {key} is not permitted: no ReferenceGrant in namespace {:?} allows \
                     Gateways from namespace {gateway_namespace:?}",
                    key.namespace
                ),
            ));
        }
        let Some(secret) = index.secrets.get(&key) else {
            return Err((
                reasons::INVALID_CERTIFICATE_REF,
                format!("Secret {key} does not exist (or is not of type kubernetes.io/tls)"),
            ));
        };
        let certified = certified_key(secret)
            .map_err(|problem| (reasons::INVALID_CERTIFICATE_REF, format!("Secret {key}: {problem}")))?;
        keys.push(Arc::new(certified));
    }
    Ok(keys)
}

/// A Secret's `tls.crt` (the chain, leaf first) and `tls.key` (PKCS#8, PKCS#1 or SEC1; RSA,
/// ECDSA or Ed25519), checked to belong together.
pub fn certified_key(secret: &Secret) -> Result<CertifiedKey, String> {
    if let Some(kind) = secret.type_.as_deref().filter(|t| *t != "kubernetes.io/tls") {
        return Err(format!("type is {kind:?}; certificates must be in a Secret of type kubernetes.io/tls"));
    }
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let data = secret.data.as_ref().and_then(|d| d.get(name)).map(|b| b.0.clone());
        let text = secret.string_data.as_ref().and_then(|d| d.get(name)).map(|s| s.clone().into_bytes());
        data.or(text).filter(|b| !b.is_empty()).ok_or_else(|| format!("has no {name}"))
    };
    let chain_pem = field("tls.crt")?;
    let key_pem = field("tls.key")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| "tls.crt is not PEM certificates".to_string())?;
    if chain.is_empty() {
        return Err("tls.crt holds no PEM certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| "tls.key is not a PEM private key (PKCS#8, PKCS#1 or SEC1)".to_string())?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| "tls.key is a key type Gantry cannot use (RSA, ECDSA P-256/P-384, Ed25519)".to_string())?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| "tls.key does not belong to the certificate in tls.crt".to_string())?;
    Ok(certified)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed ECDSA P-256 certificate for `*.example.com` and its key (PKCS#8), made
    /// with openssl for these tests only.
    pub(crate) const CERT: &str = include_str!("testdata/example.crt");
    pub(crate) const KEY: &str = include_str!("testdata/example.key");
    /// A second key that belongs to no certificate here.
    const OTHER_KEY: &str = include_str!("testdata/other.key");

    fn secret(kind: Option<&str>, crt: &str, key: &str) -> Secret {
        let mut data = std::collections::BTreeMap::new();
        data.insert("tls.crt".to_string(), k8s_openapi::ByteString(crt.as_bytes().to_vec()));
        data.insert("tls.key".to_string(), k8s_openapi::ByteString(key.as_bytes().to_vec()));
        Secret { type_: kind.map(str::to_string), data: Some(data), ..Default::default() }
    }

    #[test]
    fn a_matching_pair_is_a_certified_key() {
        assert!(certified_key(&secret(Some("kubernetes.io/tls"), CERT, KEY)).is_ok());
    }

    #[test]
    fn bad_secrets_say_what_is_wrong_without_their_content() {
        for (s, words) in [
            (secret(Some("Opaque"), CERT, KEY), "type is \"Opaque\""),
            (secret(None, "garbage", KEY), "tls.crt holds no PEM certificate"),
            (secret(None, CERT, "garbage"), "tls.key is not a PEM private key"),
            (secret(None, CERT, OTHER_KEY), "does not belong to the certificate"),
            (secret(None, "", KEY), "has no tls.crt"),
        ] {
            let error = certified_key(&s).err().unwrap_or_default();
            assert!(error.contains(words), "{error}");
            assert!(!error.contains("BEGIN"), "no key material in errors: {error}");
        }
    }
}
