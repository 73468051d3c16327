//! Keyless (Fulcio certificate) verification: the trusted root, and checking
//! a signature's certificate chain, identity, issuer and transparency-log
//! proof against it.

use super::SignatureError;

/// Checks `json` looks like a Sigstore trusted root.
pub(crate) fn check_trusted_root(json: &str, what: &str) -> Result<(), SignatureError> {
    let bad = |reason: String| SignatureError::BadTrustedRoot {
        what: what.to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| bad(format!("not JSON ({e})")))?;
    let media_type = value
        .get("mediaType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if !media_type.starts_with("application/vnd.dev.sigstore.trustedroot") {
        return Err(bad(format!(
            "its mediaType is `{media_type}`, not application/vnd.dev.sigstore.trustedroot+json"
        )));
    }
    Ok(())
}

/// Checks a keyless `.sig` layer (certificate and Rekor bundle annotations)
/// against the trusted identities.
pub(crate) fn verify_legacy_layer(
    _layer: &super::SignatureLayer,
    _signers: &super::TrustedSigners,
    _digest: &str,
) -> Result<super::Signer, String> {
    Err("keyless verification is not implemented yet".to_string())
}
