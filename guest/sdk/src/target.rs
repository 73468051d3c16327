//! Where a request goes: a path is resolved against the view's server URL
//! (keeping the server's path prefix); an absolute URL is sent as given, and the
//! host decides whether it may pass.

use crate::error::{Error, Result};

/// The pieces wasi:http wants: scheme, authority, path with query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub scheme: String,
    pub authority: String,
    pub path_and_query: String,
}

impl Target {
    /// Resolves `uri` (a path like `/api/v1/pods?limit=1`, or an absolute URL)
    /// against `server` (the view's server URL).
    pub fn resolve(server: Option<&http::Uri>, uri: &http::Uri) -> Result<Target> {
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
            return Ok(Target {
                scheme: scheme.to_string(),
                authority: authority.to_string(),
                path_and_query: path_and_query.to_string(),
            });
        }
        let server = server.ok_or(Error::NoKubeconfig)?;
        let (Some(scheme), Some(authority)) = (server.scheme_str(), server.authority()) else {
            return Err(Error::other(format!(
                "the cluster's server {server} has no scheme or host"
            )));
        };
        let prefix = server.path().trim_end_matches('/');
        Ok(Target {
            scheme: scheme.to_string(),
            authority: authority.to_string(),
            path_and_query: format!("{prefix}{path_and_query}"),
        })
    }

    /// The full URL, for messages.
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme, self.authority, self.path_and_query
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(server: &str, uri: &str) -> Target {
        let server: http::Uri = server.parse().unwrap();
        Target::resolve(Some(&server), &uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn paths_join_the_server() {
        let t = resolve("https://10.0.0.1:6443", "/api/v1/pods?watch=true");
        assert_eq!(t.url(), "https://10.0.0.1:6443/api/v1/pods?watch=true");
        assert_eq!(t.authority, "10.0.0.1:6443");
        assert_eq!(t.path_and_query, "/api/v1/pods?watch=true");
    }

    #[test]
    fn server_path_prefix_is_kept() {
        let t = resolve("https://rancher.example/k8s/clusters/c-1/", "/api/v1/pods");
        assert_eq!(t.path_and_query, "/k8s/clusters/c-1/api/v1/pods");
        let t = resolve("https://rancher.example/k8s", "/version?x=1");
        assert_eq!(t.path_and_query, "/k8s/version?x=1");
    }

    #[test]
    fn absolute_urls_are_sent_as_given() {
        let t = resolve(
            "https://10.0.0.1:6443",
            "http://169.254.169.254/latest/meta-data/",
        );
        assert_eq!(t.scheme, "http");
        assert_eq!(t.authority, "169.254.169.254");
        assert_eq!(t.path_and_query, "/latest/meta-data/");
    }

    #[test]
    fn a_path_without_a_view_is_no_kubeconfig() {
        let err = Target::resolve(None, &"/api".parse().unwrap()).unwrap_err();
        assert!(matches!(err, Error::NoKubeconfig));
    }
}
