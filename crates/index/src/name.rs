//! Index names: what `index add NAME` registers and `INDEX/NAME` refers to.

use std::fmt;

/// Why a string cannot name an index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexNameError {
    #[error(
        "`{0}` is not a valid index name: use lowercase letters, digits and inner dashes \
         (`[a-z0-9]([a-z0-9-]*[a-z0-9])?`), at most 63 characters"
    )]
    Invalid(String),
    #[error(
        "`localhost` cannot name an index: `localhost/NAME` is a reference to a registry on \
         this machine; choose another name"
    )]
    Localhost,
}

/// A validated index name such as `default` or `team-tools`: the plugin name
/// rules (without kubectl's built-ins, which do not matter here), and never
/// `localhost`, so `INDEX/NAME` cannot be read as a registry reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexName(String);

impl IndexName {
    pub fn new(name: &str) -> Result<Self, IndexNameError> {
        if !is_well_formed(name) {
            return Err(IndexNameError::Invalid(name.to_string()));
        }
        if name == "localhost" {
            return Err(IndexNameError::Localhost);
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IndexName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The store's name shape (`[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63
/// characters): an index name is a file name under `indexes/`.
pub(crate) use krew_wasm_store::is_well_formed;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["default", "team-tools", "a", "x1"] {
            assert_eq!(IndexName::new(good).unwrap().as_str(), good);
        }
        for bad in ["", "Team", "a/b", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(
                matches!(IndexName::new(bad), Err(IndexNameError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(IndexName::new("localhost"), Err(IndexNameError::Localhost));
    }
}
