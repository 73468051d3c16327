//! Where the store lives, whether kubectl can see it, and the environment
//! variables that bound every plugin run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use krew_wasm_permissions::{ByteSize, Deny};

/// `$KREW_WASM_ROOT`, else `~/.krew-wasm`.
pub fn store_root() -> Result<PathBuf> {
    if let Some(root) = std::env::var_os("KREW_WASM_ROOT").filter(|r| !r.is_empty()) {
        let root = PathBuf::from(root);
        if root.is_relative() {
            let cwd = std::env::current_dir().context("reading the current directory")?;
            return Ok(cwd.join(root));
        }
        return Ok(root);
    }
    match std::env::home_dir() {
        Some(home) if !home.as_os_str().is_empty() => Ok(home.join(".krew-wasm")),
        _ => bail!(
            "cannot find your home directory: set KREW_WASM_ROOT to the directory krew-wasm should use"
        ),
    }
}

/// The line to add to a shell profile when `bin` is not on PATH, or `None`
/// when it already is.
pub fn path_hint(bin: &Path) -> Option<String> {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| same_dir(&dir, bin)));
    if on_path {
        return None;
    }
    let shown = match std::env::home_dir() {
        Some(home) => match bin.strip_prefix(&home) {
            Ok(rest) => format!("$HOME/{}", rest.display()),
            Err(_) => bin.display().to_string(),
        },
        None => bin.display().to_string(),
    };
    Some(format!(
        "note: {} is not on your PATH, so kubectl cannot find krew-wasm plugins. Add it to your shell profile:\n  export PATH=\"{shown}:$PATH\"",
        bin.display()
    ))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What the environment says about every plugin run (wrapper mode included:
/// kubectl passes argv through, so these cannot be flags there).
pub struct RunEnv {
    /// `KREW_WASM_DENY`: grants dropped for this run.
    pub deny: Deny,
    /// `KREW_WASM_TIMEOUT`: wall-clock limit.
    pub timeout: Option<Duration>,
    /// `KREW_WASM_MAX_MEMORY`: a lower memory cap (never a higher one).
    pub max_memory: Option<ByteSize>,
}

impl RunEnv {
    /// The run's timeout: the shorter of `--timeout` (if given) and
    /// `KREW_WASM_TIMEOUT`; like the other per-run settings, each can only
    /// narrow the run.
    pub fn timeout_with(&self, flag: Option<Duration>) -> Option<Duration> {
        match (flag, self.timeout) {
            (Some(flag), Some(env)) => Some(flag.min(env)),
            (flag, env) => flag.or(env),
        }
    }

    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let deny = match var("KREW_WASM_DENY") {
            Some(text) => Deny::parse(&text).context("in KREW_WASM_DENY")?,
            None => Deny::These(Vec::new()),
        };
        let timeout = var("KREW_WASM_TIMEOUT")
            .map(|text| {
                humantime::parse_duration(text.trim()).with_context(|| {
                    format!(
                        "KREW_WASM_TIMEOUT={text} is not a duration; write one like 30s or 500ms"
                    )
                })
            })
            .transpose()?;
        let max_memory = var("KREW_WASM_MAX_MEMORY")
            .map(|text| {
                text.parse::<ByteSize>()
                    .map_err(|e| anyhow::anyhow!("KREW_WASM_MAX_MEMORY: {e}"))
            })
            .transpose()?;
        Ok(Self {
            deny,
            timeout,
            max_memory,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shorter_timeout_holds() {
        let secs = Duration::from_secs;
        let env = |timeout| RunEnv {
            deny: Deny::These(Vec::new()),
            timeout,
            max_memory: None,
        };
        assert_eq!(
            env(Some(secs(5))).timeout_with(Some(secs(30))),
            Some(secs(5))
        );
        assert_eq!(
            env(Some(secs(30))).timeout_with(Some(secs(5))),
            Some(secs(5))
        );
        assert_eq!(env(None).timeout_with(Some(secs(5))), Some(secs(5)));
        assert_eq!(env(Some(secs(5))).timeout_with(None), Some(secs(5)));
        assert_eq!(env(None).timeout_with(None), None);
    }
}
