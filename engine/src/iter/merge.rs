//! A cursor over several sources that yields, for each key, the version from the newest
//! source holding it.

use super::EntryIterator;
use crate::{Entry, Result};

/// Merges sources given newest first. Sources hold disjoint sequence ranges in that order
/// (memtable, frozen memtable, runs of tables newest to oldest, each read by a
/// `RunIterator`), so "first source holding the key" is "newest version". Sources are few
/// (a handful of runs), so the smallest key is found by a linear pass rather than a heap.
pub struct MergingIterator {
    sources: Vec<Box<dyn EntryIterator>>,
    current: Option<usize>,
}

impl MergingIterator {
    /// A cursor over `sources`, newest first. Call `seek` or `seek_to_first` before use.
    pub fn new(sources: Vec<Box<dyn EntryIterator>>) -> MergingIterator {
        MergingIterator {
            sources,
            current: None,
        }
    }

    fn find_smallest(&mut self) {
        let mut smallest: Option<usize> = None;
        for (index, source) in self.sources.iter().enumerate() {
            if !source.valid() {
                continue;
            }
            // Strictly smaller only: on equal keys the earlier (newer) source stays.
            if smallest.is_none_or(|best| source.entry().key < self.sources[best].entry().key) {
                smallest = Some(index);
            }
        }
        self.current = smallest;
    }
}

impl EntryIterator for MergingIterator {
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        for source in &mut self.sources {
            source.seek(key)?;
        }
        self.find_smallest();
        Ok(())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        for source in &mut self.sources {
            source.seek_to_first()?;
        }
        self.find_smallest();
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn entry(&self) -> &Entry {
        let index = self
            .current
            .expect("entry() called on an exhausted merging iterator");
        self.sources[index].entry()
    }

    fn advance(&mut self) -> Result<()> {
        let Some(index) = self.current else {
            return Ok(());
        };
        let key = self.sources[index].entry().key.clone();
        for source in &mut self.sources {
            if source.valid() && source.entry().key == key {
                source.advance()?;
            }
        }
        self.find_smallest();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtable::Memtable;
    use crate::ValueKind;
    use std::sync::Arc;

    #[test]
    fn newest_source_wins_and_keys_come_once_in_order() {
        let newer = Arc::new(Memtable::new());
        let older = Arc::new(Memtable::new());
        older.insert(b"a", 1, ValueKind::Put, b"", b"old-a");
        older.insert(b"b", 2, ValueKind::Put, b"", b"old-b");
        older.insert(b"d", 3, ValueKind::Put, b"", b"old-d");
        newer.insert(b"b", 4, ValueKind::Delete, b"", b"");
        newer.insert(b"c", 5, ValueKind::Put, b"", b"new-c");
        let mut merged = MergingIterator::new(vec![Box::new(newer.iter()), Box::new(older.iter())]);
        merged.seek_to_first().unwrap();
        let mut seen = Vec::new();
        while merged.valid() {
            let entry = merged.entry();
            seen.push((entry.key.clone(), entry.kind, entry.value.clone()));
            merged.advance().unwrap();
        }
        assert_eq!(
            seen,
            vec![
                (b"a".to_vec(), ValueKind::Put, b"old-a".to_vec()),
                (b"b".to_vec(), ValueKind::Delete, vec![]),
                (b"c".to_vec(), ValueKind::Put, b"new-c".to_vec()),
                (b"d".to_vec(), ValueKind::Put, b"old-d".to_vec()),
            ]
        );
        merged.seek(b"bb").unwrap();
        assert_eq!(merged.entry().key, b"c");
    }
}
