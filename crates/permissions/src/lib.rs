//! What a krew-wasm plugin may do beyond the defaults every plugin gets
//! (stdio, argv, an env allow-list, clocks, random, its kubeconfig view and
//! the selected cluster's API server).
//!
//! One type, [`Permissions`], is three things at once: what a plugin
//! *declares* it needs, what the user *granted* (kept in the receipt), and
//! what one *run* gets after per-run narrowing. It is a set of
//! [`Permission`]s:
//!
//! | spec (CLI)               | declaration (JSON)                              | means |
//! |--------------------------|-------------------------------------------------|-------|
//! | `env:AWS_PROFILE`        | `"env": ["AWS_PROFILE"]`                        | the variable, when set on the host |
//! | `dir:.` / `dir:.:rw`     | `"dirs": [{"path": ".", "access": "read-only"}]` | the current directory, mounted at `.` |
//! | `dir:~/.config/x:rw`     | `{"path": "~/.config/x", "access": "read-write"}` | a named path, mounted where it is on the host |
//! | `host:https://api.github.com` | `"hosts": ["https://api.github.com"]`      | `wasi:http` to that origin, without credentials |
//! | `memory:2GiB`            | `"memory": "2GiB"`                              | a memory cap above the default [`DEFAULT_MEMORY`] |
//!
//! A declaration travels with the plugin two ways, in the same JSON form
//! (see `docs/permissions.md`): a wasm custom section named
//! [`CUSTOM_SECTION`], read by [`Permissions::from_wasm`], so a local file
//! carries it; and the OCI manifest annotation [`ANNOTATION`] that
//! `krew-wasm push` writes. [`Permissions::from_json`] parses either, naming
//! the line, column and field of a mistake.
//!
//! The set algebra the CLI needs: [`Permissions::not_covered_by`] (what an
//! install or upgrade must still ask for), [`Permissions::insert`] and
//! [`Permissions::remove`] (`grant`, `revoke`), [`Permissions::narrowed`]
//! (per-run `KREW_WASM_DENY`). This crate does no I/O: resolving a path
//! against the current or home directory is [`DirPath::resolve`], given both.

mod permission;
mod size;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use permission::{Access, DirPath, HostOrigin, Permission};
pub use size::ByteSize;

/// Name of the wasm custom section that carries a plugin's declaration.
pub const CUSTOM_SECTION: &str = "krew-wasm.permissions";

/// OCI manifest annotation that carries a plugin's declaration.
pub const ANNOTATION: &str = "dev.krew-wasm.permissions";

/// The declaration format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Memory cap of a plugin that was granted no other: 512 MiB.
pub const DEFAULT_MEMORY: ByteSize = ByteSize::mib(512);

/// Errors of parsing permissions, each naming what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PermissionsError {
    /// A permission spec on the command line or in an environment variable.
    #[error("invalid permission `{spec}`: {reason}")]
    Spec { spec: String, reason: String },
    /// A JSON declaration (custom section, annotation, receipt).
    #[error("invalid permissions declaration: {0}")]
    Declaration(String),
    /// The wasm binary could not be read far enough to find the section.
    #[error("reading the permissions section of the WebAssembly binary: {0}")]
    Wasm(String),
}

/// A set of permissions: declared, granted, or effective for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    env: BTreeSet<String>,
    dirs: BTreeMap<DirPath, Access>,
    hosts: BTreeSet<HostOrigin>,
    memory: Option<ByteSize>,
}

/// The JSON form, shared by declarations and receipts.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env: Vec<permission::EnvName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dirs: Vec<WireDir>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hosts: Vec<HostOrigin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<ByteSize>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDir {
    path: DirPath,
    access: Access,
}

impl Permissions {
    /// No permission beyond the defaults.
    pub fn none() -> Self {
        Self::default()
    }

    /// True when nothing beyond the defaults is in the set.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.dirs.is_empty()
            && self.hosts.is_empty()
            && self.memory.is_none()
    }

    /// Every permission in the set, in a stable order: env, dirs, hosts, memory.
    pub fn iter(&self) -> Vec<Permission> {
        let env = self.env.iter().cloned().map(Permission::Env);
        let dirs = self.dirs.iter().map(|(path, access)| Permission::Dir {
            path: path.clone(),
            access: *access,
        });
        let hosts = self.hosts.iter().cloned().map(Permission::Host);
        let memory = self.memory.map(Permission::Memory);
        env.chain(dirs).chain(hosts).chain(memory).collect()
    }

    /// Adds a permission. A directory keeps the wider access; memory the
    /// larger cap.
    pub fn insert(&mut self, permission: Permission) {
        match permission {
            Permission::Env(name) => {
                self.env.insert(name);
            }
            Permission::Dir { path, access } => {
                let entry = self.dirs.entry(path).or_insert(access);
                *entry = (*entry).max(access);
            }
            Permission::Host(origin) => {
                self.hosts.insert(origin);
            }
            Permission::Memory(size) => {
                self.memory = Some(self.memory.map_or(size, |m| m.max(size)));
            }
        }
    }

    /// Removes a permission: a directory whatever its access, a memory cap
    /// above the default back to the default (a cap below it is a limit,
    /// not a permission, and stays). Returns whether anything was removed.
    pub fn remove(&mut self, permission: &Permission) -> bool {
        match permission {
            Permission::Env(name) => self.env.remove(name),
            Permission::Dir { path, .. } => self.dirs.remove(path).is_some(),
            Permission::Host(origin) => self.hosts.remove(origin),
            Permission::Memory(_) => {
                let above_default = self.memory.is_some_and(|m| m > DEFAULT_MEMORY);
                if above_default {
                    self.memory = None;
                }
                above_default
            }
        }
    }

    /// The union of two sets.
    pub fn union(&self, other: &Permissions) -> Permissions {
        let mut union = self.clone();
        for permission in other.iter() {
            union.insert(permission);
        }
        union
    }

    /// What `self` (a declaration) asks for that `granted` does not give: a
    /// missing env var, directory or host; read-write where only read-only
    /// was granted; more memory than the granted cap (or the default).
    pub fn not_covered_by(&self, granted: &Permissions) -> Permissions {
        let mut missing = Permissions::none();
        for permission in self.iter() {
            if !granted.covers(&permission) {
                missing.insert(permission);
            }
        }
        missing
    }

    /// Whether one permission is within this set.
    pub fn covers(&self, permission: &Permission) -> bool {
        match permission {
            Permission::Env(name) => self.env.contains(name),
            Permission::Dir { path, access } => {
                self.dirs.get(path).is_some_and(|granted| granted >= access)
            }
            Permission::Host(origin) => self.hosts.contains(origin),
            Permission::Memory(size) => *size <= self.memory_limit(),
        }
    }

    /// This set without what `deny` names (per-run narrowing). Narrowing
    /// never raises the memory cap: one below the default stays.
    pub fn narrowed(&self, deny: &Deny) -> Permissions {
        match deny {
            Deny::All => Permissions {
                memory: self.memory.filter(|m| *m < DEFAULT_MEMORY),
                ..Permissions::none()
            },
            Deny::These(denied) => {
                let mut narrowed = self.clone();
                for permission in denied {
                    narrowed.remove(permission);
                }
                narrowed
            }
        }
    }

    /// Environment variable names granted.
    pub fn env(&self) -> impl Iterator<Item = &str> {
        self.env.iter().map(String::as_str)
    }

    /// Directories granted, with their access.
    pub fn dirs(&self) -> impl Iterator<Item = (&DirPath, Access)> {
        self.dirs.iter().map(|(path, access)| (path, *access))
    }

    /// HTTP origins granted.
    pub fn hosts(&self) -> impl Iterator<Item = &HostOrigin> {
        self.hosts.iter()
    }

    /// The memory cap: the granted one, else [`DEFAULT_MEMORY`].
    pub fn memory_limit(&self) -> ByteSize {
        self.memory.unwrap_or(DEFAULT_MEMORY)
    }

    /// Parses the JSON form (a declaration or a receipt's grants).
    pub fn from_json(json: &[u8]) -> Result<Self, PermissionsError> {
        let wire: Wire = serde_json::from_slice(json)
            .map_err(|e| PermissionsError::Declaration(describe_json_error(&e)))?;
        Self::from_wire(wire)
    }

    fn from_wire(wire: Wire) -> Result<Self, PermissionsError> {
        if wire.version != FORMAT_VERSION {
            return Err(PermissionsError::Declaration(format!(
                "`version` is {}, but this krew-wasm reads version {FORMAT_VERSION}; upgrade krew-wasm or declare version {FORMAT_VERSION}",
                wire.version
            )));
        }
        let mut permissions = Permissions::none();
        for name in wire.env {
            permissions.insert(Permission::Env(name.0));
        }
        for dir in wire.dirs {
            permissions.insert(Permission::Dir {
                path: dir.path,
                access: dir.access,
            });
        }
        for origin in wire.hosts {
            permissions.insert(Permission::Host(origin));
        }
        if let Some(memory) = wire.memory {
            permissions.insert(Permission::Memory(memory));
        }
        Ok(permissions)
    }

    /// The JSON form, compact and canonical (sorted, deduplicated).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(&self.to_wire()).unwrap_or_default()
    }

    fn to_wire(&self) -> Wire {
        Wire {
            version: FORMAT_VERSION,
            env: self.env.iter().cloned().map(permission::EnvName).collect(),
            dirs: self
                .dirs
                .iter()
                .map(|(path, access)| WireDir {
                    path: path.clone(),
                    access: *access,
                })
                .collect(),
            hosts: self.hosts.iter().cloned().collect(),
            memory: self.memory,
        }
    }

    /// The declaration in a wasm binary's [`CUSTOM_SECTION`], at any depth
    /// (a component keeps its core module's sections). Several sections, or
    /// several JSON documents in one (the linker concatenates sections of the
    /// same name), are merged. `None` when the binary declares nothing.
    pub fn from_wasm(wasm: &[u8]) -> Result<Option<Self>, PermissionsError> {
        let mut found: Option<Permissions> = None;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(|e| PermissionsError::Wasm(e.to_string()))?;
            let wasmparser::Payload::CustomSection(section) = payload else {
                continue;
            };
            if section.name() != CUSTOM_SECTION {
                continue;
            }
            let documents =
                serde_json::Deserializer::from_slice(section.data()).into_iter::<Wire>();
            for document in documents {
                let wire = document.map_err(|e| {
                    PermissionsError::Declaration(format!(
                        "in the `{CUSTOM_SECTION}` custom section: {}",
                        describe_json_error(&e)
                    ))
                })?;
                let declared = Self::from_wire(wire)?;
                found = Some(match found {
                    Some(earlier) => earlier.union(&declared),
                    None => declared,
                });
            }
        }
        Ok(found)
    }
}

impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        Self::from_wire(wire).map_err(serde::de::Error::custom)
    }
}

/// What a run drops from its grants (`KREW_WASM_DENY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deny {
    /// Every granted permission.
    All,
    /// These (a directory whatever its access; memory back to the default).
    These(Vec<Permission>),
}

impl Deny {
    /// Parses `all`, or a comma-separated list of specs (empty: deny nothing).
    pub fn parse(text: &str) -> Result<Self, PermissionsError> {
        let text = text.trim();
        if text == "all" {
            return Ok(Deny::All);
        }
        text.split(',')
            .map(str::trim)
            .filter(|spec| !spec.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Deny::These)
    }
}

/// serde_json's message already says "at line L column C"; name the field
/// vocabulary for the common mistake of an unknown one.
fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if message.starts_with("unknown field") {
        format!(
            "{message} (a declaration has `version`, `env`, `dirs`, `hosts` and `memory`; see docs/permissions.md)"
        )
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(specs: &[&str]) -> Permissions {
        let mut set = Permissions::none();
        for spec in specs {
            set.insert(spec.parse().unwrap());
        }
        set
    }

    #[test]
    fn json_round_trip_is_canonical() {
        let json = br#"{"version":1,"env":["B","A","A"],"dirs":[{"path":".","access":"read-only"},{"path":"~/.config/x","access":"read-write"}],"hosts":["https://api.github.com:443"],"memory":"1GiB"}"#;
        let parsed = Permissions::from_json(json).unwrap();
        assert_eq!(
            parsed.to_json(),
            r#"{"version":1,"env":["A","B"],"dirs":[{"path":".","access":"read-only"},{"path":"~/.config/x","access":"read-write"}],"hosts":["https://api.github.com"],"memory":"1GiB"}"#
        );
        assert_eq!(
            Permissions::from_json(parsed.to_json().as_bytes()).unwrap(),
            parsed
        );
        let specs: Vec<String> = parsed.iter().iter().map(ToString::to_string).collect();
        assert_eq!(
            specs,
            [
                "env:A",
                "env:B",
                "dir:.",
                "dir:~/.config/x:rw",
                "host:https://api.github.com",
                "memory:1GiB"
            ]
        );
    }

    #[test]
    fn declaration_errors_name_line_and_field() {
        let err = Permissions::from_json(b"{\"version\":1,\n\"envs\":[\"A\"]}").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("unknown field `envs`") && text.contains("line 2"),
            "{text}"
        );

        let err = Permissions::from_json(b"{\"version\":1,\n\n\"env\":[\"A-B\"]}").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("A-B") && text.contains("line 3"), "{text}");

        let err = Permissions::from_json(br#"{"version":2}"#).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");

        let err = Permissions::from_json(br#"{"env":[]}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `version`"), "{err}");

        // A plugin's declaration cannot smuggle terminal control sequences
        // into the consent prompt, nor into the error that refuses it.
        let err = Permissions::from_json(
            br#"{"version":1,"dirs":[{"path":"/tmp[1A[2K","access":"read-only"}]}"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("control character"), "{text}");
        assert!(!text.contains('\x1b'), "{text:?}");
    }

    #[test]
    fn coverage_and_narrowing() {
        let requested = perms(&["env:A", "dir:.:rw", "host:https://x.example", "memory:1GiB"]);
        let granted = perms(&["env:A", "dir:."]);
        let missing = requested.not_covered_by(&granted);
        assert_eq!(
            missing,
            perms(&["dir:.:rw", "host:https://x.example", "memory:1GiB"])
        );
        assert!(requested.not_covered_by(&requested).is_empty());
        // Memory at or under the default needs no grant.
        assert!(
            perms(&["memory:256MiB"])
                .not_covered_by(&Permissions::none())
                .is_empty()
        );

        let deny = Deny::parse("env:A, dir:.").unwrap();
        assert_eq!(
            requested.narrowed(&deny),
            perms(&["host:https://x.example", "memory:1GiB"])
        );
        assert!(requested.narrowed(&Deny::parse("all").unwrap()).is_empty());
        assert_eq!(requested.narrowed(&Deny::parse("").unwrap()), requested);
        assert_eq!(
            requested
                .narrowed(&Deny::parse("memory:1GiB").unwrap())
                .memory_limit(),
            DEFAULT_MEMORY
        );
        // Narrowing never raises a cap below the default.
        let low = perms(&["env:A", "memory:128MiB"]);
        for deny in ["all", "memory:1GiB", "env:A"] {
            let narrowed = low.narrowed(&Deny::parse(deny).unwrap());
            assert_eq!(narrowed.memory_limit(), ByteSize::mib(128), "{deny}");
            assert!(narrowed.env().next().is_none() || deny == "memory:1GiB");
        }
    }

    #[test]
    fn insert_keeps_the_wider_grant() {
        let mut set = perms(&["dir:/data:rw", "memory:1GiB"]);
        set.insert("dir:/data".parse().unwrap());
        set.insert("memory:768MiB".parse().unwrap());
        assert_eq!(set, perms(&["dir:/data:rw", "memory:1GiB"]));
        assert!(set.remove(&"dir:/data:rw".parse().unwrap()));
        assert!(!set.remove(&"env:NOPE".parse().unwrap()));
    }

    /// A module with one custom section, built by hand: magic, version,
    /// section id 0, size, name, data.
    fn module_with_section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.push(0);
        wasm.push(body.len() as u8);
        wasm.extend(body);
        wasm
    }

    #[test]
    fn reads_the_custom_section() {
        let wasm = module_with_section(
            CUSTOM_SECTION,
            br#"{"version":1,"env":["A"]}{"version":1,"dirs":[{"path":".","access":"read-only"}]}"#,
        );
        let declared = Permissions::from_wasm(&wasm).unwrap().unwrap();
        assert_eq!(declared, perms(&["env:A", "dir:."]));

        let other = module_with_section("producers", b"");
        assert_eq!(Permissions::from_wasm(&other).unwrap(), None);

        let broken = module_with_section(CUSTOM_SECTION, br#"{"version":1,"env":"A"}"#);
        let err = Permissions::from_wasm(&broken).unwrap_err().to_string();
        assert!(err.contains(CUSTOM_SECTION), "{err}");

        assert!(Permissions::from_wasm(b"\0asm\x01\0\0\0\x00\x7f").is_err());
    }
}
