//! Output: the text view (a header table, then every key with its decoded value and
//! its certificates explained) and a small YAML writer for `-o yaml`.
//!
//! Secret contents are untrusted: control characters (an ANSI escape could rewrite
//! the terminal) are shown escaped, and binary values only by their size.

use std::fmt::Write;

use serde_json::Value as Json;

use crate::cert::{self, Block};
use crate::secret::{Decoded, Value};

/// The text view of `secret`, with validity measured against `now` (Unix seconds).
pub fn text(secret: &Decoded, now: i64) -> String {
    let mut out = String::new();
    header(&mut out, "Name", &[safe(&secret.name)]);
    header(&mut out, "Namespace", &[safe(&secret.namespace)]);
    header(&mut out, "Type", &[safe(&secret.type_)]);
    let pairs = |map: &std::collections::BTreeMap<String, String>| -> Vec<String> {
        map.iter()
            .map(|(k, v)| format!("{}={}", safe(k), safe(v)))
            .collect()
    };
    header(&mut out, "Labels", &pairs(&secret.labels));
    header(&mut out, "Annotations", &pairs(&secret.annotations));

    out.push_str("\nData\n====\n");
    if secret.data.is_empty() {
        out.push_str("<none>\n");
    }
    for (key, value) in &secret.data {
        entry(&mut out, &safe(key), value, now);
    }
    out
}

/// `Label:` padded to a column, then the first value; further values line up below.
fn header(out: &mut String, label: &str, values: &[String]) {
    const WIDTH: usize = 14;
    let label = format!("{label}:");
    match values.split_first() {
        None => {
            let _ = writeln!(out, "{label:<WIDTH$}<none>");
        }
        Some((first, rest)) => {
            let _ = writeln!(out, "{label:<WIDTH$}{first}");
            for value in rest {
                let _ = writeln!(out, "{:<WIDTH$}{value}", "");
            }
        }
    }
}

fn entry(out: &mut String, key: &str, value: &Value, now: i64) {
    if let Some(blocks) = cert::blocks(value.bytes()) {
        let count = blocks
            .iter()
            .filter(|b| matches!(b, Block::Certificate(_)))
            .count();
        let noun = if count == 1 {
            "certificate"
        } else {
            "certificates"
        };
        let _ = writeln!(out, "{key}: {count} {noun}");
        let mut n = 0;
        for block in &blocks {
            match block {
                Block::Certificate(info) => {
                    n += 1;
                    let _ = writeln!(out, "  Certificate {n} of {count}:");
                    match info {
                        Ok(info) => cert::render(info, now, "    ", out),
                        Err(err) => {
                            let _ = writeln!(out, "    <unreadable: {}>", safe(err));
                        }
                    }
                }
                Block::Other(label) => {
                    let _ = writeln!(out, "  Also holds: {} (not shown)", safe(label));
                }
            }
        }
        out.push('\n');
        return;
    }
    match value {
        Value::Text(text) if text.is_empty() => {
            let _ = writeln!(out, "{key}: <empty>");
        }
        Value::Text(text) if !text.trim_end_matches('\n').contains('\n') => {
            let _ = writeln!(out, "{key}: {}", safe(text.trim_end_matches('\n')));
        }
        Value::Text(text) => {
            let _ = writeln!(out, "{key}:");
            for line in text.trim_end_matches('\n').split('\n') {
                let _ = writeln!(out, "  {}", safe(line));
            }
            out.push('\n');
        }
        Value::Binary(bytes) => match cert::der_certificate(bytes) {
            Some(info) => {
                let _ = writeln!(out, "{key}: 1 certificate (DER)");
                cert::render(&info, now, "    ", out);
                out.push('\n');
            }
            None => {
                let _ = writeln!(out, "{key}: <binary, {} bytes>", bytes.len());
            }
        },
        Value::Invalid(raw) => {
            let _ = writeln!(out, "{key}: <not base64, {} characters>", raw.len());
        }
    }
}

/// `text` with control characters (other than tab) escaped, so a Secret cannot
/// drive the terminal.
fn safe(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `value` as a YAML document. Maps become blocks, multi-line strings literal
/// blocks (`|`), other strings plain when unambiguous and double-quoted otherwise.
pub fn yaml(value: &Json) -> String {
    let mut out = String::new();
    match value {
        Json::Object(map) if !map.is_empty() => yaml_map(map, 0, &mut out),
        other => {
            out.push_str(&yaml_inline(other));
            out.push('\n');
        }
    }
    out
}

fn yaml_map(map: &serde_json::Map<String, Json>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (key, value) in map {
        let key = yaml_string(key);
        match value {
            Json::Object(inner) if !inner.is_empty() => {
                let _ = writeln!(out, "{pad}{key}:");
                yaml_map(inner, indent + 2, out);
            }
            Json::String(text) if block_scalar_ok(text) => {
                let trailing = text.len() - text.trim_end_matches('\n').len();
                let chomp = match trailing {
                    0 => "|-",
                    1 => "|",
                    _ => "|+",
                };
                let _ = writeln!(out, "{pad}{key}: {chomp}");
                let body = match trailing {
                    0 => text.as_str(),
                    _ => &text[..text.len() - 1],
                };
                for line in body.split('\n') {
                    if line.is_empty() {
                        out.push('\n');
                    } else {
                        let _ = writeln!(out, "{pad}  {line}");
                    }
                }
            }
            other => {
                let _ = writeln!(out, "{pad}{key}: {}", yaml_inline(other));
            }
        }
    }
}

/// A literal block keeps text exactly, provided it has several lines, does not
/// start with a space or newline, and holds only printable characters.
fn block_scalar_ok(text: &str) -> bool {
    text.trim_end_matches('\n').contains('\n')
        && !text.starts_with([' ', '\n'])
        && text
            .chars()
            .all(|c| c == '\n' || c == '\t' || yaml_printable(c))
}

fn yaml_inline(value: &Json) -> String {
    match value {
        Json::String(text) => yaml_string(text),
        Json::Object(map) if map.is_empty() => "{}".to_string(),
        // Numbers, booleans, null and arrays: JSON's spelling is valid YAML.
        other => other.to_string(),
    }
}

fn yaml_string(text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
        );
    if plain {
        return text.to_string();
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if yaml_printable(c) => quoted.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(quoted, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(quoted, "\\u{:04x}", c as u32);
            }
        }
    }
    quoted.push('"');
    quoted
}

/// YAML's printable set (`c-printable`, minus the line breaks and tab handled apart).
fn yaml_printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7e | 0x85 | 0xa0..=0xd7ff | 0xe000..=0xfffd | 0x10000..=0x10ffff)
        && c != '\u{feff}'
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn secret(data: &[(&str, Value)]) -> Decoded {
        Decoded {
            name: "web".into(),
            namespace: "team-a".into(),
            type_: "kubernetes.io/tls".into(),
            labels: BTreeMap::from([
                ("app".to_string(), "web".to_string()),
                ("tier".to_string(), "front".to_string()),
            ]),
            annotations: BTreeMap::new(),
            data: data
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn header_table() {
        let out = text(&secret(&[]), 0);
        assert!(
            out.starts_with(
                "Name:         web\n\
             Namespace:    team-a\n\
             Type:         kubernetes.io/tls\n\
             Labels:       app=web\n              tier=front\n\
             Annotations:  <none>\n\nData\n====\n<none>\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn values_by_kind() {
        let out = text(
            &secret(&[
                ("password", Value::Text("hunter2\n".into())),
                ("config", Value::Text("a: 1\nb: 2\n".into())),
                ("blob", Value::Binary(vec![0, 159, 146, 150])),
                ("empty", Value::Text(String::new())),
                ("odd", Value::Invalid("@@".into())),
            ]),
            0,
        );
        assert!(out.contains("password: hunter2\n"), "{out}");
        assert!(out.contains("config:\n  a: 1\n  b: 2\n"), "{out}");
        assert!(out.contains("blob: <binary, 4 bytes>\n"), "{out}");
        assert!(out.contains("empty: <empty>\n"), "{out}");
        assert!(out.contains("odd: <not base64, 2 characters>\n"), "{out}");
    }

    #[test]
    fn certificates_are_explained() {
        let bundle = format!(
            "{}{}",
            include_str!("../testdata/leaf.pem"),
            include_str!("../testdata/ca.pem")
        );
        let out = text(&secret(&[("tls.crt", Value::Text(bundle))]), 1_800_000_000);
        assert!(
            out.contains("tls.crt: 2 certificates\n  Certificate 1 of 2:\n    Subject:"),
            "{out}"
        );
        assert!(
            out.contains("  Certificate 2 of 2:\n    Subject:             CN=Example Test CA\n"),
            "{out}"
        );
        assert!(out.contains("(expires in "), "{out}");
        assert!(!out.contains("BEGIN CERTIFICATE"), "{out}");
    }

    #[test]
    fn der_values_are_certificates_too() {
        let der = include_bytes!("../testdata/leaf.der").to_vec();
        let out = text(&secret(&[("ca.der", Value::Binary(der))]), 0);
        assert!(
            out.contains("ca.der: 1 certificate (DER)\n    Subject:"),
            "{out}"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let out = text(&secret(&[("evil", Value::Text("\u{1b}[2Jgone".into()))]), 0);
        assert!(out.contains("evil: \\u{1b}[2Jgone\n"), "{out}");
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn yaml_round_trips() {
        let value = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web", "on": "yes"}},
            "type": "kubernetes.io/tls",
            "stringData": {
                "pem": "-----BEGIN X-----\nAAAA\n-----END X-----\n",
                "no-newline": "a\nb",
                "two-newlines": "a\nb\n\n",
                "leading-space": " a\nb",
                "number": "0123",
                "colon": "a: b",
                "quote": "say \"hi\" \\ there",
                "control": "bell\u{7}del\u{7f}",
                "empty": "",
                "unicode": "héllo ✓",
                "true": "false",
            },
        });
        let text = yaml(&value);
        let back: Json = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, value, "{text}");
        assert!(text.contains("  pem: |\n    -----BEGIN X-----\n"), "{text}");
        assert!(text.contains("type: kubernetes.io/tls\n"), "{text}");
    }
}
