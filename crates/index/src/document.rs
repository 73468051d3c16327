//! The index document: parsing and validation, all before anything acts on it.

use krew_wasm_oci::{PluginReference, ReferenceError};
use krew_wasm_store::{NameError, PluginName};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The `apiVersion` this krew-wasm writes.
pub const API_VERSION: &str = "krew-wasm.dev/v1";
/// Every `apiVersion` this krew-wasm reads.
pub const SUPPORTED_API_VERSIONS: &[&str] = &[API_VERSION];
/// The `kind` of an index document.
pub const KIND: &str = "PluginIndex";
/// The largest index document read (from a file or a registry).
pub const MAX_INDEX_SIZE: u64 = 4 * 1024 * 1024;
/// The longest description accepted, in characters.
const MAX_DESCRIPTION: usize = 1024;

/// Why a document is not a valid index. Every variant says where: the line
/// (and column for syntax), and the field as a path (`plugins[2].name`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("{size} bytes is more than the {max} bytes an index may weigh")]
    TooLarge { size: u64, max: u64 },
    #[error("not UTF-8 text (byte {offset}); an index is a YAML or JSON document")]
    NotText { offset: usize },
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: u64,
        column: u64,
        message: String,
    },
    #[error("no `apiVersion`: an index starts with `apiVersion: {API_VERSION}` and `kind: {KIND}`")]
    MissingVersion,
    #[error(
        "line {line}, apiVersion: `{found}` is not supported; this krew-wasm reads {}{}",
        supported_list(),
        upgrade_hint(found)
    )]
    UnsupportedVersion { line: u64, found: String },
    #[error("line {line}, kind: `{found}` is not an index; expected `kind: {KIND}`")]
    WrongKind { line: u64, found: String },
    #[error("line {line}, plugins[{position}].name: {source}")]
    Name {
        line: u64,
        position: usize,
        #[source]
        source: NameError,
    },
    #[error("line {line}, plugins[{position}].reference ({name}): {source}")]
    Reference {
        line: u64,
        position: usize,
        name: String,
        #[source]
        source: ReferenceError,
    },
    #[error(
        "line {line}, plugins[{position}].name: `{name}` is listed twice (first at line \
         {first_line}); each plugin name may appear once in an index"
    )]
    Duplicate {
        line: u64,
        position: usize,
        name: String,
        first_line: u64,
    },
    #[error("line {line}, plugins[{position}].{field} ({name}): {reason}")]
    Field {
        line: u64,
        position: usize,
        name: String,
        field: &'static str,
        reason: String,
    },
}

fn supported_list() -> String {
    SUPPORTED_API_VERSIONS
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn upgrade_hint(found: &str) -> &'static str {
    if found.starts_with("krew-wasm.dev/") {
        " (a newer krew-wasm may read it: upgrade krew-wasm)"
    } else {
        ""
    }
}

/// One plugin of an index, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub name: PluginName,
    pub reference: PluginReference,
    pub description: Option<String>,
    pub homepage: Option<String>,
}

/// A valid index document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginIndex {
    pub api_version: String,
    /// In document order; names are unique.
    pub plugins: Vec<IndexEntry>,
}

/// What is read first: the version decides how the rest is read, so a newer
/// document says "unsupported version", not "unknown field".
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // Checked by `Header`; here so they are known fields.
struct DocumentV1 {
    api_version: String,
    kind: String,
    plugins: Vec<EntryV1>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV1 {
    name: Spanned<String>,
    reference: Spanned<String>,
    #[serde(default)]
    description: Option<Spanned<String>>,
    #[serde(default)]
    homepage: Option<Spanned<String>>,
}

impl PluginIndex {
    /// Parses and validates a whole document (YAML, or JSON, which YAML
    /// reads). The first problem found is returned; nothing is partially
    /// accepted.
    pub fn parse(bytes: &[u8]) -> Result<Self, IndexError> {
        let size = bytes.len() as u64;
        if size > MAX_INDEX_SIZE {
            return Err(IndexError::TooLarge {
                size,
                max: MAX_INDEX_SIZE,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| IndexError::NotText {
            offset: e.valid_up_to(),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);

        let header: Header = serde_saphyr::from_str(text).map_err(syntax)?;
        let version = header.api_version.ok_or(IndexError::MissingVersion)?;
        if !SUPPORTED_API_VERSIONS.contains(&version.value.as_str()) {
            return Err(IndexError::UnsupportedVersion {
                line: version.referenced.line(),
                found: version.value,
            });
        }
        match header.kind {
            Some(kind) if kind.value == KIND => {}
            Some(kind) => {
                return Err(IndexError::WrongKind {
                    line: kind.referenced.line(),
                    found: kind.value,
                });
            }
            None => {
                return Err(IndexError::WrongKind {
                    line: version.referenced.line(),
                    found: String::new(),
                });
            }
        }

        let document: DocumentV1 = serde_saphyr::from_str(text).map_err(syntax)?;
        let mut plugins: Vec<IndexEntry> = Vec::with_capacity(document.plugins.len());
        let mut lines: Vec<u64> = Vec::with_capacity(document.plugins.len());
        for (position, raw) in document.plugins.into_iter().enumerate() {
            let line = raw.name.referenced.line();
            let name =
                PluginName::new(raw.name.value.trim()).map_err(|source| IndexError::Name {
                    line,
                    position,
                    source,
                })?;
            if let Some(first) = plugins.iter().position(|p| p.name == name) {
                return Err(IndexError::Duplicate {
                    line,
                    position,
                    name: name.to_string(),
                    first_line: lines[first],
                });
            }
            let reference = PluginReference::parse(&raw.reference.value).map_err(|source| {
                IndexError::Reference {
                    line: raw.reference.referenced.line(),
                    position,
                    name: name.to_string(),
                    source,
                }
            })?;
            let field =
                |field: &'static str, value: &Spanned<String>, reason: String| IndexError::Field {
                    line: value.referenced.line(),
                    position,
                    name: name.to_string(),
                    field,
                    reason,
                };
            let description = match raw.description {
                Some(value) => {
                    let text = value.value.trim();
                    if let Some(c) = text.chars().find(|c| c.is_control()) {
                        return Err(field(
                            "description",
                            &value,
                            format!(
                                "contains the control character {c:?}; a description is one \
                                 line of plain text"
                            ),
                        ));
                    }
                    if text.chars().count() > MAX_DESCRIPTION {
                        return Err(field(
                            "description",
                            &value,
                            format!("longer than {MAX_DESCRIPTION} characters; keep it short"),
                        ));
                    }
                    (!text.is_empty()).then(|| text.to_string())
                }
                None => None,
            };
            let homepage = match raw.homepage {
                Some(value) => {
                    let text = value.value.trim();
                    let is_url = (text.starts_with("https://") || text.starts_with("http://"))
                        && text.len() > "https://".len()
                        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
                    if !text.is_empty() && !is_url {
                        return Err(field(
                            "homepage",
                            &value,
                            format!(
                                "`{}` is not an http(s) URL such as https://github.com/org/plugin",
                                text.escape_debug()
                            ),
                        ));
                    }
                    (!text.is_empty()).then(|| text.to_string())
                }
                None => None,
            };
            lines.push(line);
            plugins.push(IndexEntry {
                name,
                reference,
                description,
                homepage,
            });
        }
        Ok(Self {
            api_version: version.value,
            plugins,
        })
    }

    /// The entry named `name`, if the index lists it.
    pub fn get(&self, name: &str) -> Option<&IndexEntry> {
        self.plugins.iter().find(|p| p.name.as_str() == name)
    }
}

/// A parser error as one line: where, then what, without the parser's own
/// position suffix and its advice to programmers.
fn syntax(err: serde_saphyr::Error) -> IndexError {
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut message = err.without_snippet().to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    if let Some(at) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(at);
    }
    if message == "unexpected end of input" {
        message = format!(
            "the document is empty; an index starts with `apiVersion: {API_VERSION}` and \
             `kind: {KIND}`"
        );
    }
    IndexError::Syntax {
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
apiVersion: krew-wasm.dev/v1
kind: PluginIndex
plugins:
  - name: hello
    reference: 127.0.0.1:5000/plugins/hello:v1
    description: Says hello
    homepage: https://example.com/hello
  - name: decoder
    reference: oci://ghcr.io/example/kubectl-decoder@sha256:4f2c1a9e0b7d4f2c1a9e0b7d4f2c1a9e0b7d4f2c1a9e0b7d4f2c1a9e0b7d4f2c
";

    fn err(text: &str) -> IndexError {
        PluginIndex::parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_yaml() {
        let index = PluginIndex::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(index.api_version, API_VERSION);
        assert_eq!(index.plugins.len(), 2);
        let hello = index.get("hello").unwrap();
        assert_eq!(hello.reference.registry(), "127.0.0.1:5000");
        assert_eq!(hello.reference.tag(), Some("v1"));
        assert_eq!(hello.description.as_deref(), Some("Says hello"));
        assert_eq!(hello.homepage.as_deref(), Some("https://example.com/hello"));
        let decoder = index.get("decoder").unwrap();
        assert!(decoder.reference.is_pinned());
        assert_eq!(decoder.description, None);
        assert!(index.get("nope").is_none());
    }

    #[test]
    fn parses_json_the_same() {
        let json = "{\n\t\"apiVersion\": \"krew-wasm.dev/v1\",\n\t\"kind\": \"PluginIndex\",\n\
            \t\"plugins\": [\n\t\t{\"name\": \"hello\", \"reference\": \"127.0.0.1:5000/plugins/hello:v1\", \
            \"description\": \"Says hello\", \"homepage\": \"https://example.com/hello\"}\n\t]\n}\n";
        let index = PluginIndex::parse(json.as_bytes()).unwrap();
        let yaml = PluginIndex::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(index.plugins[0], yaml.plugins[0]);
        // And a JSON error has a line too.
        let bad = json.replace("\"homepage\"", "\"homepag\"");
        let e = err(&bad);
        assert!(
            matches!(e, IndexError::Syntax { line: 5, .. }),
            "{e:?}: {e}"
        );
        assert!(e.to_string().contains("homepag"), "{e}");
    }

    #[test]
    fn an_empty_list_is_an_index() {
        let index =
            PluginIndex::parse(b"apiVersion: krew-wasm.dev/v1\nkind: PluginIndex\nplugins: []\n")
                .unwrap();
        assert!(index.plugins.is_empty());
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        // An unclosed bracket is noticed where the next key starts.
        let e = err(&GOOD.replace("description: Says hello", "description: [Says hello"));
        assert!(matches!(e, IndexError::Syntax { line: 7, .. }), "{e:?}");
        let e = err(&GOOD.replace("    reference: 127", "    reference: - 127"));
        assert!(matches!(e, IndexError::Syntax { line: 5, .. }), "{e:?}");
        let e = err(&GOOD.replace("    homepage", "   homepage"));
        assert!(matches!(e, IndexError::Syntax { line: 7, .. }), "{e:?}");
        let e = err(&GOOD.replace("    homepage", "    homepages"));
        assert!(
            matches!(&e, IndexError::Syntax { line: 7, message, .. } if message.contains("unknown field `homepages`")),
            "{e:?}"
        );
        let e = err(&GOOD.replace("    reference: 127", "    name: again\n    reference: 127"));
        assert!(
            matches!(&e, IndexError::Syntax { line: 5, message, .. } if message.contains("duplicate mapping key")),
            "{e:?}"
        );
        assert!(!e.to_string().contains("DuplicateKeyPolicy"), "{e}");
        let e = err(&GOOD.replace("    reference: 127.0.0.1:5000/plugins/hello:v1\n", ""));
        assert!(e.to_string().contains("missing field `reference`"), "{e}");
        let e = err("");
        assert_eq!(e, IndexError::MissingVersion);
        assert!(matches!(err("- a\n"), IndexError::Syntax { line: 1, .. }));
        assert!(matches!(
            PluginIndex::parse(b"apiVersion: \xff\n"),
            Err(IndexError::NotText { offset: 12 })
        ));
    }

    #[test]
    fn versions_and_kind() {
        let e = err(&GOOD.replace("krew-wasm.dev/v1", "krew-wasm.dev/v2"));
        assert_eq!(
            e,
            IndexError::UnsupportedVersion {
                line: 1,
                found: "krew-wasm.dev/v2".into()
            }
        );
        let text = e.to_string();
        assert!(
            text.contains("`krew-wasm.dev/v1`") && text.contains("upgrade"),
            "{text}"
        );
        // A newer version's new fields do not hide the version.
        let newer = GOOD.replace("krew-wasm.dev/v1", "krew-wasm.dev/v2") + "signedBy: x\n";
        assert!(matches!(err(&newer), IndexError::UnsupportedVersion { .. }));
        assert_eq!(
            err("kind: PluginIndex\nplugins: []\n"),
            IndexError::MissingVersion
        );
        let e = err(&GOOD.replace("kind: PluginIndex", "kind: Plugin"));
        assert!(
            matches!(&e, IndexError::WrongKind { line: 2, found } if found == "Plugin"),
            "{e:?}"
        );
    }

    #[test]
    fn names_follow_the_plugin_rules() {
        let e = err(&GOOD.replace("name: decoder", "name: Decoder"));
        assert!(
            matches!(
                &e,
                IndexError::Name {
                    line: 8,
                    position: 1,
                    source: NameError::Invalid(_)
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("plugins[1].name"), "{e}");
        let e = err(&GOOD.replace("name: decoder", "name: get"));
        assert!(
            matches!(
                e,
                IndexError::Name {
                    source: NameError::ShadowsBuiltin(_),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = err(&GOOD.replace("name: decoder", "name: hello"));
        assert_eq!(
            e,
            IndexError::Duplicate {
                line: 8,
                position: 1,
                name: "hello".into(),
                first_line: 4
            }
        );
    }

    #[test]
    fn references_must_parse() {
        let e = err(&GOOD.replace("127.0.0.1:5000/plugins/hello:v1", "hello:v1"));
        assert!(
            matches!(
                &e,
                IndexError::Reference {
                    line: 5,
                    position: 0,
                    source: ReferenceError::NoRegistry(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("plugins[0].reference (hello)"),
            "{e}"
        );
        let e = err(&GOOD.replace("@sha256:4f2c", "@sha256:XX"));
        assert!(
            matches!(
                e,
                IndexError::Reference {
                    source: ReferenceError::BadDigest { .. },
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn text_fields_are_plain() {
        let e = err(&GOOD.replace("Says hello", "\"Says \\e[31mhello\""));
        assert!(
            matches!(
                &e,
                IndexError::Field {
                    field: "description",
                    line: 6,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = err(&GOOD.replace("https://example.com/hello", "javascript:alert(1)"));
        assert!(
            matches!(
                &e,
                IndexError::Field {
                    field: "homepage",
                    line: 7,
                    ..
                }
            ),
            "{e:?}"
        );
        let long = format!("description: {}", "x".repeat(MAX_DESCRIPTION + 1));
        assert!(matches!(
            err(&GOOD.replace("description: Says hello", &long)),
            IndexError::Field {
                field: "description",
                ..
            }
        ));
        // A folded block's trailing newline is not a control character.
        let folded = GOOD.replace(
            "description: Says hello",
            "description: >\n      Says\n      hello",
        );
        let index = PluginIndex::parse(folded.as_bytes()).unwrap();
        assert_eq!(index.plugins[0].description.as_deref(), Some("Says hello"));
    }

    #[test]
    fn refuses_huge_documents() {
        let huge = vec![b' '; usize::try_from(MAX_INDEX_SIZE).unwrap() + 1];
        assert!(matches!(
            PluginIndex::parse(&huge),
            Err(IndexError::TooLarge { .. })
        ));
    }
}
