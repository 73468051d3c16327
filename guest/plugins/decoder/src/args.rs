//! Command-line parsing: `secret NAME [-n NS] [--context C] [-o json|yaml]`.
//!
//! kubectl's global flags (`--context`, `--kubeconfig`, `--cluster`, `--user`) are
//! accepted and ignored: krew-wasm applied them when it built the kubeconfig view.
//! `-n/--namespace` was applied too, and is read here as well so the plugin does
//! not depend on it.

use std::fmt;

pub const USAGE: &str = "\
Usage: kubectl decoder secret NAME [-n NAMESPACE] [--context CONTEXT] [-o json|yaml]

Shows a Secret with every value base64-decoded. Values holding PEM certificates
are shown as certificates: subject, issuer, serial, validity, SANs, public key,
key usage, signature algorithm and SHA-256 fingerprint, for every certificate
of a bundle.

Options:
  -n, --namespace NAMESPACE   the Secret's namespace (default: the context's)
      --context CONTEXT       the kubeconfig context to use
      --kubeconfig FILE       the kubeconfig file to use
  -o, --output json|yaml      print the decoded Secret as a manifest instead
                              (text values under stringData, binary ones under data)
  -h, --help                  show this help";

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Help,
    Show(Request),
}

/// Show one Secret.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub namespace: Option<String>,
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
    Yaml,
}

/// A command line that does not make sense; shown with the usage text.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Flags that take a value and that this plugin ignores (the host used them).
const IGNORED_WITH_VALUE: &[&str] = &["--context", "--kubeconfig", "--cluster", "--user"];

/// Parses the arguments after argv[0].
pub fn parse<I, S>(args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut positional = Vec::new();
    let mut namespace = None;
    let mut output = Output::Text;

    while let Some(arg) = args.next() {
        if arg == "--" {
            positional.extend(args.by_ref());
            break;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(Invocation::Help);
        }
        if let Some(value) = flag_value(&arg, "-n", "--namespace", &mut args)? {
            namespace = Some(value);
        } else if let Some(value) = flag_value(&arg, "-o", "--output", &mut args)? {
            output = match value.as_str() {
                "json" => Output::Json,
                "yaml" => Output::Yaml,
                other => {
                    return Err(UsageError(format!(
                        "unknown output format {other:?} (use json or yaml)"
                    )));
                }
            };
        } else if let Some(flag) = IGNORED_WITH_VALUE
            .iter()
            .find(|f| arg == **f || arg.starts_with(&format!("{f}=")))
        {
            if arg == *flag && args.next().is_none() {
                return Err(UsageError(format!("{flag} needs a value")));
            }
        } else if arg.starts_with('-') && arg.len() > 1 {
            return Err(UsageError(format!("unknown flag {arg}")));
        } else {
            positional.push(arg);
        }
    }

    let name = match positional.as_slice() {
        [kind, name] if is_secret_kind(kind) => name.clone(),
        [kind_name] => match kind_name.split_once('/') {
            Some((kind, name)) if is_secret_kind(kind) => name.to_string(),
            _ if is_secret_kind(kind_name) => {
                return Err(UsageError("which secret? give its NAME".to_string()));
            }
            _ => return Err(UsageError(format!("unknown resource {kind_name:?}"))),
        },
        [] => return Err(UsageError("nothing to do".to_string())),
        [kind, ..] if !is_secret_kind(kind) => {
            return Err(UsageError(format!(
                "only secrets can be decoded, not {kind:?}"
            )));
        }
        _ => return Err(UsageError("give exactly one secret NAME".to_string())),
    };
    check_name(&name, 253, "secret name")?;
    if let Some(namespace) = &namespace {
        check_name(namespace, 63, "namespace")?;
    }
    Ok(Invocation::Show(Request {
        name,
        namespace,
        output,
    }))
}

fn is_secret_kind(word: &str) -> bool {
    matches!(word, "secret" | "secrets")
}

/// The value of `short`/`long` if `arg` is that flag (`-n x`, `-nx`, `-n=x`,
/// `--namespace x`, `--namespace=x`), taking the next argument when needed.
fn flag_value(
    arg: &str,
    short: &str,
    long: &str,
    rest: &mut impl Iterator<Item = String>,
) -> Result<Option<String>, UsageError> {
    let inline = if arg == short || arg == long {
        None
    } else if let Some(value) = arg.strip_prefix(&format!("{long}=")) {
        Some(value.to_string())
    } else if let Some(value) = arg.strip_prefix(short).filter(|_| !arg.starts_with("--")) {
        Some(value.strip_prefix('=').unwrap_or(value).to_string())
    } else {
        return Ok(None);
    };
    let value = match inline {
        Some(value) => value,
        None => rest
            .next()
            .ok_or_else(|| UsageError(format!("{long} needs a value")))?,
    };
    if value.is_empty() {
        return Err(UsageError(format!("{long} needs a value")));
    }
    Ok(Some(value))
}

/// Kubernetes names: lowercase letters, digits, `-` and `.`; this also keeps the
/// request path free of anything that would need escaping.
fn check_name(name: &str, max: usize, what: &str) -> Result<(), UsageError> {
    let valid = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.']);
    if valid {
        Ok(())
    } else {
        Err(UsageError(format!("{name:?} is not a valid {what}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(args: &[&str]) -> Request {
        match parse(args.iter().copied()) {
            Ok(Invocation::Show(request)) => request,
            other => panic!("{args:?} parsed as {other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(UsageError(message)) => message,
            other => panic!("{args:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn plain_secret() {
        let r = show(&["secret", "web-tls"]);
        assert_eq!(r.name, "web-tls");
        assert_eq!(r.namespace, None);
        assert_eq!(r.output, Output::Text);
    }

    #[test]
    fn namespace_in_every_spelling() {
        for args in [
            &["secret", "x", "-n", "team-a"][..],
            &["-n", "team-a", "secret", "x"],
            &["secret", "x", "-nteam-a"],
            &["secret", "x", "-n=team-a"],
            &["secret", "x", "--namespace", "team-a"],
            &["secret", "x", "--namespace=team-a"],
        ] {
            assert_eq!(show(args).namespace.as_deref(), Some("team-a"), "{args:?}");
        }
    }

    #[test]
    fn output_formats() {
        assert_eq!(show(&["secret", "x", "-o", "json"]).output, Output::Json);
        assert_eq!(show(&["secret", "x", "-oyaml"]).output, Output::Yaml);
        assert_eq!(show(&["secret", "x", "--output=yaml"]).output, Output::Yaml);
        assert!(usage_error(&["secret", "x", "-o", "wide"]).contains("wide"));
    }

    #[test]
    fn host_flags_are_accepted_and_ignored() {
        let r = show(&[
            "--context",
            "prod",
            "secret",
            "x",
            "--kubeconfig=/k",
            "--cluster",
            "c",
            "--user=u",
        ]);
        assert_eq!(r.name, "x");
        assert!(usage_error(&["secret", "x", "--context"]).contains("--context"));
    }

    #[test]
    fn kind_slash_name() {
        assert_eq!(show(&["secret/db-pass"]).name, "db-pass");
        assert_eq!(show(&["secrets", "db-pass"]).name, "db-pass");
    }

    #[test]
    fn help() {
        assert_eq!(parse(["--help"]), Ok(Invocation::Help));
        assert_eq!(parse(["secret", "-h"]), Ok(Invocation::Help));
    }

    #[test]
    fn bad_usage() {
        assert!(usage_error(&[]).contains("nothing"));
        assert!(usage_error(&["secret"]).contains("NAME"));
        assert!(usage_error(&["configmap", "x"]).contains("configmap"));
        assert!(usage_error(&["secret", "a", "b"]).contains("exactly one"));
        assert!(usage_error(&["secret", "x", "--frobnicate"]).contains("--frobnicate"));
        assert!(usage_error(&["secret", "x", "-n"]).contains("--namespace"));
    }

    #[test]
    fn names_are_checked() {
        assert!(usage_error(&["secret", "../../nodes"]).contains("not a valid secret name"));
        assert!(usage_error(&["secret", "x?watch=1"]).contains("not a valid"));
        assert!(usage_error(&["secret", "x", "-n", "A_B"]).contains("namespace"));
        assert_eq!(
            show(&["secret", "sh.helm.release.v1.web.v3"]).name,
            "sh.helm.release.v1.web.v3"
        );
    }
}
