//! The store's receipt reader on arbitrary bytes: `serde_json::from_slice::<Receipt>`
//! (what `Store::receipt` does after reading `receipts/<name>.json`), then
//! `Store::receipt`, `Store::entries` and `Store::problems` on a scratch
//! store holding the input as a receipt.
//!
//! Properties: never panics; a receipt that parses serialises (compact and
//! pretty, as the store writes it) to JSON that parses back equal; the store
//! reads the file exactly when serde does and its name matches; the blob and
//! precompiled-artifact paths of a receipt the store accepts are files
//! directly in `blobs/sha256/` and `cache/<engine>/`.
//!
//! No `Receipt` is ever constructed here, so the target keeps compiling as
//! fields are added to it (any field type that is Serialize + Deserialize +
//! PartialEq + Debug).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use krew_wasm_store::{PluginName, Receipt, Store, is_sha256_digest};
use libfuzzer_sys::fuzz_target;

/// A scratch store under the temp directory, one per fuzzing process.
fn scratch() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root =
            std::env::temp_dir().join(format!("krew-wasm-fuzz-receipt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("receipts")).expect("creating the scratch store");
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let parsed = serde_json::from_slice::<Receipt>(data);
    if let Ok(receipt) = &parsed {
        let _ = (receipt.digest_hex(), receipt.kind.describe());
        for json in [
            serde_json::to_vec(receipt).expect("serialising a receipt"),
            serde_json::to_vec_pretty(receipt).expect("serialising a receipt"),
        ] {
            let again: Receipt = serde_json::from_slice(&json).unwrap_or_else(|e| {
                panic!(
                    "{receipt:?} serialises to {}, which does not parse back: {e}",
                    String::from_utf8_lossy(&json)
                )
            });
            assert_eq!(&again, receipt);
        }
    }

    // The file name the store would give this receipt, when that is a valid
    // plugin name; else a fixed one (Store::receipt then reports a mismatch).
    let name = match &parsed {
        Ok(receipt) if PluginName::new(&receipt.name).is_ok() => receipt.name.clone(),
        _ => "hello".to_string(),
    };
    let store = Store::new(scratch().clone());
    let path = store.receipt_path(&name);
    std::fs::write(&path, data).expect("writing the scratch receipt");
    let read = store.receipt(&name);
    match (&parsed, &read) {
        (Ok(receipt), Ok(stored)) => assert_eq!(receipt, stored),
        // The store also refuses what serde accepts but must never become
        // a path: a digest that is not sha256:<64 hex>.
        (Ok(receipt), Err(e)) => assert!(
            receipt.name != name
                || !is_sha256_digest(&receipt.digest)
                || !is_sha256_digest(&receipt.manifest_digest),
            "serde reads the receipt of {name}, the store does not: {e}"
        ),
        (Err(_), Ok(stored)) => panic!("the store reads {stored:?}, serde does not"),
        (Err(_), Err(e)) => {
            let _ = e.to_string();
        }
    }
    let entries = store.entries().expect("listing the scratch store");
    assert_eq!(entries.len(), 1, "{entries:?}");
    if let Ok(receipt) = &read {
        let _ = store.problems(receipt);
        // What Store::receipt says of names (`../x` must never become a
        // path) holds for the digest too: a run opens these two paths.
        let blobs = scratch().join("blobs").join("sha256");
        let cache = scratch().join("cache").join("engine");
        for (path, under) in [
            (store.blob_path(&receipt.digest), &blobs),
            (store.artifact_path("engine", &receipt.digest), &cache),
        ] {
            assert!(
                path.parent() == Some(under.as_path()),
                "the receipt's digest {:?} makes the store open {}, outside {}",
                receipt.digest,
                path.display(),
                under.display()
            );
        }
    }
    std::fs::remove_file(&path).expect("removing the scratch receipt");
});
