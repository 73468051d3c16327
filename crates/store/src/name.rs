//! Plugin names: what `kubectl <name>` runs.

use std::fmt;

/// Top-level kubectl commands (kubectl 1.32, plus `help`): a plugin with one of
/// these names would never run, because kubectl prefers its built-ins.
pub const KUBECTL_BUILTINS: &[&str] = &[
    "alpha",
    "annotate",
    "api-resources",
    "api-versions",
    "apply",
    "attach",
    "auth",
    "autoscale",
    "certificate",
    "cluster-info",
    "completion",
    "config",
    "cordon",
    "cp",
    "create",
    "debug",
    "delete",
    "describe",
    "diff",
    "drain",
    "edit",
    "events",
    "exec",
    "explain",
    "expose",
    "get",
    "help",
    "kustomize",
    "label",
    "logs",
    "options",
    "patch",
    "plugin",
    "port-forward",
    "proxy",
    "replace",
    "rollout",
    "run",
    "scale",
    "set",
    "taint",
    "top",
    "uncordon",
    "version",
    "wait",
];

/// Prefix of every kubectl plugin executable.
pub const KUBECTL_PREFIX: &str = "kubectl-";

/// Why a string cannot name a plugin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "`{0}` is not a valid plugin name: use lowercase letters, digits and inner dashes \
         (`[a-z0-9]([a-z0-9-]*[a-z0-9])?`), at most 63 characters"
    )]
    Invalid(String),
    #[error(
        "`{0}` is a built-in kubectl command (`kubectl {0}`), so kubectl would never run a plugin of that name; choose another name"
    )]
    ShadowsBuiltin(String),
}

/// True for `[a-z0-9]([a-z0-9-]*[a-z0-9])?` of at most 63 characters: the
/// shape of every name in the store, so such a name is safe in a path.
pub fn is_well_formed(name: &str) -> bool {
    let bytes = name.as_bytes();
    let valid_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(valid_char)
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// A validated plugin name such as `decoder` or `foo-bar`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginName(String);

impl PluginName {
    /// Validates `name` against `[a-z0-9]([a-z0-9-]*[a-z0-9])?` and the list of
    /// kubectl built-in commands.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if !is_well_formed(name) {
            return Err(NameError::Invalid(name.to_string()));
        }
        if KUBECTL_BUILTINS.contains(&name) {
            return Err(NameError::ShadowsBuiltin(name.to_string()));
        }
        Ok(Self(name.to_string()))
    }

    /// Derives a name from the last segment of a repository path: the tag,
    /// digest, a `.wasm` suffix and a leading `kubectl-` are dropped
    /// (`kubectl-decoder.wasm` -> `decoder`).
    pub fn derive(repository_basename: &str) -> Result<Self, NameError> {
        let base = repository_basename
            .split(['@', ':'])
            .next()
            .unwrap_or(repository_basename);
        let base = base.strip_suffix(".wasm").unwrap_or(base);
        let base = base.strip_prefix(KUBECTL_PREFIX).unwrap_or(base);
        Self::new(base)
    }

    /// Reads the plugin name out of an executable file name
    /// (`kubectl-foo_bar` -> `foo-bar`), as kubectl maps `_` to `-`.
    /// Returns `None` when `file_name` is not a kubectl plugin name.
    pub fn from_executable_name(file_name: &str) -> Option<Result<Self, NameError>> {
        let rest = file_name.strip_prefix(KUBECTL_PREFIX)?;
        Some(Self::new(&rest.replace('_', "-")))
    }

    /// The file name of the link kubectl finds on PATH: `kubectl-foo_bar` for
    /// `foo-bar`, which kubectl runs for both `kubectl foo-bar` and `kubectl foo_bar`.
    pub fn executable_name(&self) -> String {
        format!("{KUBECTL_PREFIX}{}", self.0.replace('-', "_"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for n in ["hello", "foo-bar", "a", "x1", "1x", "decoder2"] {
            assert_eq!(PluginName::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn refuses_invalid_names() {
        for n in [
            "",
            "-a",
            "a-",
            "Hello",
            "foo_bar",
            "a.b",
            "a b",
            "ä",
            &"a".repeat(64),
        ] {
            assert_eq!(
                PluginName::new(n),
                Err(NameError::Invalid(n.to_string())),
                "{n}"
            );
        }
    }

    #[test]
    fn refuses_builtins() {
        for n in ["get", "apply", "logs", "port-forward", "plugin"] {
            assert_eq!(
                PluginName::new(n),
                Err(NameError::ShadowsBuiltin(n.to_string()))
            );
        }
        assert!(PluginName::new("get-all").is_ok());
    }

    #[test]
    fn derives_from_repository() {
        assert_eq!(
            PluginName::derive("kubectl-decoder.wasm").unwrap().as_str(),
            "decoder"
        );
        assert_eq!(PluginName::derive("hello").unwrap().as_str(), "hello");
        assert_eq!(
            PluginName::derive("foo-bar:v1").unwrap().as_str(),
            "foo-bar"
        );
        assert!(PluginName::derive("Hello_World").is_err());
    }

    #[test]
    fn maps_executable_names() {
        let n = PluginName::new("foo-bar").unwrap();
        assert_eq!(n.executable_name(), "kubectl-foo_bar");
        assert_eq!(
            PluginName::from_executable_name("kubectl-foo_bar"),
            Some(Ok(n))
        );
        assert_eq!(PluginName::from_executable_name("krew-wasm"), None);
    }
}
