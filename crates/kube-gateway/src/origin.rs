//! Scheme, host and port: what a plugin's request must match to reach the
//! cluster.

use std::fmt;

use http::Uri;

/// The origin of the API server (scheme, host, port) and the path prefix
/// some servers are published under (`https://host/k8s/clusters/c-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
    path_prefix: String,
}

impl Origin {
    /// Parses a server URL from a kubeconfig.
    pub fn parse(server: &str) -> Result<Self, String> {
        let uri: Uri = server.parse().map_err(|e| format!("{e}"))?;
        Self::of(&uri)
            .ok_or_else(|| "it needs an http:// or https:// scheme and a host".to_string())
    }

    /// The origin of `uri`, when it has an http(s) scheme and a host.
    pub fn of(uri: &Uri) -> Option<Self> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let host = uri.host()?.to_ascii_lowercase();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Some(Self {
            port: uri.port_u16().unwrap_or(default_port),
            scheme,
            host,
            path_prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// Whether `other` has the same scheme, host and port.
    pub fn same_origin(&self, other: &Origin) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }

    /// The server's path prefix without the trailing slash (often empty).
    pub fn path_prefix(&self) -> &str {
        &self.path_prefix
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_and_case_do_not_matter() {
        let server = Origin::parse("https://Kube.Example.com").unwrap();
        let request = Origin::of(&"https://kube.example.com:443/api/v1".parse().unwrap()).unwrap();
        assert!(server.same_origin(&request));
        assert_eq!(server.to_string(), "https://kube.example.com:443");
    }

    #[test]
    fn another_scheme_host_or_port_is_another_origin() {
        let server = Origin::parse("https://127.0.0.1:6443/prefix/").unwrap();
        assert_eq!(server.path_prefix(), "/prefix");
        for other in [
            "http://127.0.0.1:6443/",
            "https://127.0.0.1:6444/",
            "https://localhost:6443/",
            "https://169.254.169.254:6443/",
        ] {
            let other = Origin::of(&other.parse().unwrap()).unwrap();
            assert!(!server.same_origin(&other), "{other}");
        }
        assert!(Origin::parse("ftp://example.com").is_err());
        assert!(Origin::parse("/just/a/path").is_err());
    }

    #[test]
    fn ipv6_hosts() {
        let server = Origin::parse("https://[::1]:6443").unwrap();
        assert_eq!(server.to_string(), "https://[::1]:6443");
        let request = Origin::of(&"https://[::1]:6443/api".parse().unwrap()).unwrap();
        assert!(server.same_origin(&request));
    }
}
