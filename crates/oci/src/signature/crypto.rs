//! The cryptography under sigstore verification: a
//! [`CryptoProvider`](sigstore_verify::crypto::CryptoProvider) for the
//! `sigstore-crypto` crate on ring, the library rustls already uses for every
//! TLS connection here, so the binary carries one general-purpose crypto
//! library instead of two (the crate's default, aws-lc, added several MiB and
//! a constructor that ran at every plugin start).
//!
//! What it verifies: ECDSA P-256 and P-384 (SHA-256 and SHA-384), Ed25519,
//! and RSA PKCS#1 v1.5 and PSS (2048 to 8192 bits, SHA-256/384/512) over a
//! message; ECDSA over a precomputed digest (a message-signature bundle), with
//! RustCrypto's `p256` and `p384`, because ring has no prehashed verification.
//! It refuses, naming the scheme: ML-DSA, and RSA over a digest. It never
//! signs (`sign` uses `p256` directly).

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sigstore_verify::crypto::{CryptoProvider, Error, HashContext, Result, SigningScheme};
use sigstore_verify::types::HashAlgorithm;

/// Makes [`RingProvider`] the process's sigstore provider. Called before
/// every use of `sigstore-verify`; the first call wins and later ones are
/// no-ops, so it is cheap and order-independent.
pub(super) fn install() {
    // `Err` means a provider is already installed: this one, by an earlier
    // call (nothing else in the process installs one).
    let _ = sigstore_verify::crypto::install_default_provider(&RingProvider);
}

/// `sigstore-crypto`'s provider on ring (and RustCrypto for prehashed ECDSA).
#[derive(Debug)]
pub(super) struct RingProvider;

struct RingHashContext(ring::digest::Context);

impl HashContext for RingHashContext {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

fn ring_digest(algorithm: HashAlgorithm) -> Result<&'static ring::digest::Algorithm> {
    match algorithm {
        HashAlgorithm::Sha2256 => Ok(&ring::digest::SHA256),
        HashAlgorithm::Sha2384 => Ok(&ring::digest::SHA384),
        HashAlgorithm::Sha2512 => Ok(&ring::digest::SHA512),
        other => Err(Error::UnsupportedAlgorithm(format!(
            "cannot compute {other} digests"
        ))),
    }
}

fn ring_verification(
    scheme: SigningScheme,
) -> Result<&'static dyn ring::signature::VerificationAlgorithm> {
    use ring::signature as alg;
    Ok(match scheme {
        SigningScheme::EcdsaP256Sha256 => &alg::ECDSA_P256_SHA256_ASN1,
        SigningScheme::EcdsaP256Sha384 => &alg::ECDSA_P256_SHA384_ASN1,
        SigningScheme::EcdsaP384Sha256 => &alg::ECDSA_P384_SHA256_ASN1,
        SigningScheme::EcdsaP384Sha384 => &alg::ECDSA_P384_SHA384_ASN1,
        SigningScheme::Ed25519 => &alg::ED25519,
        SigningScheme::RsaPkcs1Sha256 => &alg::RSA_PKCS1_2048_8192_SHA256,
        SigningScheme::RsaPkcs1Sha384 => &alg::RSA_PKCS1_2048_8192_SHA384,
        SigningScheme::RsaPkcs1Sha512 => &alg::RSA_PKCS1_2048_8192_SHA512,
        SigningScheme::RsaPssSha256 => &alg::RSA_PSS_2048_8192_SHA256,
        SigningScheme::RsaPssSha384 => &alg::RSA_PSS_2048_8192_SHA384,
        SigningScheme::RsaPssSha512 => &alg::RSA_PSS_2048_8192_SHA512,
        other => {
            return Err(Error::UnsupportedAlgorithm(format!(
                "{} signatures cannot be verified by krew-wasm",
                other.name()
            )));
        }
    })
}

fn invalid(scheme: SigningScheme) -> Error {
    Error::Verification(format!("{} signature invalid", scheme.name()))
}

impl CryptoProvider for RingProvider {
    fn hash(&self, algorithm: HashAlgorithm) -> Result<Box<dyn HashContext>> {
        Ok(Box::new(RingHashContext(ring::digest::Context::new(
            ring_digest(algorithm)?,
        ))))
    }

    fn verify_raw(
        &self,
        scheme: SigningScheme,
        spki_pubkey_bytes: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        ring::signature::UnparsedPublicKey::new(ring_verification(scheme)?, spki_pubkey_bytes)
            .verify(data, signature)
            .map_err(|_| invalid(scheme))
    }

    fn verify_prehashed(
        &self,
        scheme: SigningScheme,
        spki_pubkey_bytes: &[u8],
        digest: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        match scheme {
            SigningScheme::EcdsaP256Sha256 | SigningScheme::EcdsaP256Sha384 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(spki_pubkey_bytes)
                    .map_err(|_| invalid(scheme))?;
                let signature =
                    p256::ecdsa::Signature::from_der(signature).map_err(|_| invalid(scheme))?;
                key.verify_prehash(digest, &signature)
                    .map_err(|_| invalid(scheme))
            }
            SigningScheme::EcdsaP384Sha256 | SigningScheme::EcdsaP384Sha384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(spki_pubkey_bytes)
                    .map_err(|_| invalid(scheme))?;
                let signature =
                    p384::ecdsa::Signature::from_der(signature).map_err(|_| invalid(scheme))?;
                key.verify_prehash(digest, &signature)
                    .map_err(|_| invalid(scheme))
            }
            other => Err(Error::UnsupportedAlgorithm(format!(
                "a {} signature of a digest (a message-signature bundle) cannot be verified by \
                 krew-wasm; sign with an ECDSA key, or as a DSSE bundle (cosign's default)",
                other.name()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Signatures made by aws-lc (the crate's default provider, an
    //! independent implementation), verified by ring: every scheme accepts
    //! its own signature and refuses a changed message, another key's
    //! signature and another scheme.

    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{self as aws, KeyPair as _};
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;

    const MESSAGE: &[u8] = b"sha256:0123456789abcdef";

    /// A different secret for every RustCrypto key a test makes.
    fn next_byte() -> u8 {
        static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn sha(algorithm: HashAlgorithm, data: &[u8]) -> Vec<u8> {
        let ring = ring_digest(algorithm).unwrap();
        ring::digest::digest(ring, data).as_ref().to_vec()
    }

    /// A key pair, and a signature of `message` by it, for `scheme`.
    fn sign(scheme: SigningScheme, message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let rng = SystemRandom::new();
        let ecdsa = |alg: &'static aws::EcdsaSigningAlgorithm| {
            let pkcs8 = aws::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            let pair = aws::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
            let signature = pair.sign(&rng, message).unwrap();
            (
                pair.public_key().as_ref().to_vec(),
                signature.as_ref().to_vec(),
            )
        };
        let rsa = |padding: &'static dyn aws::RsaEncoding| {
            let pair = aws::RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
            let mut signature = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &rng, message, &mut signature).unwrap();
            (pair.public_key().as_ref().to_vec(), signature)
        };
        match scheme {
            SigningScheme::EcdsaP256Sha256 => ecdsa(&aws::ECDSA_P256_SHA256_ASN1_SIGNING),
            // aws-lc signs only the matching curve and hash; RustCrypto
            // signs the other two over their digests.
            SigningScheme::EcdsaP256Sha384 => {
                let key = p256::ecdsa::SigningKey::from_slice(&[next_byte(); 32]).unwrap();
                let digest = sha(HashAlgorithm::Sha2384, message);
                let signature: p256::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
                let point = key.verifying_key().to_encoded_point(false);
                (
                    point.as_bytes().to_vec(),
                    signature.to_der().as_bytes().to_vec(),
                )
            }
            SigningScheme::EcdsaP384Sha256 => {
                let key = p384::ecdsa::SigningKey::from_slice(&[next_byte(); 48]).unwrap();
                let digest = sha(HashAlgorithm::Sha2256, message);
                let signature: p384::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
                let point = key.verifying_key().to_encoded_point(false);
                (
                    point.as_bytes().to_vec(),
                    signature.to_der().as_bytes().to_vec(),
                )
            }
            SigningScheme::EcdsaP384Sha384 => ecdsa(&aws::ECDSA_P384_SHA384_ASN1_SIGNING),
            SigningScheme::Ed25519 => {
                let pkcs8 = aws::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                let pair = aws::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
                (
                    pair.public_key().as_ref().to_vec(),
                    pair.sign(message).as_ref().to_vec(),
                )
            }
            SigningScheme::RsaPkcs1Sha256 => rsa(&aws::RSA_PKCS1_SHA256),
            SigningScheme::RsaPkcs1Sha384 => rsa(&aws::RSA_PKCS1_SHA384),
            SigningScheme::RsaPkcs1Sha512 => rsa(&aws::RSA_PKCS1_SHA512),
            SigningScheme::RsaPssSha256 => rsa(&aws::RSA_PSS_SHA256),
            SigningScheme::RsaPssSha384 => rsa(&aws::RSA_PSS_SHA384),
            SigningScheme::RsaPssSha512 => rsa(&aws::RSA_PSS_SHA512),
            other => panic!("no test signer for {other:?}"),
        }
    }

    const SCHEMES: [SigningScheme; 11] = [
        SigningScheme::EcdsaP256Sha256,
        SigningScheme::EcdsaP256Sha384,
        SigningScheme::EcdsaP384Sha256,
        SigningScheme::EcdsaP384Sha384,
        SigningScheme::Ed25519,
        SigningScheme::RsaPkcs1Sha256,
        SigningScheme::RsaPkcs1Sha384,
        SigningScheme::RsaPkcs1Sha512,
        SigningScheme::RsaPssSha256,
        SigningScheme::RsaPssSha384,
        SigningScheme::RsaPssSha512,
    ];

    #[test]
    fn every_scheme_verifies_an_independent_signature_and_nothing_else() {
        for scheme in SCHEMES {
            let (key, signature) = sign(scheme, MESSAGE);
            RingProvider
                .verify_raw(scheme, &key, MESSAGE, &signature)
                .unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
            assert!(
                RingProvider
                    .verify_raw(scheme, &key, b"sha256:another", &signature)
                    .is_err(),
                "{scheme:?} accepted a changed message"
            );
            let (other_key, _) = sign(scheme, MESSAGE);
            assert!(
                RingProvider
                    .verify_raw(scheme, &other_key, MESSAGE, &signature)
                    .is_err(),
                "{scheme:?} accepted another key"
            );
        }
        // The same key and signature under another hash.
        let (key, signature) = sign(SigningScheme::EcdsaP256Sha256, MESSAGE);
        assert!(
            RingProvider
                .verify_raw(SigningScheme::EcdsaP256Sha384, &key, MESSAGE, &signature)
                .is_err()
        );
    }

    #[test]
    fn ecdsa_verifies_a_digest_and_refuses_another() {
        for scheme in &SCHEMES[..4] {
            let scheme = *scheme;
            let (key, signature) = sign(scheme, MESSAGE);
            let hash = scheme.hash_algorithm().unwrap();
            RingProvider
                .verify_prehashed(scheme, &key, &sha(hash, MESSAGE), &signature)
                .unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
            assert!(
                RingProvider
                    .verify_prehashed(scheme, &key, &sha(hash, b"other"), &signature)
                    .is_err(),
                "{scheme:?} accepted another digest"
            );
        }
    }

    #[test]
    fn rsa_over_a_digest_is_refused_naming_the_scheme() {
        let scheme = SigningScheme::RsaPssSha256;
        let (key, signature) = sign(scheme, MESSAGE);
        let digest = sha(HashAlgorithm::Sha2256, MESSAGE);
        let why = RingProvider
            .verify_prehashed(scheme, &key, &digest, &signature)
            .unwrap_err()
            .to_string();
        assert!(why.contains("RSA_PSS_SHA256"), "{why}");
        assert!(why.contains("DSSE bundle"), "{why}");
    }

    #[test]
    fn hashes_match_known_answers() {
        let hex = |algorithm| hex::encode(sha(algorithm, b"abc"));
        assert_eq!(
            hex(HashAlgorithm::Sha2256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut streamed = RingProvider.hash(HashAlgorithm::Sha2384).unwrap();
        streamed.update(b"a");
        streamed.update(b"bc");
        assert_eq!(
            hex::encode(streamed.finalize()),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(RingProvider.sha512(b"abc").len(), 64);
    }
}
