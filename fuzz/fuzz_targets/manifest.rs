//! `Manifest::parse` and the wasm layer / platform choice on arbitrary bytes.
//!
//! The first byte picks the response Content-Type (absent, each accepted
//! manifest type, `application/json`, a wasm layer type, or the text after
//! it up to the first newline); the rest is the manifest body.
//! Properties: never panics; errors print; a chosen layer has a wasm media
//! type, a sha256 digest and a size within MAX_PLUGIN_SIZE and is one of the
//! manifest's layers; a chosen index entry has a sha256 digest and is one of
//! the index's entries; `is_sha256_digest` agrees with the digest rule.
#![no_main]

use krew_wasm_oci::manifest::{
    self, ACCEPTED_MANIFEST_TYPES, MAX_PLUGIN_SIZE, Manifest, WASM_LAYER_MEDIA_TYPES,
};
use libfuzzer_sys::fuzz_target;

fn split(data: &[u8]) -> (Option<String>, &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return (None, data);
    };
    let fixed = |s: &str| (Some(s.to_string()), rest);
    match selector % 8 {
        0 => (None, rest),
        1..=4 => fixed(ACCEPTED_MANIFEST_TYPES[(selector % 8 - 1) as usize]),
        5 => fixed("application/json; charset=utf-8"),
        6 => fixed(WASM_LAYER_MEDIA_TYPES[0]),
        _ => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let header = String::from_utf8_lossy(&rest[..end]).into_owned();
            (Some(header), rest.get(end + 1..).unwrap_or_default())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = split(data);
    let parsed = match Manifest::parse(body, content_type.as_deref()) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    match parsed {
        Manifest::Image {
            media_type, layers, ..
        } => {
            assert!(
                ACCEPTED_MANIFEST_TYPES.contains(&media_type.as_str()),
                "image manifest of media type {media_type:?}"
            );
            for layer in &layers {
                let _ = manifest::is_sha256_digest(&layer.digest);
            }
            match manifest::select_wasm_layer(&layers) {
                Ok(layer) => {
                    assert!(WASM_LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()));
                    assert!(manifest::is_sha256_digest(&layer.digest));
                    assert!(layer.size <= MAX_PLUGIN_SIZE);
                    assert!(layers.contains(&layer));
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        Manifest::Index { manifests } => match manifest::select_wasm_platform(&manifests) {
            Ok(entry) => {
                assert!(manifest::is_sha256_digest(&entry.digest));
                assert!(entry.platform.is_some());
                assert!(manifests.contains(&entry));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        },
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let expected = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        assert_eq!(manifest::is_sha256_digest(text), expected, "{text:?}");
    }
});
