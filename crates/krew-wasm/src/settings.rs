//! Where the store lives and whether kubectl can see it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

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
