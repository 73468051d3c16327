//! OCI registry access for krew-wasm: references, media types, credentials and
//! streaming pulls of the single wasm layer of a plugin artifact.
//!
//! The pure parts come first and do no I/O:
//! - [`PluginReference`] parses `registry/repo:tag` and `registry/repo@sha256:…`
//!   (optionally prefixed by `registry://` or `oci://`) and always keeps the
//!   registry explicit.
//! - [`manifest`] parses OCI image manifests, Docker v2 manifests and image
//!   indexes, and picks the one wasm layer (three accepted media types) or the
//!   wasm entry of an index.
//!
//! The transport builds on them: a [`RegistryClient`] (over `oci-client`)
//! finds credentials the way docker and podman store them
//! ([`credentials`]), resolves a reference to a [`ResolvedPlugin`], and
//! streams its layer while checking the wasm magic, the size and the digest,
//! so that nothing unverified ever reaches the caller's writer un-flagged.
//!
//! [`push`] is the other direction: it checks a binary (wasm magic, wasip1
//! module or wasip2 component, its imports and exports) and writes the CNCF
//! Wasm OCI artifact (config, one `application/wasm` layer, annotations
//! including the plugin's permission declaration), which
//! [`RegistryClient::push`] uploads.
//!
//! [`signature`] signs and verifies cosign signatures: by key or keyless
//! (certificate identity against a trusted root), in the `sha256-<hex>.sig`
//! tag form or as sigstore bundles attached as OCI referrers. It reads
//! signing keys in PEM, cosign's password-encrypted `cosign.key` included
//! (the password is the caller's to supply).
//!
//! [`artifact`] pushes and fetches small single-layer artifacts of a type
//! the caller names (plugin indexes), whole and digest-checked.
//!
//! This crate knows nothing of wasmtime or of the on-disk store.

pub mod artifact;
pub mod client;
pub mod credentials;
pub mod digest;
pub mod manifest;
pub mod push;
pub mod reference;
pub mod signature;

pub use client::{OciError, RegistryClient, RegistryOptions, ResolvedPlugin, WASM_MAGIC};
pub use manifest::{Descriptor, Manifest, ManifestError};
pub use push::{PushArtifact, PushError, PushMetadata, WasmOs};
pub use reference::{PluginReference, ReferenceError};
pub use signature::{
    CertificateIdentity, PrivateKey, PublicKey, SignatureError, SignatureForm, Signer,
    SubjectMatcher, TrustedRoot, TrustedSigners, Verification, VerifiedSignature,
};
