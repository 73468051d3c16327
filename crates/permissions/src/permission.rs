//! One permission and its parts, each with a text form that parses back.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ByteSize, PermissionsError};

/// One thing a plugin may do beyond the defaults.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    /// See this host environment variable (when it is set).
    Env(String),
    /// Open files under a directory.
    Dir { path: DirPath, access: Access },
    /// Send `wasi:http` requests to this origin (no credentials are added).
    Host(HostOrigin),
    /// Grow memory up to this cap.
    Memory(ByteSize),
}

impl Permission {
    /// A sentence for the consent prompt and `info`.
    pub fn describe(&self) -> String {
        match self {
            Permission::Env(name) => format!("read the environment variable {name}"),
            Permission::Dir { path, access } => {
                let verb = match access {
                    Access::ReadOnly => "read",
                    Access::ReadWrite => "read, change and delete",
                };
                match path {
                    DirPath::Current => {
                        format!("{verb} files in the directory you run it from")
                    }
                    other => format!("{verb} files in {other}"),
                }
            }
            Permission::Host(origin) => format!("send HTTP requests to {origin}"),
            Permission::Memory(size) => format!(
                "use up to {size} of memory (the default cap is {})",
                crate::DEFAULT_MEMORY
            ),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Env(name) => write!(f, "env:{name}"),
            // A path that itself ends in `:rw` or `:ro` needs its access
            // written out, or the spec would parse back as another path.
            Permission::Dir {
                path,
                access: Access::ReadOnly,
            } if !path.to_string().ends_with(":rw") && !path.to_string().ends_with(":ro") => {
                write!(f, "dir:{path}")
            }
            Permission::Dir {
                path,
                access: Access::ReadOnly,
            } => write!(f, "dir:{path}:ro"),
            Permission::Dir {
                path,
                access: Access::ReadWrite,
            } => write!(f, "dir:{path}:rw"),
            Permission::Host(origin) => write!(f, "host:{origin}"),
            Permission::Memory(size) => write!(f, "memory:{size}"),
        }
    }
}

impl FromStr for Permission {
    type Err = PermissionsError;

    /// `env:NAME`, `dir:PATH`, `dir:PATH:ro`, `dir:PATH:rw`,
    /// `host:https://HOST[:PORT]`, `memory:SIZE`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| PermissionsError::Spec {
            spec: spec.to_string(),
            reason,
        };
        let (kind, value) = spec.split_once(':').ok_or_else(|| {
            invalid("expected KIND:VALUE: env:NAME, dir:PATH[:rw], host:https://HOST[:PORT] or memory:SIZE".into())
        })?;
        match kind {
            "env" => Ok(Permission::Env(
                EnvName::try_from(value.to_string()).map_err(invalid)?.0,
            )),
            "dir" => {
                let (path, access) = match value.rsplit_once(':') {
                    Some((path, "rw")) => (path, Access::ReadWrite),
                    Some((path, "ro")) => (path, Access::ReadOnly),
                    _ => (value, Access::ReadOnly),
                };
                Ok(Permission::Dir {
                    path: DirPath::try_from(path.to_string()).map_err(invalid)?,
                    access,
                })
            }
            "host" => Ok(Permission::Host(
                HostOrigin::try_from(value.to_string()).map_err(invalid)?,
            )),
            "memory" => Ok(Permission::Memory(value.parse().map_err(invalid)?)),
            other => Err(invalid(format!(
                "unknown kind `{other}`; the kinds are env, dir, host and memory"
            ))),
        }
    }
}

/// Read-only or read-write; read-write is the wider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, not `KUBECONFIG`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct EnvName(pub(crate) String);

impl TryFrom<String> for EnvName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`{name}` is not an environment variable name (letters, digits and `_`, not starting with a digit)"
            ));
        }
        if name == "KUBECONFIG" {
            return Err(
                "KUBECONFIG cannot be granted: krew-wasm points it at the plugin's credential-free kubeconfig view".into(),
            );
        }
        Ok(EnvName(name))
    }
}

impl From<EnvName> for String {
    fn from(name: EnvName) -> String {
        name.0
    }
}

/// A directory a plugin may be granted: `.` (the directory it is run
/// from), `~` or `~/…` (under the user's home), or an absolute path. No `..`
/// or `.` components, so what is shown at consent is what is mounted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DirPath {
    /// The current directory of each run, mounted at `.` in the guest.
    Current,
    /// Relative to the home directory (`""` is the home itself).
    Home(String),
    /// An absolute path.
    Absolute(String),
}

impl DirPath {
    /// The host directory this grant names.
    pub fn resolve(&self, current_dir: &Path, home_dir: Option<&Path>) -> Result<PathBuf, String> {
        match self {
            DirPath::Current => Ok(current_dir.to_path_buf()),
            DirPath::Home(relative) => {
                let home = home_dir.ok_or_else(|| {
                    format!("`{self}` names the home directory, but HOME is not set")
                })?;
                Ok(if relative.is_empty() {
                    home.to_path_buf()
                } else {
                    home.join(relative)
                })
            }
            DirPath::Absolute(path) => Ok(PathBuf::from(path)),
        }
    }

    /// Where the plugin sees the directory: `.` for the current one, else
    /// the host path itself, so paths the user types mean the same inside.
    pub fn guest_path(&self, resolved: &Path) -> String {
        match self {
            DirPath::Current => ".".into(),
            _ => resolved.to_string_lossy().into_owned(),
        }
    }
}

impl TryFrom<String> for DirPath {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let hint = "use `.` (the current directory), `~/PATH` or an absolute path";
        if text == "." {
            return Ok(DirPath::Current);
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            // Printed raw, it could rewrite the consent prompt on a terminal.
            return Err(format!(
                "a path cannot contain a control character (U+{:04X}); it was {:?}",
                u32::from(c),
                text
            ));
        }
        let (under_home, rest) = if text == "~" {
            (true, "")
        } else if let Some(rest) = text.strip_prefix("~/") {
            (true, rest)
        } else if text.starts_with('/') {
            (false, text.as_str())
        } else {
            return Err(format!("`{text}` is a relative path; {hint}"));
        };
        let mut components = Vec::new();
        for component in rest.split('/') {
            match component {
                "" => continue,
                "." | ".." => {
                    return Err(format!(
                        "`{text}` contains a `{component}` component; write the path without it"
                    ));
                }
                other => components.push(other),
            }
        }
        let joined = components.join("/");
        Ok(if under_home {
            DirPath::Home(joined)
        } else {
            DirPath::Absolute(format!("/{joined}"))
        })
    }
}

impl From<DirPath> for String {
    fn from(path: DirPath) -> String {
        path.to_string()
    }
}

impl fmt::Display for DirPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirPath::Current => f.write_str("."),
            DirPath::Home(relative) if relative.is_empty() => f.write_str("~"),
            DirPath::Home(relative) => write!(f, "~/{relative}"),
            DirPath::Absolute(path) => f.write_str(path),
        }
    }
}

/// An HTTP origin: scheme, host and port, as the gateway compares requests.
/// Written `https://host` (default port omitted); a bare host means https.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostOrigin {
    scheme: String,
    host: String,
    port: u16,
}

impl HostOrigin {
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Lowercase DNS name, IPv4 address, or IPv6 address in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether a request to `scheme://host:port` goes to this origin.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let bare = |host: &str| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        };
        self.scheme.eq_ignore_ascii_case(scheme)
            && bare(&self.host) == bare(host)
            && self.port == port
    }

    fn default_port(scheme: &str) -> u16 {
        if scheme == "http" { 80 } else { 443 }
    }
}

impl TryFrom<String> for HostOrigin {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(format!(
                "an origin cannot contain a control character (U+{:04X}); it was {:?}",
                u32::from(c),
                text
            ));
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_string(), text.as_str()),
        };
        if scheme != "https" && scheme != "http" {
            return Err(format!(
                "`{text}`: only http and https origins can be granted"
            ));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "`{text}` is not an origin; write only scheme, host and port, e.g. https://api.github.com or https://10.0.0.5:8443"
            ));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (address, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: unclosed `[` in an IPv6 address"))?;
            address
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("`{text}`: `{address}` is not an IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(format!("`{text}` is not an origin")),
            };
            (format!("[{}]", address.to_ascii_lowercase()), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
                None => (authority.to_ascii_lowercase(), None),
            }
        };
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| format!("`{text}`: `{port}` is not a port number"))?,
            None => Self::default_port(&scheme),
        };
        let valid_name = host.starts_with('[')
            || host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid_name || host.len() > 253 {
            return Err(format!(
                "`{text}`: `{host}` is not a host name or IP address"
            ));
        }
        Ok(HostOrigin { scheme, host, port })
    }
}

impl From<HostOrigin> for String {
    fn from(origin: HostOrigin) -> String {
        origin.to_string()
    }
}

impl fmt::Display for HostOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if self.port != Self::default_port(&self.scheme) {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<Permission, String> {
        spec.parse::<Permission>().map_err(|e| e.to_string())
    }

    #[test]
    fn specs_parse_and_print_back() {
        for spec in [
            "env:AWS_PROFILE",
            "dir:.",
            "dir:.:rw",
            "dir:~",
            "dir:~/.config/foo:rw",
            "dir:/srv/data",
            "host:https://api.github.com",
            "host:http://10.0.0.5:8080",
            "host:https://[::1]:8443",
            "memory:1GiB",
        ] {
            assert_eq!(parse(spec).unwrap().to_string(), spec);
        }
        assert_eq!(
            parse("dir:/srv//data/:ro").unwrap().to_string(),
            "dir:/srv/data"
        );
        // Found by fuzz/ (permissions target): a read-only path ending in
        // `:rw` printed as a spec granting read-write to the path without it,
        // one ending in `:ro` as a spec for the path without it.
        for spec in ["dir:/data:rw:ro", "dir:/data:ro:ro", "dir:/data:rw:rw"] {
            let permission = parse(spec).unwrap();
            assert_eq!(permission.to_string(), spec);
            assert_eq!(parse(&permission.to_string()).unwrap(), permission);
        }
        assert_eq!(
            parse("host:API.GitHub.com").unwrap().to_string(),
            "host:https://api.github.com"
        );
        assert_eq!(
            parse("host:https://api.github.com:443/")
                .unwrap()
                .to_string(),
            "host:https://api.github.com"
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, needle) in [
            ("nonsense", "KIND:VALUE"),
            ("net:x", "unknown kind `net`"),
            ("env:1X", "not an environment variable name"),
            ("env:KUBECONFIG", "credential-free"),
            ("dir:data", "relative path"),
            ("dir:/srv/../etc", "`..`"),
            ("dir:~/./x", "`.`"),
            ("host:ftp://x", "only http and https"),
            ("host:https://x/path", "not an origin"),
            ("host:https://user@x", "not an origin"),
            ("host:https://x:99999", "not a port"),
            ("host:https://bad_name", "not a host name"),
            ("memory:lots", "size"),
            ("dir:/a\x1b[2Kb", "control character (U+001B)"),
            ("dir:/a\rb", "control character (U+000D)"),
            ("host:https://a\x1bb", "control character"),
        ] {
            let err = parse(spec).unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
            assert!(err.contains(spec), "{spec}: {err}");
        }
    }

    #[test]
    fn dir_paths_resolve() {
        let home = Path::new("/home/u");
        let cwd = Path::new("/work");
        let resolve = |text: &str| {
            DirPath::try_from(text.to_string())
                .unwrap()
                .resolve(cwd, Some(home))
                .unwrap()
        };
        assert_eq!(resolve("."), cwd);
        assert_eq!(resolve("~"), home);
        assert_eq!(resolve("~/a/b"), Path::new("/home/u/a/b"));
        assert_eq!(resolve("/x"), Path::new("/x"));
        assert!(DirPath::Home("a".into()).resolve(cwd, None).is_err());
        assert_eq!(DirPath::Current.guest_path(cwd), ".");
        assert_eq!(
            DirPath::Absolute("/x".into()).guest_path(Path::new("/x")),
            "/x"
        );
    }

    #[test]
    fn origins_match_requests() {
        let origin = HostOrigin::try_from("https://api.github.com".to_string()).unwrap();
        assert!(origin.matches("https", "API.github.com", 443));
        assert!(!origin.matches("http", "api.github.com", 443));
        assert!(!origin.matches("https", "api.github.com", 8443));
        assert!(!origin.matches("https", "api.github.com.evil", 443));
        let v6 = HostOrigin::try_from("https://[::1]:8443".to_string()).unwrap();
        assert!(v6.matches("https", "[::1]", 8443));
    }
}
