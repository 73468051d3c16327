//! Finding plugins across indexes: `search`, and `pull NAME|INDEX/NAME`.

use crate::document::{IndexEntry, PluginIndex};
use crate::name::{IndexName, is_well_formed};

/// A plugin found in an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit<'a> {
    pub index: &'a IndexName,
    pub entry: &'a IndexEntry,
}

impl Hit<'_> {
    /// `INDEX/NAME`: what `pull` takes to pick exactly this one.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.index, self.entry.name)
    }
}

/// Plugins whose name or description contains every word of `terms`
/// (case-insensitive); all plugins when there are none. An exact name match
/// comes first, then names containing the terms, then descriptions; each
/// group by name, then index.
pub fn search<'a>(indexes: &'a [(IndexName, PluginIndex)], terms: &[String]) -> Vec<Hit<'a>> {
    let words: Vec<String> = terms
        .iter()
        .flat_map(|t| t.split_whitespace())
        .map(str::to_lowercase)
        .collect();
    let mut hits: Vec<(u8, Hit<'a>)> = Vec::new();
    for (index, document) in indexes {
        for entry in &document.plugins {
            let name = entry.name.as_str();
            let description = entry
                .description
                .as_deref()
                .unwrap_or_default()
                .to_lowercase();
            let matches = words
                .iter()
                .all(|w| name.contains(w.as_str()) || description.contains(w.as_str()));
            if !matches {
                continue;
            }
            let rank = if words.len() == 1 && name == words[0] {
                0
            } else if words.iter().all(|w| name.contains(w.as_str())) {
                1
            } else {
                2
            };
            hits.push((rank, Hit { index, entry }));
        }
    }
    hits.sort_by(|(ra, a), (rb, b)| {
        (ra, a.entry.name.as_str(), a.index).cmp(&(rb, b.entry.name.as_str(), b.index))
    });
    hits.into_iter().map(|(_, hit)| hit).collect()
}

/// What `pull` was given, when it is a name to look up rather than a
/// registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// `NAME`: searched in every index.
    Bare(String),
    /// `INDEX/NAME`: that index only.
    Qualified { index: IndexName, name: String },
}

/// Reads `NAME` or `INDEX/NAME` out of a `pull` argument. Anything with `:`
/// or `@`, more than one `/`, or a first segment that cannot name an index
/// (a registry host has a `.` or a `:`, or is `localhost`) is a registry
/// reference: `None`.
pub fn lookup_syntax(input: &str) -> Option<Lookup> {
    let input = input.trim();
    if input.is_empty() || input.contains([':', '@']) {
        return None;
    }
    match input.split_once('/') {
        None => Some(Lookup::Bare(input.to_string())),
        Some((index, name)) if !name.contains('/') && is_well_formed(index) => {
            let index = IndexName::new(index).ok()?;
            Some(Lookup::Qualified {
                index,
                name: name.to_string(),
            })
        }
        Some(_) => None,
    }
}

/// Why a lookup found no single plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "`{0}` has no registry host and no index is configured to look it up in: write the full \
         reference, such as `ghcr.io/org/{0}:v1` or `127.0.0.1:5000/{0}:v1`, or add an index \
         with `krew-wasm index add NAME FILE|REF`"
    )]
    NoIndexes(String),
    #[error(
        "no index is named `{index}`{}; `krew-wasm index list` shows them, \
         `krew-wasm index add {index} FILE|REF` adds one",
        known_list(known)
    )]
    UnknownIndex { index: String, known: Vec<String> },
    #[error(
        "no plugin named `{name}` in the {} searched ({}); `krew-wasm search {name}` finds \
         similar names, `krew-wasm index update` refreshes the indexes, or give a full \
         reference such as `ghcr.io/org/{name}:v1`",
        if searched.len() == 1 { "index" } else { "indexes" },
        searched.join(", ")
    )]
    NotFound { name: String, searched: Vec<String> },
    #[error(
        "index `{index}` has no plugin named `{name}`; `krew-wasm search {name}` looks in every \
         index, `krew-wasm index update {index}` refreshes it"
    )]
    NotInIndex { index: String, name: String },
    #[error(
        "`{name}` is in several indexes; pull one of them by INDEX/NAME: {}",
        choices.join(", ")
    )]
    Ambiguous { name: String, choices: Vec<String> },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (none is configured)".to_string()
    } else {
        format!(" (configured: {})", known.join(", "))
    }
}

/// The one plugin `lookup` names.
pub fn resolve<'a>(
    indexes: &'a [(IndexName, PluginIndex)],
    lookup: &Lookup,
) -> Result<Hit<'a>, ResolveError> {
    match lookup {
        Lookup::Bare(name) => {
            if indexes.is_empty() {
                return Err(ResolveError::NoIndexes(name.clone()));
            }
            let hits: Vec<Hit<'a>> = indexes
                .iter()
                .filter_map(|(index, document)| {
                    document.get(name).map(|entry| Hit { index, entry })
                })
                .collect();
            match hits.as_slice() {
                [hit] => Ok(*hit),
                [] => Err(ResolveError::NotFound {
                    name: name.clone(),
                    searched: indexes.iter().map(|(i, _)| i.to_string()).collect(),
                }),
                several => Err(ResolveError::Ambiguous {
                    name: name.clone(),
                    choices: several.iter().map(Hit::qualified_name).collect(),
                }),
            }
        }
        Lookup::Qualified { index, name } => {
            let (index, document) = indexes.iter().find(|(i, _)| i == index).ok_or_else(|| {
                ResolveError::UnknownIndex {
                    index: index.to_string(),
                    known: indexes.iter().map(|(i, _)| i.to_string()).collect(),
                }
            })?;
            let entry = document.get(name).ok_or_else(|| ResolveError::NotInIndex {
                index: index.to_string(),
                name: name.clone(),
            })?;
            Ok(Hit { index, entry })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(name: &str, plugins: &[(&str, &str)]) -> (IndexName, PluginIndex) {
        let mut text = String::from("apiVersion: krew-wasm.dev/v1\nkind: PluginIndex\nplugins:\n");
        for (plugin, description) in plugins {
            text.push_str(&format!(
                "  - name: {plugin}\n    reference: ghcr.io/{name}/{plugin}:v1\n    description: {description}\n"
            ));
        }
        (
            IndexName::new(name).unwrap(),
            PluginIndex::parse(text.as_bytes()).unwrap(),
        )
    }

    fn names(hits: &[Hit<'_>]) -> Vec<String> {
        hits.iter().map(Hit::qualified_name).collect()
    }

    fn indexes() -> Vec<(IndexName, PluginIndex)> {
        vec![
            index(
                "main",
                &[
                    ("decoder", "Decodes secrets"),
                    ("podwatch", "Watches pods"),
                    ("secret-tool", "Edits things"),
                ],
            ),
            index(
                "team",
                &[("decoder", "Our fork of the decoder"), ("hello", "Says hi")],
            ),
        ]
    }

    #[test]
    fn searches_names_then_descriptions() {
        let indexes = indexes();
        assert_eq!(
            names(&search(&indexes, &[])),
            [
                "main/decoder",
                "team/decoder",
                "team/hello",
                "main/podwatch",
                "main/secret-tool"
            ]
        );
        assert_eq!(
            names(&search(&indexes, &["SECRET".into()])),
            ["main/secret-tool", "main/decoder"]
        );
        assert_eq!(
            names(&search(&indexes, &["decoder".into()])),
            ["main/decoder", "team/decoder"]
        );
        assert_eq!(
            names(&search(&indexes, &["our fork".into()])),
            ["team/decoder"]
        );
        assert_eq!(
            names(&search(&indexes, &["pods".into(), "x".into()])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn lookup_or_reference() {
        assert_eq!(lookup_syntax("hello"), Some(Lookup::Bare("hello".into())));
        assert_eq!(
            lookup_syntax("team/hello"),
            Some(Lookup::Qualified {
                index: IndexName::new("team").unwrap(),
                name: "hello".into()
            })
        );
        for reference in [
            "ghcr.io/org/hello",
            "ghcr.io/hello",
            "localhost/hello",
            "127.0.0.1:5000/hello",
            "hello:v1",
            "org/hello:v1",
            "a/b/c",
            "oci://ghcr.io/org/hello:v1",
            "ghcr.io/org/hello@sha256:00",
            "",
        ] {
            assert_eq!(lookup_syntax(reference), None, "{reference}");
        }
    }

    #[test]
    fn resolves_one_or_explains() {
        let indexes = indexes();
        let hit = resolve(&indexes, &Lookup::Bare("hello".into())).unwrap();
        assert_eq!(hit.qualified_name(), "team/hello");
        assert_eq!(hit.entry.reference.to_string(), "ghcr.io/team/hello:v1");

        let e = resolve(&indexes, &Lookup::Bare("decoder".into())).unwrap_err();
        assert_eq!(
            e,
            ResolveError::Ambiguous {
                name: "decoder".into(),
                choices: vec!["main/decoder".into(), "team/decoder".into()]
            }
        );
        assert!(e.to_string().contains("main/decoder, team/decoder"), "{e}");
        let qualified = Lookup::Qualified {
            index: IndexName::new("team").unwrap(),
            name: "decoder".into(),
        };
        assert_eq!(
            resolve(&indexes, &qualified)
                .unwrap()
                .entry
                .reference
                .repository(),
            "team/decoder"
        );

        let e = resolve(&indexes, &Lookup::Bare("nope".into())).unwrap_err();
        assert!(e.to_string().contains("(main, team)"), "{e}");
        let e = resolve(
            &indexes,
            &Lookup::Qualified {
                index: IndexName::new("other").unwrap(),
                name: "hello".into(),
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("configured: main, team"), "{e}");
        let e = resolve(
            &indexes,
            &Lookup::Qualified {
                index: IndexName::new("main").unwrap(),
                name: "hello".into(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, ResolveError::NotInIndex { .. }), "{e}");
        let e = resolve(&[], &Lookup::Bare("hello".into())).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("no registry host") && text.contains("ghcr.io/org/hello:v1"),
            "{text}"
        );
    }
}
