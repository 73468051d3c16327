//! Running plugins: `krew-wasm run`, exit codes, traps, the default sandbox,
//! and how argv[0] picks the mode.

use test_support::{Registry, fixtures};

use crate::{Sandbox, hello_output, krew_wasm_exe, push_fixture, stderr, stdout};

#[test]
fn runs_local_components_and_modules() {
    let sandbox = Sandbox::new();
    for wasm in [fixtures().p2("hello"), fixtures().p1("hello")] {
        let out = sandbox.ok(&["run", wasm.to_str().unwrap(), "--", "a", "b c"]);
        assert_eq!(out, hello_output(&["a", "b c"]), "{}", wasm.display());
    }
    assert_installs_nothing(&sandbox);
    // What it compiled is cached by digest, so the next run of the same
    // bytes starts from the precompiled artifact, as an installed plugin does.
    let cached: Vec<_> = std::fs::read_dir(sandbox.root().join("cache"))
        .unwrap()
        .flat_map(|engine| std::fs::read_dir(engine.unwrap().path()).unwrap())
        .map(|artifact| artifact.unwrap().file_name().into_string().unwrap())
        .collect();
    for wasm in [fixtures().p2("hello"), fixtures().p1("hello")] {
        let digest = test_support::sha256_digest(&std::fs::read(&wasm).unwrap());
        let artifact = format!("{}.cwasm", digest.trim_start_matches("sha256:"));
        assert!(cached.contains(&artifact), "{artifact} not in {cached:?}");
    }
}

/// `run` installs nothing: no receipt, link or blob, and `list` shows nothing.
fn assert_installs_nothing(sandbox: &Sandbox) {
    for dir in ["receipts", "bin", "blobs"] {
        assert!(
            !sandbox.root().join(dir).exists(),
            "run must not install anything, but it created {dir}/"
        );
    }
    assert!(sandbox.list_json().is_empty());
}

#[test]
fn exit_codes_pass_through() {
    let sandbox = Sandbox::new();
    for wasm in [fixtures().p2("exit-code"), fixtures().p1("exit-code")] {
        for code in [0, 3, 42] {
            let output = sandbox.krew(&["run", wasm.to_str().unwrap(), "--", &code.to_string()]);
            assert_eq!(
                output.status.code(),
                Some(code),
                "{}: {}",
                wasm.display(),
                stderr(&output)
            );
            assert_eq!(stdout(&output), format!("exit-code plugin: {code}\n"));
            assert!(stderr(&output).contains(&format!("exit-code plugin on stderr: {code}")));
        }
    }
}

#[test]
fn traps_print_a_short_message_and_fail() {
    let sandbox = Sandbox::new();
    let wasm = fixtures().p2("exit-code");
    let output = sandbox.krew(&["run", wasm.to_str().unwrap(), "--", "trap"]);
    assert_eq!(output.status.code(), Some(134));
    let err = stderr(&output);
    assert!(
        err.contains("plugin `exit-code` crashed") && err.contains("unreachable"),
        "{err}"
    );
    assert!(err.contains("KREW_WASM_LOG=debug"), "{err}");
    assert!(
        err.lines().count() <= 4,
        "the message should be short:\n{err}"
    );

    let output = sandbox
        .command(krew_wasm_exe())
        .args(["run", wasm.to_str().unwrap(), "--", "trap"])
        .env("KREW_WASM_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(134));
    assert!(
        stderr(&output).contains("wasm backtrace"),
        "debug details missing:\n{}",
        stderr(&output)
    );
}

#[test]
fn the_sandbox_grants_only_the_env_allow_list_and_no_files() {
    let sandbox = Sandbox::new();
    let secret_file = sandbox.home().join("secret.txt");
    std::fs::write(&secret_file, "top secret").unwrap();
    // Something listening on loopback that the plugin must not reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let tcp = format!("tcp:{}", listener.local_addr().unwrap());
    for wasm in [
        fixtures().p2("sandbox-probe"),
        fixtures().p1("sandbox-probe"),
    ] {
        let output = sandbox
            .command(krew_wasm_exe())
            .args(["run", wasm.to_str().unwrap(), "--"])
            .args([
                secret_file.to_str().unwrap(),
                "/etc/passwd",
                "/",
                ".",
                &tcp,
                "dns:localhost",
            ])
            .env("TERM", "xterm-256color")
            .env("LC_TIME", "C")
            .env("AWS_SECRET_ACCESS_KEY", "hunter2")
            .env("KUBECONFIG_TOKEN", "hunter3")
            .current_dir(sandbox.home())
            .output()
            .unwrap();
        let out = stdout(&output);
        assert!(output.status.success(), "{}", stderr(&output));
        let host_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let guest_now: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix("clock "))
            .and_then(|s| s.parse().ok())
            .expect("clock line");
        assert!(
            host_now.abs_diff(guest_now) < 60,
            "the guest's clock is off: {guest_now} vs {host_now}"
        );
        let mut env: Vec<&str> = out.lines().filter(|l| l.starts_with("env ")).collect();
        env.sort_unstable();
        assert_eq!(
            env,
            [
                "env LANG=C.UTF-8",
                "env LC_TIME=C",
                "env TERM=xterm-256color"
            ],
            "{out}"
        );
        for hidden in [
            "hunter2",
            "hunter3",
            "HOME=",
            "PATH=",
            "KREW_WASM_ROOT",
            "KUBECONFIG=",
        ] {
            assert!(
                !out.contains(hidden),
                "{hidden} leaked into the plugin:\n{out}"
            );
        }
        assert!(!out.contains("top secret"));
        let reads: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("read ") || l.starts_with("list "))
            .collect();
        assert_eq!(reads.len(), 8, "{out}");
        assert!(
            reads.iter().all(|l| l.contains(": denied")),
            "a path was readable:\n{out}"
        );
    }
}

#[test]
fn runs_a_plugin_from_a_registry_without_installing_it() {
    let registry = Registry::start();
    let (reference, _) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["run", &reference, "--", "remote"]);
    assert_eq!(out, hello_output(&["remote"]));
    assert_installs_nothing(&sandbox);
}

#[test]
fn argv0_selects_the_mode() {
    let sandbox = Sandbox::new();
    let dir = sandbox.home();
    // A link named kubectl-<name> is wrapper mode: an unknown plugin says how to install it.
    let link = dir.join("kubectl-not_there");
    std::os::unix::fs::symlink(krew_wasm_exe(), &link).unwrap();
    let output = sandbox.command(&link).arg("x").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("`not-there` is not installed")
            && err.contains("krew-wasm pull")
            && err.contains("--name not-there"),
        "{err}"
    );

    // Any other name, under any path, is the CLI.
    for name in ["krew-wasm", "kw", "krew-wasm-dev"] {
        let other = dir.join(name);
        std::os::unix::fs::symlink(krew_wasm_exe(), &other).unwrap();
        let output = sandbox.command(&other).arg("version").output().unwrap();
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        assert!(stdout(&output).starts_with("krew-wasm "), "{name}");
    }
}

#[test]
fn version_and_completions() {
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["version"]);
    assert!(
        out.contains(env!("CARGO_PKG_VERSION")) && out.contains("wasmtime 48.0.8"),
        "{out}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = sandbox.ok(&["completions", shell]);
        assert!(
            script.contains("krew-wasm") && script.contains("pull") && script.len() > 500,
            "{shell}"
        );
    }
    let err = sandbox.fails_with_usage(&["completions", "tcsh"]);
    assert!(err.contains("tcsh"), "{err}");
}

impl Sandbox {
    /// Runs krew-wasm expecting clap's usage error (exit 2).
    fn fails_with_usage(&self, args: &[&str]) -> String {
        let output = self.krew(args);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        stderr(&output)
    }
}

/// A plugin that imports neither the filesystem nor the network (hello)
/// could use neither the kubeconfig view nor the API gateway, so krew-wasm
/// does not read the kubeconfig for it and writes no view; a plugin that can
/// open files gets the view and `KUBECONFIG` pointing into it.
#[test]
fn the_kubeconfig_view_is_made_only_for_plugins_that_could_read_it() {
    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\n\
        clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n\
        users: [{name: u, user: {token: secret-token}}]\n\
        contexts: [{name: ctx, context: {cluster: c, user: u}}]\n\
        current-context: ctx\n";
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.home().join(".kube")).unwrap();
    std::fs::write(sandbox.home().join(".kube/config"), KUBECONFIG).unwrap();
    let views = sandbox.root().join("views");

    let hello = fixtures().p2("hello");
    let out = sandbox.ok(&["run", hello.to_str().unwrap(), "--", "a"]);
    assert_eq!(out, hello_output(&["a"]));
    assert!(
        !views.exists(),
        "hello cannot open files, yet a view was written"
    );

    let probe = fixtures().p2("sandbox-probe");
    let out = sandbox.ok(&["run", probe.to_str().unwrap()]);
    assert!(
        out.contains("env KUBECONFIG=/krew-wasm/kubeconfig"),
        "{out}"
    );
    let written: Vec<_> = std::fs::read_dir(&views).unwrap().collect();
    assert_eq!(written.len(), 1, "one view for the probe");
}
