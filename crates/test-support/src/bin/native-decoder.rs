//! `native-decoder [secret] NAME [-n NAMESPACE]`: the work of the `decoder`
//! plugin (`guest/plugins/decoder`) done by a native kube-rs program, the
//! baseline of `bench/api.sh`.
//!
//! It does what `kubectl decoder secret NAME -n NS` does through krew-wasm:
//! load the kubeconfig (`kube::Config::infer`, kubectl's rules), one
//! authenticated HTTPS GET of the Secret, every value base64-decoded, and
//! every PEM certificate parsed and described (subject, issuer, serial,
//! validity, SANs, public key, SHA-256 fingerprint). The layout is not the
//! decoder's byte for byte; the work is comparable. Same kube-rs, TLS stack
//! (rustls, aws-lc-rs) and release profile as the krew-wasm host.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest as _, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer as _;

const USAGE: &str = "usage: native-decoder [secret] NAME [-n NAMESPACE]";

struct Request {
    name: String,
    namespace: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Request, String> {
    let mut positional = Vec::new();
    let mut namespace = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-n" || arg == "--namespace" {
            namespace = Some(args.next().ok_or(format!("{arg} needs a value"))?);
        } else if let Some(ns) = arg.strip_prefix("--namespace=") {
            namespace = Some(ns.to_string());
        } else if let Some(ns) = arg.strip_prefix("-n").filter(|ns| !ns.is_empty()) {
            namespace = Some(ns.trim_start_matches('=').to_string());
        } else if arg.starts_with('-') {
            return Err(format!("unknown flag {arg:?}"));
        } else {
            positional.push(arg);
        }
    }
    if positional.first().map(String::as_str) == Some("secret") {
        positional.remove(0);
    }
    match <[String; 1]>::try_from(positional) {
        Ok([name]) => Ok(Request { name, namespace }),
        Err(_) => Err("expected one Secret name".to_string()),
    }
}

fn main() -> ExitCode {
    let request = match parse_args(std::env::args().skip(1)) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    // One request: a current-thread runtime, like the krew-wasm host's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let output = match runtime.block_on(fetch_and_render(&request)) {
        Ok(output) => output,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        // `native-decoder … | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the output: {e}");
            ExitCode::from(1)
        }
    }
}

async fn fetch_and_render(request: &Request) -> Result<String, String> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("loading the kubeconfig: {e}"))?;
    let namespace = request
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))?;
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client, &namespace);
    let secret = secrets.get(&request.name).await.map_err(|e| match e {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    })?;
    Ok(render(&secret, &namespace))
}

fn render(secret: &Secret, namespace: &str) -> String {
    let mut out = String::new();
    let name = secret.metadata.name.as_deref().unwrap_or("<unnamed>");
    let _ = writeln!(out, "Name:      {name}");
    let _ = writeln!(out, "Namespace: {namespace}");
    let _ = writeln!(
        out,
        "Type:      {}",
        secret.type_.as_deref().unwrap_or("Opaque")
    );
    // `data` arrives base64-encoded; k8s-openapi's ByteString decodes it.
    let empty = BTreeMap::new();
    let data: &BTreeMap<String, ByteString> = secret.data.as_ref().unwrap_or(&empty);
    let _ = writeln!(out, "\nData ({} keys)", data.len());
    for (key, ByteString(value)) in data {
        let _ = writeln!(out, "\n{key} ({} bytes)", value.len());
        if contains(value, b"-----BEGIN CERTIFICATE-----") {
            describe_pem(value, &mut out);
        } else {
            match std::str::from_utf8(value) {
                Ok(text) => {
                    for line in text.lines() {
                        let _ = writeln!(out, "  {line}");
                    }
                }
                Err(_) => {
                    let _ = writeln!(out, "  <binary>");
                }
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every block of a PEM value; certificates described, others named.
fn describe_pem(value: &[u8], out: &mut String) {
    for (i, pem) in Pem::iter_from_buffer(value).enumerate() {
        match pem {
            Ok(pem) if pem.label == "CERTIFICATE" => {
                let _ = writeln!(out, "  Certificate {}:", i + 1);
                if let Err(e) = describe_certificate(&pem.contents, out) {
                    let _ = writeln!(out, "    <unreadable: {e}>");
                }
            }
            Ok(pem) => {
                let _ = writeln!(out, "  {}", pem.label);
            }
            Err(e) => {
                let _ = writeln!(out, "  <bad PEM: {e}>");
                break;
            }
        }
    }
}

fn describe_certificate(der: &[u8], out: &mut String) -> Result<(), String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    let sans: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().map(general_name).collect(),
        Ok(None) => Vec::new(),
        Err(e) => vec![format!("<unreadable: {e}>")],
    };
    let key_bits = cert.public_key().parsed().map_or(0, |key| key.key_size());
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(out, "    {:<21}{value}", format!("{label}:"));
    };
    line("Subject", &cert.subject().to_string());
    line("Issuer", &cert.issuer().to_string());
    line("Serial", &cert.raw_serial_as_string());
    line("Not before", &validity.not_before.to_string());
    let status = if validity.is_valid() {
        "valid"
    } else {
        "not valid now"
    };
    line("Not after", &format!("{} ({status})", validity.not_after));
    line(
        "SANs",
        &if sans.is_empty() {
            "<none>".to_string()
        } else {
            sans.join(", ")
        },
    );
    line(
        "Public key",
        &format!(
            "{} ({key_bits} bits)",
            cert.public_key().algorithm.algorithm.to_id_string()
        ),
    );
    line(
        "CA",
        if matches!(cert.basic_constraints(), Ok(Some(ext)) if ext.value.ca) {
            "yes"
        } else {
            "no"
        },
    );
    line(
        "Signature algorithm",
        &cert.signature_algorithm.algorithm.to_id_string(),
    );
    line("SHA-256 fingerprint", &colon_hex(&Sha256::digest(der)));
    Ok(())
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => format!("IP:{}", std::net::Ipv4Addr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => format!("IP:{}", std::net::Ipv6Addr::from(v6)),
                Err(_) => format!("IP:{}", colon_hex(bytes)),
            },
        },
        GeneralName::RFC822Name(email) => format!("email:{email}"),
        GeneralName::URI(uri) => format!("URI:{uri}"),
        other => format!("{other:?}"),
    }
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
