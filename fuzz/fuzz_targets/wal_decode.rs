//! Feeds arbitrary bytes to the commit log's segment decoder: it must never panic, and what
//! it reports must stay inside the input.

#![no_main]

use engine::wal::{decode_segment, SegmentEnd};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(decoded) = decode_segment(Path::new("fuzz.log"), bytes) {
        assert!(decoded.valid_length <= bytes.len() as u64);
        if let SegmentEnd::Damaged { offset, .. } = decoded.end {
            assert_eq!(offset, decoded.valid_length);
        }
        for record in &decoded.records {
            assert!(record.offset + record.payload.len() as u64 <= decoded.valid_length);
        }
    }
});
