//! Registry credentials, found where docker and podman keep them.
//!
//! Lookup order for a registry host: docker's `config.json` (`$DOCKER_CONFIG`
//! or `~/.docker`, with `credHelpers`, `auths` and `credsStore`), then
//! podman's `auth.json` (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers`),
//! then anonymous access.

use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

/// Where a credential came from, for messages (never the secret itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Docker,
    Podman,
    Anonymous,
}

/// Finds the credential for `registry` (`host[:port]`).
pub fn credentials_for(registry: &str) -> Result<(RegistryAuth, CredentialSource), String> {
    // Docker Hub's credentials are stored under its legacy v1 URL.
    let server = match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    };
    match to_auth(docker_credential::get_credential(server), registry)? {
        Some(auth) => return Ok((auth, CredentialSource::Docker)),
        None => log::debug!("no docker credential for {registry}"),
    }
    match to_auth(docker_credential::get_podman_credential(server), registry)? {
        Some(auth) => return Ok((auth, CredentialSource::Podman)),
        None => log::debug!("no podman credential for {registry}"),
    }
    Ok((RegistryAuth::Anonymous, CredentialSource::Anonymous))
}

fn to_auth(
    found: Result<DockerCredential, CredentialRetrievalError>,
    registry: &str,
) -> Result<Option<RegistryAuth>, String> {
    match found {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(Some(RegistryAuth::Basic(user, password)))
        }
        Ok(DockerCredential::IdentityToken(_)) => Err(format!(
            "the stored credential for {registry} is an OAuth identity token, which krew-wasm \
             cannot use yet; log in with a username and password or an access token \
             (`docker login -u USER {registry}`)"
        )),
        Err(
            CredentialRetrievalError::NoCredentialConfigured
            | CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::ConfigReadError,
        ) => Ok(None),
        Err(CredentialRetrievalError::HelperFailure { helper, stderr, .. }) => {
            // Helpers exit non-zero for "no credential stored" too; docker
            // then goes on anonymously, and so do we, but say so.
            log::warn!(
                "credential helper `docker-credential-{helper}` found nothing for {registry} ({}); continuing without credentials",
                stderr.trim()
            );
            Ok(None)
        }
        Err(e) => Err(format!(
            "could not read the stored credential for {registry}: {e}"
        )),
    }
}
