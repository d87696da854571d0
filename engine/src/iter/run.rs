//! A cursor over one run: tables with disjoint key ranges, read one after the other.

use super::EntryIterator;
use crate::sstable::{Table, TableIterator};
use crate::{Entry, Result};
use std::sync::Arc;

/// Concatenates the tables of a run, given in ascending key order with disjoint key ranges.
/// Only one table is open at a time, so the cursor holds one data block however many tables
/// the run has.
pub struct RunIterator {
    tables: Vec<Arc<Table>>,
    /// Index in `tables` of the table `current` reads.
    position: usize,
    current: Option<TableIterator>,
}

impl RunIterator {
    /// A cursor over `tables` (ascending key order). Call `seek` or `seek_to_first` first.
    pub fn new(tables: Vec<Arc<Table>>) -> RunIterator {
        debug_assert!(tables
            .windows(2)
            .all(|pair| pair[0].info().largest_key < pair[1].info().smallest_key));
        RunIterator {
            tables,
            position: 0,
            current: None,
        }
    }

    /// Opens table `position` at its first entry, or leaves the cursor exhausted.
    fn open_at_first(&mut self, position: usize) -> Result<()> {
        self.current = None;
        self.position = position;
        if let Some(table) = self.tables.get(position) {
            let mut iterator = table.iter();
            iterator.seek_to_first()?;
            self.current = Some(iterator);
        }
        Ok(())
    }

    /// Moves on to later tables while the current one is exhausted.
    fn settle(&mut self) -> Result<()> {
        while let Some(current) = &self.current {
            if current.valid() {
                return Ok(());
            }
            self.open_at_first(self.position + 1)?;
        }
        Ok(())
    }
}

impl EntryIterator for RunIterator {
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        // The first table whose range reaches `key`: every earlier one ends below it.
        let position = self
            .tables
            .partition_point(|table| table.info().largest_key.as_slice() < key);
        self.current = None;
        self.position = position;
        if let Some(table) = self.tables.get(position) {
            let mut iterator = table.iter();
            iterator.seek(key)?;
            self.current = Some(iterator);
        }
        self.settle()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.open_at_first(0)?;
        self.settle()
    }

    fn valid(&self) -> bool {
        self.current.as_ref().is_some_and(|current| current.valid())
    }

    fn entry(&self) -> &Entry {
        self.current
            .as_ref()
            .expect("entry() called on an exhausted run iterator")
            .entry()
    }

    fn advance(&mut self) -> Result<()> {
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        if !current.valid() {
            return Ok(());
        }
        current.advance()?;
        self.settle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sstable::TableBuilder;
    use crate::{TableOptions, ValueKind};

    fn write_table(dir: &std::path::Path, id: u64, keys: &[&str]) -> Arc<Table> {
        let path = dir.join(format!("{id}.sst"));
        let options = TableOptions {
            block_size_bytes: 256,
            ..TableOptions::default()
        };
        let mut builder = TableBuilder::create(&path, &options, keys.len()).unwrap();
        for (index, key) in keys.iter().enumerate() {
            builder
                .add(key.as_bytes(), index as u64 + 1, ValueKind::Put, b"", b"v")
                .unwrap();
        }
        builder.finish().unwrap();
        Arc::new(Table::open(&path, id, None).unwrap())
    }

    fn collect(iterator: &mut RunIterator) -> Vec<String> {
        let mut keys = Vec::new();
        while iterator.valid() {
            keys.push(String::from_utf8(iterator.entry().key.clone()).unwrap());
            iterator.advance().unwrap();
        }
        keys
    }

    #[test]
    fn concatenates_tables_and_seeks_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let tables = vec![
            write_table(dir.path(), 1, &["a", "c"]),
            write_table(dir.path(), 2, &["e", "g"]),
            write_table(dir.path(), 3, &["i"]),
        ];
        let mut run = RunIterator::new(tables);
        run.seek_to_first().unwrap();
        assert_eq!(collect(&mut run), ["a", "c", "e", "g", "i"]);
        run.seek(b"d").unwrap();
        assert_eq!(collect(&mut run), ["e", "g", "i"]);
        run.seek(b"c").unwrap();
        assert_eq!(collect(&mut run), ["c", "e", "g", "i"]);
        run.seek(b"h").unwrap();
        assert_eq!(collect(&mut run), ["i"]);
        run.seek(b"j").unwrap();
        assert!(!run.valid());
        run.seek(b"\0").unwrap();
        assert_eq!(collect(&mut run).len(), 5);
        let mut empty = RunIterator::new(Vec::new());
        empty.seek_to_first().unwrap();
        assert!(!empty.valid());
        empty.seek(b"a").unwrap();
        assert!(!empty.valid());
    }
}
