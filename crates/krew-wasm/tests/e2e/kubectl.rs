//! The real kubectl finds and runs krew-wasm plugins like native ones.

use test_support::{Registry, require_tool};

use crate::{Sandbox, hello_output, push_fixture, stderr, stdout};

#[test]
fn kubectl_runs_installed_plugins() {
    let kubectl = require_tool("kubectl");
    let registry = Registry::start();
    let (hello, _) = push_fixture(&registry, "hello", "plugins/hello:v1");
    let (exit_code, _) = push_fixture(&registry, "exit-code", "plugins/exit-code:v1");
    let sandbox = Sandbox::new();
    sandbox.ok(&["pull", &hello]);
    sandbox.ok(&["pull", &hello, "--name", "foo-bar"]);
    sandbox.ok(&["pull", &exit_code]);

    let kubectl_run = |args: &[&str]| {
        sandbox
            .command(&kubectl)
            .args(args)
            .output()
            .expect("running kubectl")
    };

    let output = kubectl_run(&["hello", "a", "b"]);
    assert_eq!(
        stdout(&output),
        hello_output(&["a", "b"]),
        "{}",
        stderr(&output)
    );
    assert!(output.status.success());

    // A dashed name works both ways, as with Krew.
    for spelling in ["foo-bar", "foo_bar"] {
        let output = kubectl_run(&[spelling, "x"]);
        assert_eq!(
            stdout(&output),
            hello_output(&["x"]),
            "kubectl {spelling}: {}",
            stderr(&output)
        );
    }

    // The guest's exit code becomes kubectl's.
    let output = kubectl_run(&["exit-code", "7"]);
    assert_eq!(output.status.code(), Some(7), "{}", stderr(&output));

    let output = kubectl_run(&["plugin", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let listed = stdout(&output);
    for link in ["kubectl-hello", "kubectl-foo_bar", "kubectl-exit_code"] {
        let path = sandbox.bin().join(link);
        assert!(
            listed
                .lines()
                .any(|l| l.trim() == path.display().to_string()),
            "{link} not listed:\n{listed}"
        );
    }
    let warnings = stderr(&output);
    assert!(
        !warnings.to_lowercase().contains("warning"),
        "kubectl plugin list warned:\n{warnings}"
    );
}
