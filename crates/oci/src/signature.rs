//! cosign signatures, key-based: what `cosign sign --key` writes and
//! `cosign verify --key` accepts.
//!
//! The layout (cosign's "legacy" tag form): the signature of the manifest
//! `sha256:<hex>` lives in the same repository under the tag
//! `sha256-<hex>.sig`, an OCI image manifest with one layer per signature.
//! Each layer is a simple-signing payload
//! (`application/vnd.dev.cosign.simplesigning.v1+json`):
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"REGISTRY/REPO"},"image":{"docker-manifest-digest":"sha256:…"},"type":"cosign container image signature"},"optional":null}
//! ```
//!
//! and its annotation `dev.cosignproject.cosign/signature` holds the base64
//! of an ASN.1 DER ECDSA P-256 signature over SHA-256 of the exact payload
//! bytes.
//!
//! Signing keys are ECDSA P-256 PEM: PKCS#8, SEC1, or cosign's own
//! encrypted `cosign.key` (scrypt and NaCl secretbox), which
//! [`PrivateKey::from_pem_with_password`] decrypts with a password the
//! caller supplies; this crate never asks for one.
//!
//! The pure part (payload, tag, keys, [`verify_signatures`]) does no I/O;
//! [`RegistryClient::fetch_signatures`] and [`RegistryClient::push_signature`]
//! talk to the registry. An artifact with no signature never verifies.

use crate::digest::{sha256, sha256_digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::client::{OciError, RegistryClient};
use crate::manifest::{OCI_IMAGE_MANIFEST, is_sha256_digest};
use crate::push::PushError;
use crate::reference::PluginReference;

mod crypto;
mod encrypted_key;
mod policy;
mod referrers;
mod sigstore;

pub use policy::{
    CertificateIdentity, SignatureForm, Signer, SubjectMatcher, TrustedRoot, TrustedSigners,
    Verification,
};
pub use referrers::{BUNDLE_ARTIFACT_TYPE, BundleReferrer, MAX_BUNDLE_SIZE};
pub use sigstore::{COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE};

/// Checks one sigstore bundle (JSON) against every trusted signer: the
/// first that verifies it as a signature of the manifest `digest`, or why
/// each did not.
pub fn verify_bundle(
    bundle_json: &[u8],
    digest: &str,
    signers: &TrustedSigners,
) -> Result<Signer, Vec<String>> {
    sigstore::verify_bundle(bundle_json, digest, signers)
}

/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 DER signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Keyless `.sig` layers: the signing certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Keyless `.sig` layers: the certificate chain (PEM, intermediates then root).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// `.sig` layers logged in Rekor: the signed entry timestamp and entry (JSON).
pub const REKOR_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// `critical.type` of a cosign payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Media type of the config of a signature manifest (cosign writes an empty image config).
pub const SIGNATURE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Largest payload read: real ones are a few hundred bytes.
pub const MAX_PAYLOAD_SIZE: u64 = 64 * 1024;
/// Most signature layers looked at in one `.sig` manifest.
pub const MAX_SIGNATURES: usize = 64;

/// Why signing or verifying failed, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("{what}: {reason}")]
    Key { what: String, reason: String },
    /// A cosign encrypted key was read without a password: the caller
    /// decides where one comes from and reads the key again with it.
    #[error("{what} is an encrypted cosign key; its password is needed to sign")]
    PasswordNeeded { what: String },
    #[error(
        "wrong password for {what}: the key does not decrypt with it (secretbox \
         authentication failed, as it also would for a key file altered since cosign wrote it)"
    )]
    WrongPassword { what: String },
    #[error("{what} is not a readable cosign encrypted key: {reason}")]
    BadEncryptedKey { what: String, reason: String },
    #[error(
        "{0} is an encrypted PKCS#8 key; decrypt it first: \
         `openssl pkcs8 -in {0} -out plain.key` (and keep that file private)"
    )]
    EncryptedPkcs8(String),
    #[error("`{0}` is not a sha256 manifest digest")]
    BadDigest(String),
    #[error(
        "{reference} is not signed: no cosign signature was found (tag `{tag}` does not exist \
         and no sigstore bundle refers to the manifest); an unsigned artifact never passes \
         verification"
    )]
    Unsigned { reference: String, tag: String },
    #[error(
        "{reference} has {count} signature(s), none valid for {signers}:\n  {}",
        reasons.join("\n  ")
    )]
    NotVerified {
        reference: String,
        count: usize,
        signers: String,
        reasons: Vec<String>,
    },
    #[error(
        "no signer to verify against: give a public key (--key FILE) or a keyless identity \
         (--certificate-identity or --certificate-identity-regexp, with \
         --certificate-oidc-issuer and --trusted-root)"
    )]
    NoSigners,
    #[error(
        "keyless verification needs a trusted root: give Sigstore's trusted_root.json \
         (or your own instance's) with --trusted-root FILE"
    )]
    MissingTrustedRoot,
    #[error(
        "--certificate-identity-regexp `{pattern}` is not a valid regular expression: {reason}"
    )]
    BadIdentityRegex { pattern: String, reason: String },
    #[error(
        "{what} is not a Sigstore trusted root: {reason}; use a trusted_root.json \
         (`cosign trusted-root create`, or the one Sigstore's TUF repository publishes)"
    )]
    BadTrustedRoot { what: String, reason: String },
    #[error(
        "{reference} has {count} signature(s), none valid for key {fingerprint}:\n  {}",
        reasons.join("\n  ")
    )]
    NoValidSignature {
        reference: String,
        count: usize,
        fingerprint: String,
        reasons: Vec<String>,
    },
    #[error("the signature manifest `{tag}` of {reference} is malformed: {reason}")]
    BadSignatureManifest {
        reference: String,
        tag: String,
        reason: String,
    },
    #[error("the signature referrer {referrer} of {reference} is malformed: {reason}")]
    BadReferrer {
        reference: String,
        referrer: String,
        reason: String,
    },
    #[error(transparent)]
    Registry(#[from] OciError),
    #[error(transparent)]
    Push(#[from] PushError),
}

/// The tag cosign stores the signatures of `digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> Result<String, SignatureError> {
    if !is_sha256_digest(digest) {
        return Err(SignatureError::BadDigest(digest.to_string()));
    }
    Ok(format!("{}.sig", digest.replacen(':', "-", 1)))
}

/// The name cosign writes as `docker-reference`: the repository, no tag or digest.
pub fn docker_reference(reference: &PluginReference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

#[derive(Serialize, Deserialize)]
struct Payload {
    critical: Critical,
    optional: Option<Value>,
}

#[derive(Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The simple-signing payload for `digest`, byte for byte as cosign writes it.
pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_string(),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: SIGNATURE_TYPE.to_string(),
        },
        optional: None,
    };
    // Strings only: serialization cannot fail.
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// The PEM block labelled `label` in `text`, markers included.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

/// An ECDSA P-256 private key, read from PEM.
pub struct PrivateKey {
    key: SigningKey,
}

/// What the PKCS#8 `der` holds, in words; `None` for ECDSA P-256.
fn pkcs8_algorithm(der: &[u8]) -> Option<String> {
    let Ok(info) = p256::pkcs8::PrivateKeyInfo::try_from(der) else {
        return Some("not PKCS#8 DER (cosign writes PKCS#8)".to_string());
    };
    let curve = info
        .algorithm
        .parameters_oid()
        .ok()
        .map(|oid| oid.to_string());
    let what = match (info.algorithm.oid.to_string().as_str(), curve.as_deref()) {
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => return None,
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => "an ECDSA P-384 key".to_string(),
        ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => "an ECDSA P-521 key".to_string(),
        ("1.2.840.10045.2.1", _) => "an ECDSA key on another curve".to_string(),
        ("1.2.840.113549.1.1.1", _) => "an RSA key".to_string(),
        ("1.3.101.112", _) => "an Ed25519 key".to_string(),
        (oid, _) => format!("a key of algorithm {oid}"),
    };
    Some(what)
}

impl PrivateKey {
    /// Reads PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM. `what`
    /// names the key in messages (its path). A cosign encrypted key is
    /// [`SignatureError::PasswordNeeded`]: see [`Self::from_pem_with_password`].
    pub fn from_pem(text: &str, what: &str) -> Result<Self, SignatureError> {
        Self::from_pem_with_password(text, what, None)
    }

    /// Like [`Self::from_pem`], and also reads cosign's encrypted key
    /// (`ENCRYPTED SIGSTORE PRIVATE KEY`, or `ENCRYPTED COSIGN PRIVATE KEY`
    /// from cosign 1.x) with `password`. An empty password is a password
    /// (cosign allows it). The file is checked (JSON, algorithm names,
    /// scrypt parameters) before the password is needed, so a malformed key
    /// is reported as such even without one; with `None`, a well-formed
    /// encrypted key is [`SignatureError::PasswordNeeded`], and a password
    /// that does not decrypt it [`SignatureError::WrongPassword`]. The
    /// decrypted key is wiped from memory once read.
    pub fn from_pem_with_password(
        text: &str,
        what: &str,
        password: Option<&[u8]>,
    ) -> Result<Self, SignatureError> {
        let error = |reason: String| SignatureError::Key {
            what: what.to_string(),
            reason,
        };
        let not_p256 = |e: &dyn std::fmt::Display| {
            error(format!(
                "not an ECDSA P-256 private key ({e}); cosign keys and \
                 `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` are"
            ))
        };
        if let Some(body) = encrypted_key::find_block(text) {
            return Self::from_encrypted(body, what, password);
        }
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(SignatureError::EncryptedPkcs8(what.to_string()));
        }
        let key = if let Some(block) = pem_block(text, "PRIVATE KEY") {
            SigningKey::from_pkcs8_pem(block).map_err(|e| not_p256(&e))?
        } else if let Some(block) = pem_block(text, "EC PRIVATE KEY") {
            let secret = p256::SecretKey::from_sec1_pem(block).map_err(|e| not_p256(&e))?;
            SigningKey::from(secret)
        } else {
            return Err(error(
                "no `-----BEGIN PRIVATE KEY-----`, `-----BEGIN EC PRIVATE KEY-----` or \
                 `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----` PEM block (a private key is \
                 needed to sign; the .pub file is for verify)"
                    .to_string(),
            ));
        };
        Ok(Self { key })
    }

    /// cosign's encrypted key: `body` is the PEM block's body.
    fn from_encrypted(
        body: &str,
        what: &str,
        password: Option<&[u8]>,
    ) -> Result<Self, SignatureError> {
        let bad = |reason: String| SignatureError::BadEncryptedKey {
            what: what.to_string(),
            reason,
        };
        let encrypted = encrypted_key::EncryptedKey::parse(body).map_err(bad)?;
        let Some(password) = password else {
            return Err(SignatureError::PasswordNeeded {
                what: what.to_string(),
            });
        };
        let wrong = |encrypted_key::WrongPassword| SignatureError::WrongPassword {
            what: what.to_string(),
        };
        let der: Zeroizing<Vec<u8>> = encrypted.decrypt(password).map_err(wrong)?;
        let key = SigningKey::from_pkcs8_der(&der).map_err(|e| {
            bad(match pkcs8_algorithm(&der) {
                Some(other) => format!(
                    "the decrypted key is {other}; only ECDSA P-256 keys (cosign's default) \
                     sign here"
                ),
                None => format!("the decrypted ECDSA P-256 key does not parse ({e})"),
            })
        })?;
        Ok(Self { key })
    }

    /// The base64 of the DER ECDSA signature over SHA-256 of `payload`.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.key.sign(payload);
        BASE64.encode(signature.to_der().as_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
        }
    }
}

/// An ECDSA P-256 public key (`cosign.pub`: SubjectPublicKeyInfo PEM).
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads `-----BEGIN PUBLIC KEY-----` PEM. `what` names it in messages.
    pub fn from_pem(text: &str, what: &str) -> Result<Self, SignatureError> {
        let error = |reason: String| SignatureError::Key {
            what: what.to_string(),
            reason,
        };
        let Some(block) = pem_block(text, "PUBLIC KEY") else {
            return Err(error(if text.contains("PRIVATE KEY") {
                "this is a private key; verify takes the public key (cosign.pub, or \
                 `openssl pkey -in cosign.key -pubout`)"
                    .to_string()
            } else {
                "no `-----BEGIN PUBLIC KEY-----` PEM block".to_string()
            }));
        };
        let key = VerifyingKey::from_public_key_pem(block)
            .map_err(|e| error(format!("not an ECDSA P-256 public key ({e})")))?;
        Ok(Self { key })
    }

    /// `SHA256:<hex>` of the key's DER SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> String {
        let der = self
            .key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        format!("SHA256:{}", hex::encode(sha256(&der)))
    }

    /// The key as SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// Checks a base64 DER signature over `payload`.
    fn check(&self, payload: &[u8], signature_b64: &str) -> Result<(), String> {
        let der = BASE64
            .decode(signature_b64.trim())
            .map_err(|e| format!("the signature annotation is not base64 ({e})"))?;
        let signature = DerSignature::try_from(der.as_slice())
            .map_err(|_| "the signature is not a DER ECDSA P-256 signature".to_string())?;
        self.key
            .verify(payload, &signature)
            .map_err(|_| "the signature does not match this key and payload".to_string())
    }
}

/// One signature layer as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// Digest of the payload blob.
    pub digest: String,
    /// The payload bytes, exactly as stored.
    pub payload: Vec<u8>,
    /// The `dev.cosignproject.cosign/signature` annotation, if any.
    pub signature: Option<String>,
    /// Keyless: the `dev.sigstore.cosign/certificate` annotation (PEM leaf).
    pub certificate: Option<String>,
    /// Keyless: the `dev.sigstore.cosign/chain` annotation (PEM intermediates and root).
    pub chain: Option<String>,
    /// Keyless: the `dev.sigstore.cosign/bundle` annotation (the Rekor SET).
    pub rekor_bundle: Option<String>,
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The manifest digest the payload names (the one asked about).
    pub manifest_digest: String,
    /// The payload's `docker-reference`.
    pub docker_reference: String,
    /// The key's fingerprint.
    pub key_fingerprint: String,
    /// How many signature layers there were.
    pub signatures: usize,
}

/// Checks one layer: signature by `key` over the payload, payload of the
/// cosign type, naming `digest`.
fn verify_layer(layer: &SignatureLayer, key: &PublicKey, digest: &str) -> Result<String, String> {
    let signature = layer
        .signature
        .as_deref()
        .ok_or_else(|| format!("no `{SIGNATURE_ANNOTATION}` annotation"))?;
    key.check(&layer.payload, signature)?;
    check_simple_signing(&layer.payload, digest)
}

/// Checks a simple-signing payload is of cosign's type and names `digest`;
/// returns its `docker-reference`.
pub(crate) fn check_simple_signing(payload: &[u8], digest: &str) -> Result<String, String> {
    let payload: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("the payload is not a simple-signing document ({e})"))?;
    if payload.critical.kind != SIGNATURE_TYPE {
        return Err(format!(
            "the payload's type is `{}`, not `{SIGNATURE_TYPE}`",
            payload.critical.kind
        ));
    }
    if payload.critical.image.docker_manifest_digest != digest {
        return Err(format!(
            "the signature is for another artifact: its payload names {}, not {digest}",
            payload.critical.image.docker_manifest_digest
        ));
    }
    Ok(payload.critical.identity.docker_reference)
}

/// Verifies that at least one of `layers` is a valid signature of `digest`
/// by `key`. No layers at all is [`SignatureError::Unsigned`], never a pass.
pub fn verify_signatures(
    reference: &str,
    layers: &[SignatureLayer],
    key: &PublicKey,
    digest: &str,
) -> Result<VerifiedSignature, SignatureError> {
    if layers.is_empty() {
        return Err(SignatureError::Unsigned {
            reference: reference.to_string(),
            tag: signature_tag(digest)?,
        });
    }
    let mut reasons = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        match verify_layer(layer, key, digest) {
            Ok(docker_reference) => {
                return Ok(VerifiedSignature {
                    manifest_digest: digest.to_string(),
                    docker_reference,
                    key_fingerprint: key.fingerprint(),
                    signatures: layers.len(),
                });
            }
            Err(reason) => {
                reasons.push(format!("signature {} ({}): {reason}", i + 1, layer.digest))
            }
        }
    }
    Err(SignatureError::NoValidSignature {
        reference: reference.to_string(),
        count: layers.len(),
        fingerprint: key.fingerprint(),
        reasons,
    })
}

/// Checks one `.sig` layer against every trusted signer: the first that
/// verifies it, or why each did not.
pub fn verify_legacy_layer(
    layer: &SignatureLayer,
    signers: &TrustedSigners,
    digest: &str,
) -> Result<Signer, Vec<String>> {
    let mut reasons = Vec::new();
    for key in &signers.keys {
        match verify_layer(layer, key, digest) {
            Ok(_) => {
                return Ok(Signer::Key {
                    fingerprint: key.fingerprint(),
                });
            }
            Err(reason) => reasons.push(format!("key {}: {reason}", key.fingerprint())),
        }
    }
    if !signers.identities.is_empty() {
        match sigstore::verify_legacy_keyless(layer, signers, digest) {
            Ok(signer) => return Ok(signer),
            Err(why) => reasons.extend(why),
        }
    }
    Err(reasons)
}

impl RegistryClient {
    /// Verifies that at least one signature of `digest` in `reference`'s
    /// repository, in either form (cosign's `.sig` tag or a sigstore bundle
    /// referrer), is valid for one of `signers` and names `digest`. No
    /// signature at all is [`SignatureError::Unsigned`], never a pass; when
    /// none verifies, the error says why each failed.
    pub async fn verify_manifest(
        &mut self,
        reference: &PluginReference,
        digest: &str,
        signers: &TrustedSigners,
    ) -> Result<Verification, SignatureError> {
        signers.check()?;
        let tag = signature_tag(digest)?;
        let shown = format!("{}@{digest}", docker_reference(reference));
        let layers = self.fetch_signatures(reference, digest).await?;
        // A registry that fails on referrers must not hide a valid `.sig`
        // signature: the failure is one more reason, or the error itself
        // when nothing else was found (never "unsigned").
        let (bundles, referrers_error) = match self.fetch_bundles(reference, digest).await {
            Ok(bundles) => (bundles, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let count = layers.len() + bundles.len();
        if count == 0 {
            return Err(referrers_error.unwrap_or(SignatureError::Unsigned {
                reference: shown,
                tag,
            }));
        }
        let verified = |signer, form| Verification {
            manifest_digest: digest.to_string(),
            signer,
            form,
            signatures: count,
        };
        let mut reasons: Vec<String> = referrers_error
            .map(|e| format!("sigstore bundles could not be read: {e}"))
            .into_iter()
            .collect();
        for (i, bundle) in bundles.iter().enumerate() {
            match verify_bundle(&bundle.bundle, digest, signers) {
                Ok(signer) => return Ok(verified(signer, SignatureForm::Bundle)),
                Err(why) => reasons.push(format!(
                    "{} {} ({}): {}",
                    SignatureForm::Bundle,
                    i + 1,
                    bundle.manifest_digest,
                    why.join("; ")
                )),
            }
        }
        for (i, layer) in layers.iter().enumerate() {
            match verify_legacy_layer(layer, signers, digest) {
                Ok(signer) => return Ok(verified(signer, SignatureForm::Legacy)),
                Err(why) => reasons.push(format!(
                    "{} signature {} ({}): {}",
                    SignatureForm::Legacy,
                    i + 1,
                    layer.digest,
                    why.join("; ")
                )),
            }
        }
        Err(SignatureError::NotVerified {
            reference: shown,
            count,
            signers: signers.describe(),
            reasons,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSignatureManifest {
    #[serde(default)]
    layers: Vec<RawLayer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawLayer {
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) annotations: std::collections::BTreeMap<String, String>,
}

/// What a signature push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedSignature {
    /// `registry/repo:sha256-<hex>.sig`.
    pub tag_reference: String,
    /// Signature layers in the manifest now (cosign appends).
    pub signatures: usize,
    /// True when the same signature was there already (nothing pushed).
    pub already_present: bool,
}

impl RegistryClient {
    /// The signature layers of `digest` in `reference`'s repository, payloads
    /// fetched and checked against their digests. No `.sig` tag is an empty
    /// list (which [`verify_signatures`] refuses).
    pub async fn fetch_signatures(
        &mut self,
        reference: &PluginReference,
        digest: &str,
    ) -> Result<Vec<SignatureLayer>, SignatureError> {
        let tag = signature_tag(digest)?;
        let sig_ref = reference.with_tag(&tag);
        let shown = sig_ref.to_string();
        let body = match self.fetch_manifest(&sig_ref).await {
            Ok((body, _)) => body,
            Err(OciError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let malformed = |reason: String| SignatureError::BadSignatureManifest {
            reference: reference.to_string(),
            tag: tag.clone(),
            reason,
        };
        let manifest: RawSignatureManifest =
            serde_json::from_slice(&body).map_err(|e| malformed(e.to_string()))?;
        let mut out = Vec::new();
        for layer in manifest
            .layers
            .into_iter()
            .filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
            .take(MAX_SIGNATURES)
        {
            if !is_sha256_digest(&layer.digest) {
                return Err(malformed(format!("layer digest `{}`", layer.digest)));
            }
            if layer.size > MAX_PAYLOAD_SIZE {
                return Err(malformed(format!(
                    "a payload of {} bytes (at most {MAX_PAYLOAD_SIZE})",
                    layer.size
                )));
            }
            let payload = self.fetch_small_blob(&sig_ref, &layer, &shown).await?;
            out.push(SignatureLayer {
                digest: layer.digest,
                payload,
                signature: layer.annotations.get(SIGNATURE_ANNOTATION).cloned(),
                certificate: layer.annotations.get(CERTIFICATE_ANNOTATION).cloned(),
                chain: layer.annotations.get(CHAIN_ANNOTATION).cloned(),
                rekor_bundle: layer.annotations.get(REKOR_BUNDLE_ANNOTATION).cloned(),
            });
        }
        Ok(out)
    }

    /// A signature layer's blob (payload or bundle), whole, size and
    /// digest checked.
    pub(crate) async fn fetch_small_blob(
        &self,
        sig_ref: &PluginReference,
        layer: &RawLayer,
        shown: &str,
    ) -> Result<Vec<u8>, SignatureError> {
        Ok(self
            .fetch_blob_whole(sig_ref, &layer.media_type, &layer.digest, layer.size, shown)
            .await?)
    }

    /// Stores a signature of `digest` the way `cosign sign` does: the payload
    /// blob, an empty image config, and the `sha256-<hex>.sig` manifest, with
    /// the new layer appended to those already there.
    pub async fn push_signature(
        &mut self,
        reference: &PluginReference,
        digest: &str,
        payload: &[u8],
        signature_b64: &str,
    ) -> Result<PushedSignature, SignatureError> {
        let tag = signature_tag(digest)?;
        let sig_ref = reference.with_tag(&tag);
        let shown = sig_ref.to_string();
        self.authorize_push(&sig_ref).await?;
        let malformed = |reason: String| SignatureError::BadSignatureManifest {
            reference: reference.to_string(),
            tag: tag.clone(),
            reason,
        };
        let mut layers: Vec<Value> = match self.fetch_manifest(&sig_ref).await {
            Ok((body, _)) => {
                let existing: Value =
                    serde_json::from_slice(&body).map_err(|e| malformed(e.to_string()))?;
                match existing.get("layers") {
                    Some(Value::Array(layers)) => layers.clone(),
                    None | Some(Value::Null) => Vec::new(),
                    Some(_) => return Err(malformed("`layers` is not a list".to_string())),
                }
            }
            Err(OciError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let payload_digest = sha256_digest(payload);
        let already_present = layers.iter().any(|l| {
            l.get("digest").and_then(Value::as_str) == Some(payload_digest.as_str())
                && l.pointer("/annotations/dev.cosignproject.cosign~1signature")
                    .and_then(Value::as_str)
                    == Some(signature_b64)
        });
        if already_present {
            return Ok(PushedSignature {
                tag_reference: shown,
                signatures: layers.len(),
                already_present: true,
            });
        }
        layers.push(json!({
            "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
            "size": payload.len(),
            "digest": payload_digest,
            "annotations": { SIGNATURE_ANNOTATION: signature_b64 },
        }));
        let diff_ids: Vec<&str> = layers
            .iter()
            .filter_map(|l| l.get("digest").and_then(Value::as_str))
            .collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {},
        }))
        .unwrap_or_default();
        let config_digest = sha256_digest(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MANIFEST,
            "config": {
                "mediaType": SIGNATURE_CONFIG_MEDIA_TYPE,
                "size": config.len(),
                "digest": config_digest,
            },
            "layers": layers,
        }))
        .unwrap_or_default();

        let image = sig_ref.as_oci().clone();
        self.client
            .push_blob(&image, Bytes::copy_from_slice(payload), &payload_digest)
            .await
            .map_err(|e| self.translate_push(e, &shown))?;
        self.client
            .push_blob(&image, Bytes::from(config), &config_digest)
            .await
            .map_err(|e| self.translate_push(e, &shown))?;
        self.client
            .push_manifest_raw(
                &image,
                Bytes::from(manifest),
                HeaderValue::from_static(OCI_IMAGE_MANIFEST),
            )
            .await
            .map_err(|e| self.translate_push(e, &shown))?;
        Ok(PushedSignature {
            tag_reference: shown,
            signatures: layers.len(),
            already_present: false,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    // `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`
    pub(crate) const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDC2PocMrDDlX7Nsd
4XbfpmYZrRJV6KTJCyiaDnEEA06hRANCAARVdkLzF3v8A1zXdsnf/+a4bDgczUcs
jeeX9FVxHPrnkjm5+4gt4x5nAGbE9hOMaSgxYPMRMrU9/D3gtEva65Sq
-----END PRIVATE KEY-----
";

    fn key() -> PrivateKey {
        PrivateKey::from_pem(PKCS8, "test.key").unwrap()
    }

    fn signed(key: &PrivateKey, digest: &str) -> SignatureLayer {
        let payload = simple_signing_payload("127.0.0.1:5000/plugins/hello", digest);
        SignatureLayer {
            digest: sha256_digest(&payload),
            signature: Some(key.sign(&payload)),
            payload,
            certificate: None,
            chain: None,
            rekor_bundle: None,
        }
    }

    #[test]
    fn payload_and_tag_are_cosigns() {
        assert_eq!(
            String::from_utf8(simple_signing_payload("r.io/a/b", DIGEST)).unwrap(),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"r.io/a/b\"}},\"image\":\
                 {{\"docker-manifest-digest\":\"{DIGEST}\"}},\"type\":\"cosign container image \
                 signature\"}},\"optional\":null}}"
            )
        );
        assert_eq!(
            signature_tag(DIGEST).unwrap(),
            "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig"
        );
        assert!(signature_tag("sha256:abc").is_err());
    }

    #[test]
    fn verifies_good_and_refuses_the_rest() {
        let key = key();
        let public = key.public_key();
        let good = signed(&key, DIGEST);
        let ok = verify_signatures("r", std::slice::from_ref(&good), &public, DIGEST).unwrap();
        assert_eq!(ok.docker_reference, "127.0.0.1:5000/plugins/hello");
        assert_eq!(ok.signatures, 1);

        // Unsigned: an empty list never passes.
        assert!(matches!(
            verify_signatures("r", &[], &public, DIGEST),
            Err(SignatureError::Unsigned { .. })
        ));
        // Another digest's signature.
        let err = verify_signatures("r", std::slice::from_ref(&good), &public, OTHER).unwrap_err();
        assert!(err.to_string().contains("another artifact"), "{err}");
        // Tampered payload, signature kept.
        let mut tampered = good.clone();
        tampered.payload = simple_signing_payload("127.0.0.1:5000/plugins/hello", OTHER);
        let err = verify_signatures("r", &[tampered], &public, OTHER).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        // No annotation.
        let mut bare = good.clone();
        bare.signature = None;
        assert!(verify_signatures("r", &[bare], &public, DIGEST).is_err());
        // Wrong key.
        let other = PrivateKey {
            key: SigningKey::from_slice(&[7u8; 32]).unwrap(),
        };
        let err = verify_signatures(
            "r",
            std::slice::from_ref(&good),
            &other.public_key(),
            DIGEST,
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        // One good among bad ones passes.
        let bad = signed(&other, DIGEST);
        assert!(verify_signatures("r", &[bad, good], &public, DIGEST).is_ok());
    }

    #[test]
    fn reads_keys_and_refuses_the_wrong_kind() {
        let public_pem = key().public_key().to_pem();
        let public = PublicKey::from_pem(&public_pem, "k.pub").unwrap();
        assert!(public.fingerprint().starts_with("SHA256:"));
        assert!(PublicKey::from_pem(PKCS8, "k").is_err());
        assert!(PrivateKey::from_pem(&public_pem, "k").is_err());
        // PKCS#8 PBES2 stays refused, with the command to decrypt it.
        let err = PrivateKey::from_pem_with_password(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nxx\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "k.pem",
            Some(b"pw"),
        )
        .err()
        .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("openssl pkcs8 -in k.pem")),
            "{err:?}"
        );
    }

    /// Real cosign encrypted keys; their sources are in tests/data/README.md.
    const SIGSTORE_RS_KEY: &str = include_str!("../tests/data/sigstore-rs-cosign.key");
    const SIGSTORE_RS_PUB: &str = include_str!("../tests/data/sigstore-rs-cosign.pub");
    const SIGSTORE_RS_N65536_KEY: &str =
        include_str!("../tests/data/sigstore-rs-cosign_generated_encrypted_empty_private.key");
    const COSIGN_TEST_KEY: &str = include_str!("../tests/data/cosign-keys_test-pemsigstorekey.key");
    const COSIGN_TEST_PUB: &str = include_str!("../tests/data/cosign-keys_test-pemsigstorekey.pub");
    const COSIGN_TEST_SEC1_KEY: &str =
        include_str!("../tests/data/cosign-keys_test-pemcosigneckey.key");

    fn read(text: &str, password: Option<&[u8]>) -> Result<PrivateKey, SignatureError> {
        PrivateKey::from_pem_with_password(text, "cosign.key", password)
    }

    #[track_caller]
    fn error(result: Result<PrivateKey, SignatureError>) -> SignatureError {
        match result {
            Ok(key) => panic!("read, as {}", key.public_key().fingerprint()),
            Err(e) => e,
        }
    }

    #[test]
    fn cosign_encrypted_key_gives_the_published_public_key() {
        // sigstore-rs's cosign.key (the 1.x label) and the cosign.pub
        // published next to it; the password is empty, which is a password.
        let key = read(SIGSTORE_RS_KEY, Some(b"")).unwrap_or_else(|e| panic!("{e}"));
        let published = PublicKey::from_pem(SIGSTORE_RS_PUB, "cosign.pub").unwrap();
        assert_eq!(key.public_key().to_pem(), published.to_pem());
        assert_eq!(key.public_key().fingerprint(), published.fingerprint());
        // What it signs, the published key verifies.
        let layer = signed(&key, DIGEST);
        assert!(verify_signatures("r", &[layer], &published, DIGEST).is_ok());

        let err = error(read(SIGSTORE_RS_KEY, Some(b"hunter2-not-it")));
        assert!(
            matches!(&err, SignatureError::WrongPassword { what } if what == "cosign.key"),
            "{err}"
        );
        let shown = err.to_string();
        assert!(
            shown.starts_with("wrong password for cosign.key"),
            "{shown}"
        );
        assert!(
            !shown.contains("hunter2"),
            "the password is never shown: {shown}"
        );

        assert!(matches!(
            error(read(SIGSTORE_RS_KEY, None)),
            SignatureError::PasswordNeeded { what } if what == "cosign.key"
        ));
        assert!(matches!(
            PrivateKey::from_pem(SIGSTORE_RS_KEY, "cosign.key").err(),
            Some(SignatureError::PasswordNeeded { .. })
        ));
    }

    #[test]
    fn cosign_encrypted_keys_of_both_labels_and_scrypt_costs() {
        // cosign's own test key (the current label) with its test password.
        let key = read(COSIGN_TEST_KEY, Some(b"hello")).unwrap_or_else(|e| panic!("{e}"));
        let derived = PublicKey::from_pem(COSIGN_TEST_PUB, "cosign.pub").unwrap();
        assert_eq!(key.public_key().fingerprint(), derived.fingerprint());
        assert!(matches!(
            error(read(COSIGN_TEST_KEY, Some(b"Hello"))),
            SignatureError::WrongPassword { .. }
        ));
        assert!(matches!(
            error(read(COSIGN_TEST_KEY, Some(b""))),
            SignatureError::WrongPassword { .. }
        ));
        // N=65536, written by a newer cosign, empty password.
        assert!(read(SIGSTORE_RS_N65536_KEY, Some(b"")).is_ok());
        assert!(matches!(
            error(read(SIGSTORE_RS_N65536_KEY, Some(b"hello"))),
            SignatureError::WrongPassword { .. }
        ));
    }

    #[test]
    fn a_decrypted_key_that_is_not_pkcs8_p256_is_named() {
        // Decrypts (the password is right) to SEC1: cosign refuses it too.
        let err = error(read(COSIGN_TEST_SEC1_KEY, Some(b"hello"))).to_string();
        assert!(
            err.starts_with("cosign.key is not a readable cosign encrypted key")
                && err.contains("not PKCS#8 DER"),
            "{err}"
        );
        assert_eq!(
            pkcs8_algorithm(
                BASE64
                    .decode("MC4CAQAwBQYDK2VwBCIEIALEbo1EFnWFqBK/wC+hhypG/8hXEerwdNetAoFoFVdv")
                    .unwrap()
                    .as_slice()
            )
            .as_deref(),
            Some("an Ed25519 key")
        );
    }

    #[test]
    fn malformed_encrypted_keys_are_named_before_a_password_is_asked_for() {
        let pem = |json: &str| {
            format!(
                "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{}\n\
                 -----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
                BASE64.encode(json)
            )
        };
        for (text, expected) in [
            (
                "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nxx!\n\
                 -----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
                    .to_string(),
                "the PEM body is not base64",
            ),
            (pem("{\"kdf\": 1}"), "not cosign's JSON key document"),
            (
                pem(
                    r#"{"kdf":{"name":"pbkdf2","params":{"N":32768,"r":8,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#,
                ),
                "unknown key derivation function `pbkdf2`",
            ),
            (
                pem(
                    r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":""},"cipher":{"name":"aes","nonce":""},"ciphertext":""}"#,
                ),
                "unknown cipher `aes`",
            ),
            (
                pem(
                    r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"@@"},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":""}"#,
                ),
                "`kdf.salt` is not base64",
            ),
        ] {
            // The same answer with or without a password.
            for password in [None, Some(b"hello".as_slice())] {
                let err = error(read(&text, password));
                assert!(
                    matches!(&err, SignatureError::BadEncryptedKey { what, reason }
                        if what == "cosign.key" && reason.contains(expected)),
                    "{expected}: {err}"
                );
                assert!(
                    err.to_string()
                        .starts_with("cosign.key is not a readable cosign encrypted key: "),
                    "{err}"
                );
            }
        }
    }
}
