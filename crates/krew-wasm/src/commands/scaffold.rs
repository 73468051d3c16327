//! `krew-wasm new`: a plugin project written from the template in
//! `guest/template`, which is embedded in the binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use krew_wasm_store::PluginName;

use crate::cli::NewArgs;

/// The template's files (dotfiles included), relative to the project root.
/// A unit test checks this list against `guest/template`.
const TEMPLATE: &[(&str, &str)] = &[
    (
        ".cargo/config.toml",
        include_str!("../../../../guest/template/.cargo/config.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../../../guest/template/.gitignore"),
    ),
    (
        "Cargo.toml",
        include_str!("../../../../guest/template/Cargo.toml"),
    ),
    (
        "README.md",
        include_str!("../../../../guest/template/README.md"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("../../../../guest/template/rust-toolchain.toml"),
    ),
    (
        "src/main.rs",
        include_str!("../../../../guest/template/src/main.rs"),
    ),
];

/// Where the SDK comes from when neither `--sdk` nor a source checkout gives a path.
const SDK_GIT: &str = "https://github.com/krew-wasm/krew-wasm";

/// Where cargo puts the plugin, relative to the project.
const WASM_DIR: &str = "target/wasm32-wasip2/release";

/// How the generated Cargo.toml depends on krew-wasm-sdk.
#[derive(Debug, PartialEq, Eq)]
enum Sdk {
    Path(PathBuf),
    Git,
}

impl Sdk {
    /// The value of `krew-wasm-sdk = …` in Cargo.toml.
    fn dependency(&self) -> Result<String> {
        Ok(match self {
            Sdk::Path(path) => {
                let path = path.to_str().with_context(|| {
                    format!(
                        "the SDK path {} is not valid UTF-8, which Cargo.toml cannot hold; \
                         move the SDK and pass --sdk PATH",
                        path.display()
                    )
                })?;
                format!("{{ path = {} }}", toml_string(path))
            }
            Sdk::Git => format!("{{ git = {} }}", toml_string(SDK_GIT)),
        })
    }
}

pub fn new(args: NewArgs) -> Result<()> {
    let name = PluginName::new(&args.name)?;
    check_package_name(&name)?;
    let shown_dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let dest = std::path::absolute(cwd.join(&shown_dir))
        .with_context(|| format!("resolving {}", shown_dir.display()))?;
    if dest.file_name().is_none() || cwd.starts_with(&dest) {
        bail!(
            "{} is the current directory or above it; give a new directory with --path DIR",
            shown_dir.display()
        );
    }
    check_destination(&dest, &shown_dir)?;
    let sdk = match &args.sdk {
        Some(path) => Sdk::Path(sdk_dir(&cwd.join(path), path)?),
        None => checkout_sdk().map_or(Sdk::Git, Sdk::Path),
    };
    let files = render(&name, &sdk.dependency()?);
    write_project(&dest, &shown_dir, &files)?;

    let from = match &sdk {
        Sdk::Path(path) => path.display().to_string(),
        Sdk::Git => SDK_GIT.to_string(),
    };
    println!(
        "created the plugin project {name} in {} (krew-wasm-sdk from {from})",
        shown_dir.display()
    );
    if sdk == Sdk::Git {
        eprintln!(
            "note: Cargo.toml takes krew-wasm-sdk from {SDK_GIT}, so the first build needs network \
             access; without it, use a local copy (`--sdk PATH/guest/sdk`, or `path = \"…\"` in Cargo.toml)"
        );
    }
    let dir = shell_word(&shown_dir.display().to_string());
    let wasm = format!("{WASM_DIR}/{name}.wasm");
    println!(
        "\nBuild it and run it with your kubeconfig:\n  \
         cd {dir} && cargo build --release\n  \
         krew-wasm run {wasm}\n  \
         krew-wasm run {wasm} -- -n kube-system\n\
         \nInstall it: push the .wasm to an OCI registry with any OCI tool, then pull it, e.g.\n  \
         oras push REGISTRY/{name}:v1 {wasm}:application/wasm\n  \
         krew-wasm pull REGISTRY/{name}:v1\n  \
         kubectl {name}"
    );
    Ok(())
}

/// A plugin name is lowercase letters, digits and inner dashes, which Cargo
/// accepts as a package name except for a leading digit and the names of
/// its own build directories.
fn check_package_name(name: &PluginName) -> Result<()> {
    let name = name.as_str();
    let problem = if name.starts_with(|c: char| c.is_ascii_digit()) {
        "it starts with a digit"
    } else if ["build", "deps", "examples", "incremental"].contains(&name) {
        "Cargo reserves it for a build directory"
    } else {
        return Ok(());
    };
    bail!(
        "`{name}` is a valid plugin name but cannot name the Cargo package of the project: {problem}; \
         choose another NAME, such as `kubectl-{name}` (`krew-wasm pull REF --name {name}` \
         still installs it as `{name}`)"
    )
}

/// The project goes into a directory that does not exist or is empty.
fn check_destination(dest: &Path, shown: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(dest) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("checking {}", shown.display())),
    };
    if !meta.is_dir() {
        bail!(
            "{} already exists and is not a directory; nothing was written. Choose another \
             directory with --path DIR",
            shown.display()
        );
    }
    let mut entries =
        std::fs::read_dir(dest).with_context(|| format!("reading {}", shown.display()))?;
    if entries.next().is_some() {
        bail!(
            "{} already exists and is not empty; nothing was written. Choose another directory \
             with --path DIR, or remove this one",
            shown.display()
        );
    }
    Ok(())
}

/// `--sdk PATH`: the directory of krew-wasm-sdk's Cargo.toml, absolute.
fn sdk_dir(path: &Path, shown: &Path) -> Result<PathBuf> {
    let dir = std::fs::canonicalize(path)
        .with_context(|| format!("--sdk {}: cannot open it", shown.display()))?;
    if !is_sdk(&dir) {
        bail!(
            "--sdk {}: no krew-wasm-sdk there; give the directory that holds its Cargo.toml \
             (guest/sdk in a krew-wasm checkout)",
            shown.display()
        );
    }
    Ok(dir)
}

/// The SDK of the source checkout this binary was built from, if it is still there.
fn checkout_sdk() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest/sdk");
    let dir = std::fs::canonicalize(dir).ok()?;
    is_sdk(&dir).then_some(dir)
}

fn is_sdk(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|manifest| manifest.contains("name = \"krew-wasm-sdk\""))
}

/// The template with its placeholders filled in.
fn render(name: &PluginName, sdk_dependency: &str) -> Vec<(&'static str, String)> {
    TEMPLATE
        .iter()
        .map(|(path, text)| {
            let text = text
                .replace("{{name}}", name.as_str())
                .replace("{{sdk_dependency}}", sdk_dependency);
            (*path, text)
        })
        .collect()
}

/// Writes the files into a temporary directory next to `dest`, then renames
/// it to `dest`: a failure leaves no half-written project.
fn write_project(dest: &Path, shown: &Path, files: &[(&str, String)]) -> Result<()> {
    let parent = dest
        .parent()
        .with_context(|| format!("{} has no parent directory", shown.display()))?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("creating the parent directories of {}", shown.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".krew-wasm-new-");
    // tempfile makes directories private (0700); a project gets the usual
    // permissions, what the umask leaves of 0777.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o777));
    }
    let staging = builder
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    for (path, text) in files {
        let file = staging.path().join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    // rename(2) replaces an empty directory (and fails on a non-empty one)
    // on Unix; elsewhere an empty destination is removed first.
    let renamed = std::fs::rename(staging.path(), dest);
    #[cfg(not(unix))]
    let renamed = renamed.or_else(|err| {
        if dest.is_dir() && std::fs::remove_dir(dest).is_ok() {
            std::fs::rename(staging.path(), dest)
        } else {
            Err(err)
        }
    });
    renamed.with_context(|| format!("creating {}", shown.display()))?;
    // Renamed away: nothing is left to clean up.
    let _ = staging.keep();
    Ok(())
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `word`, quoted for a POSIX shell when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+,:@%=".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files under `dir`, relative to `base`, leaving out a build's
    /// `target` and `Cargo.lock`.
    fn file_names(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("reading guest/template") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(base).expect("prefix");
            if rel == Path::new("target") || rel == Path::new("Cargo.lock") {
                continue;
            }
            if path.is_dir() {
                file_names(&path, base, out);
            } else {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }

    fn template_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest/template")
    }

    #[test]
    fn every_template_file_is_embedded() {
        let mut on_disk = Vec::new();
        file_names(&template_dir(), &template_dir(), &mut on_disk);
        on_disk.sort();
        let embedded: Vec<String> = TEMPLATE.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            embedded, on_disk,
            "TEMPLATE in scaffold.rs must list every file of guest/template, sorted"
        );
    }

    #[test]
    fn rendering_fills_every_placeholder() {
        let name = PluginName::new("my-pods").unwrap();
        let dependency = Sdk::Path("/src/krew \"wasm\"/guest/sdk".into())
            .dependency()
            .unwrap();
        assert_eq!(dependency, r#"{ path = "/src/krew \"wasm\"/guest/sdk" }"#);
        for (path, text) in render(&name, &dependency) {
            assert!(!text.contains("{{"), "{path} keeps a placeholder:\n{text}");
        }
        let cargo = render(&name, &dependency)
            .into_iter()
            .find(|(p, _)| *p == "Cargo.toml")
            .unwrap()
            .1;
        assert!(cargo.contains("name = \"my-pods\""));
        assert!(cargo.contains(&format!("krew-wasm-sdk = {dependency}")));
        assert_eq!(
            Sdk::Git.dependency().unwrap(),
            r#"{ git = "https://github.com/krew-wasm/krew-wasm" }"#
        );
    }

    #[test]
    fn toml_strings_escape() {
        assert_eq!(toml_string(r"C:\a"), r#""C:\\a""#);
        assert_eq!(toml_string("a\nb\u{7f}"), r#""a\u000Ab\u007F""#);
    }

    #[test]
    fn package_names_cargo_refuses() {
        for name in ["2fa", "build", "deps", "examples", "incremental"] {
            let err = check_package_name(&PluginName::new(name).unwrap()).unwrap_err();
            assert!(err.to_string().contains("--name"), "{err}");
        }
        for name in ["my-pods", "a", "build-x", "x2"] {
            assert!(check_package_name(&PluginName::new(name).unwrap()).is_ok());
        }
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("my-pods"), "my-pods");
        assert_eq!(shell_word("../a b"), "'../a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_checkout_sdk_is_found() {
        assert!(checkout_sdk().is_some());
    }
}
