//! krew-wasm-permissions on arbitrary bytes, each input tried four ways: as a
//! JSON declaration (`Permissions::from_json`, and serde's `Deserialize`),
//! as a wasm binary (`Permissions::from_wasm`), and, when UTF-8, as one
//! permission spec (`str::parse::<Permission>`, `ByteSize`) and as a
//! `KREW_WASM_DENY` list (`Deny::parse`).
//!
//! Properties: never panics; a parsed set prints (`to_json`) to JSON that
//! parses back equal and prints the same again; every permission of a set,
//! and every spec that parses, prints (`Display`) to a spec that parses back
//! equal; a set covers each of its permissions and itself; narrowing by a
//! parsed deny list never widens.
#![no_main]

use krew_wasm_permissions::{ByteSize, Deny, Permission, Permissions};
use libfuzzer_sys::fuzz_target;

fn check_set(set: &Permissions, origin: &str) {
    let json = set.to_json();
    let again = Permissions::from_json(json.as_bytes())
        .unwrap_or_else(|e| panic!("{origin}: to_json {json} does not parse back: {e}"));
    assert_eq!(&again, set, "{origin}: {json}");
    assert_eq!(again.to_json(), json, "{origin}");
    let via_serde: Permissions = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{origin}: serde does not read {json}: {e}"));
    assert_eq!(&via_serde, set, "{origin}: serde");
    assert!(set.not_covered_by(set).is_empty(), "{origin}: {json}");
    assert!(set.narrowed(&Deny::All).is_empty());
    let mut rebuilt = Permissions::none();
    for permission in set.iter() {
        check_permission(&permission, origin);
        assert!(set.covers(&permission), "{origin}: {permission}");
        rebuilt.insert(permission);
    }
    assert_eq!(&rebuilt, set, "{origin}: rebuilt from iter()");
    let _ = set.memory_limit();
}

fn check_permission(permission: &Permission, origin: &str) {
    let _ = permission.describe();
    let spec = permission.to_string();
    let again: Permission = spec.parse().unwrap_or_else(|e| {
        panic!("{origin}: {permission:?} prints as {spec:?}, which does not parse: {e}")
    });
    assert_eq!(&again, permission, "{origin}: {spec:?}");
}

fuzz_target!(|data: &[u8]| {
    match Permissions::from_json(data) {
        Ok(set) => {
            let via_serde: Permissions =
                serde_json::from_slice(data).expect("from_json accepted what serde refuses");
            assert_eq!(via_serde, set);
            check_set(&set, "from_json");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    match Permissions::from_wasm(data) {
        Ok(Some(set)) => check_set(&set, "from_wasm"),
        Ok(None) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<Permission>() {
        Ok(permission) => check_permission(&permission, "spec"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(size) = text.parse::<ByteSize>() {
        let shown = size.to_string();
        assert_eq!(shown.parse::<ByteSize>(), Ok(size), "{text:?} -> {shown:?}");
        assert!(ByteSize::MIN <= size && size <= ByteSize::MAX);
    }
    match Deny::parse(text) {
        Ok(deny) => {
            let mut set = Permissions::none();
            if let Deny::These(denied) = &deny {
                for permission in denied {
                    check_permission(permission, "deny");
                    set.insert(permission.clone());
                }
            }
            let narrowed = set.narrowed(&deny);
            assert!(narrowed.not_covered_by(&set).is_empty(), "{text:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
