//! `labelSelector` and `fieldSelector`, parsed as kube-apiserver reads them.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e,!f,g in (x,y),h notin (z)`; `==` is the same as `=`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(term)?);
        }
        Ok(Self(requirements))
    }

    /// Whether an object with these labels (`metadata.labels`) is selected.
    pub(crate) fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, values) => get(k).is_some_and(|x| values.iter().any(|v| v == x)),
            Requirement::NotIn(k, values) => !get(k).is_some_and(|x| values.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// Splits on commas that are not inside `( … )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    let invalid =
        || format!("unable to parse requirement: found '{term}', expected: a label selector");
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    if let Some(open) = term.find('(') {
        let close = term.strip_suffix(')').ok_or_else(invalid)?;
        let mut words = term[..open].split_whitespace();
        let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
            return Err(invalid());
        };
        if !key_ok(key) {
            return Err(invalid());
        }
        let values: Vec<String> = close[open + 1..]
            .split(',')
            .map(|v| v.trim().to_string())
            .collect();
        return match op {
            "in" => Ok(Requirement::In(key.to_string(), values)),
            "notin" => Ok(Requirement::NotIn(key.to_string(), values)),
            _ => Err(invalid()),
        };
    }
    let (key, value, equal) = if let Some((k, v)) = term.split_once("!=") {
        (k, Some(v), false)
    } else if let Some((k, v)) = term.split_once("==") {
        (k, Some(v), true)
    } else if let Some((k, v)) = term.split_once('=') {
        (k, Some(v), true)
    } else {
        (term, None, true)
    };
    let key = key.trim();
    match value {
        Some(v) if key_ok(key) => {
            let v = v.trim().to_string();
            Ok(if equal {
                Requirement::Equals(key.to_string(), v)
            } else {
                Requirement::NotEquals(key.to_string(), v)
            })
        }
        None if key.starts_with('!') && key_ok(key[1..].trim()) => {
            Ok(Requirement::DoesNotExist(key[1..].trim().to_string()))
        }
        None if key_ok(key) => Ok(Requirement::Exists(key.to_string())),
        _ => Err(invalid()),
    }
}

/// A parsed `fieldSelector`: `path=value`, `path==value`, `path!=value`.
///
/// Any dotted path into the object is accepted (kube-apiserver allows only a
/// few per resource, `metadata.name` and `metadata.namespace` everywhere).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text.split(',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (path, value, equal) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            };
            if path.trim().is_empty() {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            }
            terms.push((path.trim().to_string(), value.trim().to_string(), equal));
        }
        Ok(Self(terms))
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, value, equal)| {
            let mut current = Some(object);
            for part in path.split('.') {
                current = current.and_then(|v| v.get(part));
            }
            let actual = match current {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

/// Both selectors of a list or watch request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
}

impl Selectors {
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.labels.matches(labels) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn label_selectors() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        let m = |s: &str| LabelSelector::parse(s).map(|sel| sel.matches(Some(&l)));
        assert_eq!(m("app=web"), Ok(true));
        assert_eq!(m("app==web,tier=front"), Ok(true));
        assert_eq!(m("app!=web"), Ok(false));
        assert_eq!(m("other!=x"), Ok(true));
        assert_eq!(m("app"), Ok(true));
        assert_eq!(m("!app"), Ok(false));
        assert_eq!(m("app in (db, web)"), Ok(true));
        assert_eq!(m("app notin (web),tier"), Ok(false));
        assert_eq!(m(""), Ok(true));
        assert!(m("app in web").is_err());
        assert!(m("=x").is_err());
    }

    #[test]
    fn field_selectors() {
        let obj =
            json!({"metadata": {"name": "a", "namespace": "ns"}, "status": {"phase": "Running"}});
        let m = |s: &str| FieldSelector::parse(s).map(|sel| sel.matches(&obj));
        assert_eq!(m("metadata.name=a"), Ok(true));
        assert_eq!(m("metadata.name=a,metadata.namespace!=ns"), Ok(false));
        assert_eq!(m("status.phase==Running"), Ok(true));
        assert!(m("metadata.name").is_err());
    }
}
