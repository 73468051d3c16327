//! Plugin indexes: a file index and one published to the real registry with
//! `index push` (read back by skopeo), `index add|list|update|remove`,
//! `search`, `pull NAME` and `pull INDEX/NAME` run through kubectl, and bad
//! documents refused with nothing written.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use test_support::{Registry, require_tool, sha256_digest};

use crate::{Sandbox, hello_output, push_fixture, stderr, stdout};

const INDEX_CONFIG: &str = "application/vnd.krew-wasm.index.config.v1+json";
const INDEX_LAYER: &str = "application/vnd.krew-wasm.index.v1+yaml";

/// An index document listing `(name, reference, description)`.
fn document(plugins: &[(&str, &str, &str)]) -> String {
    let mut out = String::from("apiVersion: krew-wasm.dev/v1\nkind: PluginIndex\nplugins:\n");
    for (name, reference, description) in plugins {
        out.push_str(&format!(
            "  - name: {name}\n    reference: {reference}\n    description: {description}\n    \
             homepage: https://example.com/{name}\n"
        ));
    }
    out
}

fn write(sandbox: &Sandbox, file: &str, text: &str) -> PathBuf {
    let path = sandbox.home().join(file);
    std::fs::write(&path, text).expect("writing an index file");
    path
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON output")
}

/// `kubectl ARGS`, with the sandbox's PATH (its bin directory first).
fn kubectl(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    sandbox
        .command(require_tool("kubectl"))
        .args(args)
        .output()
        .expect("running kubectl")
}

fn index_files(sandbox: &Sandbox) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(sandbox.root().join("indexes")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn file_index_add_list_search_pull_by_name_and_index_name_then_remove() {
    let registry = Registry::start();
    let (hello, _) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let (exit_code, _) = push_fixture(&registry, "exit-code", "plugins/kubectl-exit-code:v1");
    let sandbox = Sandbox::new();
    let file = write(
        &sandbox,
        "plugins.yaml",
        &document(&[
            ("hello", &hello, "Says hello and prints its arguments"),
            ("tool", &exit_code, "Exits with the code it is given"),
        ]),
    );
    let file = file.to_str().unwrap();

    let out = sandbox.ok(&["index", "add", "team", file]);
    assert!(
        out.contains("added index team") && out.contains("2 plugin(s)"),
        "{out}"
    );
    assert_eq!(index_files(&sandbox), ["team.json"]);

    let out = sandbox.ok(&["index", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("UPDATED"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("team") && lines[1].contains(file) && lines[1].contains(" 2 "),
        "{out}"
    );
    let listed = json(&sandbox.ok(&["index", "list", "-o", "json"]));
    assert_eq!(listed[0]["name"], "team");
    assert_eq!(listed[0]["type"], "file");
    assert_eq!(listed[0]["location"], file);
    assert_eq!(listed[0]["plugins"], 2);
    assert!(
        listed[0]["updatedAt"].as_str().unwrap().ends_with('Z'),
        "{listed}"
    );

    // search: all, by name, by description; none installed yet.
    let out = sandbox.ok(&["search"]);
    assert!(
        out.contains("team/hello") && out.contains("team/tool"),
        "{out}"
    );
    assert!(out.contains("Says hello") && out.contains(&hello), "{out}");
    let found = json(&sandbox.ok(&["search", "EXITS", "-o", "json"]));
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["index"], "team");
    assert_eq!(found[0]["name"], "tool");
    assert_eq!(found[0]["reference"], exit_code.as_str());
    assert_eq!(found[0]["installed"], false);
    let output = sandbox.krew(&["search", "nothing-like-this"]);
    assert!(output.status.success());
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("no plugin matches"),
        "{}",
        stderr(&output)
    );

    // pull NAME: the index's reference, under the index's name.
    let out = sandbox.ok(&["pull", "hello"]);
    assert!(out.contains("installed hello"), "{out}");
    let output = kubectl(&sandbox, &["hello", "a", "b"]);
    assert_eq!(
        stdout(&output),
        hello_output(&["a", "b"]),
        "{}",
        stderr(&output)
    );
    // The receipt records the registry reference: upgrade and outdated keep working.
    let receipt = json(&sandbox.ok(&["info", "hello", "-o", "json"]));
    assert_eq!(receipt["source"], hello.as_str());
    let out = sandbox.ok(&["upgrade", "hello"]);
    assert!(out.contains("hello is up to date"), "{out}");

    // pull INDEX/NAME: installed as `tool`, not as the repository's `exit-code`.
    let out = sandbox.ok(&["pull", "team/tool"]);
    assert!(out.contains("installed tool"), "{out}");
    let output = kubectl(&sandbox, &["tool", "3"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(!sandbox.bin().join("kubectl-exit_code").exists());

    let found = json(&sandbox.ok(&["search", "-o", "json"]));
    for item in found.as_array().unwrap() {
        assert_eq!(item["installed"], true, "{item}");
    }
    let out = sandbox.ok(&["search", "hello"]);
    assert!(
        out.lines().nth(1).unwrap().trim_end().ends_with("yes"),
        "{out}"
    );

    // Removing the index leaves the plugins installed; NAME no longer resolves.
    let out = sandbox.ok(&["index", "remove", "team"]);
    assert!(out.contains("removed index team"), "{out}");
    assert_eq!(index_files(&sandbox), Vec::<String>::new());
    assert_eq!(sandbox.list_json().len(), 2);
    let err = sandbox.fails(&["pull", "hello"]);
    assert!(
        err.contains("no index is configured") && err.contains("krew-wasm index add"),
        "{err}"
    );
    let err = sandbox.fails(&["index", "remove", "team"]);
    assert!(err.contains("no index named `team`"), "{err}");
}

#[test]
fn oci_index_pushed_read_back_by_skopeo_added_and_updated() {
    let registry = Registry::start();
    let host = registry.host();
    let (hello, _) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let (exit_code, _) = push_fixture(&registry, "exit-code", "plugins/exit-code:v1");
    let sandbox = Sandbox::new();
    let text = document(&[("hello", &hello, "Says hello")]);
    let file = write(&sandbox, "index.yaml", &text);
    let index_ref = format!("{host}/indexes/main:v1");

    let output = sandbox.krew(&["index", "push", file.to_str().unwrap(), &index_ref]);
    assert!(output.status.success(), "{}", stderr(&output));
    let digest = stdout(&output).trim_end().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    // What the registry serves, read by another tool.
    let skopeo = Command::new(require_tool("skopeo"))
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{index_ref}"),
        ])
        .output()
        .expect("running skopeo");
    assert!(skopeo.status.success(), "{}", stderr(&skopeo));
    assert_eq!(sha256_digest(&skopeo.stdout), digest);
    let manifest: Value = serde_json::from_slice(&skopeo.stdout).expect("manifest JSON");
    assert_eq!(manifest["config"]["mediaType"], INDEX_CONFIG);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], INDEX_LAYER);
    assert_eq!(layers[0]["digest"], sha256_digest(text.as_bytes()));

    let out = sandbox.ok(&["index", "add", "main", &index_ref]);
    assert!(
        out.contains("added index main") && out.contains("1 plugin(s)"),
        "{out}"
    );
    let listed = json(&sandbox.ok(&["index", "list", "-o", "json"]));
    assert_eq!(listed[0]["type"], "oci");
    assert_eq!(listed[0]["location"], format!("oci://{index_ref}"));
    assert_eq!(listed[0]["manifestDigest"], digest.as_str());

    sandbox.ok(&["pull", "main/hello"]);
    let output = kubectl(&sandbox, &["hello", "x"]);
    assert_eq!(stdout(&output), hello_output(&["x"]), "{}", stderr(&output));

    // The tag moves to a new document: update fetches it.
    let out = sandbox.ok(&["index", "update"]);
    assert!(
        out.contains("index main is up to date (1 plugin(s))"),
        "{out}"
    );
    let text = document(&[
        ("hello", &hello, "Says hello"),
        ("exit-code", &exit_code, "Exits"),
    ]);
    let file = write(&sandbox, "index.yaml", &text);
    let output = sandbox.krew(&["index", "push", file.to_str().unwrap(), &index_ref]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = sandbox.ok(&["index", "update", "main"]);
    assert!(
        out.contains("updated index main") && out.contains("2 plugin(s), was 1"),
        "{out}"
    );
    let found = json(&sandbox.ok(&["search", "exit", "-o", "json"]));
    assert_eq!(found[0]["name"], "exit-code");

    // A plugin is not an index: refused, saying what it is, nothing written.
    let before = sandbox.snapshot();
    let err = sandbox.fails(&["index", "add", "wrong", &hello]);
    assert!(
        err.contains("is not a krew-wasm plugin index") && err.contains("krew-wasm pull"),
        "{err}"
    );
    let err = sandbox.fails(&["index", "add", "gone", &format!("{host}/indexes/none:v1")]);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn ambiguous_unknown_and_misdirected_names() {
    let registry = Registry::start();
    let (hello, _) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let sandbox = Sandbox::new();
    let a = write(&sandbox, "a.yaml", &document(&[("hello", &hello, "A")]));
    let b = write(
        &sandbox,
        "b.json",
        &format!(
            "{{\"apiVersion\": \"krew-wasm.dev/v1\", \"kind\": \"PluginIndex\", \"plugins\": \
         [{{\"name\": \"hello\", \"reference\": \"{hello}\"}}]}}"
        ),
    );
    sandbox.ok(&["index", "add", "a", a.to_str().unwrap()]);
    sandbox.ok(&["index", "add", "b", b.to_str().unwrap()]);
    let before = sandbox.snapshot();

    let err = sandbox.fails(&["pull", "hello"]);
    assert!(
        err.contains("in several indexes") && err.contains("a/hello, b/hello"),
        "{err}"
    );
    let err = sandbox.fails(&["pull", "nope"]);
    assert!(
        err.contains("no plugin named `nope`")
            && err.contains("(a, b)")
            && err.contains("krew-wasm search"),
        "{err}"
    );
    let err = sandbox.fails(&["pull", "c/hello"]);
    assert!(
        err.contains("no index is named `c`") && err.contains("configured: a, b"),
        "{err}"
    );
    let err = sandbox.fails(&["pull", "a/nope"]);
    assert!(
        err.contains("index `a` has no plugin named `nope`"),
        "{err}"
    );
    // An index name that is taken, or not a name.
    let err = sandbox.fails(&["index", "add", "a", b.to_str().unwrap()]);
    assert!(
        err.contains("already added") && err.contains("a.yaml"),
        "{err}"
    );
    let err = sandbox.fails(&["index", "add", "Team", b.to_str().unwrap()]);
    assert!(err.contains("not a valid index name"), "{err}");
    let err = sandbox.fails(&["index", "add", "c", "./missing.yaml"]);
    assert!(err.contains("no such file"), "{err}");
    assert_eq!(
        sandbox.snapshot(),
        before,
        "a refused command changed the store"
    );

    // Qualified, the choice installs.
    sandbox.ok(&["pull", "b/hello"]);
    let output = kubectl(&sandbox, &["hello"]);
    assert_eq!(stdout(&output), hello_output(&[]), "{}", stderr(&output));
}

#[test]
fn invalid_index_files_are_refused_with_nothing_written() {
    let sandbox = Sandbox::new();
    let good = document(&[("hello", "127.0.0.1:5000/plugins/hello:v1", "Says hello")]);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "bad YAML",
            good.replace(
                "    description: Says hello",
                "    description: [Says hello",
            ),
            vec!["line 7", "column"],
        ),
        (
            "unknown field",
            good.replace("    homepage:", "    website:"),
            vec!["line 7", "unknown field `website`"],
        ),
        (
            "bad plugin name",
            good.replace("name: hello", "name: Hello_World"),
            vec![
                "line 4",
                "plugins[0].name",
                "`Hello_World` is not a valid plugin name",
            ],
        ),
        (
            "built-in name",
            good.replace("name: hello", "name: get"),
            vec!["line 4", "built-in kubectl command"],
        ),
        (
            "bad reference",
            good.replace("127.0.0.1:5000/plugins/hello:v1", "hello:v1"),
            vec!["line 5", "plugins[0].reference (hello)", "no registry host"],
        ),
        (
            "duplicate names",
            document(&[
                ("hello", "127.0.0.1:5000/plugins/hello:v1", "One"),
                ("hello", "127.0.0.1:5000/plugins/other:v1", "Two"),
            ]),
            vec!["line 8", "listed twice", "first at line 4"],
        ),
        (
            "wrong version",
            good.replace("krew-wasm.dev/v1", "krew-wasm.dev/v9"),
            vec![
                "line 1",
                "`krew-wasm.dev/v9` is not supported",
                "`krew-wasm.dev/v1`",
            ],
        ),
        (
            "wrong kind",
            good.replace("kind: PluginIndex", "kind: Pod"),
            vec!["line 2", "kind: PluginIndex"],
        ),
        ("empty", String::new(), vec!["no `apiVersion`"]),
    ];
    for (what, text, expected) in &cases {
        let file = write(&sandbox, "bad.yaml", text);
        let err = sandbox.fails(&["index", "add", "bad", file.to_str().unwrap()]);
        assert!(err.contains("is not a valid plugin index"), "{what}: {err}");
        assert!(err.contains("nothing was added"), "{what}: {err}");
        for part in expected {
            assert!(err.contains(part), "{what}: expected `{part}` in: {err}");
        }
        assert!(
            !sandbox.root().join("indexes").exists(),
            "{what}: something was written under indexes/"
        );
        // push checks the document before it contacts any registry (none listens on port 1).
        let err = sandbox.fails(&[
            "index",
            "push",
            file.to_str().unwrap(),
            "127.0.0.1:1/indexes/bad:v1",
        ]);
        assert!(
            err.contains("is not a valid plugin index") && err.contains("nothing was pushed"),
            "{what}: {err}"
        );
    }

    // A good copy survives a bad update.
    let file = write(&sandbox, "team.yaml", &good);
    sandbox.ok(&["index", "add", "team", file.to_str().unwrap()]);
    let before = sandbox.snapshot();
    std::fs::write(&file, good.replace("name: hello", "name: -x")).unwrap();
    let err = sandbox.fails(&["index", "update"]);
    assert!(
        err.contains("previous copy is kept") && err.contains("line 4") && err.contains("1 of 1"),
        "{err}"
    );
    assert_eq!(
        sandbox.snapshot(),
        before,
        "a failed update changed the store"
    );
    let found = json(&sandbox.ok(&["search", "-o", "json"]));
    assert_eq!(found[0]["name"], "hello");
}
