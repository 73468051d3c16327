//! sigstore signatures beyond cosign public keys: bundles attached as OCI
//! referrers (cosign 3's default), and keyless signatures (a certificate
//! identity and OIDC issuer against a trusted root) in both forms, against
//! Debian's docker-registry, which has no referrers API, so bundles are
//! found through the referrers tag schema. The Sigstore instance (Fulcio
//! CA, Rekor and CT log keys, trusted_root.json) is made per test by
//! `test_support::sigstore`; compatibility with what real cosign, Fulcio
//! and Rekor produce is held by the oci crate's test on public-good data.
//! Every way a keyless signature can be wrong must fail: another identity,
//! another issuer, a CA outside the trusted root, a tampered payload, a
//! signature for another digest, no signature at all.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use test_support::sigstore::{Identity, SigstoreInstance};
use test_support::{Artifact, Registry, RegistryApi, fixtures, sha256_digest};

use crate::{Sandbox, stderr};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const ISSUER: &str = "https://issuer.test";
const SUBJECT: &str = "dev@example.com";

/// Pushes the hello component as `repo:v1`; returns (reference, manifest digest).
fn push_plugin(registry: &Registry, repo: &str) -> (String, String) {
    push_fixture(registry, repo, "hello")
}

/// As [`push_plugin`] with another fixture: another manifest digest (the
/// same fixture in two repositories has the same digest).
fn push_fixture(registry: &Registry, repo: &str, fixture: &str) -> (String, String) {
    let wasm = std::fs::read(fixtures().p2(fixture)).expect("fixture");
    let digest = Artifact::wasm(wasm, "application/wasm").push(registry, &format!("{repo}:v1"));
    (format!("{}/{repo}:v1", registry.host()), digest)
}

/// Attaches `bundle` to `subject` as cosign 3 does: a referrer manifest
/// (empty config, one bundle layer), listed in the referrers tag index.
fn attach_bundle(api: &RegistryApi, repo: &str, subject: &str, bundle: &str) {
    let layer = api.upload_blob(repo, bundle.as_bytes());
    let config = api.upload_blob(repo, b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_TYPE,
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2 },
        "layers": [{ "mediaType": BUNDLE_TYPE, "digest": layer, "size": bundle.len() }],
        "subject": { "mediaType": OCI_MANIFEST, "digest": subject, "size": 0 },
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
        },
    }))
    .expect("JSON");
    let digest = sha256_digest(&manifest);
    api.put_manifest(repo, &digest, OCI_MANIFEST, &manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": manifest.len(),
            "artifactType": BUNDLE_TYPE,
        }],
    }))
    .expect("JSON");
    api.put_manifest(repo, &subject.replacen(':', "-", 1), OCI_INDEX, &index);
}

/// Stores a keyless `.sig` layer for `subject`: `payload` with `annotations`.
fn attach_legacy(api: &RegistryApi, repo: &str, subject: &str, payload: &[u8], annotations: Value) {
    let layer = api.upload_blob(repo, payload);
    let config = api.upload_blob(repo, b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2 },
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": layer,
            "size": payload.len(),
            "annotations": annotations,
        }],
    }))
    .expect("JSON");
    let tag = format!("{}.sig", subject.replacen(':', "-", 1));
    api.put_manifest(repo, &tag, OCI_MANIFEST, &manifest);
}

fn simple_signing(repo: &str, digest: &str) -> Vec<u8> {
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{repo}\"}},\"image\":\
         {{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image \
         signature\"}},\"optional\":null}}"
    )
    .into_bytes()
}

/// A fresh P-256 key pair by openssl: (PKCS#8 private key PEM, public key path).
fn key_pair(dir: &Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let openssl = |args: &[&std::ffi::OsStr]| {
        let output = Command::new(test_support::require_tool("openssl"))
            .args(args)
            .output()
            .expect("running openssl");
        assert!(output.status.success(), "{}", stderr(&output));
    };
    openssl(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "EC".as_ref(),
        "-pkeyopt".as_ref(),
        "ec_paramgen_curve:P-256".as_ref(),
        "-out".as_ref(),
        key.as_os_str(),
    ]);
    openssl(&[
        "pkey".as_ref(),
        "-pubout".as_ref(),
        "-in".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        public.as_os_str(),
    ]);
    (
        std::fs::read_to_string(&key).expect("key"),
        public.display().to_string(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test file");
    path.display().to_string()
}

/// `verify REF` keyless with `subject` (exact) and `issuer`.
fn keyless_args<'a>(
    reference: &'a str,
    subject: &'a str,
    issuer: &'a str,
    root: &'a str,
) -> Vec<&'a str> {
    vec![
        "verify",
        reference,
        "--certificate-identity",
        subject,
        "--certificate-oidc-issuer",
        issuer,
        "--trusted-root",
        root,
    ]
}

fn repo_of(reference: &str) -> &str {
    reference.trim_end_matches(":v1")
}

#[test]
fn sigstore_bundle_signed_by_key_is_found_through_the_referrers_tag() {
    let registry = Registry::start();
    let api = RegistryApi::new(&registry);
    let (reference, digest) = push_plugin(&registry, "plugins/bundled");
    let (other, other_digest) = push_fixture(&registry, "plugins/other", "exit-code");
    let instance = SigstoreInstance::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let (key_pem, public) = key_pair(dir.path(), "cosign");

    // This registry has no referrers API: the tag schema is what is read.
    let status = Command::new(test_support::require_tool("curl"))
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!(
            "http://{}/v2/plugins/bundled/referrers/{digest}",
            registry.host()
        ))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&status.stdout), "404");

    let bundle = instance.bundle_with_key(&key_pem, repo_of(&reference), &digest);
    attach_bundle(&api, "plugins/bundled", &digest, &bundle);
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["verify", &reference, "--key", &public]);
    assert!(
        out.starts_with(&format!(
            "verified {}@{digest}: signed by key SHA256:",
            repo_of(&reference)
        )) && out.contains("(sigstore bundle; 1 signature(s) on the registry)"),
        "{out}"
    );

    // Another key; the same bundle attached to another manifest (its
    // statement names the first digest).
    let (_, wrong) = key_pair(dir.path(), "wrong");
    let err = sandbox.fails(&["verify", &reference, "--key", &wrong]);
    assert!(
        err.contains("none valid for key") && err.contains("sigstore bundle 1"),
        "{err}"
    );
    attach_bundle(&api, "plugins/other", &other_digest, &bundle);
    let err = sandbox.fails(&["verify", &other, "--key", &public]);
    assert!(err.contains("none valid for key"), "{err}");
    assert!(other_digest != digest);
}

/// One plugin per case, in its own repository: (reference, digest).
struct Case {
    reference: String,
    digest: String,
    repo: String,
}

fn case(registry: &Registry, name: &str) -> Case {
    let repo = format!("plugins/{name}");
    // "good" and "legacy" hold hello; the others another fixture, so that a
    // signature of the good digest is one of another digest there.
    let fixture = if matches!(name, "good" | "legacy") {
        "hello"
    } else {
        "exit-code"
    };
    let (reference, digest) = push_fixture(registry, &repo, fixture);
    Case {
        reference,
        digest,
        repo,
    }
}

struct Keyless {
    instance: SigstoreInstance,
    identity: Identity,
    root: String,
    _dir: tempfile::TempDir,
}

fn keyless_setup() -> Keyless {
    let instance = SigstoreInstance::new();
    let identity = instance.issue(SUBJECT, ISSUER);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = write(
        dir.path(),
        "trusted_root.json",
        &instance.trusted_root_json(),
    );
    Keyless {
        instance,
        identity,
        root,
        _dir: dir,
    }
}

#[test]
fn keyless_bundle_passes_only_for_its_identity_issuer_ca_and_digest() {
    let registry = Registry::start();
    let api = RegistryApi::new(&registry);
    let k = keyless_setup();
    let sandbox = Sandbox::new();

    let good = case(&registry, "good");
    let bundle = k
        .instance
        .bundle_keyless(&k.identity, repo_of(&good.reference), &good.digest);
    attach_bundle(&api, &good.repo, &good.digest, &bundle);
    let out = sandbox.ok(&keyless_args(&good.reference, SUBJECT, ISSUER, &k.root));
    assert_eq!(
        out.trim(),
        format!(
            "verified {}@{}: signed by {SUBJECT} (issuer {ISSUER}) (sigstore bundle; 1 \
             signature(s) on the registry)",
            repo_of(&good.reference),
            good.digest
        )
    );
    // The regexp form.
    sandbox.ok(&[
        "verify",
        &good.reference,
        "--certificate-identity-regexp",
        "^dev@example\\.com$",
        "--certificate-oidc-issuer",
        ISSUER,
        "--trusted-root",
        &k.root,
    ]);

    // Another identity, by name and by regexp; another issuer.
    let err = sandbox.fails(&keyless_args(
        &good.reference,
        "eve@example.com",
        ISSUER,
        &k.root,
    ));
    assert!(
        err.contains("`dev@example.com`, which does not match eve@example.com"),
        "{err}"
    );
    let err = sandbox.fails(&[
        "verify",
        &good.reference,
        "--certificate-identity-regexp",
        "^ops@",
        "--certificate-oidc-issuer",
        ISSUER,
        "--trusted-root",
        &k.root,
    ]);
    assert!(err.contains("does not match /^ops@/"), "{err}");
    let err = sandbox.fails(&keyless_args(
        &good.reference,
        SUBJECT,
        "https://other.test",
        &k.root,
    ));
    assert!(
        err.contains("issuer mismatch: expected https://other.test"),
        "{err}"
    );

    // A certificate from a CA that is not in the trusted root.
    let rogue_ca = case(&registry, "rogue");
    let rogue = k.instance.with_rogue_ca();
    let bundle = rogue.bundle_keyless(
        &rogue.issue(SUBJECT, ISSUER),
        repo_of(&rogue_ca.reference),
        &rogue_ca.digest,
    );
    attach_bundle(&api, &rogue_ca.repo, &rogue_ca.digest, &bundle);
    let err = sandbox.fails(&keyless_args(&rogue_ca.reference, SUBJECT, ISSUER, &k.root));
    assert!(err.contains("certificate chain is invalid"), "{err}");

    // A tampered payload: the statement's subject rewritten, signature kept.
    let tampered = case(&registry, "tampered");
    let bundle = k
        .instance
        .bundle_keyless(&k.identity, repo_of(&tampered.reference), &good.digest);
    let mut value: Value = serde_json::from_str(&bundle).expect("JSON");
    let payload = value["dsseEnvelope"]["payload"].as_str().expect("payload");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let statement = String::from_utf8(b64.decode(payload).expect("base64")).expect("UTF-8");
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let forged = statement.replace(&hex(&good.digest), &hex(&tampered.digest));
    assert_ne!(forged, statement);
    value["dsseEnvelope"]["payload"] = Value::from(b64.encode(forged));
    attach_bundle(&api, &tampered.repo, &tampered.digest, &value.to_string());
    let err = sandbox.fails(&keyless_args(&tampered.reference, SUBJECT, ISSUER, &k.root));
    assert!(err.contains("none valid for"), "{err}");

    // A valid signature of another digest, attached here.
    let misdirected = case(&registry, "misdirected");
    let bundle = k.instance.bundle_keyless(
        &k.identity,
        repo_of(&misdirected.reference),
        "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
    );
    attach_bundle(&api, &misdirected.repo, &misdirected.digest, &bundle);
    let err = sandbox.fails(&keyless_args(
        &misdirected.reference,
        SUBJECT,
        ISSUER,
        &k.root,
    ));
    assert!(err.contains("artifact mismatch"), "{err}");

    // Unsigned.
    let unsigned = case(&registry, "unsigned");
    let err = sandbox.fails(&keyless_args(&unsigned.reference, SUBJECT, ISSUER, &k.root));
    assert!(err.contains("is not signed"), "{err}");
}

#[test]
fn keyless_sig_tag_passes_only_for_its_identity_issuer_ca_and_digest() {
    let registry = Registry::start();
    let api = RegistryApi::new(&registry);
    let k = keyless_setup();
    let sandbox = Sandbox::new();

    let good = case(&registry, "legacy");
    let payload = simple_signing(repo_of(&good.reference), &good.digest);
    let signed = k.instance.sign_legacy(&k.identity, &payload);
    attach_legacy(
        &api,
        &good.repo,
        &good.digest,
        &payload,
        signed.annotations(),
    );
    let out = sandbox.ok(&keyless_args(&good.reference, SUBJECT, ISSUER, &k.root));
    assert!(
        out.contains(&format!(
            "signed by {SUBJECT} (issuer {ISSUER}) (cosign .sig tag; 1 signature(s)"
        )),
        "{out}"
    );
    // Another identity; another issuer.
    let err = sandbox.fails(&keyless_args(
        &good.reference,
        "eve@example.com",
        ISSUER,
        &k.root,
    ));
    assert!(err.contains("does not match eve@example.com"), "{err}");
    let err = sandbox.fails(&keyless_args(
        &good.reference,
        SUBJECT,
        "https://other.test",
        &k.root,
    ));
    assert!(err.contains("issuer mismatch"), "{err}");

    // A CA outside the trusted root.
    let rogue_case = case(&registry, "legacy-rogue");
    let rogue = k.instance.with_rogue_ca();
    let payload = simple_signing(repo_of(&rogue_case.reference), &rogue_case.digest);
    let signed = rogue.sign_legacy(&rogue.issue(SUBJECT, ISSUER), &payload);
    attach_legacy(
        &api,
        &rogue_case.repo,
        &rogue_case.digest,
        &payload,
        signed.annotations(),
    );
    let err = sandbox.fails(&keyless_args(
        &rogue_case.reference,
        SUBJECT,
        ISSUER,
        &k.root,
    ));
    assert!(err.contains("certificate chain is invalid"), "{err}");

    // A tampered payload under the original signature and log entry.
    let tampered = case(&registry, "legacy-tampered");
    let payload = simple_signing(repo_of(&tampered.reference), &good.digest);
    let signed = k.instance.sign_legacy(&k.identity, &payload);
    let forged = simple_signing(repo_of(&tampered.reference), &tampered.digest);
    attach_legacy(
        &api,
        &tampered.repo,
        &tampered.digest,
        &forged,
        signed.annotations(),
    );
    let err = sandbox.fails(&keyless_args(&tampered.reference, SUBJECT, ISSUER, &k.root));
    assert!(err.contains("none valid for"), "{err}");

    // A valid signature whose payload names another digest.
    let misdirected = case(&registry, "legacy-misdirected");
    let payload = simple_signing(repo_of(&misdirected.reference), &good.digest);
    let signed = k.instance.sign_legacy(&k.identity, &payload);
    attach_legacy(
        &api,
        &misdirected.repo,
        &misdirected.digest,
        &payload,
        signed.annotations(),
    );
    let err = sandbox.fails(&keyless_args(
        &misdirected.reference,
        SUBJECT,
        ISSUER,
        &k.root,
    ));
    assert!(
        err.contains("the signature is for another artifact"),
        "{err}"
    );

    // Unsigned.
    let unsigned = case(&registry, "legacy-unsigned");
    let err = sandbox.fails(&keyless_args(&unsigned.reference, SUBJECT, ISSUER, &k.root));
    assert!(err.contains("is not signed"), "{err}");
}

#[test]
fn keyless_bad_input_is_refused_before_anything_is_written() {
    let registry = Registry::start();
    let good = case(&registry, "input");
    let k = keyless_setup();
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let dir = tempfile::tempdir().expect("temp dir");
    let not_root = write(
        dir.path(),
        "bundle.json",
        r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
    );
    let bad: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--certificate-identity",
                SUBJECT,
                "--certificate-oidc-issuer",
                ISSUER,
                "--trusted-root",
                &not_root,
            ],
            "is not a Sigstore trusted root",
        ),
        (
            vec!["--certificate-identity", SUBJECT, "--trusted-root", &k.root],
            "needs the OIDC issuer",
        ),
        (
            vec![
                "--certificate-identity-regexp",
                "(unclosed",
                "--certificate-oidc-issuer",
                ISSUER,
                "--trusted-root",
                &k.root,
            ],
            "is not a valid regular expression",
        ),
        (
            vec![
                "--certificate-identity",
                SUBJECT,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "needs a trusted root",
        ),
        (vec!["--trusted-root", &k.root], "nothing to verify against"),
        (
            vec![
                "--certificate-oidc-issuer",
                ISSUER,
                "--trusted-root",
                &k.root,
            ],
            "needs the signer's identity",
        ),
    ];
    for (flags, expected) in &bad {
        let mut verify = vec!["verify", good.reference.as_str()];
        verify.extend(flags);
        let err = sandbox.fails(&verify);
        assert!(err.contains(expected), "{flags:?}: {err}");
        let mut pull = vec!["pull", good.reference.as_str()];
        pull.extend(flags);
        let err = sandbox.fails(&pull);
        assert!(err.contains(expected), "pull {flags:?}: {err}");
    }
    let err = sandbox.fails(&["verify", &good.reference]);
    assert!(err.contains("nothing to verify against"), "{err}");
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn pull_with_a_keyless_identity_installs_only_what_it_signed() {
    let registry = Registry::start();
    let api = RegistryApi::new(&registry);
    let k = keyless_setup();
    let signed = case(&registry, "hello");
    let bundle = k
        .instance
        .bundle_keyless(&k.identity, repo_of(&signed.reference), &signed.digest);
    attach_bundle(&api, &signed.repo, &signed.digest, &bundle);
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let pull = |reference: &str, subject: &str| -> Vec<String> {
        [
            "pull",
            reference,
            "--certificate-identity",
            subject,
            "--certificate-oidc-issuer",
            ISSUER,
            "--trusted-root",
            &k.root,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = pull(&signed.reference, "eve@example.com");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = sandbox.fails(&args);
    assert!(err.contains("nothing was installed"), "{err}");
    assert_eq!(sandbox.snapshot(), before);

    let args = pull(&signed.reference, SUBJECT);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = sandbox.krew(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "signature verified: {}@{} is signed by {SUBJECT} (issuer {ISSUER}) (sigstore bundle)",
            repo_of(&signed.reference),
            signed.digest
        )),
        "{}",
        stderr(&output)
    );
}
