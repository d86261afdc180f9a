//! Multi-document YAML to typed objects, by apiVersion and kind.

mod nesting;

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::index::Object;

/// One document that could not become an object. `skipped` marks a kind Gantry does not read
/// (a warning, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    pub document: usize,
    pub object: Option<String>,
    pub message: String,
    pub skipped: bool,
}

/// Parses every document of a YAML stream. A syntax error ends the stream: the whole text is
/// then unusable, reported as `Err`; so is nesting that would make parsing expensive.
pub fn parse_documents(text: &str) -> Result<(Vec<Object>, Vec<DocumentError>), String> {
    nesting::check(text)?;
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let number = i + 1;
        let value = Value::deserialize(document).map_err(|e| format!("document {number}: {e}"))?;
        if value.is_null() {
            continue; // an empty document, such as a trailing `---`
        }
        match to_object(value) {
            Ok(object) => objects.push(object),
            Err((object, message, skipped)) => {
                problems.push(DocumentError { document: number, object, message, skipped })
            }
        }
    }
    Ok((objects, problems))
}

type Rejection = (Option<String>, String, bool);

fn to_object(mut value: Value) -> Result<Object, Rejection> {
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let name = value.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).map(str::to_string);
    let label = format!("{kind} {}", name.as_deref().unwrap_or("<no name>"));
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err((Some(label), "metadata.name is required".into(), false));
    };
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let namespaced = !matches!(kind.as_str(), "GatewayClass" | "Namespace");
    if namespaced {
        default_namespace(&mut value);
    }
    let label = format!("{kind} {}{name}", namespace_prefix(&value));
    let reject = |message: String| (Some(label.clone()), message, false);
    let object = match (group, kind.as_str()) {
        ("gateway.networking.k8s.io", "GatewayClass") => typed(value).map(Object::GatewayClass),
        ("gateway.networking.k8s.io", "Gateway") => typed(value).map(Object::Gateway),
        ("gateway.networking.k8s.io", "HTTPRoute") => typed(value).map(Object::HttpRoute),
        // v1beta1 and v1 ReferenceGrants share one schema.
        ("gateway.networking.k8s.io", "ReferenceGrant") => typed(value).map(Object::ReferenceGrant),
        ("", "Namespace") => typed(value).map(Object::Namespace),
        ("", "Service") => typed(value).map(Object::Service),
        ("discovery.k8s.io", "EndpointSlice") => typed(value).map(Object::EndpointSlice),
        ("gantry.dev", "BackendPolicy") => typed(value).map(Object::BackendPolicy),
        ("", "Secret") => typed(value).map(Object::Secret),
        _ => {
            return Err((
                Some(label.clone()),
                format!("kind {kind:?} of apiVersion {api_version:?} is not read by Gantry; skipped"),
                true,
            ));
        }
    };
    object.map_err(reject)
}

/// The typed object, or an error that names the field (`spec.listeners[0].port: ...`).
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<std::sync::Arc<T>, String> {
    serde_path_to_error::deserialize(value).map(std::sync::Arc::new).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// Namespaced objects without a namespace land in `default`, as with `kubectl apply`.
fn default_namespace(value: &mut Value) {
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_mapping_mut) {
        let key = Value::from("namespace");
        if metadata.get(&key).and_then(Value::as_str).is_none_or(str::is_empty) {
            metadata.insert(key, Value::from("default"));
        }
    }
}

fn namespace_prefix(value: &Value) -> String {
    value
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(|ns| format!("{ns}/"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_become_typed_objects_with_default_namespace() {
        let text = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
---
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
"#;
        let (objects, problems) = parse_documents(text).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].key().to_string(), "default/web");
        assert_eq!(objects[1].key().to_string(), "team-a");
    }

    #[test]
    fn both_reference_grant_versions_are_read() {
        for version in ["v1beta1", "v1"] {
            let text = format!(
                "apiVersion: gateway.networking.k8s.io/{version}\nkind: ReferenceGrant\nmetadata: {{name: g, namespace: b}}\nspec:\n  from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}}]\n  to: [{{group: '', kind: Service}}]\n"
            );
            let (objects, problems) = parse_documents(&text).unwrap();
            assert!(problems.is_empty() && matches!(objects[0], Object::ReferenceGrant(_)), "{version}");
        }
    }

    #[test]
    fn unknown_kinds_are_skipped_with_a_warning() {
        let (objects, problems) =
            parse_documents("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n").unwrap();
        assert!(objects.is_empty());
        assert!(problems[0].skipped);
        assert!(problems[0].message.contains("Deployment"));
    }

    #[test]
    fn a_malformed_object_names_the_object_and_the_field() {
        let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: x\n  listeners: [{name: http, port: eighty, protocol: HTTP}]\n";
        let (objects, problems) = parse_documents(text).unwrap();
        assert!(objects.is_empty());
        assert_eq!(problems[0].object.as_deref(), Some("Gateway default/gw"));
        assert!(!problems[0].skipped);
        assert!(problems[0].message.contains("port"), "{}", problems[0].message);
    }

    #[test]
    fn a_yaml_syntax_error_rejects_the_whole_text() {
        assert!(parse_documents("kind: [unclosed").is_err());
    }

    #[test]
    fn pathological_nesting_is_rejected_before_parsing() {
        let deep = format!("{}{}", "[".repeat(60_000), "]".repeat(60_000));
        let started = std::time::Instant::now();
        let error = parse_documents(&deep).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_millis(200), "{:?}", started.elapsed());
        assert!(error.contains("document 1"), "{error}");
    }
}
