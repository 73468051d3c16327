//! Sigstore verification through the `sigstore-verify` crate: parsing a
//! trusted root, verifying a sigstore bundle (by key or keyless) against a
//! manifest digest, and verifying a keyless cosign `.sig` layer by turning
//! its annotations (certificate, Rekor SET) into the equivalent v0.1 bundle.
//!
//! Pure: bytes in, a [`Signer`] or the reasons out. What is checked, by the
//! crate: the signature (DSSE PAE or the message), for keyless the
//! certificate chain to a Fulcio CA of the trusted root at the signing
//! time, its SCT (when the trusted root lists CT logs), the Rekor entry's
//! SET or inclusion proof and its consistency with the bundle, and the
//! certificate's OIDC issuer. Here: the subject against the
//! [`SubjectMatcher`](super::SubjectMatcher), and that what was signed names
//! the manifest digest (an in-toto statement of cosign's signing predicate
//! whose subject is the digest, a message signature over the digest, or a
//! simple-signing payload naming it).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sigstore_verify::trust_root::TrustedRoot as SigstoreRoot;
use sigstore_verify::types::{Artifact, Bundle, DerPublicKey, Sha256Hash, SignatureContent};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

use super::{
    PublicKey, SignatureError, SignatureLayer, Signer, TrustedRoot, TrustedSigners,
    check_simple_signing,
};

/// The DSSE payload type cosign signs.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto predicate type of `cosign sign --new-bundle-format`: a
/// signature of the subject, not an attestation about it.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

const EMPTY_ROOT: &str =
    r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#;

/// Parses and checks a trusted root (every key and certificate in it must
/// be usable).
pub(crate) fn parse_trusted_root(json: &str, what: &str) -> Result<SigstoreRoot, SignatureError> {
    super::crypto::install();
    let bad = |reason: String| SignatureError::BadTrustedRoot {
        what: what.to_string(),
        reason,
    };
    let value: Value = serde_json::from_str(json).map_err(|e| bad(format!("not JSON ({e})")))?;
    let media_type = value
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !media_type.starts_with("application/vnd.dev.sigstore.trustedroot") {
        return Err(bad(format!(
            "its mediaType is `{media_type}`, not application/vnd.dev.sigstore.trustedroot+json"
        )));
    }
    let root = SigstoreRoot::from_json(json).map_err(|e| bad(e.to_string()))?;
    if root.certificate_authorities.is_empty() {
        return Err(bad(
            "it lists no certificate authority (Fulcio), so no keyless signature could verify"
                .to_string(),
        ));
    }
    Verifier::new(&root).map_err(|e| bad(e.to_string()))?;
    Ok(root)
}

fn verifier(root: Option<&TrustedRoot>) -> Result<Verifier, String> {
    super::crypto::install();
    let result = match root {
        Some(root) => Verifier::new(&root.root),
        None => SigstoreRoot::from_json(EMPTY_ROOT)
            .map_err(sigstore_verify::Error::from)
            .and_then(|root| Verifier::new(&root)),
    };
    result.map_err(|e| format!("the trusted root cannot be used: {e}"))
}

/// What a signature covers, for the crate.
#[derive(Clone, Copy)]
enum Signed<'a> {
    /// The manifest digest (bundles).
    Digest(&'a Sha256Hash),
    /// Payload bytes (`.sig` layers).
    Bytes(&'a [u8]),
}

impl<'a> Signed<'a> {
    fn artifact(self) -> Artifact<'a> {
        match self {
            Self::Digest(hash) => Artifact::from(hash),
            Self::Bytes(bytes) => Artifact::from(bytes),
        }
    }
}

fn key_policy(key: &PublicKey, verify_tlog: bool) -> Result<PublicKeyVerificationPolicy, String> {
    let der = DerPublicKey::from_pem(&key.to_pem()).map_err(|e| format!("key: {e}"))?;
    let policy = PublicKeyVerificationPolicy::new(der);
    Ok(if verify_tlog {
        policy
    } else {
        policy.skip_tlog_unsafe()
    })
}

/// Tries every trusted signer on `bundle`: the first that verifies, or why
/// each did not.
fn verify_with_signers(
    bundle: &Bundle,
    signed: Signed<'_>,
    signers: &TrustedSigners,
) -> Result<Signer, Vec<String>> {
    let mut reasons = Vec::new();
    let has_certificate = bundle.signing_certificate().is_some();
    if !signers.keys.is_empty() {
        if has_certificate {
            reasons.push(
                "signed keyless (a certificate), not by a key: trust its identity with \
                 --certificate-identity and --certificate-oidc-issuer"
                    .to_string(),
            );
        } else {
            // A key is its own trust anchor (as for `.sig` signatures); log
            // entries are checked when a trusted root with Rekor keys is given.
            let verify_tlog = signers
                .trusted_root
                .as_ref()
                .is_some_and(|root| !root.root.tlogs.is_empty())
                && !bundle.verification_material.tlog_entries.is_empty();
            match verifier(if verify_tlog {
                signers.trusted_root.as_ref()
            } else {
                None
            }) {
                Err(reason) => reasons.push(reason),
                Ok(verifier) => {
                    for key in &signers.keys {
                        let outcome = key_policy(key, verify_tlog).and_then(|policy| {
                            verifier
                                .verify(signed.artifact(), bundle, &policy)
                                .map_err(|e| e.to_string())
                        });
                        match outcome {
                            Ok(_) => {
                                return Ok(Signer::Key {
                                    fingerprint: key.fingerprint(),
                                });
                            }
                            Err(reason) => {
                                reasons.push(format!("key {}: {reason}", key.fingerprint()))
                            }
                        }
                    }
                }
            }
        }
    }
    if !signers.identities.is_empty() {
        if !has_certificate {
            reasons.push(
                "signed with a key, not keyless: trust that public key with --key".to_string(),
            );
            return Err(reasons);
        }
        let Some(root) = signers.trusted_root.as_ref() else {
            reasons.push(SignatureError::MissingTrustedRoot.to_string());
            return Err(reasons);
        };
        let verifier = match verifier(Some(root)) {
            Ok(verifier) => verifier,
            Err(reason) => {
                reasons.push(reason);
                return Err(reasons);
            }
        };
        for identity in &signers.identities {
            let mut policy = VerificationPolicy::any_identity().require_issuer(&identity.issuer);
            if root.root.ctlogs.is_empty() {
                // A private instance without CT logs (as `cosign
                // --insecure-ignore-sct`); with CT logs the SCT is required.
                policy = policy.skip_sct();
            }
            match verifier.verify(signed.artifact(), bundle, &policy) {
                Ok(result) => {
                    let subject = result.identity().map(|san| san.as_str().to_string());
                    match subject {
                        Some(subject) if identity.subject.matches(&subject) => {
                            return Ok(Signer::Identity {
                                subject,
                                issuer: identity.issuer.clone(),
                            });
                        }
                        Some(subject) => reasons.push(format!(
                            "{identity}: the certificate's subject is `{subject}`, which does \
                             not match {}",
                            identity.subject
                        )),
                        None => reasons.push(format!(
                            "{identity}: the certificate has no email or URI subject"
                        )),
                    }
                }
                Err(e) => reasons.push(format!("{identity}: {e}")),
            }
        }
    }
    Err(reasons)
}

fn sha256_hash(digest: &str) -> Result<Sha256Hash, String> {
    digest
        .strip_prefix("sha256:")
        .and_then(|hex| Sha256Hash::from_hex(hex).ok())
        .ok_or_else(|| format!("`{digest}` is not a sha256 digest"))
}

/// Checks that a bundle's content is a signature of `digest`: a DSSE
/// envelope holding an in-toto statement of cosign's signing predicate whose
/// subject is the digest, or a message signature whose digest it is. The
/// crate checks the subject and the message digest against the artifact
/// again; this refuses attestations (other predicates), which are not
/// signatures.
fn check_bundle_content(bundle: &Bundle, predicate_type: &str) -> Result<(), String> {
    match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => {
            if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
                return Err(format!(
                    "the DSSE payload type is `{}`, not `{IN_TOTO_PAYLOAD_TYPE}`",
                    envelope.payload_type
                ));
            }
            let statement: Value = serde_json::from_slice(envelope.payload.as_bytes())
                .map_err(|e| format!("the DSSE payload is not an in-toto statement ({e})"))?;
            let predicate = statement
                .get("predicateType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if predicate != predicate_type {
                return Err(format!(
                    "an attestation (predicate `{predicate}`), not a signature \
                     (`{predicate_type}`)"
                ));
            }
            Ok(())
        }
        SignatureContent::MessageSignature(_) => Ok(()),
        #[allow(unreachable_patterns)]
        _ => Err("unsupported bundle content".to_string()),
    }
}

/// Verifies a sigstore bundle (JSON) as a signature of the manifest
/// `digest` by one of `signers`.
pub(crate) fn verify_bundle(
    json: &[u8],
    digest: &str,
    signers: &TrustedSigners,
) -> Result<Signer, Vec<String>> {
    verify_statement(json, digest, signers, COSIGN_SIGN_PREDICATE)
}

/// [`verify_bundle`], with the in-toto predicate type a DSSE bundle must
/// have (tests verify real public bundles, which are attestations).
fn verify_statement(
    json: &[u8],
    digest: &str,
    signers: &TrustedSigners,
    predicate_type: &str,
) -> Result<Signer, Vec<String>> {
    super::crypto::install();
    let one = |reason: String| vec![reason];
    let text = std::str::from_utf8(json).map_err(|_| one("the bundle is not UTF-8".into()))?;
    let bundle =
        Bundle::from_json(text).map_err(|e| one(format!("not a sigstore bundle ({e})")))?;
    check_bundle_content(&bundle, predicate_type).map_err(one)?;
    let hash = sha256_hash(digest).map_err(one)?;
    verify_with_signers(&bundle, Signed::Digest(&hash), signers)
}

/// DER bytes of the first `-----BEGIN {label}-----` block of `pem`.
fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let block = super::pem_block(pem, label)?;
    let body: String = block
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect();
    BASE64.decode(body).ok()
}

/// cosign's `dev.sigstore.cosign/bundle` annotation.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RekorBundle {
    signed_entry_timestamp: String,
    payload: RekorPayload,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// The v0.1 sigstore bundle equivalent to a keyless `.sig` layer: its
/// certificate, its Rekor entry with the SET as inclusion promise, and the
/// message signature over the payload.
pub(crate) fn legacy_layer_bundle(layer: &SignatureLayer) -> Result<Bundle, String> {
    super::crypto::install();
    let signature = layer
        .signature
        .as_deref()
        .ok_or_else(|| format!("no `{}` annotation", super::SIGNATURE_ANNOTATION))?;
    let certificate = layer.certificate.as_deref().ok_or_else(|| {
        format!(
            "signed with a key, not keyless (no `{}` annotation): trust that public key with --key",
            super::CERTIFICATE_ANNOTATION
        )
    })?;
    let leaf = pem_der(certificate, "CERTIFICATE")
        .ok_or_else(|| "the certificate annotation is not a PEM certificate".to_string())?;
    let rekor = layer.rekor_bundle.as_deref().ok_or_else(|| {
        format!(
            "no Rekor entry (`{}` annotation): a keyless signature must be in the \
             transparency log",
            super::REKOR_BUNDLE_ANNOTATION
        )
    })?;
    let rekor: RekorBundle = serde_json::from_str(rekor)
        .map_err(|e| format!("the Rekor bundle annotation is malformed ({e})"))?;
    let body = BASE64
        .decode(&rekor.payload.body)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .ok_or_else(|| "the Rekor entry body is not base64 JSON".to_string())?;
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    let version = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let log_id = hex::decode(&rekor.payload.log_id)
        .map_err(|_| "the Rekor log ID is not hex".to_string())?;
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": { "certificates": [ { "rawBytes": BASE64.encode(&leaf) } ] },
            "tlogEntries": [ {
                "logIndex": rekor.payload.log_index.to_string(),
                "logId": { "keyId": BASE64.encode(log_id) },
                "kindVersion": { "kind": kind, "version": version },
                "integratedTime": rekor.payload.integrated_time.to_string(),
                "inclusionPromise": { "signedEntryTimestamp": rekor.signed_entry_timestamp },
                "canonicalizedBody": rekor.payload.body,
            } ],
        },
        "messageSignature": {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": BASE64.encode(crate::digest::sha256(&layer.payload)),
            },
            "signature": signature,
        },
    });
    Bundle::from_json(&bundle.to_string())
        .map_err(|e| format!("the keyless annotations do not make a sigstore bundle ({e})"))
}

/// Checks a keyless `.sig` layer against the trusted identities: the
/// certificate, Rekor entry and signature by the crate, then the payload
/// (cosign's type, naming `digest`).
pub(crate) fn verify_legacy_keyless(
    layer: &SignatureLayer,
    signers: &TrustedSigners,
    digest: &str,
) -> Result<Signer, Vec<String>> {
    let keyless = TrustedSigners {
        keys: Vec::new(),
        identities: signers.identities.clone(),
        trusted_root: signers.trusted_root.clone(),
    };
    let bundle = legacy_layer_bundle(layer).map_err(|reason| vec![reason])?;
    let signer = verify_with_signers(&bundle, Signed::Bytes(&layer.payload), &keyless)?;
    check_simple_signing(&layer.payload, digest).map_err(|reason| vec![reason])?;
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{
        CertificateIdentity, PrivateKey, SubjectMatcher, simple_signing_payload,
    };
    use test_support::sigstore::SigstoreInstance;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    const ISSUER: &str = "https://issuer.test";

    fn root(json: &str) -> TrustedRoot {
        TrustedRoot::from_json(json, "trusted_root.json").unwrap()
    }

    fn keyless(subject: SubjectMatcher, issuer: &str, root: TrustedRoot) -> TrustedSigners {
        TrustedSigners {
            keys: Vec::new(),
            identities: vec![CertificateIdentity {
                subject,
                issuer: issuer.to_string(),
            }],
            trusted_root: Some(root),
        }
    }

    fn exact(subject: &str) -> SubjectMatcher {
        SubjectMatcher::Exact(subject.to_string())
    }

    /// Real public Sigstore data, as real cosign, Fulcio and Rekor made it:
    /// `conformance-happy-path.sigstore.json` is sigstore-conformance's
    /// "happy path" DSSE bundle (Fulcio certificate of the conformance
    /// beacon workflow, Rekor v1 entry with inclusion proof and SET on the
    /// public-good log), shipped as `tests/fixtures/happy-path.json` in the
    /// `sigstore-bundle` 0.15.1 crate; `production-trusted_root.json` is the
    /// public-good trusted root shipped as `src/trusted_root.json` in
    /// `sigstore-trust-root` 0.15.1. The statement's subject is `a.txt`
    /// (sha256 a0cfc712…) and its predicate SLSA provenance.
    #[test]
    fn real_public_good_bundle_verifies_and_only_for_its_signer_and_digest() {
        let bundle = include_bytes!("../../tests/data/conformance-happy-path.sigstore.json");
        let root = root(include_str!(
            "../../tests/data/production-trusted_root.json"
        ));
        let digest = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
        let workflow = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
        let actions = "https://token.actions.githubusercontent.com";
        let provenance = "https://slsa.dev/provenance/v1";
        let signers = keyless(exact(workflow), actions, root.clone());
        let signer = verify_statement(bundle, digest, &signers, provenance).unwrap();
        assert_eq!(
            signer,
            Signer::Identity {
                subject: workflow.to_string(),
                issuer: actions.to_string()
            }
        );
        let regex = SubjectMatcher::regex("^https://github.com/sigstore-conformance/").unwrap();
        assert!(
            verify_statement(
                bundle,
                digest,
                &keyless(regex, actions, root.clone()),
                provenance
            )
            .is_ok()
        );
        // Another subject, another issuer, another digest, or as a cosign
        // signature (it is an attestation): all refused.
        let wrong = keyless(exact("https://github.com/evil/x"), actions, root.clone());
        let why = verify_statement(bundle, digest, &wrong, provenance).unwrap_err();
        assert!(why.join(" ").contains("does not match"), "{why:?}");
        let wrong = keyless(exact(workflow), "https://accounts.google.com", root.clone());
        assert!(verify_statement(bundle, digest, &wrong, provenance).is_err());
        assert!(verify_statement(bundle, OTHER, &signers, provenance).is_err());
        let why = verify_bundle(bundle, digest, &signers).unwrap_err();
        assert!(why.join(" ").contains("an attestation"), "{why:?}");
        // The same bundle against a trusted root that is not its own.
        let staging = super::super::TrustedRoot::from_json(
            include_str!("../../tests/data/staging-trusted_root.json"),
            "staging",
        )
        .unwrap();
        assert!(
            verify_statement(
                bundle,
                digest,
                &keyless(exact(workflow), actions, staging),
                provenance
            )
            .is_err()
        );
    }

    #[test]
    fn generated_bundles_by_identity_and_by_key() {
        let instance = SigstoreInstance::new();
        let trusted = root(&instance.trusted_root_json());
        let identity = instance.issue("dev@example.com", ISSUER);
        let bundle = instance.bundle_keyless(&identity, "r.io/a/b", DIGEST);
        let signers = keyless(exact("dev@example.com"), ISSUER, trusted.clone());
        assert_eq!(
            verify_bundle(bundle.as_bytes(), DIGEST, &signers)
                .unwrap()
                .to_string(),
            "dev@example.com (issuer https://issuer.test)"
        );
        // Another digest than the statement's subject.
        assert!(verify_bundle(bundle.as_bytes(), OTHER, &signers).is_err());
        // Wrong issuer; wrong subject.
        let why = verify_bundle(
            bundle.as_bytes(),
            DIGEST,
            &keyless(exact("dev@example.com"), "https://other", trusted.clone()),
        )
        .unwrap_err();
        assert!(why.join(" ").to_lowercase().contains("issuer"), "{why:?}");
        let why = verify_bundle(
            bundle.as_bytes(),
            DIGEST,
            &keyless(exact("eve@example.com"), ISSUER, trusted.clone()),
        )
        .unwrap_err();
        assert!(why.join(" ").contains("does not match"), "{why:?}");
        // A CA outside the trusted root.
        let rogue = instance.with_rogue_ca();
        let bundle =
            rogue.bundle_keyless(&rogue.issue("dev@example.com", ISSUER), "r.io/a/b", DIGEST);
        assert!(verify_bundle(bundle.as_bytes(), DIGEST, &signers).is_err());

        // By key, no trusted root needed.
        let key = PrivateKey::from_pem(crate::signature::tests::PKCS8, "k").unwrap();
        let bundle = instance.bundle_with_key(crate::signature::tests::PKCS8, "r.io/a/b", DIGEST);
        let by_key = TrustedSigners {
            keys: vec![key.public_key()],
            ..Default::default()
        };
        assert!(matches!(
            verify_bundle(bundle.as_bytes(), DIGEST, &by_key),
            Ok(Signer::Key { .. })
        ));
        assert!(verify_bundle(bundle.as_bytes(), OTHER, &by_key).is_err());
        // A key bundle is no keyless signature.
        assert!(verify_bundle(bundle.as_bytes(), DIGEST, &signers).is_err());
    }

    #[test]
    fn generated_legacy_keyless_layers() {
        let instance = SigstoreInstance::new();
        let trusted = root(&instance.trusted_root_json());
        let identity = instance.issue("https://ci.example/workflow@refs/heads/main", ISSUER);
        let payload = simple_signing_payload("r.io/a/b", DIGEST);
        let signed = instance.sign_legacy(&identity, &payload);
        let layer = SignatureLayer {
            digest: String::new(),
            payload: payload.clone(),
            signature: Some(signed.signature.clone()),
            certificate: Some(signed.certificate.clone()),
            chain: Some(signed.chain.clone()),
            rekor_bundle: Some(signed.rekor_bundle.clone()),
        };
        let signers = keyless(
            SubjectMatcher::regex("^https://ci\\.example/").unwrap(),
            ISSUER,
            trusted.clone(),
        );
        assert!(verify_legacy_keyless(&layer, &signers, DIGEST).is_ok());
        // Signed payload naming another digest.
        let why = verify_legacy_keyless(&layer, &signers, OTHER).unwrap_err();
        assert!(why.join(" ").contains("another artifact"), "{why:?}");
        // Tampered payload.
        let mut tampered = layer.clone();
        tampered.payload = simple_signing_payload("r.io/a/evil", DIGEST);
        assert!(verify_legacy_keyless(&tampered, &signers, DIGEST).is_err());
        // No Rekor entry.
        let mut unlogged = layer.clone();
        unlogged.rekor_bundle = None;
        let why = verify_legacy_keyless(&unlogged, &signers, DIGEST).unwrap_err();
        assert!(why.join(" ").contains("transparency log"), "{why:?}");
        // A SET by another log key.
        let other_log = SigstoreInstance::new();
        let mut foreign = layer.clone();
        foreign.rekor_bundle = Some(other_log.sign_legacy(&identity, &payload).rekor_bundle);
        assert!(verify_legacy_keyless(&foreign, &signers, DIGEST).is_err());
    }

    #[test]
    fn trusted_roots_are_checked() {
        let err = TrustedRoot::from_json("{}", "x.json").unwrap_err();
        assert!(
            err.to_string().contains("not a Sigstore trusted root"),
            "{err}"
        );
        let err = TrustedRoot::from_json("[1", "x.json").unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
        let no_ca = r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#;
        let err = TrustedRoot::from_json(no_ca, "x.json").unwrap_err();
        assert!(
            err.to_string().contains("no certificate authority"),
            "{err}"
        );
    }
}
