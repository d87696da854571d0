//! Directional overrides keyed by (from, to) names.

use std::collections::BTreeMap;

use super::{LinkSpec, MAX_LINK_OVERRIDES};
use crate::{Error, Result};

/// Overrides keyed from → to. Nested maps rather than a tuple key so the per-message lookup
/// borrows the endpoint names instead of allocating two strings for every message.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct PairMap {
    by_from: BTreeMap<String, BTreeMap<String, LinkSpec>>,
    /// Directed pairs held, kept so the limit check need not walk the maps.
    len: usize,
}

impl PairMap {
    pub(super) fn get(&self, from: &str, to: &str) -> Option<&LinkSpec> {
        self.by_from.get(from)?.get(to)
    }

    fn contains(&self, from: &str, to: &str) -> bool {
        self.get(from, to).is_some()
    }

    /// Every (from, to, spec), ordered by from then to.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &str, &LinkSpec)> {
        self.by_from.iter().flat_map(|(from, targets)| {
            targets
                .iter()
                .map(move |(to, spec)| (from.as_str(), to.as_str(), spec))
        })
    }

    /// Sets `from` → `to` (and back if `symmetric`) after validating the spec, the names
    /// (`what` is "datacenter" or "node", for messages) and the override limit.
    pub(super) fn set(
        &mut self,
        what: &str,
        from: &str,
        to: &str,
        spec: LinkSpec,
        symmetric: bool,
    ) -> Result<()> {
        spec.validate()?;
        if from.is_empty() || to.is_empty() {
            return Err(Error::InvalidConfig {
                field: format!("{what} link"),
                detail: format!("empty {what} name in '{from}' -> '{to}'"),
            });
        }
        let mut pairs = vec![(from, to)];
        if symmetric && from != to {
            pairs.push((to, from));
        }
        let added = pairs.iter().filter(|(a, b)| !self.contains(a, b)).count();
        if self.len + added > MAX_LINK_OVERRIDES {
            return Err(Error::LimitExceeded {
                what: "link overrides",
                size: self.len + added,
                limit: MAX_LINK_OVERRIDES,
            });
        }
        for (a, b) in pairs {
            let previous = self
                .by_from
                .entry(a.to_string())
                .or_default()
                .insert(b.to_string(), spec.clone());
            if previous.is_none() {
                self.len += 1;
            }
        }
        Ok(())
    }

    /// Removes `from` → `to` (and back if `symmetric`); returns how many were removed.
    pub(super) fn clear(&mut self, from: &str, to: &str, symmetric: bool) -> usize {
        let mut removed = self.remove(from, to);
        if symmetric && from != to {
            removed += self.remove(to, from);
        }
        removed
    }

    fn remove(&mut self, from: &str, to: &str) -> usize {
        let Some(targets) = self.by_from.get_mut(from) else {
            return 0;
        };
        let removed = usize::from(targets.remove(to).is_some());
        // Drop emptied inner maps so equal contents compare equal.
        if targets.is_empty() {
            self.by_from.remove(from);
        }
        self.len -= removed;
        removed
    }
}
