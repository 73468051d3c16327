//! Command-line parsing: `[-n NAMESPACE | -A]`, plus kubectl's global flags, which
//! krew-wasm already applied to the kubeconfig view and which are accepted here
//! and ignored.

use std::fmt;

pub const USAGE: &str = "\
Usage: kubectl podwatch [-n NAMESPACE | -A] [--context CONTEXT]

Shows the pods, then one line per change as it happens: time (UTC), event,
pod, phase, ready containers and restarts. Stop it with Ctrl-C.

Options:
  -n, --namespace NAMESPACE   watch this namespace (default: the context's)
  -A, --all-namespaces        watch every namespace
      --context CONTEXT       the kubeconfig context to use
      --kubeconfig FILE       the kubeconfig file to use
  -h, --help                  show this help";

/// What to watch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub namespace: Option<String>,
    pub all_namespaces: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Help,
    Watch(Options),
}

/// A command line that does not make sense; shown with the usage text.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const IGNORED_WITH_VALUE: &[&str] = &["--context", "--kubeconfig", "--cluster", "--user"];

/// Parses the arguments after argv[0].
pub fn parse<I, S>(args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut options = Options::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "-A" | "--all-namespaces" => options.all_namespaces = true,
            "-n" | "--namespace" => {
                let value = args
                    .next()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| UsageError("--namespace needs a value".to_string()))?;
                options.namespace = Some(value);
            }
            _ => {
                let inline_namespace = match arg.strip_prefix("--namespace=") {
                    Some(value) => Some(value),
                    None if arg.starts_with("--") => None,
                    None => arg
                        .strip_prefix("-n")
                        .map(|v| v.strip_prefix('=').unwrap_or(v)),
                };
                if let Some(value) = inline_namespace {
                    if value.is_empty() {
                        return Err(UsageError("--namespace needs a value".to_string()));
                    }
                    options.namespace = Some(value.to_string());
                } else if let Some(flag) = IGNORED_WITH_VALUE
                    .iter()
                    .find(|f| arg == **f || arg.starts_with(&format!("{f}=")))
                {
                    if arg == *flag && args.next().is_none() {
                        return Err(UsageError(format!("{flag} needs a value")));
                    }
                } else if arg.starts_with('-') {
                    return Err(UsageError(format!("unknown flag {arg}")));
                } else {
                    return Err(UsageError(format!("unexpected argument {arg:?}")));
                }
            }
        }
    }
    Ok(Invocation::Watch(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Options {
        match parse(args.iter().copied()) {
            Ok(Invocation::Watch(options)) => options,
            other => panic!("{args:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_to_the_views_namespace() {
        assert_eq!(options(&[]), Options::default());
    }

    #[test]
    fn namespace_and_all() {
        for args in [
            &["-n", "kube-system"][..],
            &["-nkube-system"],
            &["-n=kube-system"],
            &["--namespace", "kube-system"],
            &["--namespace=kube-system"],
        ] {
            assert_eq!(
                options(args).namespace.as_deref(),
                Some("kube-system"),
                "{args:?}"
            );
        }
        assert!(options(&["-A"]).all_namespaces);
        assert!(options(&["--all-namespaces", "--context", "prod"]).all_namespaces);
    }

    #[test]
    fn bad_usage() {
        assert!(matches!(parse(["pods"]), Err(UsageError(m)) if m.contains("pods")));
        assert!(matches!(parse(["--watch"]), Err(UsageError(m)) if m.contains("--watch")));
        assert!(matches!(parse(["-n"]), Err(UsageError(m)) if m.contains("--namespace")));
        assert_eq!(parse(["-h"]), Ok(Invocation::Help));
    }
}
