use super::*;

const EXAMPLE: &str = "\
apiVersion: krew-wasm.dev/v1
kind: TrustPolicy
rules:
  - match: ghcr.io/acme
    keys: [acme.pub, /etc/keys/backup.pub]
  - match: ghcr.io/acme/ci/
    identities:
      - subject: https://github.com/acme/plugins/.github/workflows/release.yml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
      - subjectRegexp: '.*@acme\\.example'
        issuer: https://accounts.google.com
    trustedRoot: trusted_root.json
  - match: 127.0.0.1:5000/scratch
    allowUnsigned: true
";

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text, "policy.yaml", Path::new("/home/u/.krew-wasm"))
}

fn invalid(text: &str) -> (u64, String, String) {
    match parse(text) {
        Err(PolicyError::Invalid {
            line,
            field,
            message,
            ..
        }) => (line, field, message),
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

#[test]
fn reads_the_documented_example() {
    let policy = parse(EXAMPLE).expect("the example parses");
    assert_eq!(policy.unmatched(), Unmatched::Refuse);
    let rules = policy.rules();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0].prefix, "ghcr.io/acme");
    assert_eq!(rules[0].line, 4);
    let Requirement::SignedBy(signers) = &rules[0].requirement else {
        panic!("rule 0 requires keys")
    };
    assert_eq!(
        signers.keys,
        vec![
            PathBuf::from("/home/u/.krew-wasm/acme.pub"),
            PathBuf::from("/etc/keys/backup.pub")
        ]
    );
    assert_eq!(rules[1].prefix, "ghcr.io/acme/ci", "trailing slash dropped");
    let Requirement::SignedBy(keyless) = &rules[1].requirement else {
        panic!("rule 1 requires identities")
    };
    assert_eq!(keyless.identities.len(), 2);
    assert_eq!(
        keyless.trusted_root.as_deref(),
        Some(Path::new("/home/u/.krew-wasm/trusted_root.json"))
    );
    assert_eq!(rules[2].requirement, Requirement::AllowUnsigned);
}

#[test]
fn the_longest_prefix_in_whole_segments_decides() {
    let policy = parse(EXAMPLE).expect("parses");
    let prefix_of = |repository: &str| policy.rule_for(repository).map(|r| r.prefix.clone());
    assert_eq!(
        prefix_of("ghcr.io/acme/kubectl-x").as_deref(),
        Some("ghcr.io/acme")
    );
    assert_eq!(prefix_of("ghcr.io/acme").as_deref(), Some("ghcr.io/acme"));
    assert_eq!(
        prefix_of("ghcr.io/acme/ci/tool").as_deref(),
        Some("ghcr.io/acme/ci")
    );
    assert_eq!(
        prefix_of("ghcr.io/acme-evil/x"),
        None,
        "not a whole segment"
    );
    assert_eq!(prefix_of("ghcr.io/acmeci"), None);
    assert_eq!(
        prefix_of("127.0.0.1:5001/scratch/x"),
        None,
        "another port is another registry"
    );
    assert!(matches!(
        policy.decide("127.0.0.1:5000/scratch/hello"),
        Decision::Allow(Some(_))
    ));
    assert!(matches!(
        policy.decide("ghcr.io/acme/x"),
        Decision::Require(..)
    ));
    assert_eq!(policy.decide("docker.io/other/x"), Decision::Refuse);
}

#[test]
fn unmatched_allow_and_a_catch_all() {
    let allow = parse(
        "apiVersion: krew-wasm.dev/v1\nkind: TrustPolicy\nunmatched: allow\nrules:\n  - match: ghcr.io\n    keys: [k.pub]\n",
    )
    .expect("parses");
    assert_eq!(allow.decide("quay.io/x/y"), Decision::Allow(None));
    assert!(matches!(allow.decide("ghcr.io/x/y"), Decision::Require(..)));

    let catch_all = parse(
        "apiVersion: krew-wasm.dev/v1\nkind: TrustPolicy\nrules:\n  - match: '*'\n    keys: [k.pub]\n  - match: ghcr.io/open\n    allowUnsigned: true\n",
    )
    .expect("parses");
    assert!(matches!(
        catch_all.decide("quay.io/x/y"),
        Decision::Require(..)
    ));
    assert!(matches!(
        catch_all.decide("ghcr.io/open/y"),
        Decision::Allow(Some(_))
    ));
}

#[test]
fn json_is_read_too() {
    let policy = parse(
        r#"{"apiVersion": "krew-wasm.dev/v1", "kind": "TrustPolicy", "rules": [{"match": "ghcr.io/a", "keys": ["k.pub"]}]}"#,
    )
    .expect("JSON is YAML");
    assert_eq!(policy.rules()[0].prefix, "ghcr.io/a");
}

#[test]
fn identities_match_subject_and_issuer() {
    let policy = parse(EXAMPLE).expect("parses");
    let Requirement::SignedBy(signers) = &policy.rules()[1].requirement else {
        panic!("keyless rule")
    };
    let exact = &signers.identities[0];
    let workflow = "https://github.com/acme/plugins/.github/workflows/release.yml@refs/heads/main";
    assert!(exact.matches(workflow, "https://token.actions.githubusercontent.com"));
    assert!(
        !exact.matches(workflow, "https://accounts.google.com"),
        "issuer"
    );
    assert!(!exact.matches(
        &format!("{workflow}x"),
        "https://token.actions.githubusercontent.com"
    ));
    let pattern = &signers.identities[1];
    assert!(pattern.matches("alice@acme.example", "https://accounts.google.com"));
    assert!(
        !pattern.matches("alice@acme.example.evil.com", "https://accounts.google.com"),
        "a regexp is anchored at both ends"
    );
}

#[test]
fn every_mistake_names_line_and_field() {
    let head = "apiVersion: krew-wasm.dev/v1\nkind: TrustPolicy\nrules:\n";
    let cases: &[(&str, u64, &str, &str)] = &[
        (
            "apiVersion: v2\nkind: TrustPolicy\n",
            1,
            "apiVersion",
            "krew-wasm.dev/v1",
        ),
        ("kind: TrustPolicy\n", 1, "apiVersion", "missing"),
        (
            "apiVersion: krew-wasm.dev/v1\nkind: Policy\n",
            2,
            "kind",
            "TrustPolicy",
        ),
        (
            "apiVersion: krew-wasm.dev/v1\nkind: TrustPolicy\nunmatched: maybe\n",
            3,
            "unmatched",
            "refuse",
        ),
        ("  - keys: [a.pub]\n", 4, "rules[0].match", "missing"),
        ("  - match: ghcr.io/a\n", 4, "rules[0]", "allowUnsigned"),
        (
            "  - match: ghcr.io/a\n    keys: [a.pub]\n    allowUnsigned: true\n",
            6,
            "rules[0].allowUnsigned",
            "conflicts",
        ),
        (
            "  - match: ghcr.io/a:v1\n    keys: [a.pub]\n",
            4,
            "rules[0].match",
            "tag or digest",
        ),
        (
            "  - match: https://ghcr.io/a\n    keys: [a.pub]\n",
            4,
            "rules[0].match",
            "scheme",
        ),
        (
            "  - match: ghcr.io/a\n    keys: [a.pub]\n  - match: ghcr.io/a/\n    keys: [b.pub]\n",
            6,
            "rules[1].match",
            "line 4",
        ),
        (
            "  - match: ghcr.io/a\n    identities:\n      - subject: me@example.com\n    trustedRoot: r.json\n",
            6,
            "rules[0].identities[0].issuer",
            "OIDC issuer",
        ),
        (
            "  - match: ghcr.io/a\n    identities:\n      - issuer: https://accounts.google.com\n    trustedRoot: r.json\n",
            6,
            "rules[0].identities[0]",
            "subject",
        ),
        (
            "  - match: ghcr.io/a\n    identities:\n      - subjectRegexp: '(unclosed'\n        issuer: https://accounts.google.com\n    trustedRoot: r.json\n",
            6,
            "rules[0].identities[0].subjectRegexp",
            "regular expression",
        ),
        (
            "  - match: ghcr.io/a\n    identities:\n      - subject: me@example.com\n        issuer: https://accounts.google.com\n",
            4,
            "rules[0].trustedRoot",
            "trusted root",
        ),
        (
            "  - match: ghcr.io/a\n    keys: ['']\n",
            5,
            "rules[0].keys[0]",
            "empty",
        ),
    ];
    for (body, line, field, needle) in cases {
        let text = if body.starts_with("apiVersion") || body.starts_with("kind") {
            body.to_string()
        } else {
            format!("{head}{body}")
        };
        let (got_line, got_field, message) = invalid(&text);
        assert_eq!(
            (got_line, got_field.as_str()),
            (*line, *field),
            "{text}\n-> {message}"
        );
        assert!(message.contains(needle), "{text}\n-> {message}");
    }
}

#[test]
fn syntax_errors_and_unknown_fields_name_their_line() {
    let head = "apiVersion: krew-wasm.dev/v1\nkind: TrustPolicy\nrules:\n";
    for (body, line, needle) in [
        ("  - match: ghcr.io/a\n    key: [a.pub]\n", 5, "key"),
        ("  - match: ghcr.io/a\n    keys: [a.pub\n", 6, ""),
        ("  - match: [ghcr.io]\n    keys: [a.pub]\n", 4, ""),
    ] {
        let text = format!("{head}{body}");
        match parse(&text) {
            Err(e @ PolicyError::Syntax { .. }) => {
                let PolicyError::Syntax {
                    line: got, message, ..
                } = &e
                else {
                    unreachable!()
                };
                assert!(
                    (*got == line || *got == line - 1 || *got == line + 1),
                    "{text}\n-> {e} (expected near line {line})"
                );
                assert!(message.contains(needle), "{text}\n-> {e}");
                assert!(
                    !message.contains("line ") && !message.starts_with("error"),
                    "the location is given once: {e}"
                );
                assert!(e.to_string().starts_with("policy.yaml:"), "{e}");
            }
            other => panic!("{text}\n-> expected a syntax error, got {other:?}"),
        }
    }
}
