//! Who may sign, and what a verification found: the trusted signers given on
//! the command line (or by a trust policy), the trusted root keyless
//! verification checks certificates and transparency-log entries against,
//! and the outcome ([`Verification`]) that callers record.
//!
//! Pure: nothing here talks to a registry.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PublicKey, SignatureError};

/// Everyone whose signature is accepted. Any one of them verifying any one
/// signature (either form) is a pass.
#[derive(Debug, Clone, Default)]
pub struct TrustedSigners {
    /// cosign public keys (`cosign.pub`).
    pub keys: Vec<PublicKey>,
    /// Keyless signers: a certificate subject and the OIDC issuer that vouched for it.
    pub identities: Vec<CertificateIdentity>,
    /// What keyless signatures are checked against (Fulcio CAs, Rekor keys,
    /// CT logs, TSAs). Required when `identities` is not empty.
    pub trusted_root: Option<TrustedRoot>,
}

impl TrustedSigners {
    /// True when no key and no identity is trusted (nothing could ever pass).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.identities.is_empty()
    }

    /// Checks the signers can verify anything at all: at least one key or
    /// identity, and a trusted root for identities.
    pub fn check(&self) -> Result<(), SignatureError> {
        if self.is_empty() {
            return Err(SignatureError::NoSigners);
        }
        if !self.identities.is_empty() && self.trusted_root.is_none() {
            return Err(SignatureError::MissingTrustedRoot);
        }
        Ok(())
    }

    /// The signers, listed for messages.
    pub fn describe(&self) -> String {
        let mut out: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("key {}", k.fingerprint()))
            .collect();
        out.extend(self.identities.iter().map(ToString::to_string));
        out.join(", ")
    }
}

/// A keyless signer: the certificate's subject (its SAN: an email address or
/// a URI such as a CI workflow) and the OIDC issuer recorded by Fulcio.
#[derive(Debug, Clone)]
pub struct CertificateIdentity {
    pub subject: SubjectMatcher,
    /// Compared exactly with the certificate's Fulcio issuer extension.
    pub issuer: String,
}

impl CertificateIdentity {
    /// Whether a certificate with this SAN and issuer is this signer.
    pub fn matches(&self, subject: &str, issuer: &str) -> bool {
        self.issuer == issuer && self.subject.matches(subject)
    }
}

impl fmt::Display for CertificateIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (issuer {})", self.subject, self.issuer)
    }
}

/// How a certificate subject is matched.
#[derive(Debug, Clone)]
pub enum SubjectMatcher {
    /// `--certificate-identity`: the SAN equals this string.
    Exact(String),
    /// `--certificate-identity-regexp`: the SAN contains a match of this
    /// regular expression. As in cosign the match is not anchored: write
    /// `^…$` to match the whole subject.
    Regex(regex::Regex),
}

impl SubjectMatcher {
    /// Compiles `pattern`, saying what is wrong with it when it does not.
    pub fn regex(pattern: &str) -> Result<Self, SignatureError> {
        regex::Regex::new(pattern)
            .map(Self::Regex)
            .map_err(|e| SignatureError::BadIdentityRegex {
                pattern: pattern.to_string(),
                reason: e.to_string(),
            })
    }

    /// Whether `subject` is matched.
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            Self::Exact(expected) => expected == subject,
            Self::Regex(regex) => regex.is_match(subject),
        }
    }
}

impl fmt::Display for SubjectMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(subject) => f.write_str(subject),
            Self::Regex(regex) => write!(f, "/{}/", regex.as_str()),
        }
    }
}

/// A Sigstore trusted root (`trusted_root.json`, media type
/// `application/vnd.dev.sigstore.trustedroot+json;version=0.1`): the Fulcio
/// CAs, Rekor keys, CT log keys and timestamp authorities keyless
/// signatures are checked against. Read from a file: nothing is fetched.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    pub(crate) root: sigstore_verify::trust_root::TrustedRoot,
    pub(crate) source: String,
}

impl TrustedRoot {
    /// Reads and checks a trusted root file.
    pub fn from_file(path: &Path) -> Result<Self, SignatureError> {
        let shown = path.display().to_string();
        let json = std::fs::read_to_string(path).map_err(|e| SignatureError::BadTrustedRoot {
            what: shown.clone(),
            reason: format!("cannot read it ({e})"),
        })?;
        Self::from_json(&json, &shown)
    }

    /// Checks `json` is a trusted root; `what` names it in messages.
    pub fn from_json(json: &str, what: &str) -> Result<Self, SignatureError> {
        Ok(Self {
            root: super::sigstore::parse_trusted_root(json, what)?,
            source: what.to_string(),
        })
    }

    /// Where it was read from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Who signed, as recorded by a verification.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Signer {
    /// A public key, by its fingerprint (`SHA256:<base64>` of the DER SPKI).
    Key { fingerprint: String },
    /// A keyless signer: the certificate's SAN and OIDC issuer.
    Identity { subject: String, issuer: String },
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key { fingerprint } => write!(f, "key {fingerprint}"),
            Self::Identity { subject, issuer } => write!(f, "{subject} (issuer {issuer})"),
        }
    }
}

/// Where the signature that verified was stored.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureForm {
    /// cosign's `sha256-<hex>.sig` tag with simple-signing layers.
    Legacy,
    /// A sigstore bundle attached as an OCI referrer of the manifest.
    Bundle,
}

impl fmt::Display for SignatureForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Legacy => "cosign .sig tag",
            Self::Bundle => "sigstore bundle",
        })
    }
}

/// A passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The image manifest digest the signature names (the one asked about).
    pub manifest_digest: String,
    /// The trusted signer whose signature verified.
    pub signer: Signer,
    /// The form of that signature.
    pub form: SignatureForm,
    /// How many signatures (both forms) were found.
    pub signatures: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_and_displays() {
        let exact = SubjectMatcher::Exact("a@example.com".into());
        assert!(exact.matches("a@example.com"));
        assert!(!exact.matches("b@example.com"));
        let regex = SubjectMatcher::regex(r"^https://github\.com/org/.*$").unwrap();
        assert!(
            regex.matches("https://github.com/org/repo/.github/workflows/r.yml@refs/heads/main")
        );
        assert!(!regex.matches("https://github.com/evil/org/"));
        let err = SubjectMatcher::regex("(unclosed").unwrap_err();
        assert!(err.to_string().contains("(unclosed"), "{err}");
        let id = CertificateIdentity {
            subject: exact,
            issuer: "https://issuer".into(),
        };
        assert!(id.matches("a@example.com", "https://issuer"));
        assert!(!id.matches("a@example.com", "https://other"));
        assert_eq!(
            Signer::Identity {
                subject: "a@example.com".into(),
                issuer: "https://issuer".into()
            }
            .to_string(),
            "a@example.com (issuer https://issuer)"
        );
        assert_eq!(
            Signer::Key {
                fingerprint: "SHA256:x".into()
            }
            .to_string(),
            "key SHA256:x"
        );
        assert_eq!(SignatureForm::Legacy.to_string(), "cosign .sig tag");
        assert_eq!(SignatureForm::Bundle.to_string(), "sigstore bundle");
        let json = serde_json::to_string(&Signer::Key {
            fingerprint: "SHA256:x".into(),
        })
        .unwrap();
        assert_eq!(json, r#"{"kind":"key","fingerprint":"SHA256:x"}"#);
        assert_eq!(
            serde_json::to_string(&SignatureForm::Bundle).unwrap(),
            r#""bundle""#
        );
    }

    #[test]
    fn signers_must_be_usable() {
        assert!(matches!(
            TrustedSigners::default().check(),
            Err(SignatureError::NoSigners)
        ));
        let signers = TrustedSigners {
            identities: vec![CertificateIdentity {
                subject: SubjectMatcher::Exact("a".into()),
                issuer: "i".into(),
            }],
            ..Default::default()
        };
        assert!(matches!(
            signers.check(),
            Err(SignatureError::MissingTrustedRoot)
        ));
    }
}
