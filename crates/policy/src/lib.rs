//! The trust policy: which signatures a plugin must carry, decided by where
//! it comes from.
//!
//! A [`Policy`] is a small YAML (or JSON) document, by default
//! `$KREW_WASM_ROOT/policy.yaml`:
//!
//! ```yaml
//! apiVersion: krew-wasm.dev/v1
//! kind: TrustPolicy
//! unmatched: refuse              # or `allow`: references no rule matches
//! rules:
//!   - match: ghcr.io/acme        # a registry, or a registry/repository prefix
//!     keys: [acme.pub]           # relative paths are read from this file's directory
//!   - match: ghcr.io/acme/ci
//!     identities:
//!       - subject: https://github.com/acme/plugins/.github/workflows/release.yml@refs/heads/main
//!         issuer: https://token.actions.githubusercontent.com
//!     trustedRoot: trusted_root.json
//!   - match: 127.0.0.1:5000/scratch
//!     allowUnsigned: true
//! ```
//!
//! [`Policy::decide`] picks the rule for a plugin's `registry/repository`:
//! the longest `match` that equals it or is a prefix of it in whole path
//! segments (`ghcr.io/acme` covers `ghcr.io/acme/kubectl-x`, not
//! `ghcr.io/acme-evil/x`). The rule either names [`Signers`] (any one of its
//! keys or keyless identities must have signed the manifest) or allows
//! unsigned plugins. A reference no rule matches is refused unless the policy
//! says `unmatched: allow`: a policy that is there is meant to be obeyed.
//!
//! Every error names the file, the line and the field ([`PolicyError`]).
//!
//! This crate is pure: it parses and decides. Reading key files and trusted
//! roots, fetching and checking signatures belong to the caller
//! (`krew-wasm-oci`'s `signature` module).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The `apiVersion` this version of krew-wasm reads.
pub const API_VERSION: &str = "krew-wasm.dev/v1";
/// The `kind` of a trust policy document.
pub const KIND: &str = "TrustPolicy";
/// The policy file's name in the store root.
pub const FILE_NAME: &str = "policy.yaml";

/// Why a policy document was refused: the file, where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{file}:{line}: {field}: {message}")]
    Invalid {
        file: String,
        line: u64,
        field: String,
        message: String,
    },
}

/// A parsed, validated trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    file: String,
    unmatched: Unmatched,
    rules: Vec<Rule>,
}

/// What happens to a reference no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// Refused (the default).
    Refuse,
    /// Installed and run with no signature required.
    Allow,
}

/// One `rules` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The registry or `registry/repository` prefix it covers, without a
    /// trailing `/`; `*` covers everything.
    pub prefix: String,
    /// The line of its `match` in the policy file.
    pub line: u64,
    pub requirement: Requirement,
}

/// What a rule asks of the plugins it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `allowUnsigned: true`: nothing.
    AllowUnsigned,
    /// A signature by any one of these.
    SignedBy(Signers),
}

/// Who may have signed: any one key or keyless identity is enough.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signers {
    /// Public key files (PEM), relative paths resolved against the policy
    /// file's directory.
    pub keys: Vec<PathBuf>,
    /// Keyless signers, checked against `trusted_root`.
    pub identities: Vec<Identity>,
    /// Sigstore `trusted_root.json` (Fulcio CAs, Rekor keys); required with
    /// `identities`.
    pub trusted_root: Option<PathBuf>,
}

/// A keyless signer: the certificate's subject (SAN) and the OIDC issuer
/// that vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: Subject,
    pub issuer: String,
}

/// How a certificate subject is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `subject`: the whole SAN, exactly.
    Exact(String),
    /// `subjectRegexp`: a regular expression (checked when the policy is
    /// read), matched against the whole SAN.
    Regexp(String),
}

impl Identity {
    /// True when a certificate with `subject` issued through `issuer`
    /// satisfies this identity.
    pub fn matches(&self, subject: &str, issuer: &str) -> bool {
        issuer == self.issuer && self.subject.matches(subject)
    }
}

impl Subject {
    /// True when `subject` is this subject (or matches this expression,
    /// anchored at both ends).
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            Subject::Exact(exact) => subject == exact,
            Subject::Regexp(pattern) => regex::Regex::new(&format!("^(?:{pattern})$"))
                .map(|re| re.is_match(subject))
                .unwrap_or(false),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Subject::Exact(subject) => write!(f, "{subject} (issuer {})", self.issuer),
            Subject::Regexp(pattern) => {
                write!(f, "a subject matching /{pattern}/ (issuer {})", self.issuer)
            }
        }
    }
}

/// What the policy says about one plugin reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// A signature by one of the rule's signers is required.
    Require(&'a Rule, &'a Signers),
    /// No signature is required: by this rule (`allowUnsigned`), or because
    /// nothing matched and the policy says `unmatched: allow`.
    Allow(Option<&'a Rule>),
    /// Nothing matched and the policy refuses what it does not cover.
    Refuse,
}

impl Policy {
    /// Reads a policy document. `file` names it in messages; relative key
    /// and trusted-root paths are resolved against `base_dir` (the file's
    /// directory).
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Self, PolicyError> {
        let raw: RawPolicy = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            PolicyError::Syntax {
                file: file.to_string(),
                line,
                column,
                message: saphyr_message(&e.to_string()),
            }
        })?;
        Validator { file, base_dir }.policy(raw)
    }

    /// The file it was read from, as given to [`Policy::parse`].
    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn unmatched(&self) -> Unmatched {
        self.unmatched
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule for `repository` (`registry/repository`, no tag or digest):
    /// the longest matching prefix.
    pub fn rule_for(&self, repository: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|rule| rule.covers(repository))
            .max_by_key(|rule| {
                if rule.prefix == "*" {
                    0
                } else {
                    rule.prefix.len() + 1
                }
            })
    }

    /// What the policy requires of a plugin from `repository`.
    pub fn decide(&self, repository: &str) -> Decision<'_> {
        match self.rule_for(repository) {
            Some(rule) => match &rule.requirement {
                Requirement::SignedBy(signers) => Decision::Require(rule, signers),
                Requirement::AllowUnsigned => Decision::Allow(Some(rule)),
            },
            None if self.unmatched == Unmatched::Allow => Decision::Allow(None),
            None => Decision::Refuse,
        }
    }

    /// `rule `PREFIX` (FILE:LINE)`, for messages and receipts.
    pub fn describe(&self, rule: &Rule) -> String {
        format!("rule `{}` ({}:{})", rule.prefix, self.file, rule.line)
    }
}

impl Rule {
    /// True when this rule's prefix is `repository` or a prefix of it in
    /// whole path segments.
    pub fn covers(&self, repository: &str) -> bool {
        self.prefix == "*"
            || repository == self.prefix
            || repository
                .strip_prefix(&self.prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// serde-saphyr's message without its own `error: line N column M:`
/// prefix (the location is given once, as `FILE:LINE:COLUMN`).
fn saphyr_message(text: &str) -> String {
    let line = first_line(text);
    let rest = line.strip_prefix("error: ").unwrap_or(&line);
    match rest.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((location, message)) if location.contains("column") => message.to_string(),
        _ => rest.to_string(),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).trim().to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPolicy {
    api_version: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    #[serde(default)]
    unmatched: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(rename = "match")]
    prefix: Option<Spanned<String>>,
    #[serde(default)]
    keys: Vec<Spanned<String>>,
    #[serde(default)]
    identities: Vec<Spanned<RawIdentity>>,
    trusted_root: Option<Spanned<String>>,
    allow_unsigned: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawIdentity {
    subject: Option<Spanned<String>>,
    subject_regexp: Option<Spanned<String>>,
    issuer: Option<Spanned<String>>,
}

struct Validator<'a> {
    file: &'a str,
    base_dir: &'a Path,
}

impl Validator<'_> {
    fn error(
        &self,
        line: u64,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> PolicyError {
        PolicyError::Invalid {
            file: self.file.to_string(),
            line: line.max(1),
            field: field.into(),
            message: message.into(),
        }
    }

    fn policy(&self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        match &raw.api_version {
            Some(v) if v.value == API_VERSION => {}
            Some(v) => {
                return Err(self.error(
                    v.referenced.line(),
                    "apiVersion",
                    format!(
                        "`{}` is not a version this krew-wasm reads; write `apiVersion: {API_VERSION}`",
                        v.value
                    ),
                ));
            }
            None => {
                return Err(self.error(
                    1,
                    "apiVersion",
                    format!("missing; a trust policy starts with `apiVersion: {API_VERSION}`"),
                ));
            }
        }
        match &raw.kind {
            Some(k) if k.value == KIND => {}
            Some(k) => {
                return Err(self.error(
                    k.referenced.line(),
                    "kind",
                    format!("`{}` is not `{KIND}`", k.value),
                ));
            }
            None => return Err(self.error(1, "kind", format!("missing; write `kind: {KIND}`"))),
        }
        let unmatched = match &raw.unmatched {
            None => Unmatched::Refuse,
            Some(u) => match u.value.as_str() {
                "refuse" => Unmatched::Refuse,
                "allow" => Unmatched::Allow,
                other => {
                    return Err(self.error(
                        u.referenced.line(),
                        "unmatched",
                        format!("`{other}` is neither `refuse` nor `allow`"),
                    ));
                }
            },
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
        for (i, raw_rule) in raw.rules.into_iter().enumerate() {
            let rule = self.rule(i, raw_rule)?;
            if let Some(earlier) = rules.iter().find(|r| r.prefix == rule.prefix) {
                return Err(self.error(
                    rule.line,
                    format!("rules[{i}].match"),
                    format!(
                        "`{}` is matched already by the rule on line {}; merge the two",
                        rule.prefix, earlier.line
                    ),
                ));
            }
            rules.push(rule);
        }
        Ok(Policy {
            file: self.file.to_string(),
            unmatched,
            rules,
        })
    }

    fn rule(&self, i: usize, raw: Spanned<RawRule>) -> Result<Rule, PolicyError> {
        let rule_line = raw.referenced.line();
        let mut raw = raw.value;
        let field = |name: &str| format!("rules[{i}].{name}");
        let Some(prefix) = raw.prefix.take() else {
            return Err(self.error(
                rule_line,
                field("match"),
                "missing; say which registry or repository the rule covers, e.g. `match: ghcr.io/acme`",
            ));
        };
        let line = prefix.referenced.line();
        let normalized = self
            .prefix(&prefix.value)
            .map_err(|message| self.error(line, field("match"), message))?;
        let signs = !raw.keys.is_empty() || !raw.identities.is_empty();
        let requirement = match raw.allow_unsigned.take() {
            Some(allow) if allow.value && signs => {
                return Err(self.error(
                    allow.referenced.line(),
                    field("allowUnsigned"),
                    "conflicts with `keys`/`identities` in the same rule: a rule either requires \
                     a signature or allows unsigned plugins",
                ));
            }
            Some(allow) if allow.value => Requirement::AllowUnsigned,
            _ if !signs => {
                return Err(self.error(
                    line,
                    format!("rules[{i}]"),
                    "says nothing: give `keys` (public key files), `identities` (keyless signers, \
                     with `trustedRoot`), or `allowUnsigned: true`",
                ));
            }
            _ => Requirement::SignedBy(self.signers(i, line, raw)?),
        };
        Ok(Rule {
            prefix: normalized,
            line,
            requirement,
        })
    }

    /// A `match` value, checked and without a trailing `/`.
    fn prefix(&self, value: &str) -> Result<String, String> {
        let value = value.trim();
        if value == "*" {
            return Ok(value.to_string());
        }
        let trimmed = value.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(
                "is empty; give a registry (`ghcr.io`), a repository prefix \
                        (`ghcr.io/acme`), or `*` for everything"
                    .to_string(),
            );
        }
        if trimmed.contains("://") {
            return Err(format!(
                "`{value}` has a scheme; write the registry without it, e.g. `{}`",
                trimmed.rsplit("://").next().unwrap_or(trimmed)
            ));
        }
        let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
        if trimmed.contains('@') || (trimmed.contains('/') && last.contains(':')) {
            return Err(format!(
                "`{value}` names a tag or digest; a rule covers a registry or repository prefix, \
                 e.g. `{}`",
                trimmed
                    .split(['@'])
                    .next()
                    .unwrap_or(trimmed)
                    .rsplit_once(':')
                    .map_or(trimmed, |(repo, _)| repo)
            ));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c == '*') {
            return Err(format!(
                "`{value}` is not a registry or repository prefix (no spaces; `*` only alone)"
            ));
        }
        Ok(trimmed.to_string())
    }

    fn signers(&self, i: usize, line: u64, raw: RawRule) -> Result<Signers, PolicyError> {
        let field = |name: String| format!("rules[{i}].{name}");
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (k, key) in raw.keys.into_iter().enumerate() {
            if key.value.trim().is_empty() {
                return Err(self.error(
                    key.referenced.line(),
                    field(format!("keys[{k}]")),
                    "is empty; give the path of a public key file (PEM, as cosign.pub)",
                ));
            }
            keys.push(self.base_dir.join(key.value.trim()));
        }
        let mut identities = Vec::with_capacity(raw.identities.len());
        for (n, identity) in raw.identities.into_iter().enumerate() {
            let at = identity.referenced.line();
            let identity = identity.value;
            let name = |part: &str| field(format!("identities[{n}]{part}"));
            let subject = match (identity.subject, identity.subject_regexp) {
                (Some(_), Some(regexp)) => {
                    return Err(self.error(
                        regexp.referenced.line(),
                        name(".subjectRegexp"),
                        "give `subject` or `subjectRegexp`, not both",
                    ));
                }
                (Some(subject), None) if !subject.value.is_empty() => Subject::Exact(subject.value),
                (None, Some(regexp)) if !regexp.value.is_empty() => {
                    if let Err(e) = regex::Regex::new(&regexp.value) {
                        return Err(self.error(
                            regexp.referenced.line(),
                            name(".subjectRegexp"),
                            format!(
                                "is not a regular expression: {}",
                                first_line(&e.to_string())
                            ),
                        ));
                    }
                    Subject::Regexp(regexp.value)
                }
                _ => {
                    return Err(self.error(
                        at,
                        name(""),
                        "needs `subject` (the certificate's identity: an email or a workflow URL) \
                         or `subjectRegexp`",
                    ));
                }
            };
            let issuer = match identity.issuer {
                Some(issuer) if !issuer.value.is_empty() => issuer.value,
                _ => {
                    return Err(self.error(
                        at,
                        name(".issuer"),
                        "missing; keyless signers are named with the OIDC issuer that vouched for \
                         them, e.g. `https://token.actions.githubusercontent.com` or \
                         `https://accounts.google.com`",
                    ));
                }
            };
            identities.push(Identity { subject, issuer });
        }
        let trusted_root = match raw.trusted_root {
            Some(root) if root.value.trim().is_empty() => {
                return Err(self.error(
                    root.referenced.line(),
                    field("trustedRoot".into()),
                    "is empty; give the path of a Sigstore trusted_root.json",
                ));
            }
            Some(root) => Some(self.base_dir.join(root.value.trim())),
            None if !identities.is_empty() => {
                return Err(self.error(
                    line,
                    field("trustedRoot".into()),
                    "missing; keyless `identities` are checked against a Sigstore trusted root \
                     (trusted_root.json: the Fulcio CAs and Rekor keys to trust); give its path",
                ));
            }
            None => None,
        };
        Ok(Signers {
            keys,
            identities,
            trusted_root,
        })
    }
}

#[cfg(test)]
mod tests;
