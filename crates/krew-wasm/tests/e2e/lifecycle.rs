//! The life cycle of installed plugins: a moved tag, `outdated`, `upgrade`,
//! pinning, `rollback`, and `export`/`import` of a lock file.

use serde_json::Value;
use test_support::{Artifact, Registry, fixtures, sha256_digest};

use crate::{Sandbox, hello_output, push_fixture, stderr, stdout};

/// Pushes a fixture under `repo_tag`; returns the reference pinned by its
/// manifest digest and the wasm digest.
fn push_pinned(registry: &Registry, fixture: &str, repo_tag: &str) -> (String, String) {
    let wasm = std::fs::read(fixtures().p2(fixture)).expect("fixture");
    let digest = sha256_digest(&wasm);
    let manifest = Artifact::wasm(wasm, "application/wasm").push(registry, repo_tag);
    let repo = repo_tag.split(':').next().expect("repo");
    (format!("{}/{repo}@{manifest}", registry.host()), digest)
}

fn info(sandbox: &Sandbox, name: &str) -> Value {
    serde_json::from_str(&sandbox.ok(&["info", name, "-o", "json"])).expect("info -o json")
}

/// Runs an installed plugin through its link, as kubectl would.
fn run(sandbox: &Sandbox, name: &str, args: &[&str]) -> std::process::Output {
    sandbox
        .command(sandbox.bin().join(format!("kubectl-{name}")))
        .args(args)
        .output()
        .expect("running the plugin")
}

#[test]
fn an_unmoved_tag_is_a_no_op_and_a_moved_one_installs() {
    let registry = Registry::start();
    let (reference, hello) = push_fixture(&registry, "hello", "plugins/tool:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference]);
    let before = sandbox.snapshot();
    let out = sandbox.ok(&["pull", &reference]);
    assert!(out.contains("already installed and up to date"), "{out}");
    let out = sandbox.ok(&["upgrade", "tool"]);
    assert!(out.contains("tool is up to date"), "{out}");
    assert_eq!(sandbox.snapshot(), before, "a no-op changed the store");

    let (_, exit) = push_fixture(&registry, "exit-code", "plugins/tool:v1");
    let out = sandbox.ok(&["pull", &reference]);
    assert!(out.contains("updated tool"), "{out}");
    let receipt = info(&sandbox, "tool");
    assert_eq!(receipt["digest"], exit);
    assert_eq!(receipt["previous"]["digest"], hello);
    assert_eq!(run(&sandbox, "tool", &["3"]).status.code(), Some(3));
}

#[test]
fn outdated_lists_the_moved_and_upgrade_all_leaves_pinned_ones_alone() {
    let registry = Registry::start();
    let (a, _) = push_fixture(&registry, "hello", "plugins/a:v1");
    let (b, b_digest) = push_fixture(&registry, "hello", "plugins/b:v1");
    let (c, c_digest) = push_pinned(&registry, "hello", "plugins/c:v1");
    let sandbox = Sandbox::new();
    for reference in [&a, &b, &c] {
        sandbox.ok(&["pull", reference]);
    }
    // Another registry, gone by the time `outdated` asks it.
    let gone = Registry::start();
    let (d, _) = push_fixture(&gone, "hello", "plugins/d:v1");
    sandbox.ok(&["pull", &d]);
    drop(gone);

    let (_, a_latest) = push_fixture(&registry, "exit-code", "plugins/a:v1");
    push_fixture(&registry, "exit-code", "plugins/c:v1");
    let before = sandbox.snapshot();
    let output = sandbox.krew(&["outdated", "-o", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot check d"),
        "{}",
        stderr(&output)
    );
    let items: Vec<Value> = serde_json::from_str(&stdout(&output)).expect("json");
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "c", "d"], "{items:?}");
    assert_eq!(items[0]["latest"], a_latest);
    assert_eq!(items[0]["pinned"], false);
    assert_eq!(items[1]["pinned"], true);
    assert_eq!(items[1]["current"], c_digest);
    assert!(items[2]["error"].is_string(), "{items:?}");
    let output = sandbox.krew(&["outdated"]);
    assert!(output.status.success());
    let table = stdout(&output);
    assert!(table.starts_with("NAME"), "{table}");
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].starts_with("a ") && rows[0].contains(&a_latest[..19]),
        "{table}"
    );
    assert!(
        rows[1].starts_with("c ") && rows[1].contains("pinned"),
        "{table}"
    );
    assert_eq!(sandbox.snapshot(), before, "outdated changed the store");

    sandbox.ok(&["rm", "d"]);
    let out = sandbox.ok(&["upgrade", "--all"]);
    assert!(out.contains("upgraded a"), "{out}");
    assert!(out.contains("b is up to date"), "{out}");
    assert!(
        out.contains("c is pinned to sha256:") && out.contains("pull a tag to unpin"),
        "{out}"
    );
    let list = sandbox.list_json();
    assert_eq!(list[0]["digest"], a_latest);
    assert_eq!(list[1]["digest"], b_digest);
    assert_eq!(list[2]["digest"], c_digest);
    assert_eq!(run(&sandbox, "a", &["4"]).status.code(), Some(4));

    // Only the pinned plugin is left to list.
    let items: Vec<Value> =
        serde_json::from_str(&sandbox.ok(&["outdated", "-o", "json"])).expect("json");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["name"], "c");

    // Pulling a tag unpins it.
    let out = sandbox.ok(&["pull", &format!("{}/plugins/c:v1", registry.host())]);
    assert!(out.contains("updated c"), "{out}");
    assert_eq!(info(&sandbox, "c")["pinned"], false);

    // An unknown name upgrades nothing.
    let err = sandbox.fails(&["upgrade", "a", "nope"]);
    assert!(err.contains("`nope`"), "{err}");
}

#[test]
fn rollback_returns_to_the_previous_version_with_its_grants() {
    let registry = Registry::start();
    let (reference, declared) = push_fixture(&registry, "declared-probe", "plugins/tool:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference, "--yes"]);
    sandbox.ok(&["revoke", "tool", "dir:."]);
    let granted = info(&sandbox, "tool")["granted"].clone();
    assert_eq!(granted["env"], serde_json::json!(["PROBE_GREETING"]));

    // Nothing to roll back to yet.
    let before = sandbox.snapshot();
    let err = sandbox.fails(&["rollback", "tool"]);
    assert!(err.contains("no previous version"), "{err}");
    assert_eq!(sandbox.snapshot(), before);

    let (_, hello) = push_fixture(&registry, "hello", "plugins/tool:v1");
    let out = sandbox.ok(&["upgrade", "tool"]);
    assert!(
        out.contains("upgraded tool") && out.contains("krew-wasm rollback tool"),
        "{out}"
    );
    assert_eq!(stdout(&run(&sandbox, "tool", &["x"])), hello_output(&["x"]));
    // Hello asks for nothing: the grants the old version asked for went.
    assert!(info(&sandbox, "tool")["granted"].is_null());

    let out = sandbox.ok(&["rollback", "tool"]);
    assert!(out.contains("rolled back tool"), "{out}");
    let receipt = info(&sandbox, "tool");
    assert_eq!(receipt["digest"], declared);
    assert_eq!(receipt["granted"], granted);
    assert!(receipt["previous"].is_null(), "{receipt}");
    let output = sandbox
        .command(sandbox.bin().join("kubectl-tool"))
        .env("PROBE_GREETING", "hi")
        .output()
        .expect("run");
    assert!(
        !stdout(&output).starts_with("Hello from"),
        "still the new code: {}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("env PROBE_GREETING=hi"),
        "the recorded grant was not applied: {}",
        stdout(&output)
    );
    assert!(
        !sandbox
            .root()
            .join("blobs/sha256")
            .join(&hello[7..])
            .exists(),
        "the version rolled back from was kept"
    );

    // The previous version was used up.
    let before = sandbox.snapshot();
    let err = sandbox.fails(&["rollback", "tool"]);
    assert!(err.contains("no previous version"), "{err}");
    assert_eq!(sandbox.snapshot(), before);
    let err = sandbox.fails(&["rollback", "nope"]);
    assert!(err.contains("no plugin named `nope`"), "{err}");

    // The tag still points at hello: upgrade goes forward again.
    let out = sandbox.ok(&["upgrade", "tool"]);
    assert!(out.contains("upgraded tool"), "{out}");
    assert_eq!(stdout(&run(&sandbox, "tool", &["y"])), hello_output(&["y"]));
}

#[test]
fn rollback_refuses_a_damaged_previous_blob() {
    let registry = Registry::start();
    let (reference, hello) = push_fixture(&registry, "hello", "plugins/tool:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &reference]);
    push_fixture(&registry, "exit-code", "plugins/tool:v1");
    sandbox.ok(&["pull", &reference]);
    let blob = sandbox.root().join("blobs/sha256").join(&hello[7..]);
    std::fs::remove_file(&blob).expect("rm blob");
    std::fs::write(&blob, b"\0asm tampered").expect("write blob");
    let before = sandbox.snapshot();
    let err = sandbox.fails(&["rollback", "tool"]);
    assert!(err.contains("missing or corrupt"), "{err}");
    assert_eq!(sandbox.snapshot(), before);
}

/// A store with three plugins: one from a tag, one with grants, one pinned.
fn exporting_world(registry: &Registry) -> Sandbox {
    let sandbox = Sandbox::new();
    let (a, _) = push_fixture(registry, "hello", "plugins/a:v1");
    let (probe, _) = push_fixture(registry, "declared-probe", "plugins/probe:v1");
    let (c, _) = push_pinned(registry, "exit-code", "plugins/c:v1");
    sandbox.ok(&["pull", &a]);
    sandbox.ok(&["pull", &probe, "--yes"]);
    sandbox.ok(&["revoke", "probe", "dir:."]);
    sandbox.ok(&["pull", &c]);
    sandbox
}

#[test]
fn export_and_import_reproduce_the_plugins_by_digest() {
    let registry = Registry::start();
    let source = exporting_world(&registry);
    let lock = source.ok(&["export"]);
    let document: Value = serde_json::from_str(&lock).expect("the lock is JSON");
    assert_eq!(document["version"], 1);
    assert_eq!(document["plugins"].as_array().map(Vec::len), Some(3));
    assert!(
        document["plugins"][0]["reference"]
            .as_str()
            .is_some_and(|r| r.contains("/plugins/a@sha256:")),
        "{lock}"
    );
    let file = source.home().join("plugins.lock");
    source.ok(&["export", "-o", file.to_str().expect("utf-8")]);
    assert_eq!(std::fs::read_to_string(&file).expect("lock"), lock);

    // The tag moves after the export: the lock still installs the old digest.
    push_fixture(&registry, "exit-code", "plugins/a:v1");

    let target = Sandbox::new();
    let out = target.ok(&["import", file.to_str().expect("utf-8")]);
    assert!(
        out.contains("installed a") && out.contains("installed c"),
        "{out}"
    );
    let fields = |sandbox: &Sandbox| -> Vec<Value> {
        sandbox
            .list_json()
            .iter()
            .map(|entry| {
                let name = entry["name"].as_str().expect("name");
                let receipt = info(sandbox, name);
                serde_json::json!([
                    receipt["name"],
                    receipt["source"],
                    receipt["manifestDigest"],
                    receipt["digest"],
                    receipt["pinned"],
                    receipt["granted"],
                    entry["status"],
                ])
            })
            .collect()
    };
    assert_eq!(fields(&target), fields(&source));
    assert_eq!(stdout(&run(&target, "a", &["z"])), hello_output(&["z"]));

    // Importing again changes nothing.
    let before = target.snapshot();
    let out = target.ok(&["import", file.to_str().expect("utf-8")]);
    assert_eq!(out.matches("is already installed at").count(), 3, "{out}");
    assert_eq!(target.snapshot(), before);
}

#[test]
fn a_lock_that_does_not_match_the_registry_installs_nothing() {
    let registry = Registry::start();
    let source = exporting_world(&registry);
    let mut document: Value = serde_json::from_str(&source.ok(&["export"])).expect("json");
    // The last plugin's wasm digest is not what its manifest holds.
    document["plugins"][2]["digest"] = Value::String(format!("sha256:{}", "ab".repeat(32)));
    let file = source.home().join("tampered.lock");
    std::fs::write(&file, document.to_string()).expect("write");

    let target = Sandbox::new();
    let before = target.snapshot();
    let err = target.fails(&["import", file.to_str().expect("utf-8")]);
    assert!(
        err.contains("plugin `probe`") && err.contains("the lock file says"),
        "{err}"
    );
    assert!(err.contains("nothing was installed"), "{err}");
    assert_eq!(
        target.snapshot(),
        before,
        "a refused import wrote something"
    );

    // A manifest digest the registry does not have: refused, naming the plugin.
    let mut document: Value = serde_json::from_str(&source.ok(&["export"])).expect("json");
    let reference = document["plugins"][0]["reference"].as_str().expect("ref");
    let (repo, _) = reference.split_once('@').expect("pinned");
    document["plugins"][0]["reference"] =
        Value::String(format!("{repo}@sha256:{}", "cd".repeat(32)));
    std::fs::write(&file, document.to_string()).expect("write");
    let err = target.fails(&["import", file.to_str().expect("utf-8")]);
    assert!(err.contains("plugin `a`"), "{err}");
    assert_eq!(target.snapshot(), before);
}

#[test]
fn a_malformed_lock_is_refused_with_its_line_and_field() {
    let sandbox = Sandbox::new();
    let file = sandbox.home().join("bad.lock");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let entry = |extra: &str, reference: &str| {
        format!(
            "{{\n  \"version\": 1,\n  \"plugins\": [\n    {{\n      \"name\": \"hello\",\n      \
             \"source\": \"127.0.0.1:5000/plugins/hello:v1\",\n      \"reference\": \"{reference}\",\n      \
             \"digest\": \"{digest}\"{extra}\n    }}\n  ]\n}}\n"
        )
    };
    let pinned = format!("127.0.0.1:5000/plugins/hello@{digest}");
    let cases = [
        (
            entry(",\n      \"grants\": {}", &pinned),
            "unknown field `grants`",
            "line 9",
        ),
        (
            entry("", "127.0.0.1:5000/plugins/hello:v1"),
            "field `reference`",
            "line 7",
        ),
        (
            entry("", "127.0.0.1:5000/plugins/hello@sha256:0"),
            "field `reference`",
            "line 7",
        ),
        (
            entry("", &pinned).replace("\"hello\"", "\"Hello\""),
            "field `name`",
            "line 5",
        ),
        (
            entry("", &format!("127.0.0.1:5000/plugins/other@{digest}")),
            "field `source`",
            "line 10",
        ),
        (
            "{\n  \"version\": 2,\n  \"plugins\": []\n}\n".to_string(),
            "field `version`",
            "line 2",
        ),
        (
            "{\n  \"version\": 1\n}\n".to_string(),
            "missing field `plugins`",
            "line 3",
        ),
    ];
    for (text, field, line) in cases {
        std::fs::write(&file, &text).expect("write");
        let err = sandbox.fails(&["import", file.to_str().expect("utf-8")]);
        assert!(err.contains(field) && err.contains(line), "{text}\n{err}");
        assert!(err.contains("nothing was installed"), "{err}");
        assert!(
            !sandbox.root().exists(),
            "a malformed lock wrote {:?}",
            sandbox.snapshot()
        );
    }
}
