//! A cursor over a whole table: the index walked in order, one data block at a time.

use super::block::BlockIterator;
use super::coding::FormatError;
use super::reader::Table;
use crate::error::{Error, Result};
use crate::iter::EntryIterator;
use crate::types::{Entry, ValueKind};
use std::sync::Arc;

/// Iterates one table. Owns an `Arc<Table>` and the current block, so it stays valid while
/// the table is dropped from the database's table set or its blocks leave the cache.
pub struct TableIterator {
    table: Arc<Table>,
    block_number: usize,
    block_offset: u64,
    block: Option<BlockIterator>,
    /// The current entry, copied out so `entry()` can hand out a reference; its buffers
    /// are reused from one entry to the next.
    entry: Entry,
    valid: bool,
}

impl TableIterator {
    pub(super) fn new(table: Arc<Table>) -> TableIterator {
        TableIterator {
            table,
            block_number: 0,
            block_offset: 0,
            block: None,
            entry: Entry {
                key: Vec::new(),
                seq: 0,
                kind: ValueKind::Put,
                meta: Vec::new(),
                value: Vec::new(),
            },
            valid: false,
        }
    }

    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    fn block_error(&self, error: FormatError) -> Error {
        error.into_error("data block", self.table.path(), self.block_offset)
    }

    /// Loads block `block_number`; `false` past the last block.
    fn load_block(&mut self, block_number: usize) -> Result<bool> {
        self.block = None;
        let index = self.table.index()?;
        if block_number >= index.len() {
            return Ok(false);
        }
        let handle = self.table.block_handle(&index, block_number)?;
        let block = self.table.data_block(handle)?;
        self.block_number = block_number;
        self.block_offset = handle.offset;
        self.block = Some(BlockIterator::new(block));
        Ok(true)
    }

    /// Moves past exhausted blocks and copies out the entry the cursor lands on.
    fn settle(&mut self) -> Result<()> {
        loop {
            let Some(block) = self.block.as_ref() else {
                self.valid = false;
                return Ok(());
            };
            if block.valid() {
                block.fill_entry(&mut self.entry);
                self.valid = true;
                return Ok(());
            }
            if !self.load_block(self.block_number + 1)? {
                self.valid = false;
                return Ok(());
            }
            if let Some(block) = self.block.as_mut() {
                let result = block.seek_to_first();
                result.map_err(|error| self.block_error(error))?;
            }
        }
    }

    fn seek_inner(&mut self, key: Option<&[u8]>) -> Result<()> {
        let first_block = match key {
            None => Some(0),
            Some(key) => {
                let index = self.table.index()?;
                index
                    .find(key)
                    .map_err(|error| self.table.index_error(error))?
            }
        };
        let Some(first_block) = first_block else {
            self.block = None;
            return self.settle();
        };
        if !self.load_block(first_block)? {
            return self.settle();
        }
        if let Some(block) = self.block.as_mut() {
            let result = match key {
                None => block.seek_to_first(),
                Some(key) => block.seek(key),
            };
            result.map_err(|error| self.block_error(error))?;
        }
        self.settle()
    }

    /// Runs a step, leaving the iterator invalid if it fails.
    fn guarded(&mut self, step: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        self.valid = false;
        let result = step(self);
        if result.is_err() {
            self.valid = false;
            self.block = None;
        }
        result
    }
}

impl EntryIterator for TableIterator {
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.guarded(|iterator| iterator.seek_inner(Some(key)))
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.guarded(|iterator| iterator.seek_inner(None))
    }

    fn valid(&self) -> bool {
        self.valid
    }

    fn entry(&self) -> &Entry {
        assert!(self.valid, "entry() called on an invalid iterator");
        &self.entry
    }

    fn advance(&mut self) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        self.guarded(|iterator| {
            if let Some(block) = iterator.block.as_mut() {
                let result = block.advance();
                result.map_err(|error| iterator.block_error(error))?;
            }
            iterator.settle()
        })
    }
}
