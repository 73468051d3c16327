//! The transport: resolving a reference to its wasm layer and streaming that
//! layer, over oci-client.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;

use crate::credentials::{CredentialSource, credentials_for};
use crate::digest::{Sha256, sha256_digest};
use crate::manifest::{
    ACCEPTED_MANIFEST_TYPES, Descriptor, Manifest, ManifestError, select_wasm_layer,
    select_wasm_platform,
};
use crate::reference::PluginReference;

/// The first four bytes of every WebAssembly binary, module or component.
pub const WASM_MAGIC: [u8; 4] = *b"\0asm";

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Speak plain HTTP to every registry (otherwise only loopback registries
    /// fall back to it, after HTTPS fails to connect).
    pub plain_http: bool,
    /// Extra PEM CA certificates to trust.
    pub ca_files: Vec<PathBuf>,
}

/// Everything that can go wrong talking to a registry, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "registry {registry} refused access (401 Unauthorized){detail}: log in with \
         `docker login {registry}` (krew-wasm reads docker's config.json and podman's auth.json) \
         or check the stored username and password"
    )]
    Unauthorized { registry: String, detail: String },
    #[error("registry {registry} denied access to {reference} (403 Forbidden): {message}")]
    Denied {
        registry: String,
        reference: String,
        message: String,
    },
    #[error("{reference} was not found: {message}; check the repository and tag")]
    NotFound { reference: String, message: String },
    #[error("cannot reach registry {registry}: {cause}; check the host name and port{hint}")]
    Unreachable {
        registry: String,
        cause: String,
        hint: &'static str,
    },
    #[error(
        "the TLS certificate of registry {registry} is not trusted ({cause}); if it is signed by a \
         private CA, pass --ca-file CA.pem (or set KREW_WASM_CA_FILE)"
    )]
    UntrustedCertificate { registry: String, cause: String },
    #[error("{reference}: {source}")]
    Manifest {
        reference: String,
        #[source]
        source: ManifestError,
    },
    #[error(
        "the registry has the manifest of {reference} but not its wasm layer {digest} ({message}); \
         the artifact was pushed incompletely"
    )]
    MissingLayer {
        reference: String,
        digest: String,
        message: String,
    },
    #[error(
        "digest mismatch for {reference}: the manifest says {expected} but the registry served \
         content with digest {actual}; the registry or something between you and it altered \
         the plugin, so nothing was installed"
    )]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error(
        "the download of {reference} was cut short: got {received} of {expected} bytes{cause}; \
         nothing was installed, try again"
    )]
    Truncated {
        reference: String,
        received: u64,
        expected: u64,
        cause: String,
    },
    #[error(
        "the registry sent more than the {expected} bytes the manifest declares for {reference}; \
         nothing was installed"
    )]
    Oversized { reference: String, expected: u64 },
    #[error(
        "the layer of {reference} is not WebAssembly (it starts with {head:02x?}, not the wasm \
         magic \\0asm); nothing was installed"
    )]
    NotWasm { reference: String, head: Vec<u8> },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("cannot read CA certificate {path}: {source}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("writing the downloaded plugin: {0}")]
    Write(#[source] std::io::Error),
}

/// A reference resolved to the one wasm layer it holds.
#[derive(Debug, Clone)]
pub struct ResolvedPlugin {
    /// The reference as given.
    pub reference: PluginReference,
    /// Digest of the image manifest (after index resolution).
    pub manifest_digest: String,
    /// Media type of that manifest (OCI or Docker v2).
    pub manifest_media_type: String,
    /// The wasm layer.
    pub layer: Descriptor,
    /// The image manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A connection to one registry, with its credentials.
pub struct RegistryClient {
    pub(crate) client: oci_client::Client,
    pub(crate) auth: RegistryAuth,
    pub(crate) credential_source: CredentialSource,
    pub(crate) registry: String,
    pub(crate) options: RegistryOptions,
    pub(crate) using_plain_http: bool,
}

impl RegistryClient {
    /// Prepares a client for the registry of `reference`, with the credentials
    /// stored for it. No request is sent yet.
    pub fn new(reference: &PluginReference, options: &RegistryOptions) -> Result<Self, OciError> {
        let (auth, credential_source) =
            credentials_for(reference.registry()).map_err(OciError::Credentials)?;
        let registry = reference.registry().to_string();
        let client = build_client(&registry, options, options.plain_http)?;
        Ok(Self {
            client,
            auth,
            credential_source,
            registry,
            options: options.clone(),
            using_plain_http: options.plain_http,
        })
    }

    /// Where the credential in use came from.
    pub fn credential_source(&self) -> CredentialSource {
        self.credential_source
    }

    /// Resolves `reference` (following an image index to its wasm entry) to
    /// the manifest digest and the single wasm layer.
    pub async fn resolve(
        &mut self,
        reference: &PluginReference,
    ) -> Result<ResolvedPlugin, OciError> {
        let (body, digest) = self.fetch_manifest(reference).await?;
        let manifest_error = |source| OciError::Manifest {
            reference: reference.to_string(),
            source,
        };
        let (manifest, digest) = match Manifest::parse(&body, None).map_err(manifest_error)? {
            Manifest::Index { manifests } => {
                let entry = select_wasm_platform(&manifests).map_err(manifest_error)?;
                log::debug!("image index resolved to {}", entry.digest);
                let (body, digest) = self
                    .fetch_manifest(&reference.with_digest(&entry.digest))
                    .await?;
                match Manifest::parse(&body, None).map_err(manifest_error)? {
                    Manifest::Index { .. } => {
                        return Err(manifest_error(ManifestError::Unparsable(
                            "an image index entry points at another index".to_string(),
                        )));
                    }
                    image => (image, digest),
                }
            }
            image => (image, digest),
        };
        let Manifest::Image {
            media_type,
            layers,
            annotations,
        } = manifest
        else {
            unreachable!("indexes were resolved above");
        };
        let layer = select_wasm_layer(&layers).map_err(manifest_error)?;
        Ok(ResolvedPlugin {
            reference: reference.clone(),
            manifest_digest: digest,
            manifest_media_type: media_type,
            layer,
            annotations,
        })
    }

    /// A small blob (a signature payload, a bundle, an index document),
    /// read whole into memory: at most `size` bytes are kept, and the count
    /// and sha256 must match the descriptor. `shown` names it in messages.
    pub(crate) async fn fetch_blob_whole(
        &self,
        reference: &PluginReference,
        media_type: &str,
        digest: &str,
        size: u64,
        shown: &str,
    ) -> Result<Vec<u8>, OciError> {
        // Our own descriptor: no `urls`, so a manifest cannot send us to other hosts.
        let descriptor = OciDescriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(reference.as_oci(), &descriptor)
            .await
            .map_err(|e| self.translate(e, shown))?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| OciError::Registry {
                registry: self.registry.clone(),
                message: format!("reading {digest}: {e}"),
            })?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > size {
                break;
            }
        }
        let actual = sha256_digest(&bytes);
        if bytes.len() as u64 != size || actual != digest {
            return Err(OciError::DigestMismatch {
                reference: shown.to_string(),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streams the wasm layer into `out`, checking the wasm magic, the size and
    /// the digest as the bytes arrive. `progress` is called with the running
    /// byte count. On error, whatever was written to `out` must be discarded.
    pub async fn fetch_layer(
        &self,
        plugin: &ResolvedPlugin,
        out: &mut impl Write,
        mut progress: impl FnMut(u64),
    ) -> Result<(), OciError> {
        let reference = plugin.reference.to_string();
        let expected = plugin.layer.size;
        // Our own descriptor: no `urls`, so a manifest cannot send us to other hosts.
        let descriptor = OciDescriptor {
            media_type: plugin.layer.media_type.clone(),
            digest: plugin.layer.digest.clone(),
            size: i64::try_from(expected).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(plugin.reference.as_oci(), &descriptor)
            .await
            .map_err(|e| match self.translate(e, &reference) {
                // The manifest was there, so a 404 here is the layer's.
                OciError::NotFound { message, .. } => OciError::MissingLayer {
                    reference: reference.clone(),
                    digest: plugin.layer.digest.clone(),
                    message,
                },
                other => other,
            })?;
        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        let mut head: Vec<u8> = Vec::with_capacity(4);
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    let actual = hasher.finish();
                    return Err(stream_failure(
                        &self.registry,
                        &reference,
                        received,
                        expected,
                        &plugin.layer.digest,
                        actual,
                        err,
                    ));
                }
            };
            received += chunk.len() as u64;
            if received > expected {
                return Err(OciError::Oversized {
                    reference,
                    expected,
                });
            }
            if head.len() < 4 {
                let take = (4 - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if head.len() == 4 && head != WASM_MAGIC {
                    return Err(OciError::NotWasm { reference, head });
                }
            }
            hasher.update(&chunk);
            out.write_all(&chunk).map_err(OciError::Write)?;
            progress(received);
        }
        let actual = hasher.finish();
        if received < expected {
            return Err(OciError::Truncated {
                reference,
                received,
                expected,
                cause: String::new(),
            });
        }
        if head != WASM_MAGIC {
            return Err(OciError::NotWasm { reference, head });
        }
        if actual != plugin.layer.digest {
            return Err(OciError::DigestMismatch {
                reference,
                expected: plugin.layer.digest.clone(),
                actual,
            });
        }
        out.flush().map_err(OciError::Write)?;
        Ok(())
    }

    /// GETs a manifest, falling back to plain HTTP for a loopback registry
    /// whose HTTPS endpoint does not answer (docker's rule for localhost).
    pub(crate) async fn fetch_manifest(
        &mut self,
        reference: &PluginReference,
    ) -> Result<(Vec<u8>, String), OciError> {
        let first = self
            .client
            .pull_manifest_raw(reference.as_oci(), &self.auth, &ACCEPTED_MANIFEST_TYPES)
            .await;
        let result = match first {
            Err(e) if self.falls_back_to_plain_http(&e, reference) => {
                self.switch_to_plain_http(&e)?;
                self.client
                    .pull_manifest_raw(reference.as_oci(), &self.auth, &ACCEPTED_MANIFEST_TYPES)
                    .await
            }
            other => other,
        };
        let (body, _) = result.map_err(|e| self.translate(e, &reference.to_string()))?;
        // Compute the digest ourselves rather than trusting a header.
        let digest = sha256_digest(&body);
        if let Some(pinned) = reference.digest()
            && pinned != digest
        {
            return Err(OciError::DigestMismatch {
                reference: reference.to_string(),
                expected: pinned.to_string(),
                actual: digest,
            });
        }
        Ok((body.to_vec(), digest))
    }

    /// Whether a first request that failed with `err` should be retried over
    /// plain HTTP: a loopback registry that did not speak TLS at all (a
    /// certificate problem is an HTTPS server, and falling back would hide
    /// it), as docker does.
    pub(crate) fn falls_back_to_plain_http(
        &self,
        err: &OciDistributionError,
        reference: &PluginReference,
    ) -> bool {
        matches!(err, OciDistributionError::RequestError(e)
            if e.is_connect()
                && !self.using_plain_http
                && reference.is_loopback()
                && certificate_problem(e).is_none())
    }

    /// Rebuilds the client for plain HTTP (see [`Self::falls_back_to_plain_http`]).
    pub(crate) fn switch_to_plain_http(
        &mut self,
        err: &OciDistributionError,
    ) -> Result<(), OciError> {
        log::debug!(
            "HTTPS to loopback registry {} failed ({err}); trying plain HTTP",
            self.registry
        );
        self.client = build_client(&self.registry, &self.options, true)?;
        self.using_plain_http = true;
        Ok(())
    }

    pub(crate) fn translate(&self, err: OciDistributionError, reference: &str) -> OciError {
        let registry = self.registry.clone();
        match err {
            OciDistributionError::UnauthorizedError { .. } => OciError::Unauthorized {
                registry,
                detail: match self.credential_source {
                    CredentialSource::Anonymous => {
                        " and no credential is stored for it".to_string()
                    }
                    CredentialSource::Docker => {
                        " with the credential from docker's config.json".to_string()
                    }
                    CredentialSource::Podman => {
                        " with the credential from podman's auth.json".to_string()
                    }
                },
            },
            OciDistributionError::AuthenticationFailure(reason) => OciError::Unauthorized {
                registry,
                detail: format!(": {}", reason.trim()),
            },
            OciDistributionError::RegistryError { envelope, .. } => {
                let message = envelope
                    .errors
                    .iter()
                    .map(|e| {
                        if e.message.is_empty() {
                            format!("{:?}", e.code)
                        } else {
                            e.message.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let code = envelope.errors.first().map(|e| &e.code);
                match code {
                    Some(
                        OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound,
                    ) => OciError::NotFound {
                        reference: reference.to_string(),
                        message,
                    },
                    Some(OciErrorCode::Unauthorized) => OciError::Unauthorized {
                        registry,
                        detail: format!(": {message}"),
                    },
                    Some(OciErrorCode::Denied) => OciError::Denied {
                        registry,
                        reference: reference.to_string(),
                        message,
                    },
                    _ => OciError::Registry { registry, message },
                }
            }
            OciDistributionError::ServerError {
                code: 404, message, ..
            } => OciError::NotFound {
                reference: reference.to_string(),
                message: if message.trim().is_empty() {
                    "404 Not Found".to_string()
                } else {
                    message
                },
            },
            OciDistributionError::ServerError {
                code: 403, message, ..
            } => OciError::Denied {
                registry,
                reference: reference.to_string(),
                message,
            },
            OciDistributionError::RequestError(e) if certificate_problem(&e).is_some() => {
                OciError::UntrustedCertificate {
                    registry,
                    cause: certificate_problem(&e).unwrap_or_default(),
                }
            }
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                OciError::Unreachable {
                    registry,
                    cause: root_cause(&e),
                    hint: if self.using_plain_http {
                        ""
                    } else {
                        "; a registry with a private CA needs --ca-file, one without TLS needs --plain-http"
                    },
                }
            }
            OciDistributionError::RequestError(e) => OciError::Registry {
                registry,
                message: root_cause(&e),
            },
            other => OciError::Registry {
                registry,
                message: other.to_string(),
            },
        }
    }
}

pub(crate) fn build_client(
    registry: &str,
    options: &RegistryOptions,
    plain_http: bool,
) -> Result<oci_client::Client, OciError> {
    // reqwest (under oci-client) takes the process's rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut extra_root_certificates = Vec::new();
    for path in &options.ca_files {
        let data = std::fs::read(path).map_err(|source| OciError::CaFile {
            path: path.clone(),
            source,
        })?;
        extra_root_certificates.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    let config = ClientConfig {
        protocol: if plain_http {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        },
        extra_root_certificates,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        platform_resolver: None,
        user_agent: concat!("krew-wasm/", env!("CARGO_PKG_VERSION")),
        // Pushes (`krew-wasm push`) upload a blob in one PUT, which every
        // registry accepts; pulls are unaffected.
        use_monolithic_push: true,
        ..Default::default()
    };
    oci_client::Client::try_from(config).map_err(|e| OciError::Registry {
        registry: registry.to_string(),
        message: format!("cannot set up the HTTP client: {e}"),
    })
}

/// Turns an error of the byte stream into the most telling [`OciError`].
fn stream_failure(
    registry: &str,
    reference: &str,
    received: u64,
    expected: u64,
    expected_digest: &str,
    actual: String,
    err: std::io::Error,
) -> OciError {
    let is_digest_error = err
        .get_ref()
        .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>());
    if received < expected {
        OciError::Truncated {
            reference: reference.to_string(),
            received,
            expected,
            cause: if is_digest_error {
                String::new()
            } else {
                format!(" ({})", root_cause(&err))
            },
        }
    } else if is_digest_error {
        OciError::DigestMismatch {
            reference: reference.to_string(),
            expected: expected_digest.to_string(),
            actual,
        }
    } else {
        OciError::Registry {
            registry: registry.to_string(),
            message: root_cause(&err),
        }
    }
}

/// The message of a TLS certificate failure in `err`'s chain, if that is
/// what it is. `io::Error` hides its inner error from `source()`, so look
/// through `get_ref()` too.
pub(crate) fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(err);
    while let Some(e) = current {
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i.to_string());
        for text in [Some(e.to_string()), inner].into_iter().flatten() {
            if text.contains("certificate") {
                return Some(text);
            }
        }
        current = e.source();
    }
    None
}

/// The innermost message of an error chain ("Connection refused (os error 111)").
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
