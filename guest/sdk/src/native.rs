//! Native builds (any target but WASI): the same plugin source as an ordinary
//! `kubectl-<name>` binary, with kube-rs talking to the cluster directly.
//!
//! Inside krew-wasm the host selects the cluster and hands the plugin a view;
//! natively nobody has, so this module does what the host does, with kubectl's
//! rules: `--kubeconfig` from argv, else the `KUBECONFIG` list (files merged in
//! order, first value wins, missing files skipped), else `~/.kube/config`; then
//! `--context`, `--cluster`, `--user` and `-n/--namespace` from argv. The flags
//! stay in argv, as they do under krew-wasm, so a plugin parses the same command
//! line either way. [`view`] describes the selection with the same
//! [`KubeconfigView`] a plugin gets from krew-wasm; [`client`] builds a
//! `kube::Client` from it, with kube-rs's own TLS (rustls) and auth (tokens,
//! client certificates, exec plugins, …) layers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use futures::FutureExt as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};
use crate::view::KubeconfigView;

/// The kubectl flags that choose a cluster, read from argv (the same set the
/// krew-wasm host reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KubectlFlags {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
}

impl KubectlFlags {
    /// Reads the flags from `args` (without the program name) in every form
    /// kubectl accepts: `--context X`, `--context=X`, `-n X`, `-n=X`, `-nX`.
    /// Stops at `--`; the last occurrence wins; an empty value is ignored.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Self {
        let mut flags = Self::default();
        let mut iter = args.iter().map(AsRef::as_ref);
        while let Some(arg) = iter.next() {
            if arg == "--" {
                break;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with('-') => (name, Some(value)),
                _ => (arg, None),
            };
            let slot = match name {
                "--kubeconfig" => &mut flags.kubeconfig,
                "--context" => &mut flags.context,
                "--cluster" => &mut flags.cluster,
                "--user" => &mut flags.user,
                "-n" | "--namespace" => &mut flags.namespace,
                _ => {
                    // `-nfoo`: the short flag with its value attached.
                    if let Some(value) = arg
                        .strip_prefix("-n")
                        .filter(|v| !v.is_empty() && !v.starts_with('-'))
                    {
                        flags.namespace = Some(value.to_string());
                    }
                    continue;
                }
            };
            let value = match inline {
                Some(value) => Some(value.to_string()),
                None => iter.next().map(str::to_string),
            };
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                *slot = Some(value);
            }
        }
        flags
    }
}

/// The loaded kubeconfig and what the flags selected in it.
struct Selection {
    kubeconfig: Kubeconfig,
    options: KubeConfigOptions,
    view: KubeconfigView,
}

/// The selection of this run, made once from argv and the environment.
fn selection() -> Result<&'static Selection> {
    static SELECTION: OnceLock<Selection> = OnceLock::new();
    if let Some(selection) = SELECTION.get() {
        return Ok(selection);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = KubectlFlags::from_args(&args);
    let (kubeconfig, source) = load(
        &flags,
        std::env::var_os("KUBECONFIG").as_deref(),
        std::env::home_dir().as_deref(),
    )?;
    let selection = select(kubeconfig, &flags, &source)?;
    Ok(SELECTION.get_or_init(|| selection))
}

/// The view of the cluster the flags and kubeconfig select.
pub(crate) fn view() -> Result<&'static KubeconfigView> {
    Ok(&selection()?.view)
}

/// A `kube::Client` for the selected cluster, user and namespace.
pub(crate) fn client() -> Result<kube::Client> {
    let selection = selection()?;
    // `from_custom_kubeconfig` is async in signature only: it reads files
    // (certificate and key paths) with std and never awaits anything pending.
    let mut config =
        kube::Config::from_custom_kubeconfig(selection.kubeconfig.clone(), &selection.options)
            .now_or_never()
            .ok_or_else(|| {
                Error::other(
                    "kube-rs did not load the kubeconfig synchronously (krew-wasm-sdk bug)",
                )
            })?
            .map_err(kube::Error::InferKubeconfig)?;
    config.default_namespace = selection.view.namespace().to_string();
    Ok(kube::Client::try_from(config)?)
}

/// kubectl's loading rules, `--kubeconfig` first. Returns the kubeconfig and
/// where it came from (a path, or the `KUBECONFIG` list), for messages.
fn load(
    flags: &KubectlFlags,
    var: Option<&std::ffi::OsStr>,
    home: Option<&Path>,
) -> Result<(Kubeconfig, String)> {
    let read = |path: &Path| {
        Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    };
    // `--kubeconfig` names exactly one file, which must exist.
    if let Some(path) = &flags.kubeconfig {
        return Ok((read(Path::new(path))?, path.clone()));
    }
    let listed: Vec<PathBuf> = var
        .map(|var| {
            std::env::split_paths(var)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !listed.is_empty() {
        let mut merged: Option<Kubeconfig> = None;
        for path in listed.iter().filter(|p| p.exists()) {
            let next = read(path)?;
            merged = Some(match merged {
                Some(so_far) => so_far.merge(next).map_err(|e| Error::Kubeconfig {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
                None => next,
            });
        }
        let source = var.map(|v| v.to_string_lossy().into_owned());
        return Ok((
            merged.ok_or(Error::NoKubeconfig)?,
            source.unwrap_or_default(),
        ));
    }
    let default = home
        .map(|home| home.join(".kube").join("config"))
        .filter(|p| p.exists())
        .ok_or(Error::NoKubeconfig)?;
    Ok((read(&default)?, default.display().to_string()))
}

/// Picks the context, cluster, user and namespace, as the krew-wasm host does.
fn select(kubeconfig: Kubeconfig, flags: &KubectlFlags, source: &str) -> Result<Selection> {
    let invalid = |reason: String| Error::Kubeconfig {
        path: source.to_string(),
        reason,
    };
    let context_name = flags
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone().filter(|c| !c.is_empty()))
        .ok_or_else(|| invalid("no current-context is set (pass --context NAME)".to_string()))?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| invalid(format!("the context {context_name:?} is not defined")))?;
    let cluster_name = flags.cluster.clone().unwrap_or(context.cluster.clone());
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| invalid(format!("the cluster {cluster_name:?} is not defined")))?;
    let server = cluster
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("the cluster {cluster_name:?} has no server")))?;
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
    let view = KubeconfigView::new(
        context_name.clone(),
        cluster_name.clone(),
        user_name.clone(),
        namespace,
        &server,
        cluster.tls_server_name.clone(),
    )
    .map_err(invalid)?;
    Ok(Selection {
        kubeconfig,
        options: KubeConfigOptions {
            context: Some(context_name),
            cluster: Some(cluster_name),
            user: Some(user_name).filter(|u| !u.is_empty()),
        },
        view,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_every_form_kubectl_accepts() {
        let flags = KubectlFlags::from_args(&[
            "secret",
            "tls",
            "-n",
            "prod",
            "--context=staging",
            "--cluster",
            "c1",
            "--user=u1",
            "--kubeconfig",
            "/tmp/k",
        ]);
        assert_eq!(
            flags,
            KubectlFlags {
                kubeconfig: Some("/tmp/k".into()),
                context: Some("staging".into()),
                cluster: Some("c1".into()),
                user: Some("u1".into()),
                namespace: Some("prod".into()),
            }
        );
        let namespace = |args: &[&str]| KubectlFlags::from_args(args).namespace;
        assert_eq!(
            namespace(&["-nkube-system"]).as_deref(),
            Some("kube-system")
        );
        assert_eq!(namespace(&["-n=dev"]).as_deref(), Some("dev"));
        assert_eq!(
            namespace(&["--namespace", "a", "-n", "b"]).as_deref(),
            Some("b")
        );
        assert_eq!(namespace(&["--", "-n", "x"]), None);
        assert_eq!(namespace(&["-n"]), None);
    }

    const FIRST: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster: {server: "https://127.0.0.1:6443/"}
- name: prod-cluster
  cluster: {server: "https://prod.example:443", tls-server-name: kubernetes}
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
users:
- name: dev-user
  user: {token: secret}
"#;

    const SECOND: &str = r#"
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: dev-cluster
  cluster: {server: "https://ignored.example"}
contexts:
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
users:
- name: prod-user
  user: {token: other}
"#;

    fn files(dir: &Path) -> (PathBuf, PathBuf) {
        let first = dir.join("first");
        let second = dir.join("second");
        std::fs::write(&first, FIRST).unwrap();
        std::fs::write(&second, SECOND).unwrap();
        (first, second)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("krew-wasm-sdk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn kubeconfig_list_merges_first_wins_and_skips_missing_files() {
        let dir = temp_dir("merge");
        let (first, second) = files(&dir);
        let list = std::env::join_paths([dir.join("missing"), first.clone(), second]).unwrap();
        let (kubeconfig, source) = load(&KubectlFlags::default(), Some(&list), None).unwrap();
        assert_eq!(source, list.to_string_lossy());
        let selection = select(kubeconfig, &KubectlFlags::default(), &source).unwrap();
        let view = &selection.view;
        assert_eq!(
            (
                view.context(),
                view.cluster(),
                view.user(),
                view.namespace()
            ),
            ("dev", "dev-cluster", "dev-user", "team-a")
        );
        assert_eq!(view.server(), "https://127.0.0.1:6443");

        // --context picks the second file's context; its cluster is the first
        // file's definition (first wins), `-n` overrides the namespace.
        let flags = KubectlFlags::from_args(&["--context", "prod", "-n", "web"]);
        let (kubeconfig, source) = load(&flags, Some(&list), None).unwrap();
        let selection = select(kubeconfig, &flags, &source).unwrap();
        let view = &selection.view;
        assert_eq!(
            (view.context(), view.user(), view.namespace(), view.server()),
            ("prod", "prod-user", "web", "https://prod.example:443")
        );
        assert_eq!(view.tls_server_name(), Some("kubernetes"));
        assert_eq!(selection.options.user.as_deref(), Some("prod-user"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn kubeconfig_flag_then_home() {
        let dir = temp_dir("flag");
        let (first, _) = files(&dir);
        let flags = KubectlFlags::from_args(&[format!("--kubeconfig={}", first.display())]);
        let (kubeconfig, source) = load(&flags, None, None).unwrap();
        assert_eq!(kubeconfig.current_context.as_deref(), Some("dev"));
        assert_eq!(source, first.display().to_string());

        std::fs::create_dir_all(dir.join(".kube")).unwrap();
        std::fs::copy(&first, dir.join(".kube/config")).unwrap();
        let (kubeconfig, source) = load(&KubectlFlags::default(), None, Some(&dir)).unwrap();
        assert_eq!(kubeconfig.current_context.as_deref(), Some("dev"));
        assert!(source.ends_with(".kube/config"), "{source}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn nothing_to_load_or_select_says_so() {
        let none = std::ffi::OsString::from("/nonexistent/a:/nonexistent/b");
        assert!(matches!(
            load(&KubectlFlags::default(), Some(&none), None),
            Err(Error::NoKubeconfig)
        ));
        assert!(matches!(
            load(
                &KubectlFlags::default(),
                None,
                Some(Path::new("/nonexistent"))
            ),
            Err(Error::NoKubeconfig)
        ));
        let flags = KubectlFlags::from_args(&["--kubeconfig", "/nonexistent/k"]);
        assert!(matches!(
            load(&flags, None, None),
            Err(Error::Kubeconfig { .. })
        ));

        let kubeconfig = Kubeconfig::from_yaml(FIRST).unwrap();
        let flags = KubectlFlags::from_args(&["--context", "nope"]);
        let err = select(kubeconfig, &flags, "/k").err().unwrap();
        assert_eq!(
            err.to_string(),
            "kubeconfig /k: the context \"nope\" is not defined"
        );
    }
}
