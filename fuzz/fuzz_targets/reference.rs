//! `PluginReference::parse` on arbitrary UTF-8.
//!
//! Properties: never panics; the accessors never panic; a parsed reference
//! prints in an ASCII canonical form that parses back to an equal reference
//! (and prints the same again); pinning it to a digest, or moving it to a
//! cosign signature tag (`with_tag`), round-trips too.
#![no_main]

use krew_wasm_oci::PluginReference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(reference) = PluginReference::parse(text) else {
        return;
    };
    let _ = (
        reference.registry(),
        reference.repository(),
        reference.tag(),
        reference.is_pinned(),
        reference.repository_basename(),
        reference.is_loopback(),
    );
    assert!(
        reference.tag().is_some() || reference.digest().is_some(),
        "{text:?}: neither tag nor digest"
    );
    let canonical = reference.to_string();
    // The canonical form goes into receipts, URLs and messages.
    assert!(
        canonical.bytes().all(|b| b.is_ascii_graphic()),
        "{text:?} printed as {canonical:?}, which is not printable ASCII"
    );
    let again = PluginReference::parse(&canonical)
        .unwrap_or_else(|e| panic!("{text:?} printed as {canonical:?}, which does not parse: {e}"));
    assert_eq!(again, reference, "{text:?} -> {canonical:?}");
    assert_eq!(again.to_string(), canonical, "{text:?}");

    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let pinned = reference.with_digest(&digest);
    assert!(pinned.is_pinned());
    let printed = pinned.to_string();
    let reparsed = PluginReference::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} pinned printed as {printed:?}: {e}"));
    assert_eq!(reparsed, pinned, "{text:?} pinned -> {printed:?}");

    // A cosign signature's tag, next to the plugin.
    let signature = reference.with_tag(&format!("{}.sig", digest.replace(':', "-")));
    let printed = signature.to_string();
    let reparsed = PluginReference::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} signature tag printed as {printed:?}: {e}"));
    assert_eq!(reparsed, signature, "{text:?} signature tag -> {printed:?}");
});
