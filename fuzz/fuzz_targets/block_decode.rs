//! Arbitrary bytes as a data block: decoding, walking and seeking must never panic.
#![no_main]

use engine::sstable::block::{block_get, Block, BlockIterator};
use engine::sstable::format::{read_data_block, BlockHandle, BLOCK_TRAILER_SIZE_BYTES};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    // As uncompressed block contents.
    if let Ok(block) = Block::decode(data.to_vec()) {
        let block = Arc::new(block);
        let mut iterator = BlockIterator::new(Arc::clone(&block));
        if iterator.seek_to_first().is_ok() {
            let mut steps = 0;
            while iterator.valid() && steps < 100_000 && iterator.advance().is_ok() {
                steps += 1;
            }
        }
        let target = data.get(..data.len().min(8)).unwrap_or_default();
        let _ = iterator.seek(target);
        let _ = block_get(block, target);
    }
    // As stored bytes plus trailer: checksum, decompression, then decoding.
    if let Some(size) = data.len().checked_sub(BLOCK_TRAILER_SIZE_BYTES) {
        let handle = BlockHandle {
            offset: 0,
            size: size as u64,
        };
        let _ = read_data_block(data, handle, Path::new("fuzz"));
    }
});
