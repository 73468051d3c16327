//! Request bodies in Kubernetes' protobuf encoding, decoded to JSON.
//!
//! kubectl 1.32 sends `Content-Type: application/vnd.kubernetes.protobuf`
//! from its typed clients (`kubectl create configmap|secret|namespace`),
//! and client-go has no fallback to JSON for built-in types, so the server
//! must read it. The body is the magic `k8s\0` and a `runtime.Unknown`
//! (`typeMeta` = 1 {apiVersion = 1, kind = 2}, `raw` = 2, `contentEncoding`
//! = 3, `contentType` = 4) whose `raw` is the object's own message.
//!
//! Only ConfigMap, Secret and Namespace are decoded (field numbers from
//! `k8s.io/api/core/v1/generated.proto`, checked against kubectl's bytes);
//! unknown fields are skipped; empty strings, zeros and empty messages are
//! left out, as JSON's `omitempty` would.

use serde_json::{Map, Value, json};

use super::table::rfc3339;

const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Field {
    Str,
    /// `bytes`, written as base64 (as JSON carries them).
    Bytes,
    Int,
    Bool,
    StrMap,
    BytesMap,
    RepeatedStr,
    Message(&'static [(u32, &'static str, Field)]),
    RepeatedMessage(&'static [(u32, &'static str, Field)]),
    /// `meta.v1.Time`: seconds = 1, nanos = 2.
    Time,
}

type Schema = &'static [(u32, &'static str, Field)];

const OWNER_REFERENCE: Schema = &[
    (1, "kind", Field::Str),
    (3, "name", Field::Str),
    (4, "uid", Field::Str),
    (5, "apiVersion", Field::Str),
    (6, "controller", Field::Bool),
    (7, "blockOwnerDeletion", Field::Bool),
];

const OBJECT_META: Schema = &[
    (1, "name", Field::Str),
    (2, "generateName", Field::Str),
    (3, "namespace", Field::Str),
    (5, "uid", Field::Str),
    (6, "resourceVersion", Field::Str),
    (7, "generation", Field::Int),
    (8, "creationTimestamp", Field::Time),
    (9, "deletionTimestamp", Field::Time),
    (10, "deletionGracePeriodSeconds", Field::Int),
    (11, "labels", Field::StrMap),
    (12, "annotations", Field::StrMap),
    (
        13,
        "ownerReferences",
        Field::RepeatedMessage(OWNER_REFERENCE),
    ),
    (14, "finalizers", Field::RepeatedStr),
];

const CONFIG_MAP: Schema = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (2, "data", Field::StrMap),
    (3, "binaryData", Field::BytesMap),
    (4, "immutable", Field::Bool),
];

const SECRET: Schema = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (2, "data", Field::BytesMap),
    (3, "type", Field::Str),
    (4, "stringData", Field::StrMap),
    (5, "immutable", Field::Bool),
];

const NAMESPACE: Schema = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (
        2,
        "spec",
        Field::Message(&[(1, "finalizers", Field::RepeatedStr)]),
    ),
    (3, "status", Field::Message(&[(1, "phase", Field::Str)])),
];

const UNKNOWN: Schema = &[
    (
        1,
        "typeMeta",
        Field::Message(&[(1, "apiVersion", Field::Str), (2, "kind", Field::Str)]),
    ),
    (2, "raw", Field::Bytes),
    (3, "contentEncoding", Field::Str),
];

/// Whether `content_type` is Kubernetes' protobuf encoding.
pub(crate) fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|m| {
        m.trim()
            .eq_ignore_ascii_case("application/vnd.kubernetes.protobuf")
    })
}

/// The object in a protobuf request body, as JSON.
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the k8s magic bytes")?;
    let mut unknown = Vec::new();
    let mut raw = None;
    for_each_field(envelope, |number, wire, reader| {
        if number == 2 {
            raw = Some(reader.length_delimited(wire)?);
            Ok(())
        } else {
            decode_field(&mut unknown, number, wire, reader, UNKNOWN)
        }
    })?;
    // A Value (not a Map): indexing a missing key gives Null, not a panic.
    let unknown = Value::Object(Map::from_iter(unknown));
    if unknown.get("contentEncoding").is_some() {
        return Err("compressed protobuf bodies are not supported".to_string());
    }
    let api_version = unknown["typeMeta"]["apiVersion"].as_str().unwrap_or("");
    let kind = unknown["typeMeta"]["kind"].as_str().unwrap_or("");
    let schema = match (api_version, kind) {
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Namespace") => NAMESPACE,
        _ => {
            return Err(format!(
                "the test API server cannot decode protobuf {api_version}/{kind}; send JSON"
            ));
        }
    };
    let mut object = message(raw.unwrap_or_default(), schema)?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or("truncated varint")?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".to_string())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err("truncated protobuf field".to_string());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn length_delimited(&mut self, wire: u8) -> Result<&'a [u8], String> {
        if wire != 2 {
            return Err(format!(
                "wire type {wire} where a length-delimited field was expected"
            ));
        }
        let len = usize::try_from(self.varint()?).map_err(|_| "field too long")?;
        self.take(len)
    }

    fn skip(&mut self, wire: u8) -> Result<(), String> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.length_delimited(2).map(drop),
            5 => self.take(4).map(drop),
            _ => Err(format!("unsupported protobuf wire type {wire}")),
        }
    }
}

fn for_each_field<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(u32, u8, &mut Reader<'a>) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader { buf };
    while !reader.buf.is_empty() {
        let key = reader.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| "field number too large")?;
        f(number, (key & 7) as u8, &mut reader)?;
    }
    Ok(())
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a protobuf string is not UTF-8".to_string())
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn message(buf: &[u8], schema: Schema) -> Result<Map<String, Value>, String> {
    let mut fields: Vec<(String, Value)> = Vec::new();
    for_each_field(buf, |number, wire, reader| {
        decode_field(&mut fields, number, wire, reader, schema)
    })?;
    Ok(Map::from_iter(fields))
}

fn decode_field(
    out: &mut Vec<(String, Value)>,
    number: u32,
    wire: u8,
    reader: &mut Reader<'_>,
    schema: Schema,
) -> Result<(), String> {
    let Some(&(_, name, field)) = schema.iter().find(|(n, _, _)| *n == number) else {
        return reader.skip(wire);
    };
    let slot = |out: &mut Vec<(String, Value)>, empty: Value| -> usize {
        match out.iter().position(|(k, _)| k == name) {
            Some(i) => i,
            None => {
                out.push((name.to_string(), empty));
                out.len() - 1
            }
        }
    };
    let scalar = |wire: u8, reader: &mut Reader<'_>| {
        if wire != 0 {
            return Err(format!("wire type {wire} for the varint field {name}"));
        }
        reader.varint()
    };
    match field {
        Field::Str => {
            let s = utf8(reader.length_delimited(wire)?)?;
            if !s.is_empty() {
                out.push((name.to_string(), json!(s)));
            }
        }
        Field::Bytes => {
            let b = reader.length_delimited(wire)?;
            out.push((name.to_string(), json!(base64(b))));
        }
        Field::Int => {
            let v = scalar(wire, reader)? as i64;
            if v != 0 {
                out.push((name.to_string(), json!(v)));
            }
        }
        Field::Bool => {
            if scalar(wire, reader)? != 0 {
                out.push((name.to_string(), json!(true)));
            }
        }
        Field::StrMap | Field::BytesMap => {
            let entry = reader.length_delimited(wire)?;
            let (mut key, mut value) = (String::new(), Value::String(String::new()));
            for_each_field(entry, |n, w, r| {
                match n {
                    1 => key = utf8(r.length_delimited(w)?)?,
                    2 if matches!(field, Field::BytesMap) => {
                        value = json!(base64(r.length_delimited(w)?))
                    }
                    2 => value = json!(utf8(r.length_delimited(w)?)?),
                    _ => r.skip(w)?,
                }
                Ok(())
            })?;
            let i = slot(out, json!({}));
            out[i].1[key] = value;
        }
        Field::RepeatedStr => {
            let s = utf8(reader.length_delimited(wire)?)?;
            let i = slot(out, json!([]));
            if let Value::Array(items) = &mut out[i].1 {
                items.push(json!(s));
            }
        }
        Field::Message(schema) => {
            let m = message(reader.length_delimited(wire)?, schema)?;
            if !m.is_empty() {
                out.push((name.to_string(), Value::Object(m)));
            }
        }
        Field::RepeatedMessage(schema) => {
            let m = message(reader.length_delimited(wire)?, schema)?;
            let i = slot(out, json!([]));
            if let Value::Array(items) = &mut out[i].1 {
                items.push(Value::Object(m));
            }
        }
        Field::Time => {
            let mut seconds = 0i64;
            for_each_field(reader.length_delimited(wire)?, |n, w, r| {
                match n {
                    1 if w == 0 => seconds = r.varint()? as i64,
                    _ => r.skip(w)?,
                }
                Ok(())
            })?;
            if seconds > 0 {
                let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
                out.push((name.to_string(), json!(rfc3339(time))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect()
    }

    #[test]
    fn decodes_what_kubectl_sends() {
        // kubectl 1.32: `create secret generic s2 --from-literal=a=b --type=foo`.
        let secret = hex(
            "6b3873000a0c0a027631120653656372657412210a120a02733212001a0022002a003200380042001206\
             0a01611201621a03666f6f1a002200",
        );
        assert_eq!(
            decode(&secret),
            Ok(
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"}, "data": {"a": "Yg=="}, "type": "foo"})
            )
        );
        // `create namespace nn`.
        let namespace = hex(
            "6b3873000a0f0a02763112094e616d657370616365121a0a120a026e6e12001a0022002a00320038004200\
             12001a020a001a002200",
        );
        assert_eq!(
            decode(&namespace),
            Ok(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nn"}}))
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(decode(b"{}").is_err());
        assert!(decode(b"k8s\0\x0a\xff").is_err());
        assert!(decode(b"k8s\0\x0a\x00").is_err(), "no kind");
    }
}
