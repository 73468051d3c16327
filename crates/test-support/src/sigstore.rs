//! A throw-away Sigstore instance for keyless tests: a Fulcio-like CA that
//! issues short code-signing leaves with the Fulcio OIDC-issuer extension,
//! an email or URI SAN and an embedded SCT from a CT-log key; a Rekor-like
//! key that signs entry timestamps (SETs) and checkpoints over one-leaf
//! trees; and the `trusted_root.json` naming all three. From these it makes
//! what cosign writes: keyless `.sig` layer annotations (certificate, chain,
//! Rekor bundle) and sigstore bundles (DSSE over cosign's in-toto signing
//! statement), by certificate or by key.
//!
//! Everything is built from the specifications (RFC 6962 SCTs, Rekor's
//! hashedrekord and dsse entry schemas, the signed-note checkpoint format,
//! the bundle and trusted-root protobuf JSON), so that verification code is
//! held to the format rather than to this generator: the e2e tests also
//! verify real public Sigstore data.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// cosign's signing predicate (`cosign sign --new-bundle-format`).
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
const FULCIO_ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];
const SCT_LIST: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];

fn random_key() -> SigningKey {
    SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng)
}

fn spki_der(key: &SigningKey) -> Vec<u8> {
    key.verifying_key()
        .to_public_key_der()
        .expect("encoding a public key")
        .as_bytes()
        .to_vec()
}

fn public_pem(key: &SigningKey) -> String {
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("encoding a public key")
}

fn sign_der(key: &SigningKey, data: &[u8]) -> Vec<u8> {
    let signature: Signature = key.sign(data);
    signature.to_der().as_bytes().to_vec()
}

fn rcgen_key(key: &SigningKey) -> KeyPair {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("encoding a private key");
    KeyPair::from_pem(&pem).expect("rcgen reads the key")
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The first element of a DER SEQUENCE (a certificate's TBSCertificate), whole.
fn first_element(der: &[u8]) -> &[u8] {
    fn header(bytes: &[u8]) -> (usize, usize) {
        let first = bytes[1];
        if first < 0x80 {
            (2, first as usize)
        } else {
            let n = (first & 0x7f) as usize;
            let len = bytes[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (2 + n, len)
        }
    }
    let (outer, _) = header(der);
    let inner = &der[outer..];
    let (h, len) = header(inner);
    &inner[..h + len]
}

fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn der_utf8_string(value: &str) -> Vec<u8> {
    let mut out = der_octet_string(value.as_bytes());
    out[0] = 0x0c;
    out
}

/// A Fulcio-like certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
    spki: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = random_key();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "krew-wasm tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let keypair = rcgen_key(&key);
        let cert = params.self_signed(&keypair).expect("self-signing the CA");
        Self {
            der: cert.der().to_vec(),
            spki: spki_der(&key),
            issuer: Issuer::new(params, keypair),
        }
    }
}

/// A signer's certificate and key, as Fulcio would issue them.
pub struct Identity {
    key: SigningKey,
    /// The leaf certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The leaf certificate, PEM.
    pub certificate_pem: String,
    /// The issuing CA, PEM (cosign's `chain` annotation).
    pub chain_pem: String,
}

/// What cosign attaches to a keyless `.sig` layer.
pub struct LegacyKeyless {
    /// `dev.cosignproject.cosign/signature`: base64 DER ECDSA over the payload.
    pub signature: String,
    /// `dev.sigstore.cosign/certificate`.
    pub certificate: String,
    /// `dev.sigstore.cosign/chain`.
    pub chain: String,
    /// `dev.sigstore.cosign/bundle`: the Rekor SET and entry.
    pub rekor_bundle: String,
}

impl LegacyKeyless {
    /// The layer annotations, keyed by cosign's names.
    pub fn annotations(&self) -> Value {
        json!({
            "dev.cosignproject.cosign/signature": self.signature,
            "dev.sigstore.cosign/certificate": self.certificate,
            "dev.sigstore.cosign/chain": self.chain,
            "dev.sigstore.cosign/bundle": self.rekor_bundle,
        })
    }
}

/// A Fulcio CA, a Rekor log key and a CT log key, made for one test.
pub struct SigstoreInstance {
    ca: Ca,
    rekor: SigningKey,
    ctlog: SigningKey,
}

impl Default for SigstoreInstance {
    fn default() -> Self {
        Self::new()
    }
}

impl SigstoreInstance {
    pub fn new() -> Self {
        Self {
            ca: Ca::new("krew-wasm test Fulcio"),
            rekor: random_key(),
            ctlog: random_key(),
        }
    }

    /// The same Rekor and CT log keys with another CA: what it issues does
    /// not chain to this instance's trusted root.
    pub fn with_rogue_ca(&self) -> Self {
        Self {
            ca: Ca::new("krew-wasm rogue CA"),
            rekor: self.rekor.clone(),
            ctlog: self.ctlog.clone(),
        }
    }

    fn rekor_log_id(&self) -> [u8; 32] {
        sha256(&spki_der(&self.rekor))
    }

    /// `trusted_root.json` for this instance (Sigstore's format).
    pub fn trusted_root_json(&self) -> String {
        let log = |key: &SigningKey, url: &str| {
            json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": BASE64.encode(spki_der(key)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": { "start": "2020-01-01T00:00:00Z" },
                },
                "logId": { "keyId": BASE64.encode(sha256(&spki_der(key))) },
            })
        };
        serde_json::to_string_pretty(&json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(&self.rekor, "https://rekor.test")],
            "certificateAuthorities": [{
                "subject": { "organization": "krew-wasm tests", "commonName": "krew-wasm test Fulcio" },
                "uri": "https://fulcio.test",
                "certChain": { "certificates": [{ "rawBytes": BASE64.encode(&self.ca.der) }] },
                "validFor": { "start": "2020-01-01T00:00:00Z" },
            }],
            "ctlogs": [log(&self.ctlog, "https://ctfe.test")],
            "timestampAuthorities": [],
        }))
        .expect("serializing the trusted root")
    }

    /// A leaf for `subject` (an email address, or a URI when it has `://`)
    /// vouched for by the OIDC `issuer`, with an SCT from the CT log.
    pub fn issue(&self, subject: &str, issuer: &str) -> Identity {
        let key = random_key();
        let keypair = rcgen_key(&key);
        let params = |sct: Option<Vec<u8>>| {
            let mut params = CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.serial_number = Some(SerialNumber::from_slice(&[0x42, 0x17, 0x01]));
            params.not_before = rcgen::date_time_ymd(2025, 1, 1);
            params.not_after = rcgen::date_time_ymd(2099, 1, 1);
            let san = rcgen::string::Ia5String::try_from(subject.to_string()).expect("ASCII SAN");
            params.subject_alt_names = vec![if subject.contains("://") {
                SanType::URI(san)
            } else {
                SanType::Rfc822Name(san)
            }];
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
            params.custom_extensions = vec![CustomExtension::from_oid_content(
                FULCIO_ISSUER_V2,
                der_utf8_string(issuer),
            )];
            if let Some(sct) = sct {
                params
                    .custom_extensions
                    .push(CustomExtension::from_oid_content(SCT_LIST, sct));
            }
            params
        };
        // RFC 6962: the log signs the precertificate's TBS (the final
        // certificate without the SCT extension) and the issuer's key hash.
        let precert = params(None)
            .signed_by(&keypair, &self.ca.issuer)
            .expect("issuing the precertificate");
        let tbs = first_element(precert.der()).to_vec();
        let timestamp: u64 = 1_735_689_600_000; // 2025-01-01, in ms
        let mut signed = vec![0u8, 0u8];
        signed.extend(timestamp.to_be_bytes());
        signed.extend([0, 1]); // precert_entry
        signed.extend(sha256(&self.ca.spki));
        signed.extend(&(tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend(&tbs);
        signed.extend([0, 0]); // no extensions
        let signature = sign_der(&self.ctlog, &signed);
        let mut sct = vec![0u8];
        sct.extend(sha256(&spki_der(&self.ctlog)));
        sct.extend(timestamp.to_be_bytes());
        sct.extend([0, 0]);
        sct.extend([4, 3]); // sha256, ecdsa
        sct.extend((signature.len() as u16).to_be_bytes());
        sct.extend(&signature);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(&sct);
        let cert = params(Some(der_octet_string(&list)))
            .signed_by(&keypair, &self.ca.issuer)
            .expect("issuing the certificate");
        Identity {
            key,
            certificate_der: cert.der().to_vec(),
            certificate_pem: cert.pem(),
            chain_pem: pem("CERTIFICATE", &self.ca.der),
        }
    }

    /// A Rekor v1 entry for `body`: SET, and a one-leaf inclusion proof with
    /// a signed checkpoint. (tlog entry JSON, Rekor bundle payload JSON)
    fn log(&self, body: &[u8], kind: &str) -> (Value, Value) {
        let body_b64 = BASE64.encode(body);
        let log_id = self.rekor_log_id();
        let integrated_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
            - 60;
        let log_index = 0u64;
        // JCS: keys sorted, no spaces.
        let set_payload = format!(
            r#"{{"body":"{body_b64}","integratedTime":{integrated_time},"logID":"{}","logIndex":{log_index}}}"#,
            hex::encode(log_id)
        );
        let set = BASE64.encode(sign_der(&self.rekor, set_payload.as_bytes()));
        let mut leaf = vec![0u8];
        leaf.extend(body);
        let root = sha256(&leaf);
        let note = format!("rekor.test - 1\n1\n{}\n", BASE64.encode(root));
        let mut note_signature = log_id[..4].to_vec();
        note_signature.extend(sign_der(&self.rekor, note.as_bytes()));
        let checkpoint = format!(
            "{note}\n\u{2014} rekor.test {}\n",
            BASE64.encode(note_signature)
        );
        let entry = json!({
            "logIndex": log_index.to_string(),
            "logId": { "keyId": BASE64.encode(log_id) },
            "kindVersion": { "kind": kind, "version": "0.0.1" },
            "integratedTime": integrated_time.to_string(),
            "inclusionPromise": { "signedEntryTimestamp": set },
            "inclusionProof": {
                "logIndex": log_index.to_string(),
                "rootHash": BASE64.encode(root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": { "envelope": checkpoint },
            },
            "canonicalizedBody": body_b64,
        });
        let rekor_bundle = json!({
            "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": body_b64,
                "integratedTime": integrated_time,
                "logIndex": log_index,
                "logID": hex::encode(log_id),
            },
        });
        (entry, rekor_bundle)
    }

    /// What `cosign sign` (keyless, `.sig` tag form) attaches to the layer
    /// holding `payload`: a signature by the identity's key, its
    /// certificate and chain, and a hashedrekord entry logged with a SET.
    pub fn sign_legacy(&self, identity: &Identity, payload: &[u8]) -> LegacyKeyless {
        let signature = BASE64.encode(sign_der(&identity.key, payload));
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": { "hash": { "algorithm": "sha256", "value": hex::encode(sha256(payload)) } },
                "signature": {
                    "content": signature,
                    "publicKey": { "content": BASE64.encode(&identity.certificate_pem) },
                },
            },
        });
        let body = serde_json::to_vec(&body).expect("serializing the entry");
        let (_, rekor_bundle) = self.log(&body, "hashedrekord");
        LegacyKeyless {
            signature,
            certificate: identity.certificate_pem.clone(),
            chain: identity.chain_pem.clone(),
            rekor_bundle: rekor_bundle.to_string(),
        }
    }

    fn dsse(
        &self,
        key: &SigningKey,
        verifier_pem: &str,
        docker_reference: &str,
        digest: &str,
    ) -> (Value, Value) {
        let hex_digest = digest.strip_prefix("sha256:").unwrap_or(digest);
        let statement = serde_json::to_vec(&json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{ "name": docker_reference, "digest": { "sha256": hex_digest } }],
            "predicateType": COSIGN_SIGN_PREDICATE,
            "predicate": {},
        }))
        .expect("serializing the statement");
        let payload_type = "application/vnd.in-toto+json";
        let mut pae = format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            statement.len()
        )
        .into_bytes();
        pae.extend(&statement);
        let signature = BASE64.encode(sign_der(key, &pae));
        let envelope = json!({
            "payload": BASE64.encode(&statement),
            "payloadType": payload_type,
            "signatures": [{ "sig": signature }],
        });
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hex::encode(sha256(&serde_json::to_vec(&envelope).expect("json"))),
                },
                "payloadHash": { "algorithm": "sha256", "value": hex::encode(sha256(&statement)) },
                "signatures": [{
                    "signature": signature,
                    "verifier": BASE64.encode(verifier_pem),
                }],
            },
        });
        let (entry, _) = self.log(&serde_json::to_vec(&body).expect("json"), "dsse");
        (envelope, entry)
    }

    /// What `cosign sign --new-bundle-format` (keyless) writes: a v0.3
    /// bundle, DSSE over cosign's signing statement for `digest`, logged.
    pub fn bundle_keyless(
        &self,
        identity: &Identity,
        docker_reference: &str,
        digest: &str,
    ) -> String {
        let (envelope, entry) = self.dsse(
            &identity.key,
            &identity.certificate_pem,
            docker_reference,
            digest,
        );
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": { "rawBytes": BASE64.encode(&identity.certificate_der) },
                "tlogEntries": [entry],
            },
            "dsseEnvelope": envelope,
        })
        .to_string()
    }

    /// The same, signed with a key (`cosign sign --key --new-bundle-format`):
    /// `key_pem` is a PKCS#8 P-256 private key.
    pub fn bundle_with_key(&self, key_pem: &str, docker_reference: &str, digest: &str) -> String {
        use p256::pkcs8::DecodePrivateKey as _;
        let key = SigningKey::from_pkcs8_pem(key_pem).expect("a PKCS#8 P-256 key");
        let (envelope, entry) = self.dsse(&key, &public_pem(&key), docker_reference, digest);
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "publicKey": { "hint": BASE64.encode(sha256(&spki_der(&key))) },
                "tlogEntries": [entry],
            },
            "dsseEnvelope": envelope,
        })
        .to_string()
    }
}
