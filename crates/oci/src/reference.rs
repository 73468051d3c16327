//! Plugin references: `registry/repo:tag`, `registry/repo@sha256:…`, with an
//! optional `registry://` or `oci://` prefix. Pure parsing, no I/O.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a plugin reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("empty reference: give one such as `ghcr.io/org/hello:v1`")]
    Empty,
    #[error(
        "`{0}` has no registry host: write the full reference, such as `ghcr.io/org/{0}:v1` \
         or `127.0.0.1:5000/{0}:v1`"
    )]
    NoRegistry(String),
    #[error(
        "`{reference}` is not a valid OCI reference ({reason}); expected `registry/repository:tag` or `registry/repository@sha256:<64 hex digits>`"
    )]
    Malformed { reference: String, reason: String },
    #[error(
        "`{reference}` has an unsupported digest `{digest}`: only `sha256:` followed by 64 lowercase hex digits is accepted"
    )]
    BadDigest { reference: String, digest: String },
}

/// A parsed reference to a plugin in an OCI registry.
///
/// The registry host is always explicit: a bare `hello` or `org/hello` is
/// refused rather than silently resolved against Docker Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginReference {
    inner: oci_client::Reference,
}

impl PluginReference {
    /// Parses `s`, accepting an optional `registry://` or `oci://` prefix.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let trimmed = s.trim();
        let bare = trimmed
            .strip_prefix("registry://")
            .or_else(|| trimmed.strip_prefix("oci://"))
            .unwrap_or(trimmed);
        if bare.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let malformed = |reason: &str| ReferenceError::Malformed {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if bare.contains("://") {
            return Err(malformed(
                "only the `registry://` and `oci://` prefixes are accepted",
            ));
        }
        let first = bare.split('/').next().unwrap_or_default();
        if !bare.contains('/') || !looks_like_registry_host(first) {
            let name = bare.split(['@', ':']).next().unwrap_or(bare);
            return Err(ReferenceError::NoRegistry(name.to_string()));
        }
        if let Some((_, digest)) = bare.split_once('@') {
            let valid = digest.strip_prefix("sha256:").is_some_and(|hex| {
                hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
            if !valid {
                return Err(ReferenceError::BadDigest {
                    reference: s.to_string(),
                    digest: digest.to_string(),
                });
            }
        }
        let inner = oci_client::Reference::from_str(bare).map_err(|e| malformed(&e.to_string()))?;
        // oci-client's tag pattern uses a Unicode `\w`; the OCI grammar is ASCII.
        if let Some(tag) = inner.tag()
            && !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(malformed(
                "a tag is ASCII letters, digits, `_`, `.` and `-`",
            ));
        }
        Ok(Self { inner })
    }

    /// The registry host, with port if any (`127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        self.inner.resolve_registry()
    }

    /// The repository path inside the registry (`org/hello`).
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The manifest digest, if the reference is pinned by digest.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// True when the reference names a digest: its content cannot change.
    pub fn is_pinned(&self) -> bool {
        self.digest().is_some()
    }

    /// The last path segment of the repository, from which a plugin name is
    /// derived (`ghcr.io/org/kubectl-decoder` -> `kubectl-decoder`).
    pub fn repository_basename(&self) -> &str {
        self.repository().rsplit('/').next().unwrap_or_default()
    }

    /// True when the registry is on this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.registry())
    }

    /// The same repository, pinned to `digest`.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            inner: self.inner.clone_with_digest(digest.to_string()),
        }
    }

    /// The same repository, at `tag` (a cosign signature's `sha256-<hex>.sig`).
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            inner: oci_client::Reference::with_tag(
                self.inner.registry().to_string(),
                self.repository().to_string(),
                tag.to_string(),
            ),
        }
    }

    pub(crate) fn as_oci(&self) -> &oci_client::Reference {
        &self.inner
    }
}

impl fmt::Display for PluginReference {
    /// Writes the reference in its canonical form: `registry/repo:tag`,
    /// `registry/repo@digest`, or `registry/repo:tag@digest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry(), self.repository())?;
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = self.digest() {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for PluginReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Docker's rule: the first path component is a registry host when it holds a
/// `.` or a `:` or is `localhost`.
fn looks_like_registry_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

/// True for `localhost`, `127.x.y.z` and `[::1]`, with or without a port.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.split(':').next().unwrap_or_default()
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tag_and_digest_forms() {
        let r = PluginReference::parse("ghcr.io/org/hello:v1").unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.repository(), "org/hello");
        assert_eq!(r.tag(), Some("v1"));
        assert!(!r.is_pinned());

        let digest = format!("sha256:{}", "a".repeat(64));
        let r = PluginReference::parse(&format!("127.0.0.1:5000/hello@{digest}")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert!(r.is_pinned());
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/hello@{digest}"));
    }

    #[test]
    fn accepts_scheme_prefixes() {
        for s in [
            "registry://ghcr.io/a/b:1",
            "oci://ghcr.io/a/b:1",
            "  ghcr.io/a/b:1 ",
        ] {
            assert_eq!(
                PluginReference::parse(s).unwrap().to_string(),
                "ghcr.io/a/b:1"
            );
        }
    }

    #[test]
    fn missing_tag_means_latest() {
        let r = PluginReference::parse("localhost:5000/hello").unwrap();
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn refuses_references_without_registry() {
        for s in ["hello", "hello:v1", "org/hello:v1"] {
            assert!(
                matches!(
                    PluginReference::parse(s),
                    Err(ReferenceError::NoRegistry(_))
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn refuses_malformed_references() {
        assert_eq!(PluginReference::parse(""), Err(ReferenceError::Empty));
        for s in [
            "https://ghcr.io/a/b:1",
            "ghcr.io/A/B:1",
            "ghcr.io/a/b:",
            "ghcr.io/a/b:tag with space",
            "ghcr.io//b",
            // Found by fuzz/ (reference target): a Unicode tag was accepted.
            "ghcr.io/org/hello:v\u{3dc}",
            "ghcr.io/org/hello:caf\u{e9}",
        ] {
            assert!(
                matches!(
                    PluginReference::parse(s),
                    Err(ReferenceError::Malformed { .. })
                ),
                "{s}: {:?}",
                PluginReference::parse(s)
            );
        }
        for s in [
            "ghcr.io/a/b@sha256:abc",
            "ghcr.io/a/b@md5:0123",
            &format!("ghcr.io/a/b@sha256:{}", "A".repeat(64)),
        ] {
            assert!(
                matches!(
                    PluginReference::parse(s),
                    Err(ReferenceError::BadDigest { .. })
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_host("localhost:5000"));
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.1.2.3:443"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("ghcr.io"));
        assert!(!is_loopback_host("10.0.0.1:5000"));
        assert!(!is_loopback_host("localhost.evil.example:5000"));
    }
}
