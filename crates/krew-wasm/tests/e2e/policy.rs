//! The trust policy (`$KREW_WASM_ROOT/policy.yaml`): per registry or
//! repository prefix, a signature by given keys is required before a plugin
//! is installed (`pull`) or run (`run REF`, and every start of an installed
//! plugin, from what its receipt records). Keys are made by openssl and
//! signatures by `krew-wasm sign`, against Debian's docker-registry.

use std::path::{Path, PathBuf};
use std::process::Output;

use test_support::Registry;

use crate::signing::key_pair;
use crate::{Sandbox, hello_output, push_fixture, stderr, stdout};

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// Writes the sandbox's policy: `rules` is the YAML of the `rules` list.
fn write_policy(sandbox: &Sandbox, rules: &str) -> PathBuf {
    let path = sandbox.root().join("policy.yaml");
    std::fs::create_dir_all(sandbox.root()).expect("store root");
    std::fs::write(
        &path,
        format!("apiVersion: krew-wasm.dev/v1\nkind: TrustPolicy\nrules:\n{rules}"),
    )
    .expect("writing policy.yaml");
    path
}

/// `kubectl-hello ARGS` from the sandbox's bin, as kubectl would start it.
fn run_installed(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox
        .command(sandbox.bin().join("kubectl-hello"))
        .args(args)
        .output()
        .expect("running kubectl-hello")
}

/// Keys `trusted` and `other` in the store root (the policy names
/// `trusted.pub` relative to itself).
fn keys(sandbox: &Sandbox) -> [(PathBuf, PathBuf); 2] {
    std::fs::create_dir_all(sandbox.root()).expect("store root");
    [
        key_pair(&sandbox.root(), "trusted", false),
        key_pair(&sandbox.root(), "other", false),
    ]
}

#[test]
fn a_rule_requires_a_signature_by_its_key_at_pull_and_the_receipt_records_it() {
    let registry = Registry::start();
    let host = registry.host();
    let (reference, _) = push_fixture(&registry, "hello", "team/hello:v1");
    let (open_reference, _) = push_fixture(&registry, "hello", "scratch/hello:v1");
    let (elsewhere, _) = push_fixture(&registry, "hello", "elsewhere/hello:v1");
    let sandbox = Sandbox::new();
    let [(trusted_key, _), (other_key, _)] = keys(&sandbox);
    write_policy(
        &sandbox,
        &format!(
            "  - match: {host}/team\n    keys: [trusted.pub]\n  - match: {host}/scratch\n    allowUnsigned: true\n"
        ),
    );
    let before = sandbox.snapshot();

    // Unsigned: refused, naming the rule and the file's line; nothing written.
    let err = sandbox.fails(&["pull", &reference, "--yes"]);
    assert!(
        err.contains(&format!("rule `{host}/team` (")) && err.contains("policy.yaml:4)"),
        "{err}"
    );
    assert!(err.contains("not signed"), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    assert_eq!(sandbox.snapshot(), before, "a refused pull writes nothing");

    // Signed by a key the rule does not name: refused.
    sandbox.ok(&["sign", &reference, "--key", &s(&other_key)]);
    let err = sandbox.fails(&["pull", &reference, "--yes"]);
    assert!(err.contains("none valid for key"), "{err}");
    assert_eq!(sandbox.snapshot(), before);

    // A repository no rule covers: refused, with the way out.
    let err = sandbox.fails(&["pull", &elsewhere, "--yes"]);
    assert!(
        err.contains(&format!("no rule for {host}/elsewhere/hello"))
            && err.contains("unmatched: allow"),
        "{err}"
    );
    assert_eq!(sandbox.snapshot(), before);

    // Signed by the trusted key: installed, and the receipt says by whom.
    sandbox.ok(&["sign", &reference, "--key", &s(&trusted_key)]);
    let out = sandbox.krew(&["pull", &reference, "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("signature verified"),
        "{}",
        stderr(&out)
    );
    let listed = sandbox.list_json();
    let record = &listed[0]["signatures"][0];
    let fingerprint = record["keyFingerprint"]
        .as_str()
        .expect("a key fingerprint");
    assert!(fingerprint.starts_with("SHA256:"), "{record}");
    assert!(
        record["requiredBy"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("rule `{host}/team`"))),
        "{record}"
    );
    assert_eq!(record["form"], "cosign .sig tag");
    let table = sandbox.ok(&["list"]);
    let short = &fingerprint["SHA256:".len().."SHA256:".len() + 8];
    assert!(
        table.contains("SIGNED BY") && table.contains(&format!("key {short}")),
        "{table}"
    );
    let info = sandbox.ok(&["info", "hello"]);
    assert!(
        info.contains(&format!("Signature:       signed by key {fingerprint} (cosign .sig tag), required by rule `{host}/team`")),
        "{info}"
    );
    let run = run_installed(&sandbox, &["a"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(stdout(&run), hello_output(&["a"]));

    // allowUnsigned: installed with no signature, and the receipt records none.
    sandbox.ok(&["pull", &open_reference, "--name", "open", "--yes"]);
    let info = sandbox.ok(&["info", "open"]);
    assert!(info.contains("Signature:       not checked"), "{info}");
}

#[test]
fn a_rule_added_after_install_stops_the_plugin_until_verify_records_a_signature() {
    let registry = Registry::start();
    let host = registry.host();
    let (reference, _) = push_fixture(&registry, "hello", "team/hello:v1");
    let sandbox = Sandbox::new();
    let [(trusted_key, _), _] = keys(&sandbox);
    sandbox.ok(&["pull", &reference, "--yes"]);
    assert!(run_installed(&sandbox, &[]).status.success());

    sandbox.ok(&["sign", &reference, "--key", &s(&trusted_key)]);
    write_policy(
        &sandbox,
        &format!("  - match: {host}/team\n    keys: [trusted.pub]\n"),
    );
    let refused = run_installed(&sandbox, &["x"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert_eq!(stdout(&refused), "", "the plugin never started");
    let err = stderr(&refused);
    assert!(err.contains("records no signature check"), "{err}");
    assert!(err.contains("krew-wasm verify hello"), "{err}");

    // `verify NAME` with no key checks the policy's rule and records it.
    sandbox.ok(&["verify", "hello"]);
    let run = run_installed(&sandbox, &["x"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(stdout(&run), hello_output(&["x"]));

    // The rule now names another key: the record no longer satisfies it.
    std::fs::copy(
        sandbox.root().join("other.pub"),
        sandbox.root().join("trusted.pub"),
    )
    .expect("replacing the trusted key");
    let refused = run_installed(&sandbox, &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("records signatures by key SHA256:"),
        "{}",
        stderr(&refused)
    );

    // No policy: runs again.
    std::fs::remove_file(sandbox.root().join("policy.yaml")).expect("rm policy");
    assert!(run_installed(&sandbox, &[]).status.success());
}

#[test]
fn run_ref_obeys_the_policy_before_downloading() {
    let registry = Registry::start();
    let host = registry.host();
    let (reference, _) = push_fixture(&registry, "hello", "team/hello:v1");
    let sandbox = Sandbox::new();
    let [(trusted_key, _), _] = keys(&sandbox);
    write_policy(
        &sandbox,
        &format!("  - match: {host}\n    keys: [trusted.pub]\n"),
    );

    let out = sandbox.krew(&["run", &reference, "--", "a"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "", "nothing ran");
    assert!(stderr(&out).contains("was not run"), "{}", stderr(&out));
    assert!(stderr(&out).contains("not signed"), "{}", stderr(&out));

    sandbox.ok(&["sign", &reference, "--key", &s(&trusted_key)]);
    assert_eq!(
        sandbox.ok(&["run", &reference, "--", "a"]),
        hello_output(&["a"])
    );

    // --verify-key on top of the policy: another key is refused.
    let other_pub = sandbox.root().join("other.pub");
    let err = sandbox.fails(&["run", &reference, "--verify-key", &s(&other_pub), "--", "a"]);
    assert!(
        err.contains("--verify-key requires a signature") && err.contains("was not run"),
        "{err}"
    );
    // A local file has no registry signature to check.
    let file = test_support::fixtures().p2("hello");
    let err = sandbox.fails(&["run", &s(&file), "--verify-key", &s(&other_pub)]);
    assert!(err.contains("local file"), "{err}");
}

#[test]
fn a_broken_policy_is_named_by_line_and_field_and_blocks_every_pull() {
    let registry = Registry::start();
    let host = registry.host();
    let (reference, _) = push_fixture(&registry, "hello", "team/hello:v1");
    let sandbox = Sandbox::new();
    let path = write_policy(
        &sandbox,
        &format!(
            "  - match: {host}\n    identities:\n      - subject: me@example.com\n    trustedRoot: root.json\n"
        ),
    );
    let before = sandbox.snapshot();
    let expected = format!(
        "{}:6: rules[0].identities[0].issuer: missing",
        path.display()
    );
    let err = sandbox.fails(&["policy"]);
    assert!(err.contains(&expected), "{err}");
    let err = sandbox.fails(&["pull", &reference, "--yes"]);
    assert!(err.contains(&expected), "{err}");
    assert_eq!(sandbox.snapshot(), before);
    // Read before the registry is contacted: this one does not answer.
    let err = sandbox.fails(&["pull", "127.0.0.1:1/nowhere/hello:v1", "--yes"]);
    assert!(err.contains(&expected), "{err}");

    // A YAML mistake: line and column.
    std::fs::write(
        &path,
        "apiVersion: krew-wasm.dev/v1\nkind: TrustPolicy\nrules:\n  - match: [x\n",
    )
    .expect("write");
    let err = sandbox.fails(&["policy"]);
    assert!(err.contains(&format!("{}:", path.display())), "{err}");

    // A key file that is not a key: `policy` says so before any pull does.
    std::fs::write(sandbox.root().join("bad.pub"), "not a key").expect("write");
    write_policy(
        &sandbox,
        &format!("  - match: {host}\n    keys: [bad.pub]\n"),
    );
    let err = sandbox.fails(&["policy"]);
    assert!(
        err.contains("bad.pub") && err.contains("PUBLIC KEY"),
        "{err}"
    );

    // A good one is shown, and explains a reference.
    write_policy(
        &sandbox,
        &format!("  - match: {host}/open\n    allowUnsigned: true\n"),
    );
    let shown = sandbox.ok(&["policy"]);
    assert!(
        shown.contains("valid, 1 rule(s)") && shown.contains("(anything else)"),
        "{shown}"
    );
    let explained = sandbox.ok(&["policy", &format!("{host}/open/x:v1")]);
    assert!(explained.contains("no signature required"), "{explained}");
    let err = sandbox.fails(&["policy", &reference]);
    assert!(err.contains("no rule"), "{err}");

    // KREW_WASM_POLICY names a file that must exist.
    let out = sandbox
        .command(crate::krew_wasm_exe())
        .env("KREW_WASM_POLICY", sandbox.home().join("missing.yaml"))
        .args(["pull", &reference, "--yes"])
        .output()
        .expect("krew-wasm");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("KREW_WASM_POLICY"),
        "{}",
        stderr(&out)
    );
}
