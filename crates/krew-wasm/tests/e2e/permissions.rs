//! Permissions: what a plugin declares, consent at install (terminal and
//! script), `grant`/`revoke`, per-run narrowing, and the directories a grant
//! can never reach.
//!
//! The `declared-probe` fixture (guest/fixtures/sandbox-probe) declares
//! `env:PROBE_GREETING`, `dir:.`, `host:http://x.test` and `memory:1GiB` in
//! its `krew-wasm.permissions` custom section, and prints what it sees.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use test_support::{Artifact, Registry, fixtures, with_custom_section};

use crate::{Sandbox, krew_wasm_exe, push_fixture, stderr, stdout};

const DECLARED: [&str; 4] = [
    "env:PROBE_GREETING",
    "dir:.",
    "host:http://x.test",
    "memory:1GiB",
];

/// A user, a registry holding the declared probe, and a work directory
/// (outside the store) with a file in it.
struct World {
    sandbox: Sandbox,
    registry: Registry,
    reference: String,
    work: PathBuf,
}

impl World {
    fn new() -> Self {
        let registry = Registry::start();
        let (reference, _) = push_fixture(&registry, "declared-probe", "plugins/declared-probe:v1");
        let sandbox = Sandbox::new();
        let work = sandbox.home().join("work");
        std::fs::create_dir_all(&work).expect("work dir");
        std::fs::write(work.join("notes.txt"), "my notes").expect("notes");
        Self {
            sandbox,
            registry,
            reference,
            work,
        }
    }

    /// Runs the installed plugin the way kubectl does (its link), from `dir`.
    fn run_plugin(&self, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut command = self
            .sandbox
            .command(self.sandbox.bin().join("kubectl-declared_probe"));
        command
            .current_dir(dir)
            .env("PROBE_GREETING", "hello")
            .env("AWS_SECRET_ACCESS_KEY", "do-not-leak");
        for (key, value) in env {
            command.env(key, value);
        }
        command.args(args).output().expect("running the plugin")
    }

    fn granted(&self) -> serde_json::Value {
        let info: serde_json::Value =
            serde_json::from_str(&self.sandbox.ok(&["info", "declared-probe", "-o", "json"]))
                .expect("info -o json");
        info["granted"].clone()
    }
}

#[test]
fn a_script_must_answer_every_request_and_a_refusal_writes_nothing() {
    let world = World::new();
    let before = store_files(&world.sandbox);
    let err = world.sandbox.fails(&["pull", &world.reference]);
    for spec in DECLARED {
        assert!(err.contains(spec), "the refusal should list {spec}:\n{err}");
    }
    assert!(
        err.contains("--yes") && err.contains("--grant") && err.contains("--deny"),
        "{err}"
    );
    assert!(err.contains("Nothing was installed"), "{err}");
    assert_eq!(
        store_files(&world.sandbox),
        before,
        "a refused pull wrote to the store"
    );

    // Answering part of it is not enough: the rest is listed, nothing written.
    let err = world
        .sandbox
        .fails(&["pull", &world.reference, "--grant", "env:PROBE_GREETING"]);
    assert!(!err.contains("[env:PROBE_GREETING]"), "{err}");
    assert!(
        err.contains("[dir:.]") && err.contains("[memory:1GiB]"),
        "{err}"
    );
    assert_eq!(store_files(&world.sandbox), before);
}

#[test]
fn yes_grants_the_declaration_and_runs_get_exactly_that() {
    let world = World::new();
    world.sandbox.ok(&["pull", &world.reference, "--yes"]);
    let granted = world.granted();
    assert_eq!(granted["env"], serde_json::json!(["PROBE_GREETING"]));
    assert_eq!(granted["dirs"][0]["path"], ".");
    assert_eq!(granted["memory"], "1GiB");
    let info = world.sandbox.ok(&["info", "declared-probe"]);
    assert!(
        info.contains("read the environment variable PROBE_GREETING")
            && info.contains("read files in the directory you run it from"),
        "info should show the grants in words:\n{info}"
    );

    let secret = world.sandbox.home().join(".ssh");
    std::fs::create_dir_all(&secret).expect(".ssh");
    std::fs::write(secret.join("id_rsa"), "PRIVATE KEY").expect("key");
    let key = secret.join("id_rsa");
    let out = world.run_plugin(
        &world.work,
        &[],
        &["notes.txt", "../.ssh/id_rsa", key.to_str().expect("utf-8")],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("env PROBE_GREETING=hello"), "{text}");
    assert!(
        !text.contains("do-not-leak"),
        "an env var that was not granted leaked:\n{text}"
    );
    assert!(text.contains("read notes.txt: ok (8 bytes)"), "{text}");
    assert!(
        text.contains("read ../.ssh/id_rsa: denied"),
        "`..` left the granted directory:\n{text}"
    );
    assert!(
        text.contains(&format!("read {}: denied", key.display())),
        "{text}"
    );

    // Per run, the environment narrows what was granted.
    let out = world.run_plugin(
        &world.work,
        &[("KREW_WASM_DENY", "env:PROBE_GREETING")],
        &["notes.txt"],
    );
    let text = stdout(&out);
    assert!(!text.contains("PROBE_GREETING"), "{text}");
    assert!(text.contains("read notes.txt: ok"), "{text}");
    let out = world.run_plugin(&world.work, &[("KREW_WASM_DENY", "all")], &["notes.txt"]);
    let text = stdout(&out);
    assert!(
        !text.contains("PROBE_GREETING") && text.contains("read notes.txt: denied"),
        "{text}"
    );
    let out = world.run_plugin(&world.work, &[("KREW_WASM_DENY", "everything")], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("KREW_WASM_DENY"), "{}", stderr(&out));
}

#[test]
fn grant_and_revoke_change_the_receipt_alone() {
    let world = World::new();
    let out = world.sandbox.krew(&[
        "pull",
        &world.reference,
        "--grant",
        "env:PROBE_GREETING",
        "--deny",
        "all",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not granted: dir:.")
            && stderr(&out).contains("krew-wasm grant declared-probe"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        world.granted()["env"],
        serde_json::json!(["PROBE_GREETING"])
    );
    assert!(
        stdout(&world.run_plugin(&world.work, &[], &["notes.txt"]))
            .contains("read notes.txt: denied")
    );

    world.sandbox.ok(&["grant", "declared-probe", "dir:."]);
    // Read-only: reads work, and neither a change nor a new file gets in.
    let text = stdout(&world.run_plugin(
        &world.work,
        &[],
        &["notes.txt", "write:notes.txt", "write:new.txt"],
    ));
    assert!(text.contains("read notes.txt: ok"), "{text}");
    assert!(
        text.contains("write notes.txt: denied") && text.contains("write new.txt: denied"),
        "a read-only grant let the plugin write:\n{text}"
    );
    assert_eq!(
        std::fs::read_to_string(world.work.join("notes.txt")).expect("notes"),
        "my notes"
    );
    assert!(!world.work.join("new.txt").exists());
    // Read-write (the same directory, wider): now the writes land.
    world.sandbox.ok(&["grant", "declared-probe", "dir:.:rw"]);
    let text = stdout(&world.run_plugin(&world.work, &[], &["write:new.txt"]));
    assert!(text.contains("write new.txt: ok"), "{text}");
    assert_eq!(
        std::fs::read_to_string(world.work.join("new.txt")).expect("new.txt"),
        " probe was here"
    );
    world.sandbox.ok(&["revoke", "declared-probe", "dir:."]);
    assert!(
        stdout(&world.run_plugin(&world.work, &[], &["notes.txt"]))
            .contains("read notes.txt: denied")
    );

    // Bad input changes nothing.
    let before = world.sandbox.snapshot();
    let err = world
        .sandbox
        .fails(&["grant", "declared-probe", "dir:notes"]);
    assert!(err.contains("relative path"), "{err}");
    let err = world
        .sandbox
        .fails(&["grant", "declared-probe", "env:OK", "bogus:1"]);
    assert!(err.contains("unknown kind `bogus`"), "{err}");
    let err = world.sandbox.fails(&["grant", "nothere", "env:X"]);
    assert!(err.contains("no plugin named `nothere`"), "{err}");
    assert_eq!(world.sandbox.snapshot(), before);

    world.sandbox.ok(&["grant", "declared-probe", "all"]);
    assert_eq!(world.granted()["memory"], "1GiB");
    assert_eq!(
        world.granted()["hosts"],
        serde_json::json!(["http://x.test"])
    );
    world.sandbox.ok(&["revoke", "declared-probe", "all"]);
    assert!(world.granted().is_null(), "{}", world.granted());
}

#[test]
fn a_directory_grant_never_reaches_the_store() {
    let world = World::new();
    world.sandbox.ok(&["pull", &world.reference, "--yes"]);
    // From inside the store, and from a directory that holds it.
    for dir in [
        world.sandbox.root().join("receipts"),
        world.sandbox.root().parent().expect("parent").to_path_buf(),
    ] {
        let out = world.run_plugin(&dir, &[], &["."]);
        assert!(
            !out.status.success(),
            "ran with the store mounted from {}",
            dir.display()
        );
        let err = stderr(&out);
        assert!(
            err.contains("krew-wasm store") && err.contains("revoke"),
            "{err}"
        );
        assert!(
            stdout(&out).is_empty(),
            "the plugin must not start:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn an_upgrade_that_asks_for_more_asks_again() {
    let world = World::new();
    let (reference, _) = push_fixture(&world.registry, "sandbox-probe", "plugins/probe:v1");
    world.sandbox.ok(&["pull", &reference]);
    let first = world.sandbox.snapshot();
    // The tag moves to a version that declares permissions.
    push_fixture(&world.registry, "declared-probe", "plugins/probe:v1");
    let err = world.sandbox.fails(&["pull", "--force", &reference]);
    assert!(
        err.contains("asks for more than you granted before"),
        "{err}"
    );
    assert_eq!(
        world.sandbox.snapshot(),
        first,
        "the refused upgrade changed the store"
    );
    world.sandbox.ok(&["pull", "--force", &reference, "--yes"]);
    let info: serde_json::Value =
        serde_json::from_str(&world.sandbox.ok(&["info", "probe", "-o", "json"])).expect("json");
    assert_eq!(
        info["granted"]["env"],
        serde_json::json!(["PROBE_GREETING"])
    );
}

#[test]
fn consent_is_asked_on_a_terminal() {
    let world = World::new();
    let pull = |answer: &str| {
        let command_line = format!("{} pull {}", krew_wasm_exe().display(), world.reference);
        let mut child = world.sandbox.spawn_on_a_terminal(&command_line);
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(answer.as_bytes())
            .expect("answering");
        child.wait_with_output().expect("script(1) output")
    };
    let out = pull("n\n");
    let shown = stdout(&out);
    assert!(shown.contains("Grant these permissions? [y/N]"), "{shown}");
    assert!(
        shown.contains("read the environment variable PROBE_GREETING"),
        "{shown}"
    );
    assert!(!out.status.success(), "{shown}");
    assert!(
        !world
            .sandbox
            .root()
            .join("receipts/declared-probe.json")
            .exists()
    );

    let out = pull("y\n");
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(world.granted()["memory"], "1GiB");
}

#[test]
fn a_declaration_pushed_as_an_annotation_is_asked_for_too() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let declaration = sandbox.home().join("permissions.json");
    std::fs::write(
        &declaration,
        r#"{"version":1,"env":["GITHUB_TOKEN"],"hosts":["https://api.github.com"]}"#,
    )
    .expect("declaration");
    let reference = format!("{}/plugins/hello:v1", registry.host());
    let hello = fixtures().p2("hello");
    sandbox.ok(&[
        "push",
        hello.to_str().expect("utf-8"),
        &reference,
        "--permissions",
        declaration.to_str().expect("utf-8"),
    ]);
    let err = sandbox.fails(&["pull", &reference]);
    assert!(
        err.contains("[env:GITHUB_TOKEN]") && err.contains("[host:https://api.github.com]"),
        "{err}"
    );
    sandbox.ok(&[
        "pull",
        &reference,
        "--grant",
        "env:GITHUB_TOKEN",
        "--deny",
        "host:https://api.github.com",
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&sandbox.ok(&["info", "hello", "-o", "json"])).expect("json");
    assert_eq!(
        info["requested"]["hosts"],
        serde_json::json!(["https://api.github.com"])
    );
    assert_eq!(info["granted"]["env"], serde_json::json!(["GITHUB_TOKEN"]));
    assert!(info["granted"]["hosts"].is_null(), "{info}");

    // `run REF` reads the annotation too: what it declares there is shown,
    // and not granted unless asked for.
    let out = sandbox.krew(&["run", &reference]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("[env:GITHUB_TOKEN]")
            && err.contains("[host:https://api.github.com]")
            && err.contains("not granted for this run"),
        "{err}"
    );
}

#[test]
fn a_malformed_declaration_is_refused_with_its_line_and_field() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let wasm = with_custom_section(
        &std::fs::read(fixtures().p2("hello")).expect("hello"),
        "krew-wasm.permissions",
        b"{\"version\":1,\n\"envs\":[\"HOME\"]}",
    );
    let file = sandbox.home().join("bad.wasm");
    std::fs::write(&file, &wasm).expect("bad.wasm");
    Artifact::wasm(wasm, "application/wasm").push(&registry, "plugins/bad:v1");

    let before = store_files(&sandbox);
    let err = sandbox.fails(&[
        "pull",
        &format!("{}/plugins/bad:v1", registry.host()),
        "--yes",
    ]);
    assert!(
        err.contains("unknown field `envs`") && err.contains("line 2"),
        "{err}"
    );
    assert!(err.contains("nothing was installed"), "{err}");
    assert_eq!(store_files(&sandbox), before);

    let err = sandbox.fails(&["run", file.to_str().expect("utf-8")]);
    assert!(err.contains("unknown field `envs`"), "{err}");
}

#[test]
fn a_granted_host_is_reachable_and_no_other() {
    let sandbox = Sandbox::new();
    let server = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = server.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    std::thread::spawn(move || {
        for stream in server.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    let attack = fixtures().p2("http-loopback-port");
    let port = port.to_string();

    // Not granted: nothing connects.
    let out = sandbox.krew(&["run", attack.to_str().expect("utf-8"), "--", &port]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(connections.load(Ordering::SeqCst), 0);

    // Granted: exactly that origin (http, 127.0.0.1, the port), no other
    // spelling of loopback and not https.
    let grant = format!("host:http://127.0.0.1:{port}");
    let out = sandbox.krew(&[
        "run",
        "--grant",
        &grant,
        attack.to_str().expect("utf-8"),
        "--",
        &port,
    ]);
    let text = stdout(&out);
    let reached: Vec<&str> = text.lines().filter(|l| l.starts_with("ESCAPED")).collect();
    assert_eq!(
        reached.len(),
        1,
        "only the granted origin is reachable:\n{text}"
    );
    assert!(
        reached[0].contains(&format!("http://127.0.0.1:{port}/")),
        "{text}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[test]
fn deny_wins_over_yes_and_another_repositorys_plugin_inherits_no_grant() {
    let world = World::new();
    let out = world
        .sandbox
        .krew(&["pull", &world.reference, "--yes", "--deny", "dir:."]);
    assert!(out.status.success(), "{}", stderr(&out));
    let granted = world.granted();
    assert!(
        granted["dirs"].is_null(),
        "--deny dir:. lost to --yes: {granted}"
    );
    assert_eq!(granted["env"], serde_json::json!(["PROBE_GREETING"]));
    // The install says what it granted.
    let said = stdout(&out);
    assert!(
        said.contains("declared-probe is granted:")
            && said.contains("read the environment variable PROBE_GREETING")
            && !said.contains("read files in the directory you run it from"),
        "{said}"
    );

    // Another repository's plugin replaces it under the same name: it is
    // asked for everything, as a new plugin would be, and a script that
    // does not answer installs nothing.
    let (other, _) = push_fixture(
        &world.registry,
        "declared-probe",
        "someone-else/declared-probe:v1",
    );
    let before = world.sandbox.snapshot();
    let err = world.sandbox.fails(&["pull", "--force", &other]);
    assert!(
        err.contains("Plugin `declared-probe` asks for permission to")
            && err.contains("[env:PROBE_GREETING]")
            && err.contains("[memory:1GiB]"),
        "the replacing plugin inherited grants:\n{err}"
    );
    assert_eq!(world.sandbox.snapshot(), before);
}

#[test]
fn upgrade_asks_again_and_rollback_gives_back_no_revoked_grant() {
    let world = World::new();
    world.sandbox.ok(&["pull", &world.reference, "--yes"]);
    // The tag moves to a version that also asks for PROBE_EXTRA (in its
    // manifest's annotation).
    let declaration = world.sandbox.home().join("more.json");
    std::fs::write(&declaration, r#"{"version":1,"env":["PROBE_EXTRA"]}"#).expect("json");
    world.sandbox.ok(&[
        "push",
        fixtures().p2("declared-probe").to_str().expect("utf-8"),
        &world.reference,
        "--permissions",
        declaration.to_str().expect("utf-8"),
    ]);
    let before = world.sandbox.snapshot();
    let err = world.sandbox.fails(&["upgrade", "declared-probe"]);
    assert!(
        err.contains("asks for more than you granted before")
            && err.contains("[env:PROBE_EXTRA]")
            && !err.contains("[env:PROBE_GREETING]"),
        "{err}"
    );
    assert_eq!(world.sandbox.snapshot(), before, "a refused upgrade wrote");
    let out = world
        .sandbox
        .krew(&["upgrade", "declared-probe", "--deny", "env:PROBE_EXTRA"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("upgraded declared-probe"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        world.granted()["env"],
        serde_json::json!(["PROBE_GREETING"])
    );
    // The next version (other bytes) asks for the same: a script upgrades
    // without answering again, and what was denied stays denied.
    let next = world.sandbox.home().join("next.wasm");
    let bytes = std::fs::read(fixtures().p2("declared-probe")).expect("declared-probe");
    std::fs::write(&next, with_custom_section(&bytes, "next", b"v3")).expect("next.wasm");
    world.sandbox.ok(&[
        "push",
        next.to_str().expect("utf-8"),
        &world.reference,
        "--permissions",
        declaration.to_str().expect("utf-8"),
    ]);
    let out = world.sandbox.krew(&["upgrade", "declared-probe"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("not granted: env:PROBE_EXTRA"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        world.granted()["env"],
        serde_json::json!(["PROBE_GREETING"])
    );

    // Revoked after the upgrade, a grant stays revoked through a rollback;
    // the rest of the old version's grants come back with it.
    world
        .sandbox
        .ok(&["revoke", "declared-probe", "env:PROBE_GREETING"]);
    let said = world.sandbox.ok(&["rollback", "declared-probe"]);
    assert!(said.contains("rolled back declared-probe"), "{said}");
    let granted = world.granted();
    assert!(
        granted["env"].is_null(),
        "the rollback re-granted: {granted}"
    );
    assert_eq!(granted["dirs"][0]["path"], ".", "{granted}");
    let out = world.run_plugin(&world.work, &[], &["notes.txt"]);
    let text = stdout(&out);
    assert!(
        !text.contains("PROBE_GREETING") && text.contains("read notes.txt: ok"),
        "{text}"
    );
}

#[test]
fn the_receipts_memory_cap_holds_when_kubectl_runs_the_plugin() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let (reference, _) = push_fixture(&registry, "exhaust-memory", "plugins/exhaust-memory:v1");
    sandbox.ok(&["pull", &reference]);
    let run = |env: &[(&str, &str)]| {
        let mut command = sandbox.command(sandbox.bin().join("kubectl-exhaust_memory"));
        command.arg("2048");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("running the plugin")
    };
    // (grant, KREW_WASM_MAX_MEMORY, the cap that must hold, in MiB)
    let cases: [(Option<&str>, Option<&str>, usize); 3] = [
        (Some("memory:96MiB"), None, 96),
        (Some("memory:640MiB"), None, 640),
        (None, Some("64MiB"), 64),
    ];
    for (grant, env, cap) in cases {
        if let Some(grant) = grant {
            sandbox.ok(&["grant", "exhaust-memory", grant]);
        }
        let env: Vec<(&str, &str)> = env
            .map(|v| ("KREW_WASM_MAX_MEMORY", v))
            .into_iter()
            .collect();
        let out = run(&env);
        let (text, err) = (stdout(&out), stderr(&out));
        let got = crate::memory_got(&text);
        let label = format!("{grant:?} KREW_WASM_MAX_MEMORY={env:?}");
        assert!(!out.status.success(), "{label}: exited 0");
        assert!(
            got <= cap && got + 64 >= cap,
            "{label}: got {got} MiB, cap {cap} MiB"
        );
        assert!(
            err.contains(&format!("memory limit of {cap}MiB")),
            "{label}: stderr does not name the {cap} MiB limit:\n{err}"
        );
    }
}

#[test]
fn ctrl_c_stops_a_plugin_run_from_a_registry() {
    // The download listens for Ctrl-C only if it must clean up; once the
    // plugin runs, Ctrl-C must end it as it ends a native program.
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let (reference, _) = push_fixture(&registry, "spin-forever", "plugins/spin:v1");
    let mut command = sandbox.command(krew_wasm_exe());
    command.args(["run", &reference, "--", "busy"]);
    crate::assert_ctrl_c_ends_a_spinning_run(command);
}

/// The store's files, without the empty staging directory a download
/// creates before it is refused (nothing is left in it).
fn store_files(sandbox: &Sandbox) -> std::collections::BTreeMap<String, String> {
    let mut files = sandbox.snapshot();
    if !files.keys().any(|path| path.starts_with("tmp/")) {
        files.remove("tmp");
    }
    files
}
