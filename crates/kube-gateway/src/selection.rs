//! Choosing the cluster, user and namespace with kubectl's loading rules,
//! and writing the credential-free kubeconfig view a plugin gets.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use kube::config::{Kubeconfig, KubeconfigError};
use serde::Serialize;

use crate::flags::KubectlFlags;
use crate::origin::Origin;

/// Where kubectl would look for kubeconfig files, captured from the process
/// environment (or made up by a test).
#[derive(Debug, Clone, Default)]
pub struct KubeconfigSources {
    /// The `KUBECONFIG` variable, if set.
    pub kubeconfig_var: Option<OsString>,
    /// The home directory, for `~/.kube/config`.
    pub home: Option<PathBuf>,
}

impl KubeconfigSources {
    /// The sources of the current process.
    pub fn from_env() -> Self {
        Self {
            kubeconfig_var: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// Why no cluster could be selected. Plugins still run; their first API
/// request is refused with this message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SelectionError {
    #[error(
        "no kubeconfig found (KUBECONFIG is unset and ~/.kube/config does not exist); set KUBECONFIG or pass --kubeconfig"
    )]
    NoKubeconfig,
    #[error("reading the kubeconfig {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("the kubeconfig sets no current-context; pass --context NAME")]
    NoCurrentContext,
    #[error("context \"{0}\" not found in the kubeconfig")]
    NoSuchContext(String),
    #[error("cluster \"{0}\" not found in the kubeconfig")]
    NoSuchCluster(String),
    #[error("cluster \"{0}\" has no server URL in the kubeconfig")]
    NoServer(String),
    #[error("cluster \"{cluster}\" has an unusable server URL {server:?}: {reason}")]
    BadServer {
        cluster: String,
        server: String,
        reason: String,
    },
}

/// The cluster, user and namespace a plugin run talks to.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The merged kubeconfig, credentials included: stays on the host.
    pub(crate) kubeconfig: Kubeconfig,
    pub(crate) flags: KubectlFlags,
    context_name: String,
    cluster_name: String,
    user_name: String,
    namespace: Option<String>,
    server: String,
    origin: Origin,
    certificate_authority_data: Option<String>,
    tls_server_name: Option<String>,
}

impl Selection {
    /// Loads the kubeconfig as kubectl does (`--kubeconfig`, else the
    /// `KUBECONFIG` list merged in order, else `~/.kube/config`) and selects
    /// the context, cluster, user and namespace `flags` ask for.
    pub fn load(flags: &KubectlFlags, sources: &KubeconfigSources) -> Result<Self, SelectionError> {
        let kubeconfig = load_kubeconfig(flags, sources)?;
        Self::select(kubeconfig, flags)
    }

    fn select(kubeconfig: Kubeconfig, flags: &KubectlFlags) -> Result<Self, SelectionError> {
        let context_name = flags
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone().filter(|c| !c.is_empty()))
            .ok_or(SelectionError::NoCurrentContext)?;
        let context = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.clone())
            .ok_or_else(|| SelectionError::NoSuchContext(context_name.clone()))?;
        let cluster_name = flags.cluster.clone().unwrap_or(context.cluster.clone());
        let cluster = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.cluster.clone())
            .ok_or_else(|| SelectionError::NoSuchCluster(cluster_name.clone()))?;
        let server = cluster
            .server
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SelectionError::NoServer(cluster_name.clone()))?;
        let origin = Origin::parse(&server).map_err(|reason| SelectionError::BadServer {
            cluster: cluster_name.clone(),
            server: server.clone(),
            reason,
        })?;
        let user_name = flags
            .user
            .clone()
            .or(context.user.clone())
            .unwrap_or_default();
        let namespace = flags
            .namespace
            .clone()
            .or(context.namespace.clone())
            .filter(|n| !n.is_empty());
        // The CA is public; the view carries it so a plugin can show it. A
        // CA file that cannot be read is left out here: the host's client
        // reports it on the first request.
        let certificate_authority_data = cluster.certificate_authority_data.clone().or_else(|| {
            let path = cluster.certificate_authority.as_ref()?;
            let pem = std::fs::read(path).ok()?;
            Some(base64::engine::general_purpose::STANDARD.encode(pem))
        });
        Ok(Self {
            flags: flags.clone(),
            context_name,
            cluster_name,
            user_name,
            namespace,
            server,
            origin,
            certificate_authority_data,
            tls_server_name: cluster.tls_server_name.clone(),
            kubeconfig,
        })
    }

    /// The selected context's name.
    pub fn context_name(&self) -> &str {
        &self.context_name
    }

    /// The namespace from `-n`, else the context's.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The API server URL, as written in the kubeconfig.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The kubeconfig view the plugin reads: this selection's cluster,
    /// context and user, and not one credential. Built from a type that has
    /// no field able to hold a secret.
    ///
    /// Written as JSON, which is YAML too: kubectl, kube-rs, client-go and
    /// the SDK all read it, and it costs a tenth of what a YAML serializer
    /// does on every plugin start (140 k instructions, callgrind).
    pub fn view_json(&self) -> String {
        let view = View {
            api_version: "v1",
            kind: "Config",
            current_context: &self.context_name,
            clusters: [ViewNamedCluster {
                name: &self.cluster_name,
                cluster: ViewCluster {
                    server: &self.server,
                    certificate_authority_data: self.certificate_authority_data.as_deref(),
                    tls_server_name: self.tls_server_name.as_deref(),
                },
            }],
            contexts: [ViewNamedContext {
                name: &self.context_name,
                context: ViewContext {
                    cluster: &self.cluster_name,
                    user: &self.user_name,
                    namespace: self.namespace.as_deref(),
                },
            }],
            users: [ViewNamedUser {
                name: &self.user_name,
                user: ViewUser {},
            }],
        };
        // Serialising plain strings into a String cannot fail.
        serde_json::to_string_pretty(&view).unwrap_or_default()
    }
}

fn load_kubeconfig(
    flags: &KubectlFlags,
    sources: &KubeconfigSources,
) -> Result<Kubeconfig, SelectionError> {
    let unreadable = |path: &Path, e: KubeconfigError| SelectionError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    // `--kubeconfig` names exactly one file, which must exist.
    if let Some(path) = &flags.kubeconfig {
        let path = Path::new(path);
        return Kubeconfig::read_from(path).map_err(|e| unreadable(path, e));
    }
    // `KUBECONFIG`: files merged in order, first value wins; files that do
    // not exist are skipped, as kubectl skips them.
    let listed: Vec<PathBuf> = sources
        .kubeconfig_var
        .as_ref()
        .map(|var| {
            std::env::split_paths(var)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !listed.is_empty() {
        let mut merged: Option<Kubeconfig> = None;
        for path in listed.iter().filter(|p| p.exists()) {
            let next = Kubeconfig::read_from(path).map_err(|e| unreadable(path, e))?;
            merged = Some(match merged {
                Some(so_far) => so_far.merge(next).map_err(|e| unreadable(path, e))?,
                None => next,
            });
        }
        return merged.ok_or(SelectionError::NoKubeconfig);
    }
    let default = sources
        .home
        .as_ref()
        .map(|home| home.join(".kube").join("config"))
        .filter(|p| p.exists())
        .ok_or(SelectionError::NoKubeconfig)?;
    Kubeconfig::read_from(&default).map_err(|e| unreadable(&default, e))
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct View<'a> {
    api_version: &'static str,
    kind: &'static str,
    current_context: &'a str,
    clusters: [ViewNamedCluster<'a>; 1],
    contexts: [ViewNamedContext<'a>; 1],
    users: [ViewNamedUser<'a>; 1],
}

#[derive(Serialize)]
struct ViewNamedCluster<'a> {
    name: &'a str,
    cluster: ViewCluster<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ViewCluster<'a> {
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_authority_data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<&'a str>,
}

#[derive(Serialize)]
struct ViewNamedContext<'a> {
    name: &'a str,
    context: ViewContext<'a>,
}

#[derive(Serialize)]
struct ViewContext<'a> {
    cluster: &'a str,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

#[derive(Serialize)]
struct ViewNamedUser<'a> {
    name: &'a str,
    user: ViewUser,
}

/// Deliberately empty: the view never carries a credential.
#[derive(Serialize)]
struct ViewUser {}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Q0EgREFUQQ==
- name: prod-cluster
  cluster:
    server: https://prod.example.com/k8s/clusters/c-1
    tls-server-name: kubernetes
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
users:
- name: dev-user
  user: {token: dev-secret-token}
- name: prod-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: get-token
      args: ["--secret-arg"]
"#;

    const SECOND: &str = r#"
apiVersion: v1
kind: Config
current-context: prod
contexts:
- name: dev
  context: {cluster: prod-cluster, user: prod-user}
- name: extra
  context: {cluster: dev-cluster, user: extra-user}
users:
- name: extra-user
  user: {password: extra-password, username: extra}
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn sources_with(paths: &[&Path]) -> KubeconfigSources {
        KubeconfigSources {
            kubeconfig_var: Some(std::env::join_paths(paths).unwrap()),
            home: None,
        }
    }

    #[test]
    fn merges_the_kubeconfig_list_first_value_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), "a", FIRST);
        let second = write(dir.path(), "b", SECOND);
        let missing = dir.path().join("missing");
        let sources = sources_with(&[&missing, &first, &second]);

        let selection = Selection::load(&KubectlFlags::default(), &sources).unwrap();
        assert_eq!(
            selection.context_name(),
            "dev",
            "current-context of the first file wins"
        );
        assert_eq!(
            selection.server(),
            "https://127.0.0.1:6443",
            "the first file's `dev` context wins"
        );
        assert_eq!(selection.namespace(), Some("team-a"));

        let flags = KubectlFlags::from_args(&["--context", "extra", "-n", "other"]);
        let selection = Selection::load(&flags, &sources).unwrap();
        assert_eq!(selection.context_name(), "extra");
        assert_eq!(selection.namespace(), Some("other"));
    }

    #[test]
    fn the_view_holds_no_credential() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), "a", FIRST);
        for context in ["dev", "prod"] {
            let flags = KubectlFlags::from_args(&["--context", context]);
            let view = Selection::load(&flags, &sources_with(&[&first]))
                .unwrap()
                .view_json();
            for secret in [
                "dev-secret-token",
                "get-token",
                "--secret-arg",
                "token",
                "exec",
            ] {
                assert!(
                    !view.contains(secret),
                    "{secret} leaked into the view:\n{view}"
                );
            }
            let parsed = Kubeconfig::from_yaml(&view).unwrap();
            assert_eq!(parsed.current_context.as_deref(), Some(context));
            assert_eq!(parsed.clusters.len(), 1);
            assert_eq!(parsed.auth_infos.len(), 1);
            assert_eq!(
                parsed.auth_infos[0]
                    .auth_info
                    .as_ref()
                    .map(|a| a.token.is_none()),
                Some(true)
            );
        }
        let flags = KubectlFlags::from_args(&["--context", "prod"]);
        let view = Selection::load(&flags, &sources_with(&[&first]))
            .unwrap()
            .view_json();
        let parsed = Kubeconfig::from_yaml(&view).unwrap();
        let cluster = parsed.clusters[0].cluster.clone().unwrap();
        assert_eq!(
            cluster.server.as_deref(),
            Some("https://prod.example.com/k8s/clusters/c-1")
        );
        assert_eq!(cluster.tls_server_name.as_deref(), Some("kubernetes"));
        assert_eq!(parsed.contexts[0].context.as_ref().unwrap().namespace, None);
    }

    #[test]
    fn explains_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), "a", FIRST);
        let none = KubeconfigSources::default();
        assert!(matches!(
            Selection::load(&KubectlFlags::default(), &none),
            Err(SelectionError::NoKubeconfig)
        ));
        let flags = KubectlFlags::from_args(&["--context", "nope"]);
        let err = Selection::load(&flags, &sources_with(&[&first])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "context \"nope\" not found in the kubeconfig"
        );
        let flags = KubectlFlags::from_args(&["--kubeconfig", "/nonexistent/kubeconfig"]);
        let err = Selection::load(&flags, &sources_with(&[&first])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
        let home = KubeconfigSources {
            kubeconfig_var: None,
            home: Some(dir.path().into()),
        };
        std::fs::create_dir(dir.path().join(".kube")).unwrap();
        write(&dir.path().join(".kube"), "config", FIRST);
        assert_eq!(
            Selection::load(&KubectlFlags::default(), &home)
                .unwrap()
                .context_name(),
            "dev"
        );
    }
}
