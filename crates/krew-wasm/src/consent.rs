//! Consent: what a plugin gets of what it asks for, decided at install (and
//! again when an upgrade asks for more).
//!
//! Nothing a plugin declares is granted silently. On a terminal the user is
//! shown each permission in words and asked; in a script every requested
//! permission must be answered in advance with `--yes`, `--grant` or
//! `--deny`, else the install is refused before anything is written.
//! A named `--deny PERMISSION` wins over the other two; `--deny all` says no
//! to whatever they leave unanswered. An upgrade asks only for what the new
//! version asks for beyond the installed one: what that one was denied stays
//! denied.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Result, bail};
use krew_wasm_permissions::{Deny, Permission, Permissions};

use crate::cli::ConsentFlags;

/// The plugin's request and what the user said in advance.
pub struct Request<'a> {
    /// The plugin, for messages.
    pub name: &'a str,
    /// What the plugin being installed declares.
    pub declared: &'a Permissions,
    /// The installed version's declaration and grants, when this replaces it.
    pub previous: Option<(&'a Permissions, &'a Permissions)>,
    pub flags: &'a ConsentFlags,
}

/// Decides the grants of an install. Asks on a terminal (the question is
/// answered on a blocking thread so Ctrl-C still ends the command); refuses
/// in a script when something is left unanswered.
pub async fn decide(request: Request<'_>) -> Result<Permissions> {
    let deny = deny_list(&request.flags.deny)?;
    if request.flags.yes && matches!(deny, Deny::All) {
        bail!(
            "--yes grants all the plugin asks for and --deny all none of it; pass one of them (or --deny PERMISSION for the ones to leave out)"
        );
    }
    let mut granted = carried_over(request.declared, request.previous);
    for permission in &request.flags.grant {
        granted.insert(permission.clone());
    }
    if request.flags.yes {
        granted = granted.union(request.declared);
    }
    // A named `--deny` wins over `--yes`, `--grant` and what the installed
    // version had; `--deny all` answers what is left.
    if let Deny::These(_) = deny {
        granted = granted.narrowed(&deny);
    }
    let mut undecided = request.declared.not_covered_by(&granted).narrowed(&deny);
    if let Some((previously_declared, _)) = request.previous {
        // What the installed version asked for and does not have was denied
        // (or revoked) before: an upgrade asks only for what is new.
        undecided = undecided.not_covered_by(previously_declared);
    }
    if !undecided.is_empty() {
        let asked_again = request.previous.is_some();
        if !interactive() {
            bail!(
                "{}\nNothing was installed. To install it from a script, answer in advance: \
                 --yes grants all of it, --grant PERMISSION grants one, --deny PERMISSION (or \
                 --deny all) installs without it.",
                describe_request(request.name, &undecided, asked_again)
            );
        }
        let text = describe_request(request.name, &undecided, asked_again);
        let answer = tokio::task::spawn_blocking(move || ask(&text)).await??;
        if !answer {
            bail!(
                "permissions not granted; nothing was installed (use --deny PERMISSION to install without some of them)"
            );
        }
        granted = granted.union(&undecided);
    }
    let refused = request.declared.not_covered_by(&granted);
    for permission in refused.iter() {
        eprintln!(
            "not granted: {permission} ({}); grant it later with `krew-wasm grant {} {permission}`",
            permission.describe(),
            request.name
        );
    }
    Ok(granted)
}

/// What an upgrade keeps of the grants: those the new version still asks
/// for, and those the user gave beyond what the old one asked for. A grant
/// the plugin no longer wants is dropped.
fn carried_over(
    declared: &Permissions,
    previous: Option<(&Permissions, &Permissions)>,
) -> Permissions {
    let mut kept = Permissions::none();
    if let Some((previously_declared, previously_granted)) = previous {
        for permission in previously_granted.iter() {
            if declared.covers(&permission) || !previously_declared.covers(&permission) {
                kept.insert(permission);
            }
        }
    }
    kept
}

/// What a rollback restores of the previous version's grants, given the
/// current version's (requested, granted) and the previous one's: all of
/// them, except what the upgrade carried forward (see [`carried_over`]) and
/// the current version no longer has: the user revoked or denied that since,
/// and a rollback must not give it back.
pub fn granted_on_rollback(
    (requested, granted): (&Permissions, &Permissions),
    (previously_requested, previously_granted): (&Permissions, &Permissions),
) -> Permissions {
    let mut kept = Permissions::none();
    for permission in previously_granted.iter() {
        let carried_forward =
            requested.covers(&permission) || !previously_requested.covers(&permission);
        if !carried_forward || granted.covers(&permission) {
            kept.insert(permission);
        }
    }
    kept
}

/// `--deny` values: `all`, or permissions.
pub fn deny_list(values: &[String]) -> Result<Deny> {
    if values.iter().any(|v| v == "all") {
        return Ok(Deny::All);
    }
    Ok(Deny::parse(&values.join(","))?)
}

/// The request in words, one permission per line.
pub fn describe_request(name: &str, permissions: &Permissions, again: bool) -> String {
    let mut text = if again {
        format!("This version of plugin `{name}` asks for more than you granted before:")
    } else {
        format!("Plugin `{name}` asks for permission to:")
    };
    for permission in permissions.iter() {
        text.push_str(&format!("\n  - {}  [{permission}]", permission.describe()));
    }
    text
}

/// After an install, upgrade, import or rollback: what the plugin may do
/// beyond the defaults, when anything.
pub fn print_grants(name: &str, granted: &Permissions) {
    if !granted.is_empty() {
        println!("{name} is granted: {}", describe_lines(granted));
    }
}

/// Lines for `info`: each permission, in words.
pub fn describe_lines(permissions: &Permissions) -> String {
    if permissions.is_empty() {
        return "none beyond the defaults".into();
    }
    permissions
        .iter()
        .iter()
        .map(|p: &Permission| format!("{p} ({})", p.describe()))
        .collect::<Vec<_>>()
        .join("\n                 ")
}

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn ask(question: &str) -> Result<bool> {
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{question}\nGrant these permissions? [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(specs: &[&str]) -> Permissions {
        let mut set = Permissions::none();
        for spec in specs {
            set.insert(spec.parse().unwrap());
        }
        set
    }

    fn flags(yes: bool, grant: &[&str], deny: &[&str]) -> ConsentFlags {
        ConsentFlags {
            yes,
            grant: grant.iter().map(|s| s.parse().unwrap()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Decides without a terminal: every case here is answered in advance.
    fn decided(
        declared: &Permissions,
        previous: Option<(&Permissions, &Permissions)>,
        flags: &ConsentFlags,
    ) -> Permissions {
        let request = Request {
            name: "p",
            declared,
            previous,
            flags,
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(decide(request))
            .unwrap()
    }

    #[test]
    fn deny_wins_over_yes_grant_and_what_was_granted_before() {
        let declared = set(&["env:A", "dir:.", "host:https://example.com"]);
        assert_eq!(
            decided(&declared, None, &flags(true, &[], &["dir:."])),
            set(&["env:A", "host:https://example.com"])
        );
        assert_eq!(
            decided(
                &declared,
                None,
                &flags(
                    false,
                    &["env:A"],
                    &["env:A", "dir:.", "host:https://example.com"]
                )
            ),
            Permissions::none()
        );
        // `--deny all` is "and nothing else".
        assert_eq!(
            decided(&declared, None, &flags(false, &["env:A"], &["all"])),
            set(&["env:A"])
        );
        // An upgrade: what the old version had is denied too.
        let before = set(&["env:A", "dir:."]);
        assert_eq!(
            decided(
                &declared,
                Some((&before, &before)),
                &flags(false, &[], &["env:A", "host:https://example.com"])
            ),
            set(&["dir:."])
        );
    }

    #[test]
    fn yes_and_deny_all_contradict_each_other() {
        let request = Request {
            name: "p",
            declared: &set(&["env:A"]),
            previous: None,
            flags: &flags(true, &[], &["all"]),
        };
        let err = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(decide(request))
            .unwrap_err();
        assert!(err.to_string().contains("pass one of them"), "{err}");
    }

    #[test]
    fn an_upgrade_asks_only_for_what_is_new() {
        // v1 asked for env:A and dir:., and was granted env:A only; v2 asks
        // for the same. Nothing is asked (this would fail without a
        // terminal), and dir:. stays denied.
        let v1 = set(&["env:A", "dir:."]);
        let granted = set(&["env:A"]);
        assert_eq!(
            decided(&v1, Some((&v1, &granted)), &flags(false, &[], &[])),
            granted
        );
        // v3 asks for env:B too: that must be answered, dir:. still not.
        let v3 = set(&["env:A", "env:B", "dir:."]);
        assert_eq!(
            decided(&v3, Some((&v1, &granted)), &flags(false, &["env:B"], &[])),
            set(&["env:A", "env:B"])
        );
    }

    #[test]
    fn a_rollback_does_not_give_back_what_was_revoked_since_the_upgrade() {
        // v1 asked for env:A and dir:., and had both; v2 asks for env:A and
        // env:B, so dir:. was dropped at the upgrade, and env:A revoked since.
        let v1 = set(&["env:A", "dir:."]);
        let v2_requested = set(&["env:A", "env:B"]);
        let v2_granted = set(&["env:B"]);
        assert_eq!(
            granted_on_rollback((&v2_requested, &v2_granted), (&v1, &v1)),
            set(&["dir:."])
        );
        // A grant beyond v1's request went forward; revoked since, it stays revoked.
        let v1_granted = set(&["env:A", "env:EXTRA"]);
        let v1_requested = set(&["env:A"]);
        assert_eq!(
            granted_on_rollback(
                (&v1_requested, &set(&["env:A"])),
                (&v1_requested, &v1_granted)
            ),
            set(&["env:A"])
        );
        // Nothing revoked: everything comes back.
        assert_eq!(
            granted_on_rollback((&v2_requested, &set(&["env:A", "env:B"])), (&v1, &v1)),
            v1
        );
    }
}
