//! cosign's encrypted private key (`cosign generate-key-pair`'s `cosign.key`).
//!
//! The PEM block is labelled `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign 1.x
//! wrote `ENCRYPTED COSIGN PRIVATE KEY`); its body is a JSON document, the
//! format of go-securesystemslib's `encrypted` package:
//!
//! ```json
//! {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"<base64>"},
//!  "cipher":{"name":"nacl/secretbox","nonce":"<base64>"},"ciphertext":"<base64>"}
//! ```
//!
//! The key is scrypt(password, salt, N, r, p) of 32 bytes, the ciphertext is
//! a NaCl secretbox (XSalsa20-Poly1305, 24-byte nonce, tag first) and the
//! plaintext is the private key as PKCS#8 DER.
//!
//! As go-securesystemslib does, only its own scrypt parameter sets are
//! accepted: the parameters come from the file, and a crafted one could
//! otherwise ask for gigabytes of memory or hours of work.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The PEM labels cosign writes its encrypted keys under (new, then old).
pub(crate) const PEM_LABELS: [&str; 2] = [
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];

/// The scrypt (N, r, p) sets go-securesystemslib writes and reads: its
/// legacy one (cosign's default), "standard" and "OWASP".
const SCRYPT_PARAMETERS: [(u64, u64, u64); 3] = [(32_768, 8, 1), (65_536, 8, 1), (131_072, 8, 1)];
const KDF_SCRYPT: &str = "scrypt";
const CIPHER_SECRETBOX: &str = "nacl/secretbox";
const KEY_SIZE: usize = 32;
const NONCE_SIZE: usize = 24;

#[derive(Deserialize)]
struct Document {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// A parsed and checked encrypted key, not yet decrypted.
pub(crate) struct EncryptedKey {
    log_n: u8,
    r: u32,
    p: u32,
    salt: Vec<u8>,
    nonce: [u8; NONCE_SIZE],
    ciphertext: Vec<u8>,
}

/// The password does not open the box (or the file was altered: secretbox
/// cannot tell the two apart).
pub(crate) struct WrongPassword;

/// The body of the first PEM block labelled with one of [`PEM_LABELS`], if any.
pub(crate) fn find_block(text: &str) -> Option<&str> {
    PEM_LABELS.iter().find_map(|label| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = text.find(&begin)? + begin.len();
        let stop = text[start..].find(&end)? + start;
        Some(&text[start..stop])
    })
}

fn base64_field(value: &str, field: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(value)
        .map_err(|e| format!("`{field}` is not base64 ({e})"))
}

impl EncryptedKey {
    /// Reads the body of the PEM block: base64 of the JSON document. Names,
    /// scrypt parameters and sizes are checked here, before any password is
    /// asked for.
    pub(crate) fn parse(body: &str) -> Result<Self, String> {
        let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let json = BASE64
            .decode(compact.as_bytes())
            .map_err(|e| format!("the PEM body is not base64 ({e})"))?;
        let document: Document = serde_json::from_slice(&json)
            .map_err(|e| format!("the PEM body is not cosign's JSON key document ({e})"))?;
        if document.kdf.name != KDF_SCRYPT {
            return Err(format!(
                "unknown key derivation function `{}` (cosign uses `{KDF_SCRYPT}`)",
                document.kdf.name
            ));
        }
        if document.cipher.name != CIPHER_SECRETBOX {
            return Err(format!(
                "unknown cipher `{}` (cosign uses `{CIPHER_SECRETBOX}`)",
                document.cipher.name
            ));
        }
        let ScryptParams { n, r, p } = document.kdf.params;
        if !SCRYPT_PARAMETERS.contains(&(n, r, p)) {
            return Err(format!(
                "unsupported scrypt parameters N={n}, r={r}, p={p} (cosign writes N=32768, \
                 65536 or 131072 with r=8, p=1; others are refused so that a key file cannot \
                 demand unbounded memory and time)"
            ));
        }
        let nonce = base64_field(&document.cipher.nonce, "cipher.nonce")?;
        let nonce: [u8; NONCE_SIZE] = nonce.as_slice().try_into().map_err(|_| {
            format!(
                "the secretbox nonce is {} bytes, not {NONCE_SIZE}",
                nonce.len()
            )
        })?;
        Ok(Self {
            // N is one of the powers of two above; r and p are 8 and 1.
            log_n: n.trailing_zeros() as u8,
            r: r as u32,
            p: p as u32,
            salt: base64_field(&document.kdf.salt, "kdf.salt")?,
            nonce,
            ciphertext: base64_field(&document.ciphertext, "ciphertext")?,
        })
    }

    /// The plaintext (PKCS#8 DER), wiped when dropped.
    pub(crate) fn decrypt(&self, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, WrongPassword> {
        let mut key = Zeroizing::new([0u8; KEY_SIZE]);
        // The parameters were checked in `parse`; the output length is fixed.
        let params =
            scrypt::Params::new(self.log_n, self.r, self.p, KEY_SIZE).map_err(|_| WrongPassword)?;
        scrypt::scrypt(password, &self.salt, &params, key.as_mut_slice())
            .map_err(|_| WrongPassword)?;
        let cipher = XSalsa20Poly1305::new(key.as_slice().into());
        cipher
            .decrypt(self.nonce.as_slice().into(), self.ciphertext.as_slice())
            .map(Zeroizing::new)
            .map_err(|_| WrongPassword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// go-securesystemslib's own vectors (encrypted/encrypted_test.go), made
    /// by the Go implementation cosign uses, under the passphrase
    /// `supersecret`: one per scrypt parameter set (`kdfVectors`, whose
    /// plaintext is `reallyimportant` as the JSON its `Marshal` writes), and
    /// `TestDecrypt`'s, whose plaintext is the raw bytes.
    const GO_VECTORS: [(&str, &[u8]); 4] = [
        (
            r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"WO3mVvyTwJ9vwT5/Tk5OW5WPIBUofMjcpEfrLnfY4uA="},"cipher":{"name":"nacl/secretbox","nonce":"tCy7HcTFr4uxv4Nrg/DWmncuZ148U1MX"},"ciphertext":"08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw="}"#,
            b"\"cmVhbGx5aW1wb3J0YW50\"",
        ),
        (
            r#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}"#,
            b"\"cmVhbGx5aW1wb3J0YW50\"",
        ),
        (
            r#"{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}"#,
            b"\"cmVhbGx5aW1wb3J0YW50\"",
        ),
        (
            r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}"#,
            b"reallyimportant",
        ),
    ];

    fn body(json: &str) -> String {
        BASE64.encode(json)
    }

    #[test]
    fn decrypts_go_securesystemslib_vectors() {
        for (vector, plaintext) in GO_VECTORS {
            let key = EncryptedKey::parse(&body(vector)).unwrap_or_else(|e| panic!("{e}"));
            let plain = key
                .decrypt(b"supersecret")
                .unwrap_or_else(|_| panic!("{vector} did not decrypt"));
            assert_eq!(plain.as_slice(), plaintext);
            assert!(key.decrypt(b"supersecreT").is_err());
            assert!(key.decrypt(b"").is_err());
        }
    }

    #[test]
    fn a_flipped_ciphertext_bit_fails_authentication() {
        let mut key = EncryptedKey::parse(&body(GO_VECTORS[0].0)).unwrap_or_else(|e| panic!("{e}"));
        key.ciphertext[20] ^= 1;
        assert!(key.decrypt(b"supersecret").is_err());
    }

    #[track_caller]
    fn refused(json: &str, expected: &str) {
        match EncryptedKey::parse(&body(json)) {
            Ok(_) => panic!("{json} was accepted"),
            Err(e) => assert!(e.contains(expected), "{e}"),
        }
    }

    #[test]
    fn malformed_documents_are_refused_before_any_password() {
        let good = GO_VECTORS[0].0;
        assert!(matches!(
            EncryptedKey::parse("not base64 at all!"),
            Err(e) if e.contains("PEM body is not base64")
        ));
        refused("{\"kdf\":", "not cosign's JSON key document");
        refused("[1, 2, 3]", "not cosign's JSON key document");
        refused(
            &good.replace("\"ciphertext\":", "\"cipherText\":"),
            "missing field `ciphertext`",
        );
        refused(
            &good.replace("\"name\":\"scrypt\"", "\"name\":\"argon2\""),
            "unknown key derivation function `argon2`",
        );
        refused(
            &good.replace("nacl/secretbox", "aes-gcm"),
            "unknown cipher `aes-gcm`",
        );
        refused(
            &good.replace("\"N\":32768", "\"N\":1073741824"),
            "unsupported scrypt parameters N=1073741824, r=8, p=1",
        );
        refused(
            &good.replace("\"p\":1", "\"p\":16"),
            "unsupported scrypt parameters",
        );
        refused(
            &good.replace("\"N\":32768", "\"N\":-1"),
            "not cosign's JSON key document",
        );
        refused(
            &good.replace(
                "WO3mVvyTwJ9vwT5/Tk5OW5WPIBUofMjcpEfrLnfY4uA=",
                "WO3m%%%not base64",
            ),
            "`kdf.salt` is not base64",
        );
        refused(
            &good.replace("tCy7HcTFr4uxv4Nrg/DWmncuZ148U1MX", "tCy7HcTF"),
            "nonce is 6 bytes, not 24",
        );
        refused(
            &good.replace(
                "08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw=",
                "08n4*",
            ),
            "`ciphertext` is not base64",
        );
    }

    #[test]
    fn finds_both_labels_and_only_them() {
        for label in PEM_LABELS {
            let text = format!("junk\n-----BEGIN {label}-----\nQUJD\n-----END {label}-----\n");
            assert_eq!(find_block(&text), Some("\nQUJD\n"));
        }
        assert_eq!(
            find_block("-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n"),
            None
        );
        assert_eq!(
            find_block("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nQUJD\n"),
            None
        );
    }
}
