//! The kubeconfig view: the one cluster, context and user krew-wasm selected for
//! this run, as a credential-free kubeconfig at `$KUBECONFIG`
//! (`/krew-wasm/kubeconfig`). See `docs/guest-contract.md`.
//!
//! The host has already applied `--kubeconfig`, `--context`, `--cluster`, `--user`
//! and `-n/--namespace` from the plugin's argv, so the view *is* the selection:
//! a plugin never needs to re-implement kubectl's loading rules.
//!
//! In a native build (not WASI) there is no host: [`view()`] then describes the
//! selection the SDK makes itself from the real kubeconfig, with the same rules
//! and flags (`native.rs`, feature `kube`).

#[cfg(target_os = "wasi")]
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::yaml::Node;

/// The namespace used when neither `-n` nor the context names one (kubectl's rule).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The selected cluster, context and user, read from the kubeconfig view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigView {
    context: String,
    cluster: String,
    user: String,
    namespace: Option<String>,
    server: String,
    server_uri: http::Uri,
    tls_server_name: Option<String>,
}

impl KubeconfigView {
    /// Reads the view from the file `$KUBECONFIG` names.
    ///
    /// Fails with [`Error::NoKubeconfig`] when `KUBECONFIG` is unset: the host sets it
    /// exactly when the user has a usable kubeconfig.
    pub fn load() -> Result<Self> {
        let path = match std::env::var("KUBECONFIG") {
            // The host always gives one path; outside krew-wasm a kubectl-style list
            // may be set, and its first entry is the best guess.
            Ok(list) => list.split(':').find(|p| !p.is_empty()).map(str::to_string),
            Err(_) => None,
        };
        let path = path.ok_or(Error::NoKubeconfig)?;
        Self::from_path(&path)
    }

    /// Reads a view from `path`.
    pub fn from_path(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                Error::NoKubeconfig
            } else {
                Error::View {
                    path: path.to_string(),
                    reason: err.to_string(),
                }
            }
        })?;
        Self::parse(&text).map_err(|reason| Error::View {
            path: path.to_string(),
            reason,
        })
    }

    /// Parses a view from kubeconfig YAML, selecting its `current-context`.
    pub fn parse(yaml: &str) -> std::result::Result<Self, String> {
        let doc = crate::yaml::parse(yaml)?;
        let text =
            |node: &Node, key: &str| node.get(key).and_then(Node::as_str).map(str::to_string);
        let named = |list: &str, name: &str| {
            doc.get(list)
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .find(|entry| entry.get("name").and_then(Node::as_str) == Some(name))
                .cloned()
        };
        let context_name = match text(&doc, "current-context").filter(|n| !n.is_empty()) {
            Some(name) => name,
            // A view always names its context; accept a lone context anyway.
            None => match doc.get("contexts").map(Node::items).unwrap_or_default() {
                [only] => text(only, "name").unwrap_or_default(),
                _ => return Err("no current-context is set".to_string()),
            },
        };
        let context = named("contexts", &context_name)
            .and_then(|entry| entry.get("context").cloned())
            .ok_or_else(|| format!("the current context {context_name:?} is not defined"))?;
        let cluster_name = text(&context, "cluster")
            .ok_or_else(|| format!("the context {context_name:?} names no cluster"))?;
        let cluster = named("clusters", &cluster_name)
            .and_then(|entry| entry.get("cluster").cloned())
            .ok_or_else(|| {
                format!(
                    "the context {context_name:?} names the cluster {cluster_name:?}, which is not defined"
                )
            })?;
        let server = text(&cluster, "server")
            .ok_or_else(|| format!("the cluster {cluster_name:?} has no server"))?
            .trim_end_matches('/')
            .to_string();
        let server_uri: http::Uri = server
            .parse()
            .map_err(|e| format!("the cluster's server {server:?} is not a URL: {e}"))?;
        if server_uri.scheme().is_none() || server_uri.authority().is_none() {
            return Err(format!(
                "the cluster's server {server:?} needs a scheme and a host (https://host:port)"
            ));
        }
        Ok(KubeconfigView {
            user: text(&context, "user").unwrap_or_default(),
            namespace: text(&context, "namespace").filter(|n| !n.is_empty()),
            tls_server_name: text(&cluster, "tls-server-name"),
            context: context_name,
            cluster: cluster_name,
            server,
            server_uri,
        })
    }

    /// A view from its parts, for a native build's own selection (`native.rs`):
    /// `server` must be an absolute URL, a trailing `/` is dropped, an empty
    /// namespace is none. (`parse` checks the same inline: sharing a helper costs
    /// every wasm plugin a few hundred bytes at opt-level "z".)
    #[cfg(all(feature = "kube", not(target_os = "wasi")))]
    pub(crate) fn new(
        context: String,
        cluster: String,
        user: String,
        namespace: Option<String>,
        server: &str,
        tls_server_name: Option<String>,
    ) -> std::result::Result<Self, String> {
        let server = server.trim_end_matches('/').to_string();
        let server_uri: http::Uri = server
            .parse()
            .map_err(|e| format!("the cluster's server {server:?} is not a URL: {e}"))?;
        if server_uri.scheme().is_none() || server_uri.authority().is_none() {
            return Err(format!(
                "the cluster's server {server:?} needs a scheme and a host (https://host:port)"
            ));
        }
        Ok(KubeconfigView {
            context,
            cluster,
            user,
            namespace: namespace.filter(|n| !n.is_empty()),
            server,
            server_uri,
            tls_server_name,
        })
    }

    /// The selected context's name (`current-context`).
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The selected cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The selected user's name (the view never holds the user's credentials).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The namespace to work in: `-n/--namespace`, else the context's, else `default`.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    /// The namespace only if `-n` or the context set one.
    pub fn explicit_namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The API server's URL as written in the kubeconfig, without a trailing `/`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The API server's URL, parsed.
    pub fn server_uri(&self) -> &http::Uri {
        &self.server_uri
    }

    /// The cluster's `tls-server-name`, if set (informational: the host does TLS).
    pub fn tls_server_name(&self) -> Option<&str> {
        self.tls_server_name.as_deref()
    }
}

/// The view of this run, read once and kept: from `$KUBECONFIG` under krew-wasm;
/// in a native build, the cluster, context, user and namespace that the real
/// kubeconfig and argv's kubectl flags select (kubectl's rules).
///
/// A native build without the `kube` feature has no kubeconfig loader and fails
/// with [`Error::Unsupported`].
#[cfg(target_os = "wasi")]
pub fn view() -> Result<&'static KubeconfigView> {
    static VIEW: OnceLock<KubeconfigView> = OnceLock::new();
    if let Some(view) = VIEW.get() {
        return Ok(view);
    }
    let loaded = KubeconfigView::load()?;
    Ok(VIEW.get_or_init(|| loaded))
}

/// The view of this run, read once and kept: from `$KUBECONFIG` under krew-wasm;
/// in a native build, the cluster, context, user and namespace that the real
/// kubeconfig and argv's kubectl flags select (kubectl's rules).
///
/// A native build without the `kube` feature has no kubeconfig loader and fails
/// with [`Error::Unsupported`].
#[cfg(not(target_os = "wasi"))]
pub fn view() -> Result<&'static KubeconfigView> {
    #[cfg(feature = "kube")]
    return crate::native::view();
    #[cfg(not(feature = "kube"))]
    return Err(Error::Unsupported);
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: &str = r#"apiVersion: v1
kind: Config
current-context: kind-dev
clusters:
- name: kind
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: LS0tLS1CRUdJTg==
    tls-server-name: kubernetes
contexts:
- name: kind-dev
  context:
    cluster: kind
    user: admin
    namespace: team-a
users:
- name: admin
  user: {}
"#;

    #[test]
    fn parses_the_selected_context() {
        let view = KubeconfigView::parse(VIEW).unwrap();
        assert_eq!(view.context(), "kind-dev");
        assert_eq!(view.cluster(), "kind");
        assert_eq!(view.user(), "admin");
        assert_eq!(view.namespace(), "team-a");
        assert_eq!(view.server(), "https://127.0.0.1:6443");
        assert_eq!(view.server_uri().port_u16(), Some(6443));
        assert_eq!(view.tls_server_name(), Some("kubernetes"));
    }

    #[test]
    fn namespace_defaults_to_default() {
        let yaml = VIEW.replace("    namespace: team-a\n", "");
        let view = KubeconfigView::parse(&yaml).unwrap();
        assert_eq!(view.namespace(), "default");
        assert_eq!(view.explicit_namespace(), None);
    }

    #[test]
    fn json_is_yaml_too() {
        let json = r#"{"current-context":"c","clusters":[{"name":"k","cluster":{"server":"https://[::1]:8443/prefix"}}],"contexts":[{"name":"c","context":{"cluster":"k","user":"u"}}],"users":[{"name":"u","user":{}}]}"#;
        let view = KubeconfigView::parse(json).unwrap();
        assert_eq!(view.server(), "https://[::1]:8443/prefix");
    }

    #[test]
    fn broken_views_say_what_is_wrong() {
        let err =
            KubeconfigView::parse(&VIEW.replace("cluster: kind\n", "cluster: gone\n")).unwrap_err();
        assert!(err.contains("\"gone\""), "{err}");
        let err =
            KubeconfigView::parse(&VIEW.replace("current-context: kind-dev", "current-context: x"))
                .unwrap_err();
        assert!(err.contains("\"x\""), "{err}");
        let err = KubeconfigView::parse(&VIEW.replace("https://127.0.0.1:6443/", "not a url"))
            .unwrap_err();
        assert!(err.contains("not a url"), "{err}");
    }

    /// The view exactly as the host writes it (serde-saphyr, as in
    /// `crates/kube-gateway`), with names that need quoting or block scalars.
    #[test]
    fn reads_what_the_host_writes() {
        #[derive(serde::Serialize)]
        struct View<'a> {
            #[serde(rename = "apiVersion")]
            api_version: &'a str,
            kind: &'a str,
            #[serde(rename = "current-context")]
            current_context: &'a str,
            clusters: [Named<Cluster<'a>>; 1],
            contexts: [Named<Context<'a>>; 1],
            users: [Named<User>; 1],
        }
        #[derive(serde::Serialize)]
        struct Named<T> {
            name: String,
            #[serde(flatten)]
            inner: T,
        }
        #[derive(serde::Serialize)]
        struct Cluster<'a> {
            cluster: ClusterBody<'a>,
        }
        #[derive(serde::Serialize)]
        struct ClusterBody<'a> {
            server: &'a str,
            #[serde(rename = "certificate-authority-data")]
            ca: &'a str,
            #[serde(rename = "tls-server-name")]
            tls_server_name: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Context<'a> {
            context: ContextBody<'a>,
        }
        #[derive(serde::Serialize)]
        struct ContextBody<'a> {
            cluster: &'a str,
            user: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            namespace: Option<&'a str>,
        }
        #[derive(serde::Serialize)]
        struct User {
            user: std::collections::BTreeMap<String, String>,
        }

        let ca = "LS0t".repeat(100);
        for (name, user, namespace) in [
            ("kind-dev", "admin", Some("team-a")),
            (
                "arn:aws:eks:us-east-1:123:cluster/prod",
                "user@example.com",
                None,
            ),
            ("yes", "null", Some("123")),
            ("a: b # c", "'quoted' \"x\"", Some("-x")),
            ("", "ünï\tcode\n2", Some(" lead")),
            ("long ".repeat(40).as_str(), "~", Some("true")),
        ] {
            let written = serde_saphyr::to_string(&View {
                api_version: "v1",
                kind: "Config",
                current_context: name,
                clusters: [Named {
                    name: name.to_string(),
                    inner: Cluster {
                        cluster: ClusterBody {
                            server: "https://[::1]:6443/k8s/clusters/c-1",
                            ca: &ca,
                            tls_server_name: "kubernetes",
                        },
                    },
                }],
                contexts: [Named {
                    name: name.to_string(),
                    inner: Context {
                        context: ContextBody {
                            cluster: name,
                            user,
                            namespace,
                        },
                    },
                }],
                users: [Named {
                    name: user.to_string(),
                    inner: User {
                        user: Default::default(),
                    },
                }],
            })
            .unwrap();
            let view =
                KubeconfigView::parse(&written).unwrap_or_else(|e| panic!("{e} in\n{written}"));
            assert_eq!(view.context(), name, "{written}");
            assert_eq!(view.cluster(), name, "{written}");
            assert_eq!(view.user(), user, "{written}");
            assert_eq!(
                view.namespace(),
                namespace.unwrap_or("default"),
                "{written}"
            );
            assert_eq!(view.server(), "https://[::1]:6443/k8s/clusters/c-1");
            assert_eq!(view.tls_server_name(), Some("kubernetes"));
        }
    }

    #[test]
    fn missing_file_is_no_kubeconfig() {
        let err = KubeconfigView::from_path("/nonexistent/krew-wasm/kubeconfig").unwrap_err();
        assert!(matches!(err, Error::NoKubeconfig));
        assert!(err.to_string().contains("KUBECONFIG"));
        assert!(err.to_string().contains("--kubeconfig"));
    }
}
