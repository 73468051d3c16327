//! X.509 certificates found in Secret values: what each one says, in words.
//!
//! [`blocks`] finds the PEM blocks of a value (every certificate of a bundle, plus a
//! note for other blocks such as a private key stored alongside); [`describe`]
//! turns one DER certificate into a [`CertInfo`]; [`render`] prints it.

use std::fmt::Write;

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::clock;

/// One certificate, reduced to what a person checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub sans: Vec<String>,
    pub public_key: String,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub is_ca: bool,
    pub signature_algorithm: String,
    pub sha256_fingerprint: String,
}

/// A PEM block of a value that holds certificates.
///
/// The certificate variant is much the larger on 64-bit targets; a Secret holds a
/// handful of blocks, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Block {
    /// A certificate, or why it could not be read.
    Certificate(Result<CertInfo, String>),
    /// Another kind of block (`RSA PRIVATE KEY`, …), by its label.
    Other(String),
}

/// The PEM blocks of `value`, if it holds at least one certificate.
pub fn blocks(value: &[u8]) -> Option<Vec<Block>> {
    const MARKER: &[u8] = b"-----BEGIN CERTIFICATE-----";
    if !value.windows(MARKER.len()).any(|w| w == MARKER) {
        return None;
    }
    let mut blocks = Vec::new();
    for pem in Pem::iter_from_buffer(value) {
        match pem {
            Ok(pem) if pem.label == "CERTIFICATE" => {
                blocks.push(Block::Certificate(describe(&pem.contents)));
            }
            Ok(pem) => blocks.push(Block::Other(pem.label)),
            Err(err) => {
                blocks.push(Block::Certificate(Err(format!("bad PEM: {err}"))));
                break;
            }
        }
    }
    Some(blocks)
}

/// A binary value that is exactly one DER certificate.
pub fn der_certificate(value: &[u8]) -> Option<CertInfo> {
    match X509Certificate::from_der(value) {
        Ok(([], _)) => describe(value).ok(),
        _ => None,
    }
}

/// Reads one DER certificate.
pub fn describe(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
    let validity = cert.validity();

    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().map(general_name).collect(),
        Ok(None) => Vec::new(),
        Err(err) => vec![format!("<unreadable: {err}>")],
    };
    let key_usage = match cert.key_usage() {
        Ok(Some(ext)) => key_usage_names(ext.value.flags),
        _ => Vec::new(),
    };
    let extended_key_usage = match cert.extended_key_usage() {
        Ok(Some(ext)) => {
            let eku = ext.value;
            let mut names: Vec<String> = [
                (eku.any, "Any"),
                (eku.server_auth, "Server Auth"),
                (eku.client_auth, "Client Auth"),
                (eku.code_signing, "Code Signing"),
                (eku.email_protection, "Email Protection"),
                (eku.time_stamping, "Time Stamping"),
                (eku.ocsp_signing, "OCSP Signing"),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name.to_string())
            .collect();
            names.extend(eku.other.iter().map(|oid| oid.to_id_string()));
            names
        }
        _ => Vec::new(),
    };
    let is_ca = matches!(cert.basic_constraints(), Ok(Some(ext)) if ext.value.ca);

    Ok(CertInfo {
        subject: name_or_empty(cert.subject().to_string()),
        issuer: name_or_empty(cert.issuer().to_string()),
        serial: cert.raw_serial_as_string(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        sans,
        public_key: public_key(&cert),
        key_usage,
        extended_key_usage,
        is_ca,
        signature_algorithm: signature_algorithm(
            &cert.signature_algorithm.algorithm.to_id_string(),
        ),
        sha256_fingerprint: colon_hex(&Sha256::digest(der)),
    })
}

/// Prints `info` as `Label: value` lines, each starting with `indent`.
pub fn render(info: &CertInfo, now: i64, indent: &str, out: &mut String) {
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(out, "{indent}{:<21}{value}", format!("{label}:"));
    };
    line("Subject", &info.subject);
    line("Issuer", &info.issuer);
    line("Serial", &info.serial);
    line("Not before", &clock::format_utc(info.not_before));
    line(
        "Not after",
        &format!(
            "{} ({})",
            clock::format_utc(info.not_after),
            clock::validity_status(info.not_before, info.not_after, now)
        ),
    );
    line("SANs", &list_or_none(&info.sans));
    line("Public key", &info.public_key);
    line("Key usage", &list_or_none(&info.key_usage));
    line(
        "Extended key usage",
        &list_or_none(&info.extended_key_usage),
    );
    line("CA", if info.is_ca { "yes" } else { "no" });
    line("Signature algorithm", &info.signature_algorithm);
    line("SHA-256 fingerprint", &info.sha256_fingerprint);
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "<none>".to_string()
    } else {
        items.join(", ")
    }
}

fn name_or_empty(name: String) -> String {
    if name.is_empty() {
        "<empty>".to_string()
    } else {
        name
    }
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::IPAddress(bytes) => format!("IP:{}", ip_address(bytes)),
        GeneralName::RFC822Name(email) => format!("email:{email}"),
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::DirectoryName(dn) => format!("DirName:{dn}"),
        GeneralName::RegisteredID(oid) => format!("RID:{}", oid.to_id_string()),
        GeneralName::OtherName(oid, _) => format!("othername:{}", oid.to_id_string()),
        other => format!("{other:?}"),
    }
}

fn ip_address(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return std::net::Ipv4Addr::from(v4).to_string();
    }
    if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        return std::net::Ipv6Addr::from(v6).to_string();
    }
    colon_hex(bytes)
}

fn key_usage_names(flags: u16) -> Vec<String> {
    const NAMES: [&str; 9] = [
        "Digital Signature",
        "Non Repudiation",
        "Key Encipherment",
        "Data Encipherment",
        "Key Agreement",
        "Certificate Sign",
        "CRL Sign",
        "Encipher Only",
        "Decipher Only",
    ];
    NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| flags >> bit & 1 == 1)
        .map(|(_, name)| name.to_string())
        .collect()
}

fn public_key(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let algorithm = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string());
    match (algorithm.as_str(), spki.parsed()) {
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10", Ok(PublicKey::RSA(rsa))) => {
            format!("RSA {} bits", unsigned_bits(rsa.modulus))
        }
        ("1.2.840.10045.2.1", key) => {
            let (name, bits) = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("P-256".to_string(), 256),
                Some("1.3.132.0.34") => ("P-384".to_string(), 384),
                Some("1.3.132.0.35") => ("P-521".to_string(), 521),
                Some(other) => (other.to_string(), key.map(|k| k.key_size()).unwrap_or(0)),
                None => ("unknown curve".to_string(), 0),
            };
            format!("ECDSA {name} ({bits} bits)")
        }
        ("1.3.101.112", _) => "Ed25519 (256 bits)".to_string(),
        ("1.3.101.113", _) => "Ed448 (456 bits)".to_string(),
        ("1.2.840.10040.4.1", Ok(key)) => format!("DSA {} bits", key.key_size()),
        (other, _) => format!("{other} ({} bits)", spki.subject_public_key.data.len() * 8),
    }
}

/// The bit length of a big-endian unsigned integer (DER may prefix a zero byte).
fn unsigned_bits(bytes: &[u8]) -> usize {
    let digits = match bytes.iter().position(|&b| b != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    digits.len() * 8 - digits[0].leading_zeros() as usize
}

fn signature_algorithm(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => return other.to_string(),
    };
    name.to_string()
}

fn colon_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with openssl; see testdata/README.md.
    const LEAF: &str = include_str!("../testdata/leaf.pem");
    const CA: &str = include_str!("../testdata/ca.pem");
    const KEY: &str = include_str!("../testdata/leaf.key");
    const LEAF_DER: &[u8] = include_bytes!("../testdata/leaf.der");
    const LEAF_SHA256: &str = include_str!("../testdata/leaf.sha256");

    fn certs(value: &str) -> Vec<CertInfo> {
        blocks(value.as_bytes())
            .expect("holds certificates")
            .into_iter()
            .filter_map(|b| match b {
                Block::Certificate(c) => Some(c.expect("parses")),
                Block::Other(_) => None,
            })
            .collect()
    }

    #[test]
    fn leaf_certificate_fields() {
        let [leaf] = certs(LEAF).try_into().unwrap();
        assert_eq!(leaf.subject, "O=Example, CN=web.example.com");
        assert_eq!(leaf.issuer, "CN=Example Test CA");
        assert_eq!(
            leaf.sans,
            [
                "DNS:web.example.com",
                "DNS:www.example.com",
                "IP:10.0.0.1",
                "IP:::1"
            ]
        );
        assert_eq!(leaf.public_key, "RSA 2048 bits");
        assert_eq!(leaf.key_usage, ["Digital Signature", "Key Encipherment"]);
        assert_eq!(leaf.extended_key_usage, ["Server Auth", "Client Auth"]);
        assert!(!leaf.is_ca);
        assert_eq!(leaf.signature_algorithm, "ecdsa-with-SHA256");
        assert_eq!(leaf.serial, "10:01");
        assert_eq!(
            clock::format_utc(leaf.not_before),
            "2024-01-01 00:00:00 UTC"
        );
        assert_eq!(clock::format_utc(leaf.not_after), "2034-01-01 00:00:00 UTC");
        assert_eq!(leaf.sha256_fingerprint, LEAF_SHA256.trim());
    }

    #[test]
    fn every_certificate_of_a_bundle() {
        let bundle = format!("{LEAF}{CA}");
        let all = certs(&bundle);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].subject, "CN=Example Test CA");
        assert!(all[1].is_ca);
        assert_eq!(all[1].public_key, "ECDSA P-256 (256 bits)");
        assert_eq!(all[1].key_usage, ["Certificate Sign", "CRL Sign"]);
    }

    #[test]
    fn other_blocks_are_named() {
        let combined = format!("{KEY}{LEAF}");
        let found = blocks(combined.as_bytes()).unwrap();
        assert!(matches!(&found[0], Block::Other(label) if label == "PRIVATE KEY"));
        assert!(matches!(&found[1], Block::Certificate(Ok(_))));
    }

    #[test]
    fn a_key_alone_is_not_a_certificate() {
        assert!(blocks(KEY.as_bytes()).is_none());
        assert!(blocks(b"hunter2").is_none());
    }

    #[test]
    fn broken_certificates_say_so() {
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let found = blocks(broken.as_bytes()).unwrap();
        assert!(matches!(&found[0], Block::Certificate(Err(_))));
    }

    #[test]
    fn der_values_are_recognised() {
        let info = der_certificate(LEAF_DER).expect("DER certificate");
        assert_eq!(info.subject, "O=Example, CN=web.example.com");
        assert!(der_certificate(&LEAF_DER[..100]).is_none());
        assert!(der_certificate(b"\x00\x01\x02").is_none());
    }

    #[test]
    fn render_lists_every_field() {
        let [leaf] = certs(LEAF).try_into().unwrap();
        let mut out = String::new();
        render(&leaf, leaf.not_after + 3 * 86_400, "  ", &mut out);
        for expected in [
            "  Subject:             O=Example, CN=web.example.com\n",
            "  Not after:           2034-01-01 00:00:00 UTC (expired 3 days ago)\n",
            "  SANs:                DNS:web.example.com, DNS:www.example.com, IP:10.0.0.1, IP:::1\n",
            "  Public key:          RSA 2048 bits\n",
            "  Signature algorithm: ecdsa-with-SHA256\n",
            "  SHA-256 fingerprint: ",
        ] {
            assert!(out.contains(expected), "missing {expected:?} in\n{out}");
        }
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(unsigned_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(unsigned_bits(&[0x01, 0x00]), 9);
        assert_eq!(unsigned_bits(&[0, 0]), 0);
    }
}
