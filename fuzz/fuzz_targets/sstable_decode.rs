//! Arbitrary bytes as a table file: opening, iterating and point reads must never panic.
#![no_main]

use engine::iter::EntryIterator;
use engine::sstable::{BlockCache, Table};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("sstable_decode_{}.sst", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let cache = Arc::new(BlockCache::new(1 << 20));
    if let Ok(table) = Table::open(&path, 1, Some(cache)) {
        let table = Arc::new(table);
        let mut keys = Vec::new();
        let mut iterator = table.iter();
        if iterator.seek_to_first().is_ok() {
            while iterator.valid() && keys.len() < 100_000 {
                keys.push(iterator.entry().key.clone());
                if iterator.advance().is_err() {
                    break;
                }
            }
        }
        keys.push(table.info().smallest_key.clone());
        keys.push(b"probe".to_vec());
        for key in &keys {
            let _ = table.may_contain(key);
            let _ = table.get(key);
            let _ = iterator.seek(key);
        }
    }
    let _ = std::fs::remove_file(&path);
});
