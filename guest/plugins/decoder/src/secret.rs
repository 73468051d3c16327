//! The Secret as read from the API (only the fields the decoder shows) and as
//! decoded: every value base64-decoded, text kept apart from binary.
//!
//! A small serde struct rather than k8s-openapi's `Secret`: it is all the decoder
//! needs and keeps the wasm small.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

/// A Secret as the API server sends it.
#[derive(Debug, Deserialize)]
pub struct Secret {
    pub metadata: Metadata,
    #[serde(rename = "type", default)]
    pub type_: Option<String>,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// One decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Valid UTF-8.
    Text(String),
    /// Anything else.
    Binary(Vec<u8>),
    /// The API sent something that is not base64 (kept as sent).
    Invalid(String),
}

impl Value {
    pub fn decode(base64: &str) -> Value {
        match BASE64.decode(base64.trim()) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Value::Text(text),
                Err(err) => Value::Binary(err.into_bytes()),
            },
            Err(_) => Value::Invalid(base64.to_string()),
        }
    }

    /// The decoded bytes (for an invalid value, the text as sent).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Value::Text(text) | Value::Invalid(text) => text.as_bytes(),
            Value::Binary(bytes) => bytes,
        }
    }
}

/// A Secret with its values decoded, in key order.
#[derive(Debug)]
pub struct Decoded {
    pub name: String,
    pub namespace: String,
    pub type_: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: Vec<(String, Value)>,
}

impl Decoded {
    /// Decodes `secret`; `namespace` is used when the object does not say.
    pub fn new(secret: Secret, namespace: &str) -> Decoded {
        Decoded {
            name: secret.metadata.name,
            namespace: secret
                .metadata
                .namespace
                .unwrap_or_else(|| namespace.to_string()),
            type_: secret.type_.unwrap_or_else(|| "Opaque".to_string()),
            labels: secret.metadata.labels,
            annotations: secret.metadata.annotations,
            data: secret
                .data
                .into_iter()
                .map(|(key, value)| {
                    let value = Value::decode(&value);
                    (key, value)
                })
                .collect(),
        }
    }

    /// The decoded Secret as a manifest that could be applied again: text values
    /// under `stringData`, binary ones (base64, as stored) under `data`.
    pub fn manifest(&self) -> Json {
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(self.name));
        metadata.insert("namespace".into(), json!(self.namespace));
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), json!(self.labels));
        }
        if !self.annotations.is_empty() {
            metadata.insert("annotations".into(), json!(self.annotations));
        }
        let mut string_data = Map::new();
        let mut data = Map::new();
        for (key, value) in &self.data {
            match value {
                Value::Text(text) => {
                    string_data.insert(key.clone(), json!(text));
                }
                Value::Binary(bytes) => {
                    data.insert(key.clone(), json!(BASE64.encode(bytes)));
                }
                Value::Invalid(raw) => {
                    data.insert(key.clone(), json!(raw));
                }
            }
        }
        let mut manifest = Map::new();
        manifest.insert("apiVersion".into(), json!("v1"));
        manifest.insert("kind".into(), json!("Secret"));
        manifest.insert("metadata".into(), Json::Object(metadata));
        manifest.insert("type".into(), json!(self.type_));
        if !string_data.is_empty() {
            manifest.insert("stringData".into(), Json::Object(string_data));
        }
        if !data.is_empty() {
            manifest.insert("data".into(), Json::Object(data));
        }
        Json::Object(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = r#"{
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "db", "namespace": "team-a", "labels": {"app": "db"},
                     "uid": "x", "managedFields": []},
        "type": "Opaque",
        "data": {"password": "aHVudGVyMg==", "blob": "AP8=", "bad": "@@@", "empty": ""}
    }"#;

    #[test]
    fn values_are_decoded_by_kind() {
        let secret: Secret = serde_json::from_str(SECRET).unwrap();
        let decoded = Decoded::new(secret, "default");
        assert_eq!(decoded.namespace, "team-a");
        let data: BTreeMap<_, _> = decoded.data.into_iter().collect();
        assert_eq!(data["password"], Value::Text("hunter2".into()));
        assert_eq!(data["blob"], Value::Binary(vec![0, 255]));
        assert_eq!(data["bad"], Value::Invalid("@@@".into()));
        assert_eq!(data["empty"], Value::Text(String::new()));
    }

    #[test]
    fn manifest_splits_text_and_binary() {
        let secret: Secret = serde_json::from_str(SECRET).unwrap();
        let manifest = Decoded::new(secret, "default").manifest();
        assert_eq!(manifest["kind"], "Secret");
        assert_eq!(manifest["metadata"]["labels"]["app"], "db");
        assert!(manifest["metadata"].get("annotations").is_none());
        assert_eq!(manifest["stringData"]["password"], "hunter2");
        assert_eq!(manifest["data"]["blob"], "AP8=");
    }

    #[test]
    fn missing_fields_get_defaults() {
        let secret: Secret = serde_json::from_str(r#"{"metadata":{"name":"x"}}"#).unwrap();
        let decoded = Decoded::new(secret, "ns");
        assert_eq!(decoded.namespace, "ns");
        assert_eq!(decoded.type_, "Opaque");
        assert!(decoded.data.is_empty());
    }
}
