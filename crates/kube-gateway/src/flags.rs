//! The kubectl flags that choose a cluster, read from a plugin's argv.

/// The cluster-selecting flags kubectl itself understands. A plugin keeps
/// them in its argv; krew-wasm honours them when it picks the cluster, the
/// credentials and the namespace, exactly as kubectl would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubectlFlags {
    /// `--kubeconfig PATH`: replaces `KUBECONFIG` and `~/.kube/config`.
    pub kubeconfig: Option<String>,
    /// `--context NAME`.
    pub context: Option<String>,
    /// `--cluster NAME`.
    pub cluster: Option<String>,
    /// `--user NAME`.
    pub user: Option<String>,
    /// `-n NAME` / `--namespace NAME`.
    pub namespace: Option<String>,
}

impl KubectlFlags {
    /// Reads the flags from `args` (without the program name). Accepts the
    /// forms kubectl accepts: `--context X`, `--context=X`, `-n X`, `-n=X`
    /// and `-nX`. Stops at `--`. The last occurrence wins, as in kubectl.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form_kubectl_accepts() {
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
        assert_eq!(
            KubectlFlags::from_args(&["-nkube-system"])
                .namespace
                .as_deref(),
            Some("kube-system")
        );
        assert_eq!(
            KubectlFlags::from_args(&["-n=dev"]).namespace.as_deref(),
            Some("dev")
        );
        assert_eq!(
            KubectlFlags::from_args(&["--namespace", "a", "-n", "b"])
                .namespace
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn stops_at_double_dash_and_ignores_missing_values() {
        let flags = KubectlFlags::from_args(&["--", "--context", "x"]);
        assert_eq!(flags, KubectlFlags::default());
        let flags = KubectlFlags::from_args(&["--context"]);
        assert_eq!(flags.context, None);
        let flags = KubectlFlags::from_args(&["--no-headers", "-o", "json"]);
        assert_eq!(flags, KubectlFlags::default());
    }
}
